"""Serving datasets: what the endpoint captures, what batch scoring writes, and the labelled
production dataset the feedback loop builds from both and the churn labels.

**Data capture** follows SageMaker's format exactly, one JSON object per line, so that the same
reader serves the endpoint's own capture (instance endpoints) and the inference API's capture
(serverless endpoints, which cannot capture)::

    {"captureData": {"endpointInput":  {"observedContentType": "application/json", "mode": "INPUT",
                                        "data": "<request body>", "encoding": "JSON"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "<response body>", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<caller's id>",
                       "inferenceTime": "2026-03-01T12:00:00.123Z"},
     "eventVersion": "0"}

``encoding`` is ``JSON`` for content types listed in the capture's ``JsonContentTypes`` (ours) and
``BASE64`` otherwise; readers accept both. The response body is the inference container's answer
(pipelines/inference.py): ``{"model_version": ..., "scores": [...], "user_ids": [...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from platform_core.names import DATA_CAPTURE_PREFIX
from platform_core.schema import Field, Primitive, Schema

NAMESPACE = "platform.serving"

CAPTURE_EVENT_VERSION = "0"
JSON_CONTENT_TYPE = "application/json"

# Curated bucket prefixes and their Glue tables.
PREDICTIONS_PREFIX = "curated/predictions/"
PREDICTIONS_TABLE = "churn_predictions"
PRODUCTION_LABELLED_PREFIX = "curated/production_labelled/"
PRODUCTION_LABELLED_TABLE = "production_labelled"

# The inference container's response, as batch transform writes it (one JSON line per user):
# (column, Glue type, comment). The schema language has no arrays, so the columns are written out
# here, once; tests/serving check them against pipelines.inference.predict_fn's answer.
BATCH_PREDICTION_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model_version", "string", "content hash of the model that scored the row"),
    ("scores", "array<double>", "churn probability (one element per scored record)"),
    ("user_ids", "array<string>", "the scored user (same position as its score)"),
)
# Partitions of the predictions table: the day scored, and the run (its start instant, ISO-8601),
# registered only once the run's transform job succeeded.
BATCH_PREDICTION_PARTITIONS: tuple[tuple[str, str, str], ...] = (
    ("run_date", "string", "UTC date (YYYY-MM-DD) of the scoring run"),
    ("scored_at", "string", "start of the scoring run (ISO-8601, UTC); a day scored twice has two"),
)

PRODUCTION_LABELLED = Schema(
    name="ProductionLabelled",
    namespace=NAMESPACE,
    doc=(
        "Each churn label with the latest captured production prediction for its user at or before the "
        "label's cutoff (its renewal date), within the feedback's maximum lead time."
    ),
    fields=(
        Field("user_id", Primitive.STRING, required=True, doc="the subscriber"),
        Field("renewal_date", Primitive.DATE, required=True, doc="the renewal labelled: the label cutoff"),
        Field("churned", Primitive.BOOLEAN, required=True, doc="the ground truth: not renewed in the window"),
        Field("label_time", Primitive.TIMESTAMP, required=True, doc="when the label became known"),
        Field("inference_time", Primitive.TIMESTAMP, required=True, doc="when the prediction was made"),
        Field("score", Primitive.DOUBLE, required=True, doc="the churn probability served"),
        Field("model_version", Primitive.STRING, doc="content hash of the model that served it"),
        Field("event_id", Primitive.STRING, doc="the capture record's eventId"),
        Field("inference_id", Primitive.STRING, doc="the caller's inference id (the API's request id)"),
        Field("lead_days", Primitive.DOUBLE, required=True, doc="days from the prediction to the cutoff"),
    ),
    partition_keys=(Field("label_date", Primitive.STRING, required=True, doc="UTC date (YYYY-MM-DD) of label_time"),),
)


def format_capture_time(value: datetime) -> str:
    """``2026-03-01T12:00:00.123Z``: UTC with milliseconds, as SageMaker writes ``inferenceTime``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def capture_record(
    request_body: str,
    response_body: str,
    *,
    event_id: str,
    inference_time: datetime,
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One capture line (as a dict) in SageMaker's data capture format, JSON-encoded bodies."""
    metadata: dict[str, str] = {"eventId": event_id, "inferenceTime": format_capture_time(inference_time)}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id

    def side(mode: str, data: str) -> dict[str, str]:
        return {"observedContentType": JSON_CONTENT_TYPE, "mode": mode, "data": data, "encoding": "JSON"}

    return {
        "captureData": {"endpointInput": side("INPUT", request_body), "endpointOutput": side("OUTPUT", response_body)},
        "eventMetadata": metadata,
        "eventVersion": CAPTURE_EVENT_VERSION,
    }


def capture_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def capture_key(endpoint_name: str, variant_name: str, inference_time: datetime, file_name: str) -> str:
    """Where SageMaker puts a capture file: ``<prefix><endpoint>/<variant>/yyyy/mm/dd/hh/<file>``."""
    t = inference_time.astimezone(UTC) if inference_time.tzinfo else inference_time.replace(tzinfo=UTC)
    return f"{DATA_CAPTURE_PREFIX}{endpoint_name}/{variant_name}/{t:%Y/%m/%d/%H}/{file_name}"
