"""The approved model's PR-AUC: the bar a new training run must reach (the ``BaselinePrAuc``
parameter of the training pipeline's quality gate).

Both places that start the training pipeline ask this module first: the daily feature
orchestration (through the ``baseline_metrics`` Lambda) and the feedback loop's retraining (the
Glue job). So "the approved model" means one thing everywhere, and the same thing as for the
deployer (``lambdas/model_deployer/registry.py``): the highest version of the model package group
whose approval status is *now* ``Approved``.

Its PR-AUC is read from the package's metrics of record, the ``evaluation.json`` its
``ModelMetrics.ModelQuality.Statistics`` points at (what the gate compared when it was
registered); a package registered without model-quality statistics falls back to its
``CustomerMetadataProperties.pr_auc`` (which the pipeline's RegisterModel step also writes). A
package with neither, or whose statistics cannot be read, is an error with the reason: silently
using 0 would let a worse model through the gate.

Pure Python: the SageMaker and S3 clients are passed in (boto3 clients in Lambda and Glue, moto's in
the tests).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from platform_core.schemas.training import BASELINE_PR_AUC_PARAMETER, EVALUATION_PR_AUC_PATH, PR_AUC_METADATA_KEY

APPROVED = "Approved"
PAGE_SIZE = 100

Source = Literal["none", "evaluation", "metadata"]


class BaselineError(Exception):
    """The approved model's PR-AUC cannot be known; the message says which package and why."""


class MetricMissingError(BaselineError):
    """The approved package records no PR-AUC at all (neither statistics nor metadata)."""


class MetricUnreadableError(BaselineError):
    """The approved package's PR-AUC is recorded but cannot be read as a number in [0, 1]."""


@dataclass(frozen=True)
class Baseline:
    pr_auc: float  # 0.0 when no model is approved: then only the pipeline's floor (MinPrAuc) gates
    model_package_arn: str | None
    source: Source

    @property
    def parameter_value(self) -> str:
        """The value as a pipeline parameter takes it (a string); ``repr`` round-trips the float exactly."""
        return repr(self.pr_auc)

    def pipeline_parameters(self) -> list[dict[str, str]]:
        """``PipelineParameters`` of ``StartPipelineExecution``."""
        return [{"Name": BASELINE_PR_AUC_PARAMETER, "Value": self.parameter_value}]


NO_BASELINE = Baseline(pr_auc=0.0, model_package_arn=None, source="none")


def approved_baseline(group: str, *, sagemaker: Any, s3: Any) -> Baseline:
    """The PR-AUC of the group's approved model, or :data:`NO_BASELINE` when none is approved."""
    for summary in _approved_newest_first(sagemaker, group):
        package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if package.get("ModelApprovalStatus") != APPROVED:
            continue  # rejected since it was listed: the next approved version is the one served
        return _baseline_of(package, s3)
    return NO_BASELINE


def _approved_newest_first(sagemaker: Any, group: str) -> list[dict[str, Any]]:
    """Every approved version's summary, highest version first.

    All pages are read and ordered by version rather than trusting ``MaxResults=1`` with a
    creation-time sort: versions are what the deployer orders by, and two packages created in the
    same instant would otherwise tie.
    """
    summaries = list(_pages(sagemaker, group))
    return sorted(summaries, key=lambda s: int(s.get("ModelPackageVersion", 0)), reverse=True)


def _pages(sagemaker: Any, group: str) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelApprovalStatus": APPROVED,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": PAGE_SIZE,
    }
    while True:
        page = sagemaker.list_model_packages(**request)
        yield from page.get("ModelPackageSummaryList", [])
        token = page.get("NextToken")
        if not token:
            return
        request["NextToken"] = token


def _baseline_of(package: dict[str, Any], s3: Any) -> Baseline:
    arn = str(package["ModelPackageArn"])
    statistics = ((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}
    uri = statistics.get("S3Uri")
    if uri:
        report = _read_json(s3, str(uri), arn)
        return Baseline(pr_auc=_pr_auc_in(report, arn, str(uri)), model_package_arn=arn, source="evaluation")
    metadata = package.get("CustomerMetadataProperties") or {}
    if PR_AUC_METADATA_KEY in metadata:
        text = metadata[PR_AUC_METADATA_KEY]
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise MetricUnreadableError(
                f"{arn}: CustomerMetadataProperties.{PR_AUC_METADATA_KEY} is {text!r}, not a number"
            ) from None
        return Baseline(
            pr_auc=_checked(value, arn, f"CustomerMetadataProperties.{PR_AUC_METADATA_KEY}"),
            model_package_arn=arn,
            source="metadata",
        )
    raise MetricMissingError(
        f"{arn} is approved but records no PR-AUC: it has neither ModelMetrics.ModelQuality.Statistics "
        f"nor CustomerMetadataProperties.{PR_AUC_METADATA_KEY}; register it with its evaluation.json"
    )


def _read_json(s3: Any, uri: str, arn: str) -> Any:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise MetricUnreadableError(f"{arn}: model-quality statistics {uri!r} is not an s3://bucket/key URI")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise MetricUnreadableError(f"{arn}: its model-quality statistics {uri} do not exist") from None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MetricUnreadableError(f"{arn}: {uri} is not JSON ({error})") from None


def _pr_auc_in(report: Any, arn: str, uri: str) -> float:
    node = report
    for step in EVALUATION_PR_AUC_PATH:
        if not isinstance(node, dict) or step not in node:
            path = ".".join(EVALUATION_PR_AUC_PATH)
            raise MetricUnreadableError(f"{arn}: {uri} has no {path}")
        node = node[step]
    # bool is an int to Python, but true/false is no PR-AUC.
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise MetricUnreadableError(f"{arn}: {'.'.join(EVALUATION_PR_AUC_PATH)} in {uri} is {node!r}, not a number")
    return _checked(float(node), arn, uri)


def _checked(value: float, arn: str, where: str) -> float:
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise MetricUnreadableError(f"{arn}: the PR-AUC in {where} is {value!r}, outside [0, 1]")
    return value
