"""Glue job: the feedback loop (captured predictions + churn labels -> labelled production data,
model quality to CloudWatch, retraining when quality falls below the floor).

Job parameters:

==========================  ======================================================================
``--capture_path``          ``s3://<raw>/serving/data-capture/<endpoint>/``
``--labels_path``           ``s3://<curated>/curated/churn_labels/``
``--output_path``           ``s3://<curated>/curated/production_labelled/`` (``label_date=`` partitions)
``--rejects_path``          ``s3://<raw>/errors/feedback/``: unreadable capture lines, with reasons
``--endpoint_name``         the CloudWatch dimension of the quality metrics
``--pipeline_name``         the SageMaker training pipeline started when quality is too low
``--model_package_group``   the churn model's group: its approved model's PR-AUC is the new run's
                            ``BaselinePrAuc`` (:mod:`platform_core.model_baseline`)
``--pr_auc_min``            ``ObservabilityConfig.model_pr_auc_min`` (the alarm's threshold too)
``--min_rows``, ``--max_lead_days``, ``--rejoin_days``, ``--quality_window_days``: ``ServingConfig``
``--as_of`` (optional)      ISO instant the run is for (a back-fill); default: now
==========================  ======================================================================

Idempotent: a run rewrites exactly the ``label_date`` partitions of labels known in
``[as_of - rejoin_days, as_of)`` (dynamic partition overwrite), publishes metrics stamped
``as_of``, and starts at most one training per model version and day (the start's client token).
All logic is in :mod:`glue_jobs.transforms.feedback`; this script reads, writes and calls AWS.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from glue_jobs.transforms.feedback import (
    QualityReport,
    RetrainDecision,
    coverage,
    labelled_production,
    model_quality,
    read_captures,
    retrain_decision,
    split_captures,
)
from platform_core.model_baseline import approved_baseline
from platform_core.names import MODEL_QUALITY_METRIC, MODEL_QUALITY_NAMESPACE


@dataclass(frozen=True)
class FeedbackSettings:
    endpoint_name: str
    pipeline_name: str
    model_package_group: str
    pr_auc_min: float
    min_rows: int
    max_lead_days: int
    rejoin_days: int
    quality_window_days: int


@dataclass(frozen=True)
class FeedbackResult:
    as_of: datetime
    counts: dict[str, int]
    reports: list[QualityReport]  # per model version, the serving (latest) version first
    decision: RetrainDecision


def run(
    spark: Any,
    *,
    capture_path: str,
    labels_path: str,
    output_path: str,
    rejects_path: str,
    as_of: datetime,
    settings: FeedbackSettings,
) -> FeedbackResult:
    from pyspark.sql import functions as F  # noqa: N812

    # Only the partitions a run produces are replaced (rejects of the day, labels of the window).
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    # Parsed once: the rejects, the join, its count and its write all read the same captures.
    captures = read_captures(spark, capture_path).cache()
    predictions, rejects = split_captures(captures)
    rejected = rejects.count()
    if rejected:
        rejects.withColumn("run_date", F.lit(as_of.date().isoformat())).write.mode("overwrite").partitionBy(
            "run_date"
        ).json(rejects_path)
    since = as_of - timedelta(days=settings.rejoin_days)
    labels = (
        spark.read.parquet(labels_path)
        .where((F.col("label_time") >= F.lit(since)) & (F.col("label_time") < F.lit(as_of)))
        .select("user_id", "renewal_date", "churned", "label_time")
    )
    labelled = labelled_production(labels, predictions, max_lead=timedelta(days=settings.max_lead_days)).cache()
    counts = {**coverage(labels, labelled), "rejected_captures": rejected}
    labelled.write.mode("overwrite").partitionBy("label_date").parquet(output_path)
    labelled.unpersist()
    captures.unpersist()

    window_start = (as_of - timedelta(days=settings.quality_window_days)).date().isoformat()
    window = (
        spark.read.parquet(output_path)
        .where((F.col("label_date") >= window_start) & (F.col("label_time") < F.lit(as_of)))
        .select("model_version", "inference_time", F.col("churned").cast("int").alias("label"), "score")
        .toPandas()
    )
    reports = quality_by_version(window)
    serving = reports[0] if reports else QualityReport(None, 0, 0, {}, note="no labelled production rows")
    decision = retrain_decision(serving, pr_auc_min=settings.pr_auc_min, min_rows=settings.min_rows)
    return FeedbackResult(as_of=as_of, counts=counts, reports=reports, decision=decision)


def quality_by_version(window: Any) -> list[QualityReport]:
    """One report per model version, the version that served last first (it is the one serving)."""
    import pandas as pd

    if window.empty:
        return []
    order = window.groupby("model_version", dropna=False)["inference_time"].max().sort_values(ascending=False)
    return [
        model_quality(
            None if pd.isna(version) else str(version),  # no version captured -> None
            window.loc[window["model_version"] == version, "label"].astype(int).tolist(),
            window.loc[window["model_version"] == version, "score"].astype(float).tolist(),
        )
        for version in order.index
    ]


def metric_data(result: FeedbackResult, endpoint_name: str) -> list[dict[str, Any]]:
    """CloudWatch datums: the serving version's metrics per endpoint (what the alarm watches), and
    every version's per endpoint and version. Unmeasurable reports publish only their row count."""
    data: list[dict[str, Any]] = []
    for position, report in enumerate(result.reports):
        dimension_sets = [[{"Name": "EndpointName", "Value": endpoint_name}]] if position == 0 else []
        if report.model_version is not None:
            dimension_sets.append(
                [
                    {"Name": "EndpointName", "Value": endpoint_name},
                    {"Name": "ModelVersion", "Value": report.model_version},
                ]
            )
        measured = {**report.metrics, "labelled_rows": float(report.rows)}
        for dimensions in dimension_sets:
            for name, value in measured.items():
                metric = MODEL_QUALITY_METRIC if name == "pr_auc" else name
                unit = "Count" if name == "labelled_rows" else "None"
                data.append(
                    {
                        "MetricName": metric,
                        "Dimensions": dimensions,
                        "Timestamp": result.as_of,
                        "Value": value,
                        "Unit": unit,
                    }
                )
    return data


def publish(
    result: FeedbackResult, settings: FeedbackSettings, *, cloudwatch: Any, sagemaker: Any, s3: Any
) -> str | None:
    """Metrics to CloudWatch; the training pipeline started when the decision says so (once per
    serving model version and day: the client token makes a re-run a no-op). Returns its ARN.

    The run gets the approved model's PR-AUC as ``BaselinePrAuc``, as the daily orchestration's
    runs do: a retrained model is registered only if it is at least as good as what was approved.
    When that PR-AUC cannot be known the job fails with the reason rather than train against 0."""
    data = metric_data(result, settings.endpoint_name)
    for start in range(0, len(data), 1000):  # PutMetricData's limit per call
        cloudwatch.put_metric_data(Namespace=MODEL_QUALITY_NAMESPACE, MetricData=data[start : start + 1000])
    if not result.decision.start:
        return None
    version = result.reports[0].model_version or "unknown"
    token = f"feedback-retrain-{version}-{result.as_of:%Y%m%d}".ljust(32, "0")[:128]
    baseline = approved_baseline(settings.model_package_group, sagemaker=sagemaker, s3=s3)
    response = sagemaker.start_pipeline_execution(
        PipelineName=settings.pipeline_name,
        PipelineExecutionDisplayName=f"feedback-{result.as_of:%Y%m%d}",
        PipelineExecutionDescription=result.decision.reason[:3072],
        PipelineParameters=baseline.pipeline_parameters(),
        ClientRequestToken=token,
    )
    return str(response["PipelineExecutionArn"])


def has_objects(s3: Any, uri: str) -> bool:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0))


def parse_as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


ARGUMENTS = (
    "JOB_NAME",
    "capture_path",
    "labels_path",
    "output_path",
    "rejects_path",
    "endpoint_name",
    "pipeline_name",
    "model_package_group",
    "pr_auc_min",
    "min_rows",
    "max_lead_days",
    "rejoin_days",
    "quality_window_days",
)


def main(argv: Sequence[str]) -> None:
    import boto3
    from awsglue.utils import getResolvedOptions  # only importable inside Glue
    from pyspark.sql import SparkSession

    args = getResolvedOptions(list(argv), list(ARGUMENTS))
    as_of = parse_as_of(getResolvedOptions(list(argv), ["as_of"])["as_of"] if "--as_of" in argv else None)
    settings = FeedbackSettings(
        endpoint_name=args["endpoint_name"],
        pipeline_name=args["pipeline_name"],
        model_package_group=args["model_package_group"],
        pr_auc_min=float(args["pr_auc_min"]),
        min_rows=int(args["min_rows"]),
        max_lead_days=int(args["max_lead_days"]),
        rejoin_days=int(args["rejoin_days"]),
        quality_window_days=int(args["quality_window_days"]),
    )
    s3 = boto3.client("s3")
    empty = [path for path in (args["capture_path"], args["labels_path"]) if not has_objects(s3, path)]
    if empty:
        # Before the first capture or the first label there is nothing to join (not an error).
        print(f"{args['JOB_NAME']}: nothing to do yet, no objects under {', '.join(empty)}")
        return
    spark = SparkSession.builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    result = run(
        spark,
        capture_path=args["capture_path"],
        labels_path=args["labels_path"],
        output_path=args["output_path"],
        rejects_path=args["rejects_path"],
        as_of=as_of,
        settings=settings,
    )
    started = publish(
        result, settings, cloudwatch=boto3.client("cloudwatch"), sagemaker=boto3.client("sagemaker"), s3=s3
    )
    print(f"{args['JOB_NAME']}: {result.counts}; {result.decision.reason}; training started: {started}")


if __name__ == "__main__":
    main(sys.argv)
