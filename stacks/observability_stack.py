"""Observability: how operators watch the platform, without ever touching the path to the lake.

    clickstream stream ──(2nd shared-throughput consumer)──> Firehose ──> OpenSearch (VPC) ──> Dashboards
                                                                      └─> failed documents: raw bucket errors/opensearch/
    every part of the platform ──metrics/events──> alarms + EventBridge rules ──> SNS topic (lake key)
                                               └──> one CloudWatch dashboard

Stateless apart from the search domain, which holds only a disposable copy of the stream and is
still retained on deletion (``data_removal_policy``), like every data store of the platform.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from observability.index_template import TEMPLATE_NAME, clickstream_index_template
from observability.retention import POLICY_ID, retention_policy
from observability.saved_objects import DEFAULT_INDEX_PATTERN_ID, load_saved_objects
from observability.security import audit_config, role_mappings, security_roles
from platform_core.config import PlatformConfig
from platform_core.names import Names
from stacks.constructs.lake_refs import LakeRefs, import_lake
from stacks.constructs.lambda_packaging import REPO_ROOT
from stacks.constructs.platform_alarms import PlatformAlarms, WatchedResources
from stacks.constructs.platform_dashboard import PlatformDashboard
from stacks.constructs.platform_function import log_retention
from stacks.constructs.search_delivery import SearchDelivery
from stacks.constructs.search_domain import READ_ACTIONS, SearchDomain
from stacks.constructs.search_network import SearchNetwork, region_availability_zones
from stacks.constructs.search_provisioning import SearchProvisioner
from stacks.policies import data_removal_policy

# Functions that own an on-failure (dead-letter) queue named Names.dead_letter_queue(<function>):
# the stream consumers (KinesisConsumer) and the asynchronously invoked video ingest and model deployer.
DEAD_LETTER_QUEUE_OWNERS = ("cdc_processor", "online_features", "video_ingest", "model_deployer")
_SEARCH_ONLY_FUNCTIONS = frozenset({"dashboards_import"})


def platform_functions(*, include_search: bool) -> list[str]:
    """Every ``lambdas/<name>`` with a handler: each is a deployed function to watch."""
    found = sorted(p.parent.name for p in (REPO_ROOT / "lambdas").glob("*/handler.py"))
    return [name for name in found if include_search or name not in _SEARCH_ONLY_FUNCTIONS]


class ObservabilityStack(Stack):
    """OpenSearch with read-only Dashboards fed by its own Firehose; alarms and a dashboard for all."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = Names(config)
        lake = import_lake(self, config)
        retention = log_retention(config.log_retention_days)
        search_enabled = config.observability.opensearch_enabled

        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=names.alarm_topic,
            display_name=f"{config.resource_prefix} platform alarms",
            master_key=lake.key,
            enforce_ssl=True,
        )

        extra_functions: list[str] = []
        if search_enabled:
            self._search(config, names, lake, retention)
            extra_functions.append(self.search_transform_name(names))

        self.alarms = PlatformAlarms(
            self,
            "Alarms",
            resources=WatchedResources.of_platform(
                config,
                functions=platform_functions(include_search=search_enabled),
                dead_letter_queue_owners=DEAD_LETTER_QUEUE_OWNERS,
                extra_functions=extra_functions,
                # Clickstream records the online features consumer could not use wait there for a person.
                extra_queues=(names.online_features_rejects_queue,),
            ),
            thresholds=config.observability,
            topic=self.alarm_topic,
            name_prefix=config.resource_prefix,
            removal_policy=data_removal_policy(config),
        )
        self.dashboard = PlatformDashboard(
            self, "PlatformDashboard", dashboard_name=names.platform_dashboard, alarms=self.alarms
        )

    @property
    def availability_zones(self) -> list[str]:
        """Zones resolved by CloudFormation, so synthesis never needs an AWS account lookup."""
        return region_availability_zones()

    @staticmethod
    def search_transform_name(names: Names) -> str:
        return f"{names.function('clickstream_transform')}-search"

    def _search(self, config: PlatformConfig, names: Names, lake: LakeRefs, retention: logs.RetentionDays) -> None:
        network = SearchNetwork(
            self,
            "SearchNetwork",
            cidr=config.observability.vpc_cidr,
            key=lake.key,
            log_retention=retention,
            removal_policy=data_removal_policy(config),
        )
        # Created before the domain: its role is the domain's master user.
        provisioner = SearchProvisioner(
            self,
            "SearchProvisioner",
            config=config,
            function_name=names.function("dashboards_import"),
            network=network,
            key=lake.key,
        )
        self.search = SearchDomain(
            self,
            "Search",
            config=config,
            domain_name=names.search_domain,
            network=network,
            key=lake.key,
            master_role=provisioner.role,
            log_retention=retention,
        )
        # Operators assume this role (their own IAM policy must allow sts:AssumeRole on it).
        self.dashboard_reader_role = iam.Role(
            self,
            "DashboardReaderRole",
            role_name=names.dashboards_reader_role,
            assumed_by=iam.AccountRootPrincipal(),
            description="Read-only access to the clickstream indices and dashboards in OpenSearch",
        )
        self.search.allow_http(self.dashboard_reader_role, READ_ACTIONS)
        self.search_delivery = SearchDelivery(
            self,
            "SearchDelivery",
            config=config,
            delivery_stream_name=names.clickstream_search_firehose,
            transform_function_name=self.search_transform_name(names),
            source_stream=lake.clickstream_stream,
            domain=self.search,
            network=network,
            bucket=lake.raw_bucket,
            key=lake.key,
            log_retention=retention,
        )
        self.provisioning = provisioner.provision(
            "Provisioning",
            domain=self.search,
            security_roles=security_roles(),
            role_mappings=role_mappings(
                reader_role_arn=self.dashboard_reader_role.role_arn,
                writer_role_arn=self.search_delivery.role.role_arn,
            ),
            audit_config=audit_config(),
            index_templates={TEMPLATE_NAME: clickstream_index_template(config)},
            ism_policies={POLICY_ID: retention_policy(config)},
            saved_objects=load_saved_objects(),
            default_index_pattern=DEFAULT_INDEX_PATTERN_ID,
        )
        # The writer's role mapping and the index template exist before the first document arrives.
        self.search_delivery.delivery_stream.node.add_dependency(self.provisioning)
