"""Serving and the feedback loop:

    Model Registry (<prefix>-churn) ─approve─> EventBridge ─> λ model_deployer ─> endpoint <prefix>-inference
                                                   (+ endpoint state changes, schedule)   serverless (dev) |
                                                                                          instances + autoscaling
                                                                                          + data capture (prod)
    clients (IAM) ─> API Gateway + WAF ─> λ inference_api ─> Feature Store online (GetRecord) ─> endpoint
    schedule ─> Step Functions: Athena UNLOAD active users ─> batch transform ─> curated/predictions/
    captures + churn labels (CDC) ─> Glue feedback ─> curated/production_labelled/, CloudWatch pr_auc,
                                                      training pipeline when quality is too low
    endpoint IN_SERVICE | daily ─> Step Functions ─> Model Monitor schedule (hourly data quality of the
                                   captures against the training pipeline's baseline; prod, instances only)

Stateless: the lake (buckets, key, database) comes from the data lake stack by name, the feature
groups from the feature stack by name, the model package group from the training stack by name;
the endpoint, its models and configurations are created by the deployer, not by CloudFormation, and
so is the monitoring schedule, by a workflow once the endpoint serves (SageMaker refuses a schedule
for an endpoint that does not exist yet).
The only data this stack holds are Glue table definitions (over lake prefixes) and queues of failed
events; nothing here is retained beyond them.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.names import Names
from platform_core.schemas.features import FEATURE_GROUPS
from stacks.constructs.batch_scoring import BatchScoring
from stacks.constructs.feedback_loop import FeedbackLoop
from stacks.constructs.inference_api import InferenceApi
from stacks.constructs.lake_refs import import_lake
from stacks.constructs.model_endpoint import ModelEndpoint


class ServingStack(Stack):
    """The deployer and its endpoint guard rails, the inference API, batch scoring and the feedback loop."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        names = Names(config)
        lake = import_lake(self, config)

        self.endpoint = ModelEndpoint(self, "Endpoint", platform=config, lake=lake)
        self.inference_api = InferenceApi(
            self,
            "InferenceApi",
            platform=config,
            key=lake.key,
            artifacts_bucket=lake.artifacts_bucket,
            raw_bucket=lake.raw_bucket,
            feature_groups={group.name: group.physical_name(config.resource_prefix) for group in FEATURE_GROUPS},
            endpoint_arn=self.endpoint.endpoint_arn,
        )
        self.batch_scoring = BatchScoring(
            self, "BatchScoring", platform=config, lake=lake, model_role=self.endpoint.execution_role
        )
        self.feedback = FeedbackLoop(self, "Feedback", platform=config, lake=lake)
        self._page_on(names.alarm_topic, list(self.endpoint.rollback_alarms))

    def _page_on(self, topic_name: str, alarms: list[cloudwatch.Alarm]) -> None:
        """Alarms notify the platform's alarm topic, found by name (``Names.alarm_topic``)."""
        topic = sns.Topic.from_topic_arn(self, "AlarmTopicRef", self.format_arn(service="sns", resource=topic_name))
        for alarm in alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
