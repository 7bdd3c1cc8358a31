"""A model registry in moto, filled the way the training pipeline fills it: model packages whose
model-quality statistics are a real evaluation.json (pipelines.evaluation's report) in S3, with the
PR-AUC copied into their CustomerMetadataProperties."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.evaluation import binary_classification_report

GROUP = "mlp-dev-churn"
BUCKET = "mlp-dev-artifacts-123456789012-us-east-1"


def evaluation_report(seed: int) -> dict[str, Any]:
    """A genuine evaluate.py report (SageMaker model-quality shape) for noisy scores."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(400) < 0.25).astype(int)
    scores = np.clip(0.25 + 0.35 * (labels - 0.25) + rng.normal(0, 0.2, 400), 0, 1)
    return binary_classification_report(labels, scores, threshold=0.4)


def pr_auc_of(report: dict[str, Any]) -> float:
    return float(report["binary_classification_metrics"]["pr_auc"]["value"])


@dataclass
class Registry:
    sagemaker: Any
    s3: Any
    group: str = GROUP
    bucket: str = BUCKET

    def create(self) -> Registry:
        self.s3.create_bucket(Bucket=self.bucket)
        self.sagemaker.create_model_package_group(ModelPackageGroupName=self.group)
        return self

    def register(
        self,
        *,
        execution: str,
        report: dict[str, Any] | bytes | None,
        metadata_pr_auc: str | None = None,
        status: str = "Approved",
        upload: bool = True,
    ) -> str:
        """A package as RegisterModel creates it (statistics under training/evaluation/<execution>/),
        then given ``status`` as a person would in the console."""
        key = f"training/evaluation/{execution}/evaluation.json"
        request: dict[str, Any] = {
            "ModelPackageGroupName": self.group,
            "ModelApprovalStatus": "PendingManualApproval",
            "InferenceSpecification": {
                "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        }
        if report is not None:
            body = report if isinstance(report, bytes) else json.dumps(report).encode()
            if upload:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            request["ModelMetrics"] = {
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{self.bucket}/{key}"}
                }
            }
        if metadata_pr_auc is not None:
            request["CustomerMetadataProperties"] = {"pr_auc": metadata_pr_auc, "pipeline_execution_arn": execution}
        arn = str(self.sagemaker.create_model_package(**request)["ModelPackageArn"])
        if status != "PendingManualApproval":
            update: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
            if "CustomerMetadataProperties" in request:
                # moto (unlike SageMaker) clears the metadata on an update that does not repeat it.
                update["CustomerMetadataProperties"] = request["CustomerMetadataProperties"]
            self.sagemaker.update_model_package(**update)
        return arn
