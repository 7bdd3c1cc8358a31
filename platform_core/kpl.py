"""The Kinesis Producer Library (KPL) aggregated-record format: many user records in one Kinesis record.

Kinesis limits a shard to 1,000 records/s and 1 MiB/s. Small events (a clickstream event is ~600 bytes)
hit the record limit long before the byte limit; packing many of them into one Kinesis record makes
the stream byte-bound instead, which is what the KPL does. Firehose de-aggregates KPL records from
a Kinesis source, and our Lambda consumers call :func:`deaggregate`.

Wire format of one aggregated Kinesis record (the ``Data`` blob)::

    F3 89 9A C2                 4 magic bytes
    <AggregatedRecord>          protobuf (proto2), see below
    <16 bytes>                  MD5 of the protobuf bytes

    message AggregatedRecord {
      repeated string partition_key_table     = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;   // decoded past, never written
    }

The protobuf encoding is written by hand (varints and length-delimited fields only) so that this
module stays pure Python with no third-party import: it runs inside every Lambda package.

Decoding follows the Kinesis Client Library: data without the magic prefix, with a wrong checksum
or with a protobuf that does not parse is *not* aggregated and comes back as one record, unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from platform_core.schemas.clickstream import MAX_RECORD_BYTES

MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_BYTES = 16  # MD5
# Bytes every aggregated record spends outside the protobuf.
FRAMING_BYTES = len(MAGIC) + DIGEST_BYTES

# Protobuf wire types (the low 3 bits of a field key).
_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2
_FIXED32 = 5

# Field keys ((field_number << 3) | wire_type); each fits in one byte.
_KEY_PARTITION_KEY_TABLE = (1 << 3) | _LENGTH_DELIMITED  # 0x0A
_KEY_EXPLICIT_HASH_KEY_TABLE = (2 << 3) | _LENGTH_DELIMITED  # 0x12
_KEY_RECORDS = (3 << 3) | _LENGTH_DELIMITED  # 0x1A
_KEY_PARTITION_KEY_INDEX = (1 << 3) | _VARINT  # 0x08
_KEY_EXPLICIT_HASH_KEY_INDEX = (2 << 3) | _VARINT  # 0x10
_KEY_DATA = (3 << 3) | _LENGTH_DELIMITED  # 0x1A

_UINT64_LIMIT = 1 << 64


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One record as the producer wrote it, before aggregation or after de-aggregation.

    ``sub_sequence_number`` is the record's position inside its aggregated record (as the KCL
    numbers it), or ``None`` for a record that was not aggregated.
    """

    partition_key: str
    data: bytes
    explicit_hash_key: str | None = None
    sub_sequence_number: int | None = None

    @property
    def aggregated(self) -> bool:
        return self.sub_sequence_number is not None


# ---------------------------------------------------------------------------------------------
# Varints and sizes
# ---------------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    """Base-128 little-endian varint of an unsigned integer."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _length_delimited_size(payload_bytes: int) -> int:
    """Bytes of a one-byte key, the length varint and the payload."""
    return 1 + _varint_size(payload_bytes) + payload_bytes


def _record_message_size(key_index: int, hash_key_index: int | None, data_bytes: int) -> int:
    """Bytes of one ``Record`` message body (without its own key and length)."""
    size = 1 + _varint_size(key_index) + _length_delimited_size(data_bytes)
    if hash_key_index is not None:
        size += 1 + _varint_size(hash_key_index)
    return size


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


class Aggregator:
    """Packs user records into one aggregated record, tracking its exact size as it grows.

    ``size_bytes`` is what Kinesis counts against its per-record limit: the aggregated data plus
    the partition key of the Kinesis record that carries it (the first user record's key), so
    ``fits()`` answers "would this still be a valid Kinesis record".
    """

    def __init__(self, max_bytes: int = MAX_RECORD_BYTES) -> None:
        if max_bytes <= FRAMING_BYTES:
            raise ValueError(f"max_bytes must exceed the {FRAMING_BYTES} bytes of framing")
        self.max_bytes = max_bytes
        self._key_index: dict[str, int] = {}
        self._hash_key_index: dict[str, int] = {}
        self._records: list[tuple[int, int | None, bytes]] = []
        self._protobuf_bytes = 0
        self._outer_key_bytes = 0

    def __len__(self) -> int:
        return len(self._records)

    @property
    def size_bytes(self) -> int:
        """Aggregated data plus the carrying record's partition key (0 when empty)."""
        if not self._records:
            return 0
        return FRAMING_BYTES + self._protobuf_bytes + self._outer_key_bytes

    @property
    def partition_key(self) -> str:
        """The partition key of the Kinesis record carrying this aggregate: the first user key."""
        if not self._records:
            raise ValueError("an empty aggregate has no partition key")
        return next(iter(self._key_index))

    @property
    def explicit_hash_key(self) -> str | None:
        """The first user record's explicit hash key, if it had one (used for the carrying record)."""
        if not self._records:
            return None
        hash_index = self._records[0][1]
        return None if hash_index is None else list(self._hash_key_index)[hash_index]

    def size_with(self, partition_key: str, data: bytes, explicit_hash_key: str | None = None) -> int:
        """The ``size_bytes`` this aggregate would have after adding the record."""
        added, outer_key_bytes = self._growth(partition_key, data, explicit_hash_key)
        return FRAMING_BYTES + self._protobuf_bytes + added + outer_key_bytes

    def fits(self, partition_key: str, data: bytes, explicit_hash_key: str | None = None) -> bool:
        return self.size_with(partition_key, data, explicit_hash_key) <= self.max_bytes

    def add(self, partition_key: str, data: bytes, explicit_hash_key: str | None = None) -> None:
        """Append a record; raises ``ValueError`` when it would not fit."""
        if not self.try_add(partition_key, data, explicit_hash_key):
            size = self.size_with(partition_key, data, explicit_hash_key)
            raise ValueError(f"record does not fit: aggregate would be {size} bytes > {self.max_bytes}")

    def try_add(self, partition_key: str, data: bytes, explicit_hash_key: str | None = None) -> bool:
        """Append a record if it fits; returns whether it was added."""
        added, outer_key_bytes = self._growth(partition_key, data, explicit_hash_key)
        if FRAMING_BYTES + self._protobuf_bytes + added + outer_key_bytes > self.max_bytes:
            return False
        key_index = self._key_index.setdefault(partition_key, len(self._key_index))
        hash_index = None
        if explicit_hash_key is not None:
            hash_index = self._hash_key_index.setdefault(explicit_hash_key, len(self._hash_key_index))
        self._records.append((key_index, hash_index, data))
        self._protobuf_bytes += added
        self._outer_key_bytes = outer_key_bytes
        return True

    def _growth(self, partition_key: str, data: bytes, explicit_hash_key: str | None) -> tuple[int, int]:
        """Protobuf bytes the record adds, and the carrying record's partition key bytes after it."""
        added = 0
        key_index = self._key_index.get(partition_key)
        new_key_bytes = 0
        if key_index is None:
            key_index = len(self._key_index)
            new_key_bytes = len(partition_key.encode())
            added += _length_delimited_size(new_key_bytes)
        hash_index = None
        if explicit_hash_key is not None:
            hash_index = self._hash_key_index.get(explicit_hash_key)
            if hash_index is None:
                hash_index = len(self._hash_key_index)
                added += _length_delimited_size(len(explicit_hash_key.encode()))
        added += _length_delimited_size(_record_message_size(key_index, hash_index, len(data)))
        outer_key_bytes = self._outer_key_bytes if self._records else new_key_bytes
        return added, outer_key_bytes

    def to_bytes(self) -> bytes:
        """The aggregated record's data blob: magic, protobuf, MD5."""
        if not self._records:
            raise ValueError("nothing to aggregate")
        parts: list[bytes] = []
        # Fields in field-number order, as protobuf serialisers write them.
        for key in self._key_index:
            encoded = key.encode()
            parts += (bytes((_KEY_PARTITION_KEY_TABLE,)), _varint(len(encoded)), encoded)
        for hash_key in self._hash_key_index:
            encoded = hash_key.encode()
            parts += (bytes((_KEY_EXPLICIT_HASH_KEY_TABLE,)), _varint(len(encoded)), encoded)
        for key_index, hash_index, data in self._records:
            body = [bytes((_KEY_PARTITION_KEY_INDEX,)), _varint(key_index)]
            if hash_index is not None:
                body += (bytes((_KEY_EXPLICIT_HASH_KEY_INDEX,)), _varint(hash_index))
            body += (bytes((_KEY_DATA,)), _varint(len(data)), data)
            message = b"".join(body)
            parts += (bytes((_KEY_RECORDS,)), _varint(len(message)), message)
        protobuf = b"".join(parts)
        return MAGIC + protobuf + hashlib.md5(protobuf, usedforsecurity=False).digest()


def aggregate(records: Iterable[UserRecord], *, max_bytes: int = MAX_RECORD_BYTES) -> bytes:
    """Encode user records into one aggregated record's data (raises ``ValueError`` if too big)."""
    aggregator = Aggregator(max_bytes)
    for record in records:
        aggregator.add(record.partition_key, record.data, record.explicit_hash_key)
    return aggregator.to_bytes()


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


class _MalformedError(Exception):
    """The protobuf does not parse as an AggregatedRecord."""


def is_aggregated(data: bytes) -> bool:
    """True when ``data`` carries the magic prefix and a matching MD5 (the KCL's test)."""
    if len(data) < FRAMING_BYTES or not data.startswith(MAGIC):
        return False
    protobuf = data[len(MAGIC) : -DIGEST_BYTES]
    return hashlib.md5(protobuf, usedforsecurity=False).digest() == data[-DIGEST_BYTES:]


def deaggregate(data: bytes, *, partition_key: str = "", explicit_hash_key: str | None = None) -> list[UserRecord]:
    """The user records inside one Kinesis record's data, in the order they were aggregated.

    Data that is not an intact aggregated record (no magic, bad checksum, unparsable protobuf)
    comes back unchanged as one record with the carrying record's ``partition_key`` and
    ``explicit_hash_key``, exactly as the KCL does, so nothing is ever lost.
    """
    if is_aggregated(data):
        try:
            return _decode_aggregated_record(data[len(MAGIC) : -DIGEST_BYTES])
        except _MalformedError:
            pass
    return [UserRecord(partition_key, data, explicit_hash_key)]


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise _MalformedError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift >= 70:
            raise _MalformedError("varint longer than 10 bytes")
    if result >= _UINT64_LIMIT:
        raise _MalformedError("varint exceeds 64 bits")
    return result, pos


def _fields(buf: bytes) -> Iterable[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field; unknown wire types are malformed."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        number, wire_type = key >> 3, key & 0x07
        if number == 0:
            raise _MalformedError("field number 0")
        value: int | bytes
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire_type == _LENGTH_DELIMITED:
            length, pos = _read_varint(buf, pos)
            if pos + length > end:
                raise _MalformedError("length-delimited field runs past the end")
            value, pos = buf[pos : pos + length], pos + length
        elif wire_type in (_FIXED64, _FIXED32):
            width = 8 if wire_type == _FIXED64 else 4
            if pos + width > end:
                raise _MalformedError("fixed-width field runs past the end")
            value, pos = int.from_bytes(buf[pos : pos + width], "little"), pos + width
        else:  # groups (3, 4) never appear in this message; 6 and 7 are invalid
            raise _MalformedError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


def _expect_bytes(wire_type: int, value: int | bytes) -> bytes:
    if wire_type != _LENGTH_DELIMITED or not isinstance(value, bytes):
        raise _MalformedError("expected a length-delimited field")
    return value


def _expect_int(wire_type: int, value: int | bytes) -> int:
    if wire_type != _VARINT or not isinstance(value, int):
        raise _MalformedError("expected a varint field")
    return value


def _decode_text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as err:
        raise _MalformedError("string field is not UTF-8") from err


def _decode_aggregated_record(protobuf: bytes) -> list[UserRecord]:
    keys: list[str] = []
    hash_keys: list[str] = []
    messages: list[bytes] = []
    for number, wire_type, value in _fields(protobuf):
        if number == 1:
            keys.append(_decode_text(_expect_bytes(wire_type, value)))
        elif number == 2:
            hash_keys.append(_decode_text(_expect_bytes(wire_type, value)))
        elif number == 3:
            messages.append(_expect_bytes(wire_type, value))
        # Other field numbers are unknown fields: protobuf readers skip them.
    return [_decode_record(message, position, keys, hash_keys) for position, message in enumerate(messages)]


def _decode_record(message: bytes, position: int, keys: Sequence[str], hash_keys: Sequence[str]) -> UserRecord:
    key_index: int | None = None
    hash_index: int | None = None
    data: bytes | None = None
    for number, wire_type, value in _fields(message):
        if number == 1:
            key_index = _expect_int(wire_type, value)
        elif number == 2:
            hash_index = _expect_int(wire_type, value)
        elif number == 3:
            data = _expect_bytes(wire_type, value)
        # Field 4 (tags) and unknown fields are skipped: nothing downstream reads tags.
    if key_index is None or data is None:
        raise _MalformedError("record lacks its required partition key index or data")
    if key_index >= len(keys):
        raise _MalformedError("partition key index out of range")
    if hash_index is not None and hash_index >= len(hash_keys):
        raise _MalformedError("explicit hash key index out of range")
    hash_key = None if hash_index is None else hash_keys[hash_index]
    return UserRecord(keys[key_index], data, hash_key, position)


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AggregationPlan:
    """How user records of one size pack into aggregated records.

    ``record_bytes`` is what one aggregated record counts against Kinesis's per-record and
    per-shard byte limits (data plus its partition key); ``bytes_per_user_record`` is that cost
    spread over its user records (the user data plus the aggregation overhead).
    """

    user_record_bytes: int
    partition_key_bytes: int
    user_records_per_record: int
    record_bytes: int

    @property
    def bytes_per_user_record(self) -> float:
        return self.record_bytes / self.user_records_per_record

    @property
    def overhead_ratio(self) -> float:
        """Bytes sent per byte of user data and partition key (1.0 = no overhead)."""
        return self.bytes_per_user_record / (self.user_record_bytes + self.partition_key_bytes)


def aggregated_record_bytes(
    count: int, user_record_bytes: int, partition_key_bytes: int, *, distinct_partition_keys: bool = True
) -> int:
    """Exact ``Aggregator.size_bytes`` of ``count`` equal-sized records without explicit hash keys.

    With ``distinct_partition_keys`` every record brings its own key into the key table (the
    worst case, e.g. one event per session); otherwise they all share one key.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    keys = count if distinct_partition_keys else 1
    protobuf = keys * _length_delimited_size(partition_key_bytes)
    # Record messages: the key index varint grows with the index; sum over its width bands.
    start = 0
    width = 1
    while start < count:
        band_end = min(count, 1 << (7 * width))  # indices in [start, band_end) need `width` bytes
        index_cap = band_end - 1 if distinct_partition_keys else 0
        body = _record_message_size(index_cap, None, user_record_bytes)
        protobuf += (band_end - start) * _length_delimited_size(body)
        start = band_end
        width += 1
    return FRAMING_BYTES + protobuf + partition_key_bytes


def plan_aggregation(
    user_record_bytes: int,
    partition_key_bytes: int = 36,
    *,
    distinct_partition_keys: bool = True,
    max_bytes: int = MAX_RECORD_BYTES,
) -> AggregationPlan:
    """How many user records of ``user_record_bytes`` fit into one aggregated record of ``max_bytes``.

    The default key size is a UUID string (36 bytes), the usual session id.
    """
    if user_record_bytes < 0 or partition_key_bytes < 1:
        raise ValueError("record sizes must be non-negative and partition keys non-empty")

    def size(n: int) -> int:
        return aggregated_record_bytes(
            n, user_record_bytes, partition_key_bytes, distinct_partition_keys=distinct_partition_keys
        )

    if size(1) > max_bytes:
        raise ValueError(f"one record of {user_record_bytes} bytes does not fit into {max_bytes} bytes")
    # size(n) grows strictly with n: binary search for the largest n that fits.
    low, high = 1, max_bytes
    while low < high:
        middle = (low + high + 1) // 2
        if size(middle) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return AggregationPlan(user_record_bytes, partition_key_bytes, low, size(low))
