"""The EventBridge events that wake the deployer, as triggers.

Every trigger leads to the same reconciliation (``deployer.py``); the trigger only tells whether
the event concerns this deployer at all. Events of another model package group or another
endpoint are ignored, whatever they say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
SCHEDULED_EVENT = "Scheduled Event"


@dataclass(frozen=True)
class PackageChange:
    group: str
    version: int | None
    arn: str
    approval_status: str


@dataclass(frozen=True)
class EndpointChange:
    endpoint_name: str
    status: str


@dataclass(frozen=True)
class Tick:
    """The schedule: finish what an earlier run could not (busy endpoint, autoscaling, manifest)."""


@dataclass(frozen=True)
class Unrecognised:
    reason: str


Trigger = PackageChange | EndpointChange | Tick | Unrecognised


def parse_event(event: dict[str, Any]) -> Trigger:
    detail_type = event.get("detail-type")
    detail = event.get("detail") or {}
    if detail_type == MODEL_PACKAGE_STATE_CHANGE and event.get("source") == "aws.sagemaker":
        version = detail.get("ModelPackageVersion")
        return PackageChange(
            group=str(detail.get("ModelPackageGroupName", "")),
            version=int(version) if isinstance(version, (int, str)) and str(version).isdigit() else None,
            arn=str(detail.get("ModelPackageArn", "")),
            approval_status=str(detail.get("ModelApprovalStatus", "")),
        )
    if detail_type == ENDPOINT_STATE_CHANGE and event.get("source") == "aws.sagemaker":
        return EndpointChange(
            endpoint_name=str(detail.get("EndpointName", "")), status=str(detail.get("EndpointStatus", ""))
        )
    if detail_type == SCHEDULED_EVENT and event.get("source") == "aws.events":
        return Tick()
    return Unrecognised(f"not a deployer event: source={event.get('source')!r}, detail-type={detail_type!r}")
