"""Training: the SageMaker pipeline that turns the curated training set into a registered model.

    curated/training_set/ ─> Preprocess (time split, feature transform) ─> Train (XGBoost)
        ─> Evaluate (evaluation.json) ─> QualityGate (PR-AUC >= floor and >= approved model)
        ─> RegisterModel (model package group, PendingManualApproval)   | else QualityGateFailed
        ─> (Model Monitor on) MonitoringBaselineDataset ─> DataQualityBaseline
               (statistics.json + constraints.json under serving/monitoring/baseline/, read by the
                endpoint's monitoring schedule)

Nothing schedules the pipeline here: the feature stack's orchestration starts it by name
(``Names.training_pipeline``) right after it rebuilt the training set. Approving a model package
is a person's decision in the Model Registry; the deployment that follows listens for it.

The buckets and the key come from the data lake stack (by name and SSM): deploy it first. The model
package group holds every model version, so it is retained unless a dev stack explicitly opted in
to teardown, and the stack carries the environment's termination protection.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.names import Names
from stacks.constructs.lake_refs import import_lake
from stacks.constructs.training_pipeline import TrainingPipeline
from stacks.policies import data_removal_policy


class TrainingStack(Stack):
    """The training pipeline, its role, its code bundle and the model package group."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        names = Names(config)
        lake = import_lake(self, config)
        self.training = TrainingPipeline(
            self,
            "TrainingPipeline",
            platform=config,
            pipeline_name=names.training_pipeline,
            model_package_group=names.model_package_group,
            key=lake.key,
            curated_bucket=lake.curated_bucket,
            artifacts_bucket=lake.artifacts_bucket,
            removal_policy=data_removal_policy(config),
        )
