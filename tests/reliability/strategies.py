"""Hypothesis strategies for the inputs AWS hands the platform's handlers: arbitrary bytes, and
JSON *near* each contract (right field names, values that are sometimes right, sometimes any JSON),
because near-misses reach deeper into a parser than noise does."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from platform_core.kpl import UserRecord, aggregate
from platform_core.schemas.cdc import SOURCE_SCHEMA_NAME, SOURCE_TABLE_NAME
from platform_core.schemas.clickstream import CLICKSTREAM_EVENT, EVENT_TYPES

# Any JSON value, kept small: handlers must survive it, not digest megabytes of it.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=2) | st.dictionaries(st.text(max_size=6), children, max_size=2),
    max_leaves=4,
)

instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value of the right shape, sometimes any JSON at all."""
    return st.one_of(valid, valid, valid, json_values)


# ---------------------------------------------------------------------------------------------
# Clickstream events
# ---------------------------------------------------------------------------------------------

_CLICKSTREAM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.text(min_size=1, max_size=40),
    "event_time": st.one_of(
        instants.map(lambda t: t.isoformat()),
        instants.map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S")),  # naive: must be refused
        instants.map(lambda t: int(t.timestamp() * 1000)),
        st.text(max_size=30),
    ),
    "event_type": st.one_of(st.sampled_from(sorted(EVENT_TYPES)), st.text(max_size=15)),
    "session_id": st.one_of(st.text(min_size=1, max_size=30), st.just("   ")),
    "user_id": st.one_of(st.none(), st.text(max_size=20)),
    "user_agent": st.one_of(
        st.none(), st.text(max_size=60), st.just("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")
    ),
    "ip": st.one_of(st.ip_addresses().map(str), st.text(max_size=20), st.none()),
    "referrer": st.one_of(st.none(), st.text(max_size=40), st.just("https://www.google.com/search?q=x")),
    "request": st.fixed_dictionaries(
        {},
        optional={
            "method": maybe(st.sampled_from(["GET", "POST"])),
            "path": maybe(st.text(max_size=20)),
            "query": maybe(st.text(max_size=20)),
            "status": maybe(st.integers(min_value=-(2**40), max_value=2**40)),
            "latency_ms": maybe(st.floats(allow_nan=False, allow_infinity=False)),
        },
    ),
    "properties": st.dictionaries(st.text(max_size=8), maybe(st.text(max_size=10)), max_size=3),
}
assert set(_CLICKSTREAM_VALUES) == set(CLICKSTREAM_EVENT.field_names), "the strategy must follow the schema"

clickstream_objects = st.builds(
    lambda event, extra: extra | event,
    st.fixed_dictionaries({}, optional={name: maybe(values) for name, values in _CLICKSTREAM_VALUES.items()}),
    st.dictionaries(st.text(max_size=6), json_scalars, max_size=1),  # unknown fields are ignored, not rejected
)


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


clickstream_payloads = st.one_of(
    clickstream_objects.map(encoded),
    clickstream_objects.map(encoded),
    json_values.map(encoded),
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


# ---------------------------------------------------------------------------------------------
# DMS Kinesis-target records of the subscriptions table
# ---------------------------------------------------------------------------------------------

_DMS_ROW = {
    "user_id": st.one_of(st.text(max_size=12), st.integers()),
    "is_active_subscribed": st.one_of(st.booleans(), st.sampled_from(["true", "false", "yes", 1])),
    "renewal_date": st.one_of(
        st.dates().map(str), st.sampled_from(["2026-02-30", "2026-1-1", ""]), st.text(max_size=12)
    ),
    "plan": st.text(max_size=10),
    "price": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.decimals(allow_nan=True).map(str), st.text(max_size=8)
    ),
}

dms_rows = st.fixed_dictionaries(
    {}, optional={name: maybe(values) for name, values in _DMS_ROW.items()} | {"currency": st.text(max_size=3)}
)

dms_metadata = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": maybe(
            st.one_of(instants.map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")), st.text(max_size=30))
        ),
        "commit-timestamp": maybe(instants.map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f"))),
        "record-type": maybe(st.sampled_from(["data", "control", "other"])),
        "operation": maybe(st.sampled_from(["load", "insert", "update", "delete", "create-table", "truncate"])),
        "partition-key-type": st.just("primary-key"),
        "schema-name": maybe(st.sampled_from([SOURCE_SCHEMA_NAME, "other"])),
        "table-name": maybe(st.sampled_from([SOURCE_TABLE_NAME, "other"])),
        "transaction-id": maybe(st.one_of(st.integers(min_value=-5, max_value=2**64), st.text(max_size=6))),
        "stream-position": maybe(st.text(max_size=20)),
        "transaction-record-id": maybe(st.integers(min_value=-5, max_value=2**64)),
    },
)

dms_messages = st.fixed_dictionaries(
    {},
    optional={"metadata": maybe(dms_metadata), "data": maybe(dms_rows), "before-image": maybe(dms_rows)},
)

dms_payloads = st.one_of(
    dms_messages.map(encoded),
    dms_messages.map(encoded),
    dms_messages.map(encoded),
    json_values.map(encoded),
    st.binary(max_size=200),
)


# ---------------------------------------------------------------------------------------------
# Kinesis records as Lambda delivers them
# ---------------------------------------------------------------------------------------------


def aggregated(payloads: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A KPL aggregated record of a few payloads, sometimes cut short (a corrupt aggregate)."""
    records = st.lists(payloads, min_size=1, max_size=3).map(
        lambda items: aggregate([UserRecord(partition_key=f"pk-{i}", data=d) for i, d in enumerate(items)])
    )
    return st.one_of(records, st.tuples(records, st.integers(min_value=1, max_value=40)).map(lambda t: t[0][: -t[1]]))


ascii_text = st.text(alphabet=st.characters(max_codepoint=127), max_size=30)


def kinesis_data(payloads: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
    """The ``kinesis.data`` field: base64 of a payload or an aggregate, now and then ASCII text that
    is not base64 (the field is JSON text from AWS: ASCII, see the known defect about non-ASCII)."""
    return st.one_of(
        payloads.map(lambda b: base64.b64encode(b).decode()),
        payloads.map(lambda b: base64.b64encode(b).decode()),
        aggregated(payloads).map(lambda b: base64.b64encode(b).decode()),
        ascii_text,
    )


def kinesis_events(payloads: st.SearchStrategy[bytes], *, stream: str) -> st.SearchStrategy[dict[str, Any]]:
    """A Kinesis event of 1..4 records, sequence numbers increasing along one shard."""
    arn = f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream}"

    def event(items: list[tuple[str, str]]) -> dict[str, Any]:
        records = []
        for i, (data, key) in enumerate(items):
            sequence = f"4959033827149025660855969253836157109592157598913{6588800 + i * 100:07d}"
            records.append(
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": key,
                        "sequenceNumber": sequence,
                        "data": data,
                        "approximateArrivalTimestamp": 1_748_800_000.123 + i,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"shardId-000000000000:{sequence}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::123456789012:role/consumer",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": arn,
                }
            )
        return {"Records": records}

    return st.lists(st.tuples(kinesis_data(payloads), st.text(min_size=1, max_size=6)), min_size=1, max_size=4).map(
        event
    )


def firehose_events(payloads: st.SearchStrategy[bytes]) -> st.SearchStrategy[dict[str, Any]]:
    """A Firehose transformation event (Kinesis stream source) of 1..4 records."""

    def event(items: list[tuple[str, int, bool]]) -> dict[str, Any]:
        records = []
        for i, (data, arrival, with_metadata) in enumerate(items):
            record: dict[str, Any] = {
                "recordId": f"4959033827149025660855969253836157109592157598913{i:07d}0000",
                "approximateArrivalTimestamp": arrival,
                "data": data,
            }
            if with_metadata:
                record["kinesisRecordMetadata"] = {
                    "sequenceNumber": f"49590338271490256608559692538361571095921575989136{i:06d}",
                    "subsequenceNumber": 0,
                    "partitionKey": f"pk-{i}",
                    "shardId": "shardId-000000000000",
                    "approximateArrivalTimestamp": arrival,
                }
            records.append(record)
        return {
            "invocationId": "00540a87-5050-496a-84e4-e7d92bbaf5e2",
            "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/mlp-dev-clickstream",
            "sourceKinesisStreamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/mlp-dev-clickstream",
            "region": "us-east-1",
            "records": records,
        }

    data = st.one_of(
        payloads.map(lambda b: base64.b64encode(b).decode()),
        payloads.map(lambda b: base64.b64encode(b).decode()),
        st.text(max_size=20),  # not base64
    )
    arrival = st.integers(min_value=946_684_800_000, max_value=2_208_988_800_000)
    return st.lists(st.tuples(data, arrival, st.booleans()), min_size=1, max_size=4).map(event)


# ---------------------------------------------------------------------------------------------
# HLS playlists
# ---------------------------------------------------------------------------------------------

_number_text = st.one_of(
    st.integers(min_value=-10, max_value=10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "", " 4", "4.", "0x10", "1_000", "²"]),
    st.text(max_size=8),
)
_playlist_lines = st.one_of(
    st.just("#EXTM3U"),
    _number_text.map(lambda v: f"#EXT-X-MEDIA-SEQUENCE:{v}"),
    _number_text.map(lambda v: f"#EXT-X-TARGETDURATION:{v}"),
    _number_text.map(lambda v: f"#EXTINF:{v},title"),
    st.just("#EXT-X-DISCONTINUITY"),
    st.one_of(instants.map(lambda t: t.isoformat()), st.text(max_size=25)).map(
        lambda v: f"#EXT-X-PROGRAM-DATE-TIME:{v}"
    ),
    st.just("#EXT-X-ENDLIST"),
    st.tuples(_number_text, st.sampled_from(["1280x720", "x", "axb", "", "99999999999x1"])).map(
        lambda t: f'#EXT-X-STREAM-INF:BANDWIDTH={t[0]},RESOLUTION={t[1]},CODECS="avc1,mp4a"'
    ),
    st.sampled_from(["#EXT-X-KEY:METHOD=NONE", "#EXT-X-KEY:METHOD=AES-128", "#EXT-X-MAP:URI=init.mp4"]),
    st.sampled_from(["seg_1.ts", "/live/seg_2.ts", "../hi/index.m3u8", "https://cdn.example.com/s.ts", "::", "?x"]),
    st.text(max_size=30),
)
playlist_texts = st.one_of(
    st.lists(_playlist_lines, max_size=15).map(lambda lines: "\n".join(["#EXTM3U", *lines])),
    st.lists(_playlist_lines, max_size=15).map("\r\n".join),
    st.text(max_size=100),
)
