"""The feedback loop: a daily Glue job joins captured predictions with the churn labels that arrive
later through CDC, writes the labelled production dataset, publishes the model's measured quality to
CloudWatch and starts the training pipeline when it falls below the floor (glue_jobs/feedback.py).

    raw  serving/data-capture/<endpoint>/...  ─┐
    curated  curated/churn_labels/            ─┴─> Glue feedback ─> curated/production_labelled/ (+ Glue table)
                                                         ├─> CloudWatch MLPlatform/ModelQuality pr_auc (EndpointName)
                                                         └─> SageMaker StartPipelineExecution <prefix>-training
                                                             (BaselinePrAuc: the approved model's PR-AUC)

A Glue job rather than a Lambda: captures grow with traffic (one line per request, kept for
months) while the join needs the last ``feedback_max_lead_days`` of them per label, which is a
shuffle join Spark does in bounded memory; the point-in-time join is the training set's own Spark
code, and the metrics need numpy (``pipelines.evaluation``), which Glue has and the Lambda layer
does not.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from pipelines.definition import EVALUATIONS_PREFIX
from platform_core.config import PlatformConfig
from platform_core.names import DATA_CAPTURE_PREFIX, MODEL_QUALITY_NAMESPACE, Names
from platform_core.schemas.cdc import CHURN_LABELS_PREFIX
from platform_core.schemas.serving import PRODUCTION_LABELLED, PRODUCTION_LABELLED_PREFIX, PRODUCTION_LABELLED_TABLE
from stacks.constructs.access import allow, allow_bucket_listing, allow_objects, flatten_reference
from stacks.constructs.feature_catalog import daily_projection
from stacks.constructs.glue_job import REPO_ROOT, STAGING_ROOT, GlueJob
from stacks.constructs.lake_refs import LakeRefs
from stacks.constructs.lake_table import LakeTable
from stacks.constructs.nag import acknowledge
from stacks.constructs.staging import stage_tree

JOB = "feedback"
REJECTS_PREFIX = "errors/feedback/"
# The evaluation module (numpy only) travels next to the job's libraries; the rest of pipelines/
# (xgboost, the SageMaker SDK) is not needed and not shipped.
EVALUATION_MODULES = ("__init__.py", "evaluation.py")


@cache
def staged_evaluation() -> Path:

    def populate(target: Path) -> None:
        (target / "pipelines").mkdir(parents=True)
        for module in EVALUATION_MODULES:
            shutil.copy2(REPO_ROOT / "pipelines" / module, target / "pipelines" / module)

    return stage_tree(STAGING_ROOT, "serving-evaluation", populate)


class FeedbackLoop(Construct):
    """The feedback Glue job, its daily trigger and the production_labelled table."""

    def __init__(self, scope: Construct, construct_id: str, *, platform: PlatformConfig, lake: LakeRefs) -> None:
        super().__init__(scope, construct_id)
        names = Names(platform)
        serving = platform.serving
        raw, curated = lake.raw_bucket.bucket_name, lake.curated_bucket.bucket_name
        output = f"s3://{curated}/{PRODUCTION_LABELLED_PREFIX}"
        self.table = LakeTable(
            self,
            "ProductionLabelledTable",
            catalog_id=Stack.of(self).account,
            database_name=lake.database_name,
            table_name=PRODUCTION_LABELLED_TABLE,
            schema=PRODUCTION_LABELLED,
            location=output,
            parameters=daily_projection(output, "label_date"),
        )
        self.job = GlueJob(
            self,
            "Job",
            job_name=names.glue_job(JOB),
            script=REPO_ROOT / "glue_jobs" / f"{JOB}.py",
            platform=platform,
            settings=platform.glue,
            key=lake.key,
            description="Captured predictions + churn labels -> labelled production data, model quality, retraining",
            arguments={
                "--capture_path": f"s3://{raw}/{DATA_CAPTURE_PREFIX}{names.inference_endpoint}/",
                "--labels_path": f"s3://{curated}/{CHURN_LABELS_PREFIX}",
                "--output_path": output,
                "--rejects_path": f"s3://{raw}/{REJECTS_PREFIX}",
                "--endpoint_name": names.inference_endpoint,
                "--pipeline_name": names.training_pipeline,
                "--model_package_group": names.model_package_group,
                "--pr_auc_min": str(platform.observability.model_pr_auc_min),
                "--min_rows": str(serving.quality_min_labelled_rows),
                "--max_lead_days": str(serving.feedback_max_lead_days),
                "--rejoin_days": str(serving.feedback_rejoin_days),
                "--quality_window_days": str(serving.quality_window_days),
            },
        )
        self.evaluation = s3_assets.Asset(self, "EvaluationLibrary", path=str(staged_evaluation()))
        allow(self.job.role, ["s3:GetObject"], [self.evaluation.bucket.arn_for_objects(self.evaluation.s3_object_key)])
        self.job.job.add_property_override(
            "DefaultArguments.--extra-py-files",
            f"{self.job.libraries.s3_object_url},{self.evaluation.s3_object_url}",
        )
        self.job.job.node.add_dependency(self.table)
        self._grant(platform, lake)
        self.trigger = glue.CfnTrigger(
            self,
            "Daily",
            name=f"{names.glue_job(JOB)}-daily",
            description="Runs the feedback job daily, after the day's churn labels",
            type="SCHEDULED",
            schedule=serving.feedback_schedule_expression,
            start_on_creation=True,
            actions=[glue.CfnTrigger.ActionProperty(job_name=self.job.job_name)],
        )
        self.trigger.node.add_dependency(self.job.job)

    def _grant(self, platform: PlatformConfig, lake: LakeRefs) -> None:
        names = Names(platform)
        role = self.job.role
        allow_objects(
            role,
            lake.raw_bucket,
            prefixes=[f"{DATA_CAPTURE_PREFIX}{names.inference_endpoint}/"],
            actions=["s3:GetObject"],
            reason="The job reads every capture file of the endpoint (one per hour and instance).",
        )
        allow_objects(
            role,
            lake.raw_bucket,
            prefixes=[REJECTS_PREFIX],
            actions=["s3:PutObject", "s3:DeleteObject"],
            reason="Unreadable capture lines are written, one partition per run day, under the rejects prefix.",
        )
        allow_objects(
            role,
            lake.curated_bucket,
            prefixes=[CHURN_LABELS_PREFIX],
            actions=["s3:GetObject"],
            reason="The job reads the churn labels' Parquet files.",
        )
        allow_objects(
            role,
            lake.curated_bucket,
            prefixes=[PRODUCTION_LABELLED_PREFIX],
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            reason="Spark rewrites the label_date partitions of each run (dynamic partition overwrite).",
        )
        allow_bucket_listing(role, lake.raw_bucket)
        allow_bucket_listing(role, lake.curated_bucket)
        allow(
            role,
            ["cloudwatch:PutMetricData"],
            ["*"],
            StringEquals={"cloudwatch:namespace": MODEL_QUALITY_NAMESPACE},
        )
        allow(
            role,
            ["sagemaker:StartPipelineExecution"],
            [
                # SageMaker writes pipeline names lower-case in ARNs.
                Stack.of(self).format_arn(
                    service="sagemaker", resource="pipeline", resource_name=names.training_pipeline.lower()
                )
            ],
        )
        self._grant_baseline(platform, lake)

    def _grant_baseline(self, platform: PlatformConfig, lake: LakeRefs) -> None:
        """What reading the approved model's PR-AUC takes (platform_core.model_baseline): listing the
        group's approved packages, describing them, and reading their evaluation.json."""
        role = self.job.role
        group = Names(platform).model_package_group
        stack = Stack.of(self)
        packages = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*")
        allow(role, ["sagemaker:ListModelPackages"], ["*"])
        allow(role, ["sagemaker:DescribeModelPackage"], [packages])
        acknowledge(
            role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "sagemaker:ListModelPackages and cloudwatch:PutMetricData support no resource-level "
                    "permissions; PutMetricData is limited to its namespaces by conditions, and the packages "
                    "the job may describe are the churn group's only."
                ),
                f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(packages))}]": (
                    "Package versions are numbered by SageMaker at registration: the group's versions are the resource."
                ),
            },
        )
        allow_objects(
            role,
            lake.artifacts_bucket,
            prefixes=[EVALUATIONS_PREFIX],
            actions=["s3:GetObject"],
            reason="The approved model package's evaluation.json lies under training/evaluation/<execution id>/.",
        )
