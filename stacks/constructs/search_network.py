"""The private network of the search domain: isolated subnets only, no NAT, no internet gateway.

Nothing in it needs the internet. Firehose reaches the domain through its own network interfaces
in these subnets; the provisioning function talks to the domain and answers CloudFormation on a
pre-signed S3 URL, which the S3 gateway endpoint (free, unlike NAT or interface endpoints) serves.
The endpoint's policy admits only CloudFormation's response buckets, so the subnets cannot be used
to move data to any other bucket.
"""

from __future__ import annotations

from aws_cdk import CfnResource, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.constructs.nag import acknowledge

AZ_COUNT = 3


def region_availability_zones(count: int = AZ_COUNT) -> list[str]:
    """The first ``count`` zones of the deployment region, resolved by CloudFormation (no context lookup,
    so ``cdk synth`` needs no AWS account)."""
    return [Fn.select(index, Fn.get_azs()) for index in range(count)]


class SearchNetwork(Construct):
    """A VPC with one isolated subnet per zone, flow logs and an S3 gateway endpoint."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cidr: str,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            availability_zones=region_availability_zones(),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
            ],
            # The default security group is never used here (every resource has its own group).
            restrict_default_security_group=False,
        )
        self.subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        # A retained domain keeps its network interfaces in these subnets: deleting the network under
        # it would fail the stack deletion, so the network follows the domain's removal policy.
        for child in self.vpc.node.find_all():
            if isinstance(child, CfnResource):
                child.apply_removal_policy(removal_policy)
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=log_retention, encryption_key=key)
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
        )
        self.s3_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="CloudFormationResponsesOnly",
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[f"arn:{Stack.of(self).partition}:s3:::cloudformation-custom-resource-response-*/*"],
            )
        )
        vpc_resource = self.vpc.node.default_child
        assert vpc_resource is not None
        acknowledge(
            vpc_resource,
            {
                "NIST.800.53.R5-VPCDefaultSecurityGroupClosed": (
                    "No resource here uses the default security group (each has its own); closing it would "
                    "need a custom-resource Lambda, and the isolated subnets have no route out of the VPC."
                ),
            },
        )
        flow_log_role = self.vpc.node.find_child("FlowLog").node.try_find_child("IAMRole")
        if flow_log_role is not None:
            acknowledge(
                flow_log_role,
                {
                    "NIST.800.53.R5-IAMNoInlinePolicy": (
                        "The flow log's own role: CDK grants it write access to this one log group only."
                    ),
                },
            )
