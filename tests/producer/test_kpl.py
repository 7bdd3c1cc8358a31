"""The KPL aggregated-record codec: wire format, round trips, KCL-style fallback, planning."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_core.kpl import (
    DIGEST_BYTES,
    FRAMING_BYTES,
    MAGIC,
    Aggregator,
    UserRecord,
    aggregate,
    aggregated_record_bytes,
    deaggregate,
    is_aggregated,
    plan_aggregation,
)

# -- wire format, pinned by hand ------------------------------------------------------------------

# Three records: ("a", b"x"), ("b", b"yz", explicit hash key "123"), ("a", b"").
HAND_BUILT_PROTOBUF = bytes.fromhex(
    "0a0161"  # partition_key_table: "a"
    "0a0162"  # partition_key_table: "b"
    "1203313233"  # explicit_hash_key_table: "123"
    "1a05"
    "0800"
    "1a0178"  # record {partition_key_index: 0, data: "x"}
    "1a08"
    "0801"
    "1000"
    "1a02797a"  # record {partition_key_index: 1, explicit_hash_key_index: 0, data: "yz"}
    "1a04"
    "0800"
    "1a00"  # record {partition_key_index: 0, data: ""}
)
HAND_BUILT = bytes([0xF3, 0x89, 0x9A, 0xC2]) + HAND_BUILT_PROTOBUF + hashlib.md5(HAND_BUILT_PROTOBUF).digest()
HAND_BUILT_RECORDS = [
    UserRecord("a", b"x"),
    UserRecord("b", b"yz", explicit_hash_key="123"),
    UserRecord("a", b""),
]


def test_encoding_matches_the_hand_built_wire_format() -> None:
    assert aggregate(HAND_BUILT_RECORDS) == HAND_BUILT


def test_decoding_the_hand_built_record_gives_back_the_user_records_numbered() -> None:
    assert deaggregate(HAND_BUILT, partition_key="outer") == [
        UserRecord("a", b"x", None, 0),
        UserRecord("b", b"yz", "123", 1),
        UserRecord("a", b"", None, 2),
    ]


def test_large_indexes_and_lengths_use_multi_byte_varints() -> None:
    # Given 200 distinct keys (index 128 needs two varint bytes) and a 300-byte record
    records = [UserRecord(f"k{i}", b"d" * (300 if i == 150 else 1)) for i in range(200)]

    # When encoded
    blob = aggregate(records)

    # Then record 150 carries the varints 0x96 0x01 (150) and 0xac 0x02 (300)
    assert bytes.fromhex("0896011aac02") + b"d" * 300 in blob
    assert [r.partition_key for r in deaggregate(blob)] == [f"k{i}" for i in range(200)]


# -- against an independent protobuf implementation -----------------------------------------------


def kpl_message_class() -> Any:
    """The AggregatedRecord message built by the protobuf runtime from its descriptor."""
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
    from google.protobuf import descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="kpl_oracle.proto", package="oracle", syntax="proto2")
    tag = proto.message_type.add(name="Tag")
    tag.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_REQUIRED)
    tag.field.add(name="value", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    record = proto.message_type.add(name="Record")
    record.field.add(name="partition_key_index", number=1, type=field.TYPE_UINT64, label=field.LABEL_REQUIRED)
    record.field.add(name="explicit_hash_key_index", number=2, type=field.TYPE_UINT64, label=field.LABEL_OPTIONAL)
    record.field.add(name="data", number=3, type=field.TYPE_BYTES, label=field.LABEL_REQUIRED)
    record.field.add(
        name="tags", number=4, type=field.TYPE_MESSAGE, type_name=".oracle.Tag", label=field.LABEL_REPEATED
    )
    aggregated = proto.message_type.add(name="AggregatedRecord")
    for name, number, type_, type_name in [
        ("partition_key_table", 1, field.TYPE_STRING, None),
        ("explicit_hash_key_table", 2, field.TYPE_STRING, None),
        ("records", 3, field.TYPE_MESSAGE, ".oracle.Record"),
    ]:
        aggregated.field.add(name=name, number=number, type=type_, type_name=type_name, label=field.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("oracle.AggregatedRecord"))


def test_protobuf_runtime_reads_what_we_write() -> None:
    # Given our encoding of the hand-built records
    message = kpl_message_class()()

    # When the protobuf runtime parses its protobuf part
    message.ParseFromString(aggregate(HAND_BUILT_RECORDS)[len(MAGIC) : -DIGEST_BYTES])

    # Then it sees the same tables and records
    assert list(message.partition_key_table) == ["a", "b"]
    assert list(message.explicit_hash_key_table) == ["123"]
    assert [(r.partition_key_index, r.HasField("explicit_hash_key_index"), r.data) for r in message.records] == [
        (0, False, b"x"),
        (1, True, b"yz"),
        (0, False, b""),
    ]


def test_we_read_what_the_protobuf_runtime_writes_including_tags() -> None:
    # Given an AggregatedRecord serialised by the protobuf runtime, with tags we do not use
    message = kpl_message_class()()
    message.partition_key_table.extend(["p", "q"])
    message.explicit_hash_key_table.append("340282366920938463463374607431768211455")
    first = message.records.add(partition_key_index=1, data=b"\x00\xff")
    first.tags.add(key="source", value="kpl")
    message.records.add(partition_key_index=0, explicit_hash_key_index=0, data=b"second")
    protobuf = message.SerializeToString()
    blob = MAGIC + protobuf + hashlib.md5(protobuf).digest()

    # When we de-aggregate it
    records = deaggregate(blob)

    # Then tags are skipped and the records come back intact
    assert records == [
        UserRecord("q", b"\x00\xff", None, 0),
        UserRecord("p", b"second", "340282366920938463463374607431768211455", 1),
    ]


# -- round trips and fallback (property-based) ----------------------------------------------------

partition_keys = st.text(min_size=1, max_size=40)
hash_keys = st.integers(min_value=0, max_value=2**128 - 1).map(str)
user_records = st.builds(
    UserRecord,
    partition_key=partition_keys,
    data=st.binary(max_size=300),
    explicit_hash_key=st.none() | hash_keys,
)


@given(st.lists(user_records, min_size=1, max_size=60))
@settings(max_examples=150, deadline=None)
def test_round_trip_gives_back_every_record_in_order(records: list[UserRecord]) -> None:
    decoded = deaggregate(aggregate(records))
    assert decoded == [UserRecord(r.partition_key, r.data, r.explicit_hash_key, i) for i, r in enumerate(records)]


@given(st.lists(user_records, min_size=1, max_size=60))
@settings(max_examples=100, deadline=None)
def test_tracked_size_is_the_exact_size_kinesis_counts(records: list[UserRecord]) -> None:
    aggregator = Aggregator()
    for r in records:
        aggregator.add(r.partition_key, r.data, r.explicit_hash_key)
    blob = aggregator.to_bytes()
    assert aggregator.size_bytes == len(blob) + len(records[0].partition_key.encode())
    assert aggregator.partition_key == records[0].partition_key
    assert aggregator.explicit_hash_key == records[0].explicit_hash_key


@given(st.binary(max_size=200), partition_keys)
@settings(max_examples=200, deadline=None)
def test_data_without_the_magic_is_one_plain_record_unchanged(data: bytes, key: str) -> None:
    data = data if not data.startswith(MAGIC) else b"!" + data
    assert deaggregate(data, partition_key=key, explicit_hash_key="7") == [UserRecord(key, data, "7")]


@given(st.lists(user_records, min_size=1, max_size=10), st.data())
@settings(max_examples=150, deadline=None)
def test_any_corrupted_byte_makes_it_a_plain_record(records: list[UserRecord], data: st.DataObject) -> None:
    # Given an aggregated record with one byte changed (magic, protobuf or checksum)
    blob = bytearray(aggregate(records))
    position = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    blob[position] ^= data.draw(st.integers(min_value=1, max_value=255))
    corrupted = bytes(blob)

    # Then, as in the KCL, it is not treated as aggregated and comes back whole
    assert not is_aggregated(corrupted)
    assert deaggregate(corrupted, partition_key="outer") == [UserRecord("outer", corrupted)]


@given(st.binary(max_size=120))
@settings(max_examples=300, deadline=None)
def test_garbage_with_a_valid_checksum_never_raises_and_loses_nothing(protobuf: bytes) -> None:
    blob = MAGIC + protobuf + hashlib.md5(protobuf).digest()
    records = deaggregate(blob, partition_key="outer")
    assert records == [UserRecord("outer", blob)] or all(r.aggregated for r in records)


@pytest.mark.parametrize(
    ("name", "protobuf"),
    [
        ("key index out of range", bytes.fromhex("0a01611a0508011a0178")),
        ("hash key index out of range", bytes.fromhex("0a01611a07080010001a0178")),
        ("record without data", bytes.fromhex("0a01611a020800")),
        ("record without key index", bytes.fromhex("0a01611a031a0178")),
        ("key that is not UTF-8", bytes.fromhex("0a01ff1a0508001a0178")),
        ("truncated length", bytes.fromhex("0a0561")),
        ("group wire type", bytes.fromhex("0b")),
        ("table entry as varint", bytes.fromhex("0801")),
    ],
)
def test_checksummed_but_malformed_protobuf_is_a_plain_record(name: str, protobuf: bytes) -> None:
    blob = MAGIC + protobuf + hashlib.md5(protobuf).digest()
    assert is_aggregated(blob), name
    assert deaggregate(blob, partition_key="outer") == [UserRecord("outer", blob)]


def test_unknown_fields_are_skipped_like_protobuf_does() -> None:
    # Given the hand-built record plus an unknown varint field 9, fixed64 field 10 and fixed32 field 11
    protobuf = HAND_BUILT_PROTOBUF + bytes.fromhex("480151" + "00" * 8 + "5d" + "00" * 4)
    blob = MAGIC + protobuf + hashlib.md5(protobuf).digest()

    # Then the records are still read
    assert [r.data for r in deaggregate(blob)] == [b"x", b"yz", b""]


def test_an_aggregate_refuses_what_does_not_fit() -> None:
    aggregator = Aggregator(max_bytes=100)
    assert aggregator.try_add("k", b"x" * 40)
    assert not aggregator.try_add("k", b"x" * 40)
    with pytest.raises(ValueError, match="does not fit"):
        aggregator.add("k", b"x" * 40)
    assert len(aggregator) == 1
    with pytest.raises(ValueError, match="nothing to aggregate"):
        Aggregator().to_bytes()


# -- planning -------------------------------------------------------------------------------------


@pytest.mark.parametrize("distinct", [True, False], ids=["distinct-keys", "one-key"])
@pytest.mark.parametrize("count", [1, 127, 128, 129, 1_000, 16_385])
def test_planned_size_equals_the_size_of_a_real_aggregate(count: int, distinct: bool) -> None:
    aggregator = Aggregator(max_bytes=10**9)
    for i in range(count):
        aggregator.add(f"{i:036d}" if distinct else "0" * 36, b"e" * 20)
    assert aggregated_record_bytes(count, 20, 36, distinct_partition_keys=distinct) == aggregator.size_bytes


@pytest.mark.parametrize("distinct", [True, False], ids=["distinct-keys", "one-key"])
def test_plan_is_the_most_600_byte_events_that_fit_in_one_mib(distinct: bool) -> None:
    # Given the plan for 600-byte events with 36-byte session keys
    plan = plan_aggregation(600, 36, distinct_partition_keys=distinct)

    # Then exactly that many fit into a real aggregate, and one more does not
    aggregator = Aggregator()
    for i in range(plan.user_records_per_record):
        aggregator.add(f"{i:036d}" if distinct else "s" * 36, b"e" * 600)
    assert aggregator.size_bytes == plan.record_bytes <= 1024 * 1024
    assert not aggregator.fits(f"{10**9:036d}" if distinct else "s" * 36, b"e" * 600)
    # And the figures are the arithmetic's: per event 3 bytes of record key and length, 2 of
    # Record header and key index, 603 of data field, plus 38 of key table entry when distinct:
    # (1 MiB - 20 framing - 36 outer key) // 647 = 1620, or (1 MiB - 56 - 38) // 608 = 1724
    expected = 1_620 if distinct else 1_724
    assert plan.user_records_per_record == expected
    assert plan.overhead_ratio == pytest.approx(plan.record_bytes / expected / 636)
    # (a shared key is stored once, so aggregation then sends fewer bytes than plain records)
    assert plan.overhead_ratio < 1.02
    assert (plan.overhead_ratio > 1.0) is distinct


def test_a_record_too_big_to_aggregate_has_no_plan() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        plan_aggregation(1024 * 1024 - FRAMING_BYTES, 36)
