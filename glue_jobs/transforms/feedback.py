"""The feedback loop: captured production predictions + churn labels -> a labelled production
dataset, and the model's measured quality on it.

Three steps, each a function:

1. :func:`split_captures`: SageMaker data-capture lines (``platform_core.schemas.serving``) into one
   prediction row per scored user (``user_id``, ``event_time`` = the capture's ``inferenceTime``,
   ``score``, ``model_version``, ids), and the lines that cannot be read, each with its reason. A
   response scoring several records yields several rows; the body may be captured as JSON text or
   BASE64. A line delivered twice counts once (keyed by ``eventId`` and user).
2. :func:`labelled_production`: each churn label gets its user's latest prediction at or before the
   label's cutoff (00:00 UTC of its renewal date) and no older than ``max_lead``: the same
   point-in-time join, and the same code, as the training set's
   (:func:`glue_jobs.transforms.training_set.training_set`). A prediction made after the cutoff
   could have seen the cancellation; one made long before is about an earlier renewal. Labels with
   no such prediction are not production data and are left out (:func:`coverage` counts them).
3. :func:`model_quality` / :func:`retrain_decision`: PR-AUC and the rest of the evaluation report
   (``pipelines.evaluation``, the very metrics of the offline evaluation) per model version, and
   whether the serving version's PR-AUC fell below the floor on enough labelled rows.

Steps 1-2 are DataFrame -> DataFrame without Python UDFs; step 3 runs on the driver over the
few thousand labelled rows of the quality window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.types import ArrayType, DoubleType, StringType, StructField, StructType

from glue_jobs.transforms.clickstream import MICROS_PER_DAY
from glue_jobs.transforms.training_set import RENEWAL_DATE, cutoff_of, training_set
from platform_core.schemas.features import EVENT_TIME, RECORD_IDENTIFIER
from platform_core.schemas.serving import PRODUCTION_LABELLED
from platform_core.schemas.training import CUTOFF_TIME

CORRUPT = "_corrupt_record"
_SIDE = StructType(
    [
        StructField("observedContentType", StringType()),
        StructField("mode", StringType()),
        StructField("data", StringType()),
        StructField("encoding", StringType()),
    ]
)
CAPTURE_SCHEMA = StructType(
    [
        StructField(
            "captureData",
            StructType([StructField("endpointInput", _SIDE), StructField("endpointOutput", _SIDE)]),
        ),
        StructField(
            "eventMetadata",
            StructType(
                [
                    StructField("eventId", StringType()),
                    StructField("inferenceId", StringType()),
                    StructField("inferenceTime", StringType()),
                ]
            ),
        ),
        StructField("eventVersion", StringType()),
        StructField(CORRUPT, StringType()),
    ]
)
# The inference container's answer (pipelines/inference.py).
ANSWER_SCHEMA = StructType(
    [
        StructField("model_version", StringType()),
        StructField("scores", ArrayType(DoubleType())),
        StructField("user_ids", ArrayType(StringType())),
    ]
)
PREDICTION_TIME = "inference_time"


def read_captures(spark: Any, path: str) -> DataFrame:
    """Every capture file under ``path`` (``<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``)."""
    return (
        spark.read.schema(CAPTURE_SCHEMA)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("recursiveFileLookup", "true")
        .json(path)
    )


def split_captures(captures: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(predictions, rejects): one row per scored user, and unreadable lines with a ``reason``."""
    output = F.col("captureData.endpointOutput")
    body = F.when(F.upper(output["encoding"]) == "BASE64", F.unbase64(output["data"]).cast("string")).otherwise(
        output["data"]
    )
    answer = F.from_json(body, ANSWER_SCHEMA)
    rows = captures.select(
        F.col("eventMetadata.eventId").alias("event_id"),
        F.col("eventMetadata.inferenceId").alias("inference_id"),
        F.col("eventMetadata.inferenceTime").cast("timestamp").alias(EVENT_TIME),
        answer.alias("answer"),
        F.col(CORRUPT),
    )
    reason = (
        F.when(F.col(CORRUPT).isNotNull(), F.lit("not a JSON capture line"))
        .when(F.col("event_id").isNull(), F.lit("no eventMetadata.eventId"))
        .when(F.col(EVENT_TIME).isNull(), F.lit("no readable eventMetadata.inferenceTime"))
        .when(F.col("answer.scores").isNull(), F.lit("the endpoint output holds no scores"))
        .when(F.col("answer.user_ids").isNull(), F.lit("the endpoint output holds no user_ids"))
        .when(
            F.size("answer.scores") != F.size("answer.user_ids"),
            F.lit("the endpoint output has different numbers of scores and user_ids"),
        )
    )
    checked = rows.withColumn("reason", reason)
    rejects = checked.where(F.col("reason").isNotNull()).select(
        "reason", "event_id", F.coalesce(F.col(CORRUPT), F.to_json(F.col("answer"))).alias("content")
    )
    pairs = F.arrays_zip(F.col("answer.user_ids"), F.col("answer.scores"))
    predictions = (
        checked.where(F.col("reason").isNull())
        .select(
            "event_id",
            "inference_id",
            EVENT_TIME,
            F.col("answer.model_version").alias("model_version"),
            F.posexplode(pairs).alias("position", "pair"),
        )
        .select(
            F.col("pair.user_ids").alias(RECORD_IDENTIFIER),
            EVENT_TIME,
            F.col("pair.scores").alias("score"),
            "model_version",
            "event_id",
            "inference_id",
        )
        # A record scored without a user id cannot be joined with a label.
        .where(F.col(RECORD_IDENTIFIER).isNotNull() & F.col("score").isNotNull())
        .dropDuplicates(["event_id", RECORD_IDENTIFIER])
    )
    return predictions, rejects


def labelled_production(labels: DataFrame, predictions: DataFrame, *, max_lead: timedelta) -> DataFrame:
    """Labels with their user's latest prediction in (cutoff - max_lead, cutoff], in the columns of
    :data:`PRODUCTION_LABELLED` plus its ``label_date`` partition."""
    with_cutoff = labels.withColumn(CUTOFF_TIME, cutoff_of(F.col(RENEWAL_DATE)))
    joined = training_set(with_cutoff, predictions, feature_time_column=PREDICTION_TIME, max_staleness=max_lead)
    lead_micros = F.unix_micros(F.col(CUTOFF_TIME)) - F.unix_micros(F.col(PREDICTION_TIME))
    lead_days = lead_micros / F.lit(float(MICROS_PER_DAY))
    return joined.where(F.col("score").isNotNull()).select(
        *[_typed(f.name) for f in PRODUCTION_LABELLED.fields if f.name != "lead_days"],
        lead_days.alias("lead_days"),
        F.date_format(F.col("label_time"), "yyyy-MM-dd").alias("label_date"),
    )


def _typed(name: str) -> Any:
    return F.col(name).cast("boolean").alias(name) if name == "churned" else F.col(name)


def coverage(labels: DataFrame, labelled: DataFrame) -> dict[str, int]:
    """How many labels found a production prediction (the rest were never scored in time)."""
    total = labels.count()
    matched = labelled.count()
    return {"labels": total, "labelled": matched, "unscored": total - matched}


# ---------------------------------------------------------------------------------------------
# Model quality (driver side, plain numpy)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityReport:
    model_version: str | None
    rows: int
    positives: int
    metrics: dict[str, float]  # metric name -> value; empty when the rows cannot be evaluated
    note: str = ""

    @property
    def pr_auc(self) -> float | None:
        return self.metrics.get("pr_auc")


def model_quality(model_version: str | None, labels: Sequence[int], scores: Sequence[float]) -> QualityReport:
    """The offline evaluation's report on production rows; metrics need both classes present."""
    from pipelines.evaluation import ValueModel, binary_classification_report

    rows, positives = len(labels), int(sum(labels))
    if rows == 0 or positives in (0, rows):
        return QualityReport(model_version, rows, positives, {}, note="needs both churners and renewals")
    # Scores are calibrated probabilities: an offer pays from the value model's break-even on.
    report = binary_classification_report(labels, scores, threshold=ValueModel().break_even_probability)
    wanted = ("pr_auc", "roc_auc", "brier_score", "lift_top_decile", "positive_rate", "precision", "recall")
    metrics = report["binary_classification_metrics"]
    return QualityReport(model_version, rows, positives, {name: float(metrics[name]["value"]) for name in wanted})


@dataclass(frozen=True)
class RetrainDecision:
    start: bool
    reason: str


def retrain_decision(report: QualityReport, *, pr_auc_min: float, min_rows: int) -> RetrainDecision:
    if report.rows < min_rows:
        return RetrainDecision(False, f"{report.rows} labelled rows, fewer than {min_rows}: nothing decided")
    if report.pr_auc is None:
        return RetrainDecision(False, f"quality not measurable: {report.note}")
    if report.pr_auc < pr_auc_min:
        return RetrainDecision(
            True, f"PR-AUC {report.pr_auc:.3f} of model {report.model_version} below {pr_auc_min} on {report.rows} rows"
        )
    return RetrainDecision(False, f"PR-AUC {report.pr_auc:.3f} meets {pr_auc_min} on {report.rows} rows")
