"""Producer library for backend services that send clickstream events to Kinesis.

Usage::

    from platform_core.config import load_config
    from platform_core.names import Names
    from producer import ClickstreamProducer

    stream = Names(load_config("prod")).clickstream_stream  # "mlp-prod-clickstream"
    producer = ClickstreamProducer(stream, aggregate=True)  # make once, share across threads
    results = producer.put_events(events)  # an iterable of event dicts
    unsent = [r for r in results if not r.acknowledged]  # each with error_code and error_message

Every event gets exactly one :class:`PutResult`, in input order. Events without ``event_id`` get
a time-ordered UUIDv7 before the first attempt; the partition key is ``session_id``. Failed
entries are retried with exponential backoff and full jitter; ``aggregate=True`` packs events
into KPL aggregated records (:mod:`platform_core.kpl`). Sizing a stream:
:func:`producer.capacity.shards_needed`.
"""

from producer.capacity import min_aggregation_factor, shards_needed
from producer.kinesis_producer import ClickstreamProducer, PutResult, RejectionCode, kinesis_client
from producer.uuid7 import uuid7, uuid7_text

__all__ = [
    "ClickstreamProducer",
    "PutResult",
    "RejectionCode",
    "kinesis_client",
    "min_aggregation_factor",
    "shards_needed",
    "uuid7",
    "uuid7_text",
]
