"""Training: the pipeline's scripts under the SageMaker container contract (preprocess -> train ->
evaluate), the gate, the Model Registry (moto's SageMaker control plane) and the approval.

The local runner stands in for a SageMaker Pipeline execution: it runs the same scripts, in the
same order, with the folders SageMaker would mount, and applies the same condition before
registering. The approval that a person gives in the console is given here by the run (the
summary says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from local_runtime.context import RunContext


@dataclass
class TrainingLanding:
    evaluation: dict[str, Any]
    model_dir: Path
    test_dir: Path
    registered: bool
    approved: bool
    model_package_arn: str | None


def training_table(lake: Path) -> pd.DataFrame:
    """The Spark training set as the Glue job wrote it: already the scripts' contract (user_id,
    cutoff_time, label, features; platform_core.schemas.training), read as preprocess reads it."""
    from pipelines.tables import read_table

    return read_table(lake / "training_set")


def run(ctx: RunContext, *, truth: pd.DataFrame | None) -> TrainingLanding:
    from pipelines import evaluate, preprocess, train

    ml = ctx.out / "ml"
    dirs = {
        name: ml / name
        for name in ("input", "train", "validation", "test", "transform", "model", "evaluation", "oracle")
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    table = training_table(ctx.lake)
    if truth is not None:
        # The oracle can only score renewals the generator knows; keep the comparison like for like.
        known = table.merge(truth[["user_id", "cutoff_time"]], on=["user_id", "cutoff_time"], how="inner")
        ctx.progress.say("training", f"{len(table) - len(known)} labels without a known truth left out")
        table = known
    table.to_parquet(dirs["input"] / "training_set.parquet", index=False)
    preprocess.main(
        [
            f"--input-dir={dirs['input']}",
            f"--train-dir={dirs['train']}",
            f"--validation-dir={dirs['validation']}",
            f"--test-dir={dirs['test']}",
            f"--transform-dir={dirs['transform']}",
        ]
    )
    ctx.progress.say("training", f"preprocessed {len(table)} labelled rows (time split)")
    train.main([f"--train-dir={dirs['train']}", f"--model-dir={dirs['model']}", *_train_channels(dirs)])
    evaluate_args = [
        f"--model-dir={dirs['model']}",
        f"--validation-dir={dirs['validation']}",
        f"--test-dir={dirs['test']}",
        f"--output-dir={dirs['evaluation']}",
    ]
    if truth is not None:
        truth.to_parquet(dirs["oracle"] / "truth.parquet", index=False)
        evaluate_args.append(f"--oracle-dir={dirs['oracle']}")
    evaluate.main(evaluate_args)
    report = json.loads((dirs["evaluation"] / evaluate.EVALUATION_FILE).read_text())
    pr_auc = report["binary_classification_metrics"]["pr_auc"]["value"]
    ctx.progress.say("training", f"PR-AUC {pr_auc:.3f} (oracle {_oracle(report)})")

    # The pipeline's condition step: register only a model that clears the bar.
    passes = pr_auc >= ctx.config.training.min_pr_auc
    arn = _register(ctx, dirs["evaluation"] / evaluate.EVALUATION_FILE) if passes else None
    approved = False
    if arn is not None:
        sagemaker = ctx.aws.client("sagemaker")
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        approved = sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
        ctx.progress.say("registry", f"registered and approved {arn.rsplit('/', 2)[-2:]}")
    return TrainingLanding(report, dirs["model"], dirs["test"], arn is not None, approved, arn)


def _train_channels(dirs: dict[str, Path]) -> list[str]:
    """The channels SageMaker mounts besides ``train``: validation and the fitted transform."""
    return [
        f"--validation-dir={dirs['validation']}",
        f"--transform-dir={dirs['transform']}",
        f"--output-data-dir={dirs['model'].parent / 'output'}",
    ]


def _register(ctx: RunContext, evaluation_file: Path) -> str:
    s3 = ctx.aws.client("s3")
    sagemaker = ctx.aws.client("sagemaker")
    bucket = ctx.bucket("artifacts")
    key = "models/churn/evaluation.json"
    s3.upload_file(str(evaluation_file), bucket, key)
    group = f"{ctx.config.resource_prefix}-churn"
    sagemaker.create_model_package_group(ModelPackageGroupName=group, ModelPackageGroupDescription="churn model")
    response = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription="trained by the local runtime",
        ModelApprovalStatus="PendingManualApproval",
        ModelMetrics={
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/{key}"}}
        },
        InferenceSpecification={
            "Containers": [
                {"Image": "local/churn-xgboost:latest", "ModelDataUrl": f"s3://{bucket}/models/churn/model.tar.gz"}
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )
    return str(response["ModelPackageArn"])


def _oracle(report: dict[str, Any]) -> str:
    value = report.get("oracle", {}).get("pr_auc")
    return "n/a" if value is None else f"{value:.3f}"
