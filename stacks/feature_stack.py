"""Feature engineering:

    raw clickstream ─┐
    CDC history job ─┴─> Glue: clickstream features | subscription features ─> training set ─> SageMaker pipeline
                          (daily snapshots, curated Parquet + Glue tables)      (point-in-time)
                          └─> PutRecord: Feature Store offline stores (+ user-subscription online)
    Kinesis clickstream ─> λ online_features ─> Feature Store online store (+ DynamoDB state, rejects queue)
    Feature Store: user-clickstream, user-subscription (online: KMS; offline: Iceberg in the curated bucket)
    Athena: named queries over the lake

The buckets, key, stream, Glue database and Athena workgroup come from the data lake stack, and the
subscription history job from the CDC stack (by name): deploy both first. This stack holds stateful
resources of its own (the feature groups, the consumer's state table and rejects queue, the Glue
tables); each is retained unless a dev stack explicitly opted in to teardown, and the stack carries
the environment's termination protection.
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
from platform_core.schemas.features import FEATURE_GROUPS, USER_CLICKSTREAM
from stacks.constructs.feature_catalog import FeatureCatalog
from stacks.constructs.feature_jobs import FeatureJobs
from stacks.constructs.feature_orchestration import FeatureOrchestration, OrchestratedJobs
from stacks.constructs.feature_store import FeatureStore
from stacks.constructs.lake_refs import import_lake
from stacks.constructs.online_features import OnlineFeatures
from stacks.policies import data_removal_policy


class FeatureStack(Stack):
    """Feature jobs and their tables, the feature store, the online consumer and the daily orchestration."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        names = Names(config)
        lake = import_lake(self, config)
        retain = data_removal_policy(config)

        self.catalog = FeatureCatalog(
            self,
            "Catalog",
            catalog_id=self.account,
            database_name=lake.database_name,
            curated_bucket_name=lake.curated_bucket.bucket_name,
            workgroup_name=names.athena_workgroup,
            groups=FEATURE_GROUPS,
        )
        self.feature_store = FeatureStore(
            self,
            "FeatureStore",
            resource_prefix=config.resource_prefix,
            groups=FEATURE_GROUPS,
            key=lake.key,
            bucket=lake.curated_bucket,
            database_name=lake.database_name,
            removal_policy=retain,
        )
        # The feature jobs put their snapshots into the groups (offline stores; subscription online too).
        self.jobs = FeatureJobs(self, "Jobs", platform=config, lake=lake, feature_store=self.feature_store)
        self.online_features = OnlineFeatures(
            self,
            "OnlineFeatures",
            platform=config,
            stream=lake.clickstream_stream,
            key=lake.key,
            feature_group_name=self.feature_store.group_names[USER_CLICKSTREAM.name],
            feature_group_arn=self.feature_store.feature_group_arn(USER_CLICKSTREAM),
            removal_policy=retain,
        )
        # Records start flowing as soon as the mapping exists: the group they go to exists first.
        self.online_features.function.function.node.add_dependency(self.feature_store.groups[USER_CLICKSTREAM.name])
        self._page_on(
            names.alarm_topic,
            [self.online_features.consumer.iterator_age_alarm, self.online_features.consumer.dlq_depth_alarm],
        )

        self.orchestration = FeatureOrchestration(
            self,
            "Orchestration",
            platform=config,
            jobs=OrchestratedJobs(
                subscription_history=names.glue_job("subscription_history"),  # the CDC stack's job
                clickstream_features=self.jobs.clickstream_features.job_name,
                subscription_features=self.jobs.subscription_features.job_name,
                training_set=self.jobs.training_set.job_name,
            ),
            pipeline_name=names.training_pipeline,
            model_package_group=names.model_package_group,
            artifacts_bucket=lake.artifacts_bucket,
            key=lake.key,
            removal_policy=retain,
            # A run must not start a job before the job (and its role's policy) exists.
            depends_on=[job.job for job in self.jobs.jobs],
        )

    def _page_on(self, topic_name: str, alarms: list[cloudwatch.Alarm]) -> None:
        """Alarms notify the platform's alarm topic, found by name (``Names.alarm_topic``)."""
        topic = sns.Topic.from_topic_arn(self, "AlarmTopicRef", self.format_arn(service="sns", resource=topic_name))
        for alarm in alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
