"""Dashboards and security as code: a Lambda-backed custom resource that provisions the domain.

The function (``lambdas/dashboards_import``) runs in the search network, signs its requests with
SigV4 and is the domain's master user. On every deployment whose documents changed it puts the
security roles and their mappings, the index template, the retention policy and the Dashboards
saved objects; each step is idempotent, so a retried or repeated deployment converges.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import CfnResource, CustomResource
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from platform_core.config import FunctionConfig, PlatformConfig
from stacks.constructs.access import allow
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import PlatformFunction
from stacks.constructs.search_domain import HTTPS, SearchDomain, open_https
from stacks.constructs.search_network import SearchNetwork

RESOURCE_TYPE = "Custom::OpenSearchProvisioning"
# Enough for a domain that is still warming up; the handler answers CloudFormation before this ends.
_FUNCTION = FunctionConfig(memory_mb=256, timeout_seconds=600)


def _json(document: Any) -> str:
    # CloudFormation hands every property to the function as a string: send JSON, sorted for stable diffs.
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


class SearchProvisioner(Construct):
    """The provisioning function, in the VPC, allowed to reach the domain on 443 only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        function_name: str,
        network: SearchNetwork,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self._network = network
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="Search provisioning: HTTPS to the domain and to the CloudFormation response URL",
            allow_all_outbound=False,
        )
        # The subnets have no route out of the VPC: 443 "anywhere" reaches only the domain and the S3
        # gateway endpoint, whose policy admits CloudFormation's response buckets only.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), HTTPS, "Domain and S3 gateway endpoint")
        self.function = PlatformFunction(
            self,
            "Function",
            name="dashboards_import",
            platform=config,
            settings=_FUNCTION,
            key=key,
            description="Custom resource: OpenSearch security roles, index template, retention, saved objects",
            environment={"HTTP_TIMEOUT_SECONDS": "30", "MAX_ATTEMPTS": "8", "SAFETY_MARGIN_SECONDS": "20"},
        )
        self.role: iam.Role = self.function.role
        _place_in_vpc(self.function, network, self.security_group, function_name)
        acknowledge(
            self.function.function,
            {
                "NIST.800.53.R5-LambdaDLQ": (
                    "CloudFormation invokes the custom resource and waits for its answer; a failure is reported "
                    "to the stack as FAILED with its reason, there is no event to keep."
                ),
                "Serverless-LambdaDLQ": "Custom resource: failures are answered to CloudFormation, which rolls back.",
                "Serverless-LambdaAsyncFailureDestination": (
                    "Custom resource: CloudFormation receives the outcome on its response URL."
                ),
                "NIST.800.53.R5-LambdaConcurrency": (
                    "Runs once per deployment; a reservation would only take capacity from the account pool."
                ),
            },
        )

    def provision(
        self,
        construct_id: str,
        *,
        domain: SearchDomain,
        security_roles: Mapping[str, Any],
        role_mappings: Mapping[str, Any],
        audit_config: Mapping[str, Any],
        index_templates: Mapping[str, Any],
        ism_policies: Mapping[str, Any],
        saved_objects: str,
        default_index_pattern: str,
    ) -> CustomResource:
        """The custom resource; CloudFormation calls the function again whenever a document changes."""
        ingress = open_https(
            self,
            "DomainIngress",
            source=self.security_group,
            target=domain.security_group,
            description="Search provisioning function",
        )
        resource = CustomResource(
            self,
            construct_id,
            service_token=self.function.function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties={
                "DomainEndpoint": domain.endpoint,
                "SecurityRoles": _json(security_roles),
                "RoleMappings": _json(role_mappings),
                "AuditConfig": _json(audit_config),
                "IndexTemplates": _json(index_templates),
                "IsmPolicies": _json(ism_policies),
                "SavedObjects": saved_objects,
                "Tenant": "global",
                "DefaultIndexPattern": default_index_pattern,
            },
        )
        # The function must be able to reach the domain and the response URL (S3 gateway endpoint and
        # its routes) before CloudFormation calls it, and until the Delete has been answered.
        resource.node.add_dependency(ingress, self._network.vpc)
        return resource


def _place_in_vpc(
    function: PlatformFunction, network: SearchNetwork, group: ec2.SecurityGroup, function_name: str
) -> None:
    """VPC placement and a physical name (PlatformFunction takes neither yet)."""
    resource = function.function.node.default_child
    assert isinstance(resource, CfnResource)
    resource.add_property_override("FunctionName", function_name)
    resource.add_property_override(
        "VpcConfig",
        {
            "SubnetIds": [subnet.subnet_id for subnet in network.subnets.subnets],
            "SecurityGroupIds": [group.security_group_id],
        },
    )
    # Lambda creates the function's network interfaces with its execution role.
    allow(
        function.role,
        [
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ],
        ["*"],
    )
