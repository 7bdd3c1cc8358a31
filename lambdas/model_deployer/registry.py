"""The model registry: which package version should be served.

The answer is always read from the registry, never from the event: the latest version of the
group whose approval status is *now* ``Approved``. So an approval of an older version, a replay of
an old event, or an event whose package has been rejected since cannot move the endpoint backwards
or onto a rejected model; rejecting the served version rolls back to the latest approved one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdas.model_deployer.plan import ApprovedPackage

APPROVED = "Approved"


class ModelRegistry:
    def __init__(self, client_factory: Callable[[], Any], group: str) -> None:
        self._client = client_factory
        self._group = group

    def latest_approved(self) -> ApprovedPackage | None:
        client = self._client()
        best: dict[str, Any] | None = None
        request: dict[str, Any] = {
            "ModelPackageGroupName": self._group,
            "ModelApprovalStatus": APPROVED,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 100,
        }
        while True:
            page = client.list_model_packages(**request)
            for summary in page.get("ModelPackageSummaryList", []):
                if best is None or summary["ModelPackageVersion"] > best["ModelPackageVersion"]:
                    best = summary
            token = page.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
        if best is None:
            return None
        package = client.describe_model_package(ModelPackageName=best["ModelPackageArn"])
        if package.get("ModelApprovalStatus") != APPROVED:
            return None  # changed between the two calls: the next trigger decides again
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
        return ApprovedPackage(
            arn=package["ModelPackageArn"],
            group=self._group,
            version=int(package["ModelPackageVersion"]),
            model_data_url=containers[0].get("ModelDataUrl"),
        )
