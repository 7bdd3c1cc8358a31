"""The approved model's PR-AUC (platform_core.model_baseline): which package, which number, and a
clear error whenever the number cannot be trusted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from platform_core.model_baseline import (
    NO_BASELINE,
    MetricMissingError,
    MetricUnreadableError,
    approved_baseline,
)
from platform_core.schemas.training import BASELINE_PR_AUC_PARAMETER
from tests.baseline_metrics.registry import GROUP, Registry, evaluation_report, pr_auc_of


def _baseline(registry: Registry):
    return approved_baseline(registry.group, sagemaker=registry.sagemaker, s3=registry.s3)


def test_without_an_approved_model_the_baseline_is_zero(registry: Registry) -> None:
    # Given a group holding only a package waiting for approval and a rejected one
    registry.register(execution="e1", report=evaluation_report(1), status="PendingManualApproval")
    registry.register(execution="e2", report=evaluation_report(2), status="Rejected")
    # When the baseline is asked for
    baseline = _baseline(registry)
    # Then there is none: the pipeline gets 0 and only its floor gates
    assert baseline == NO_BASELINE
    assert baseline.pipeline_parameters() == [{"Name": BASELINE_PR_AUC_PARAMETER, "Value": "0.0"}]


def test_a_group_that_does_not_exist_yet_has_no_baseline(registry: Registry) -> None:
    assert approved_baseline("mlp-dev-nothing", sagemaker=registry.sagemaker, s3=registry.s3) == NO_BASELINE


def test_the_baseline_is_the_highest_approved_versions_evaluation(registry: Registry) -> None:
    # Given two approved versions, then a newer one pending and a newer one rejected
    registry.register(execution="e1", report=evaluation_report(1))
    served = registry.register(execution="e2", report=evaluation_report(2))
    registry.register(execution="e3", report=evaluation_report(3), status="PendingManualApproval")
    registry.register(execution="e4", report=evaluation_report(4), status="Rejected")
    # When
    baseline = _baseline(registry)
    # Then it is version 2's test PR-AUC, read from its evaluation.json
    assert (baseline.model_package_arn, baseline.source) == (served, "evaluation")
    assert baseline.pr_auc == pr_auc_of(evaluation_report(2))
    assert pr_auc_of(evaluation_report(2)) != pr_auc_of(evaluation_report(1))
    # And the pipeline parameter carries the number exactly
    ((parameter),) = baseline.pipeline_parameters()
    assert parameter["Name"] == "BaselinePrAuc"
    assert float(parameter["Value"]) == baseline.pr_auc


def test_a_package_without_statistics_falls_back_to_the_pr_auc_in_its_metadata(registry: Registry) -> None:
    arn = registry.register(execution="e1", report=None, metadata_pr_auc="0.4375")
    baseline = _baseline(registry)
    assert (baseline.pr_auc, baseline.model_package_arn, baseline.source) == (0.4375, arn, "metadata")


def test_statistics_that_are_gone_are_an_error_even_with_metadata(registry: Registry) -> None:
    # Given an approved package whose evaluation.json was never written (or was deleted)
    arn = registry.register(execution="e1", report=evaluation_report(1), metadata_pr_auc="0.9", upload=False)
    # Then the metrics of record are missing: an error naming the package and the object
    with pytest.raises(MetricUnreadableError) as error:
        _baseline(registry)
    assert arn in str(error.value)
    assert "training/evaluation/e1/evaluation.json" in str(error.value)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "is not JSON"),
        (json.dumps({"binary_classification_metrics": {"roc_auc": {"value": 0.7}}}).encode(), "has no"),
        (json.dumps({"binary_classification_metrics": {"pr_auc": {"value": "0.7"}}}).encode(), "not a number"),
        (json.dumps({"binary_classification_metrics": {"pr_auc": {"value": True}}}).encode(), "not a number"),
        (json.dumps({"binary_classification_metrics": {"pr_auc": {"value": 1.5}}}).encode(), "outside [0, 1]"),
    ],
    ids=["not-json", "no-pr-auc", "string", "boolean", "out-of-range"],
)
def test_an_unreadable_evaluation_is_an_error_with_the_reason(registry: Registry, body: bytes, reason: str) -> None:
    registry.register(execution="e1", report=body)
    with pytest.raises(MetricUnreadableError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        _baseline(registry)


def test_metadata_that_is_no_number_is_an_error(registry: Registry) -> None:
    registry.register(execution="e1", report=None, metadata_pr_auc="high")
    with pytest.raises(MetricUnreadableError, match="not a number"):
        _baseline(registry)


def test_an_approved_package_without_any_pr_auc_is_an_error(registry: Registry) -> None:
    arn = registry.register(execution="e1", report=None)
    with pytest.raises(MetricMissingError) as error:
        _baseline(registry)
    assert arn in str(error.value)


# -- the API's paging and a change between two calls, with responses shaped as AWS sends them -----


def _summary(version: int, status: str = "Approved") -> dict[str, object]:
    return {
        "ModelPackageName": GROUP,  # a versioned package is named after its group
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": version,
        "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/{version}",
        "CreationTime": datetime(2026, 3, version, tzinfo=UTC),
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
    }


def _description(version: int, status: str, pr_auc: str) -> dict[str, object]:
    return {
        **_summary(version, status),
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "CustomerMetadataProperties": {"pr_auc": pr_auc},
    }


def test_every_page_is_read_and_a_version_rejected_since_listing_is_passed_over() -> None:
    # Given approved versions 6 and 7 on two pages (the later page holding the higher version),
    # and version 7 rejected between the listing and its description
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    request = {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": "Approved",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
    }
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "list_model_packages", {"ModelPackageSummaryList": [_summary(6)], "NextToken": "page-2"}, request
        )
        stub.add_response(
            "list_model_packages", {"ModelPackageSummaryList": [_summary(7)]}, {**request, "NextToken": "page-2"}
        )
        stub.add_response(
            "describe_model_package",
            _description(7, "Rejected", "0.9"),
            {"ModelPackageName": _summary(7)["ModelPackageArn"]},
        )
        stub.add_response(
            "describe_model_package",
            _description(6, "Approved", "0.61"),
            {"ModelPackageName": _summary(6)["ModelPackageArn"]},
        )
        # When
        baseline = approved_baseline(GROUP, sagemaker=sagemaker, s3=s3)
        stub.assert_no_pending_responses()
    # Then the version still approved is the baseline
    assert (baseline.pr_auc, baseline.model_package_arn) == (0.61, _summary(6)["ModelPackageArn"])
