"""Change data capture of the ``subscriptions`` table: the source row contract, the transition
kinds derived from its changes, and the datasets the CDC processor and the history job write.

The source is an Aurora PostgreSQL table replicated by AWS DMS (full load + ongoing CDC) into the
``cdc`` Kinesis stream in DMS's Kinesis-target JSON format::

    {"data": {...row after the change...},
     "metadata": {"timestamp": "2026-11-30T12:34:56.123456Z", "record-type": "data" | "control",
                  "operation": "load" | "insert" | "update" | "delete" | <control operations>,
                  "partition-key-type": "primary-key", "schema-name": "public",
                  "table-name": "subscriptions", "transaction-id": 12345,
                  # only with the endpoint's IncludeTransactionDetails:
                  "commit-timestamp": ..., "stream-position": ..., "transaction-record-id": ...},
     "before-image": {...}}   # BeforeImageSettings.FieldName; updates only; may hold only the key

Everything downstream (Avro change log, Glue tables of the curated lake, the history job) derives
from the :class:`~platform_core.schema.Schema` objects here.
"""

from __future__ import annotations

import enum

from platform_core.schema import Field, Primitive, Schema

NAMESPACE = "platform.cdc"

# The replicated source table (also the DMS ``schema-name`` / ``table-name`` of its records).
SOURCE_SCHEMA_NAME = "public"
SOURCE_TABLE_NAME = "subscriptions"
PRIMARY_KEY = "user_id"

# DMS task setting ``BeforeImageSettings.FieldName`` the platform configures (the processor reads
# the name from its settings, so a task configured differently only needs a different variable).
DEFAULT_BEFORE_IMAGE_FIELD = "before-image"

# Key prefixes in the lake bucket (Hive-style ``date=YYYY-MM-DD`` partitions below each).
CDC_TRANSITIONS_PREFIX = "cdc/transitions/"
CDC_SNAPSHOTS_PREFIX = "cdc/snapshots/"
CDC_ERROR_PREFIX = "errors/cdc/"
SUBSCRIPTION_HISTORY_PREFIX = "curated/subscription_history/"
CHURN_LABELS_PREFIX = "curated/churn_labels/"


class Operation(enum.StrEnum):
    """DMS ``metadata.operation`` values of data records the processor understands."""

    LOAD = "load"  # full load: the row as it was when DMS read the table
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


class TransitionKind(enum.StrEnum):
    """What a change meant for the subscription (one change can mean several, e.g. a reactivation
    on a new plan is ``reactivated`` and ``plan_changed``).

    Precisely, with ``before``/``after`` the row before and after the change:

    - ``subscribed``: there was no row (insert, or a row re-inserted after a delete) and the new row
      is active;
    - ``cancelled``: active -> inactive;
    - ``reactivated``: an existing inactive row becomes active;
    - ``renewed``: active before and after, and ``renewal_date`` moves strictly forward;
    - ``plan_changed``: the row existed before and ``plan`` differs (whatever the activity);
    - ``deleted``: the row was deleted.

    ``stale`` is not a change of state: it marks a change that arrived after a newer one had been
    applied for the same user; it is kept in the transition log for audit and never moves state.
    A price-only change, or a change of columns outside the contract, is no transition but does
    produce a new state snapshot.
    """

    SUBSCRIBED = "subscribed"
    CANCELLED = "cancelled"
    REACTIVATED = "reactivated"
    RENEWED = "renewed"
    PLAN_CHANGED = "plan_changed"
    DELETED = "deleted"
    STALE = "stale"


class BeforeOrigin(enum.StrEnum):
    """Where the ``before_*`` fields of a transition came from."""

    IMAGE = "image"  # the DMS before image (ColumnFilter all) or a delete's full old row
    STATE = "state"  # the last state the processor stored for the user
    ABSENT = "absent"  # the row did not exist before (insert) or nothing was known


# ---------------------------------------------------------------------------------------------
# The source row
# ---------------------------------------------------------------------------------------------

# Columns whose state the processor tracks. ``user_id`` and ``is_active_subscribed`` are NOT NULL
# in the database, so a row image without ``is_active_subscribed`` is a primary-key-only image.
SUBSCRIPTION_ROW = Schema(
    name="SubscriptionRow",
    namespace=NAMESPACE,
    doc="A row of the OLTP subscriptions table as DMS replicates it.",
    fields=(
        Field("user_id", Primitive.STRING, required=True, doc="primary key; a string everywhere"),
        Field("is_active_subscribed", Primitive.BOOLEAN, required=True, doc="the subscription is active"),
        Field("renewal_date", Primitive.DATE, doc="next renewal (YYYY-MM-DD in DMS records)"),
        Field("plan", Primitive.STRING, doc="plan name"),
        Field("price", Primitive.DOUBLE, doc="price of the plan per period (numeric in PostgreSQL)"),
    ),
)

STATE_FIELDS: tuple[str, ...] = tuple(f.name for f in SUBSCRIPTION_ROW.fields if f.name != PRIMARY_KEY)

# ---------------------------------------------------------------------------------------------
# Datasets written by the processor (Avro change log in the lake)
# ---------------------------------------------------------------------------------------------

_POSITION_FIELDS = (
    Field(
        "change_time",
        Primitive.TIMESTAMP,
        required=True,
        doc="DMS commit timestamp of the change (read time for full-load records), UTC",
    ),
    Field("transaction_id", Primitive.LONG, doc="source transaction id (absent for full-load records)"),
    Field(
        "source_position",
        Primitive.STRING,
        required=True,
        doc="sortable position of the change: commit time, transaction id, then the DMS stream "
        "position (or the Kinesis sequence number); orders the changes of one user",
    ),
)


def _image_fields(prefix: str, when: str) -> tuple[Field, ...]:
    return tuple(Field(f"{prefix}{f.name}", f.type, doc=f"{f.doc} ({when})") for f in SUBSCRIPTION_ROW.fields[1:])


TRANSITION = Schema(
    name="SubscriptionTransition",
    namespace=NAMESPACE,
    doc="One transition of a user's subscription derived from a DMS change record.",
    fields=(
        Field(
            "event_id",
            Primitive.STRING,
            required=True,
            doc="deterministic id from table, key, source change and kind: readers dedupe on it",
        ),
        Field("user_id", Primitive.STRING, required=True, doc="the subscriber"),
        Field("transition", Primitive.STRING, required=True, doc="one of TransitionKind"),
        Field("operation", Primitive.STRING, required=True, doc="DMS operation: load, insert, update, delete"),
        Field("before_origin", Primitive.STRING, required=True, doc="one of BeforeOrigin"),
        *_image_fields("before_", "before the change"),
        *_image_fields("after_", "after the change"),
        *_POSITION_FIELDS,
        Field("processed_at", Primitive.TIMESTAMP, required=True, doc="when the processor handled it"),
    ),
)

STATE_SNAPSHOT = Schema(
    name="SubscriptionSnapshot",
    namespace=NAMESPACE,
    doc="A user's subscription state right after each applied change (the input of SCD2 history).",
    fields=(
        Field(
            "event_id",
            Primitive.STRING,
            required=True,
            doc="deterministic id from table, key and source change: readers dedupe on it",
        ),
        Field("user_id", Primitive.STRING, required=True, doc="the subscriber"),
        *(Field(f.name, f.type, doc=f.doc) for f in SUBSCRIPTION_ROW.fields[1:]),
        Field("is_deleted", Primitive.BOOLEAN, required=True, doc="the row was deleted (state fields null)"),
        Field("operation", Primitive.STRING, required=True, doc="DMS operation that produced this state"),
        *_POSITION_FIELDS,
        Field("processed_at", Primitive.TIMESTAMP, required=True, doc="when the processor handled it"),
    ),
)

# ---------------------------------------------------------------------------------------------
# Curated datasets written by the history job (Parquet)
# ---------------------------------------------------------------------------------------------

SUBSCRIPTION_HISTORY = Schema(
    name="SubscriptionHistory",
    namespace=NAMESPACE,
    doc="SCD type 2 history of subscriptions: one row per version of a user's subscription.",
    fields=(
        Field("user_id", Primitive.STRING, required=True, doc="the subscriber"),
        Field("is_active_subscribed", Primitive.BOOLEAN, required=True, doc="active in this version"),
        Field("renewal_date", Primitive.DATE, doc="next renewal in this version"),
        Field("plan", Primitive.STRING, doc="plan in this version"),
        Field("price", Primitive.DOUBLE, doc="price in this version"),
        Field("valid_from", Primitive.TIMESTAMP, required=True, doc="change_time that started the version"),
        Field("valid_to", Primitive.TIMESTAMP, doc="change_time that ended it (exclusive); null if current"),
        Field("is_current", Primitive.BOOLEAN, required=True, doc="the version is the user's present state"),
    ),
)

CHURN_LABEL = Schema(
    name="ChurnLabel",
    namespace=NAMESPACE,
    doc="Whether a subscriber churned at a renewal date (see glue_jobs.transforms.history.churn_labels).",
    fields=(
        Field("user_id", Primitive.STRING, required=True, doc="the subscriber"),
        Field("renewal_date", Primitive.DATE, required=True, doc="the renewal date labelled: the label cutoff"),
        Field("churned", Primitive.BOOLEAN, required=True, doc="not renewed within the window after it"),
        Field("label_time", Primitive.TIMESTAMP, required=True, doc="when the label became known (window end)"),
    ),
)

# Avro schemas registered in platform_core/schemas/registry/<name>/v<N>.avsc (checked by tests).
REGISTERED_SCHEMAS: tuple[Schema, ...] = (TRANSITION, STATE_SNAPSHOT)
