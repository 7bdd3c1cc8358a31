"""The OpenSearch domain that operators watch the stream in: private, encrypted, audited.

* VPC-only (no public endpoint), HTTPS with TLS 1.2 and perfect forward secrecy, node-to-node
  encryption, encryption at rest with the lake key.
* Fine-grained access control with an IAM role as master user (no password anywhere); what every
  other principal may do is the security plugin's business (see ``observability.security``). The
  domain's resource policy only admits the principals the stack names, with the HTTP verbs they need.
* Audit, slow-search, slow-index and error logs in KMS-encrypted log groups; one CloudWatch Logs
  resource policy (native CloudFormation, no custom resource) lets the service write them.
* ``EnableVersionUpgrade``: an engine version change is an in-place blue/green upgrade, never a
  replacement; the domain is retained on stack deletion like every other data store.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from platform_core.config import ObservabilityConfig, PlatformConfig
from stacks.constructs.nag import acknowledge
from stacks.constructs.search_network import SearchNetwork
from stacks.policies import data_removal_policy

HTTPS = ec2.Port.tcp(443)
READ_ACTIONS = ("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost")  # searches are POSTs
WRITE_ACTIONS = (*READ_ACTIONS, "es:ESHttpPut")
ADMIN_ACTIONS = (*WRITE_ACTIONS, "es:ESHttpPatch", "es:ESHttpDelete")


class SearchDomain(Construct):
    """An OpenSearch domain in the search network's isolated subnets."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        domain_name: str,
        network: SearchNetwork,
        key: kms.IKey,
        master_role: iam.IRole,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.observability
        stack = Stack.of(self)
        self.domain_name = domain_name
        # Known before the domain exists, so the log policy can name it without a dependency cycle.
        self.domain_arn = stack.format_arn(service="es", resource="domain", resource_name=domain_name)
        # Resolved at synthesis, so principals added later with allow_http are included.
        self._access_policy = iam.PolicyDocument()

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description=f"OpenSearch domain {domain_name}: HTTPS from the platform clients only",
            allow_all_outbound=False,  # the domain never opens connections
        )
        self.security_group.apply_removal_policy(data_removal_policy(config))  # the domain's ENIs use it
        for cidr in settings.opensearch_client_cidrs:
            self.security_group.add_ingress_rule(ec2.Peer.ipv4(cidr), HTTPS, "Operators network (Dashboards)")

        self.log_groups = {
            kind: logs.LogGroup(
                self, f"{kind.title().replace('_', '')}Logs", retention=log_retention, encryption_key=key
            )
            for kind in ("audit", "app", "slow_search", "slow_index")
        }
        log_policy = self._log_publishing_policy(config)

        subnets = network.subnets.subnets
        zones = 3 if settings.opensearch_multi_az else 1
        self.domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=domain_name,
            version=opensearch.EngineVersion.open_search(settings.opensearch_engine_version),
            enable_version_upgrade=True,
            removal_policy=data_removal_policy(config),
            vpc=network.vpc,
            vpc_subnets=[ec2.SubnetSelection(subnets=subnets[:zones])],
            security_groups=[self.security_group],
            capacity=_capacity(settings),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=zones > 1, availability_zone_count=zones)
            if zones > 1
            else opensearch.ZoneAwarenessConfig(enabled=False),
            ebs=opensearch.EbsOptions(
                enabled=True, volume_size=settings.opensearch_volume_gb, volume_type=ec2.EbsDeviceVolumeType.GP3
            ),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True, kms_key=key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2_PFS,
            fine_grained_access_control=opensearch.AdvancedSecurityOptions(master_user_arn=master_role.role_arn),
            logging=opensearch.LoggingOptions(
                audit_log_enabled=True,
                audit_log_group=self.log_groups["audit"],
                app_log_enabled=True,
                app_log_group=self.log_groups["app"],
                slow_search_log_enabled=True,
                slow_search_log_group=self.log_groups["slow_search"],
                slow_index_log_enabled=True,
                slow_index_log_group=self.log_groups["slow_index"],
            ),
            # Our own resource policy below (a native resource) instead of the CDK's custom resource.
            suppress_logs_resource_policy=True,
            enable_auto_software_update=True,
            off_peak_window_enabled=True,
        )
        self.domain.node.add_dependency(log_policy)
        if settings.opensearch_create_service_linked_role:
            linked_role = iam.CfnServiceLinkedRole(
                self,
                "ServiceLinkedRole",
                aws_service_name="opensearchservice.amazonaws.com",
                description="Lets OpenSearch Service manage the network interfaces of VPC domains",
            )
            self.domain.node.add_dependency(linked_role)
        cfn_domain = self.domain.node.default_child
        assert isinstance(cfn_domain, opensearch.CfnDomain)
        # Set on the resource itself: the L2's access-policy helper would add a custom-resource Lambda.
        cfn_domain.access_policies = self._access_policy
        self.allow_http(master_role, ADMIN_ACTIONS)
        self.endpoint = self.domain.domain_endpoint
        self._acknowledge(settings)

    def allow_http(self, principal: iam.IPrincipal, actions: Sequence[str]) -> None:
        """Admit ``principal`` to the domain's HTTP API; fine-grained access control decides the rest."""
        self._access_policy.add_statements(
            iam.PolicyStatement(
                principals=[principal],
                actions=sorted(actions),
                resources=[self.domain_arn, f"{self.domain_arn}/*"],
            )
        )

    def _log_publishing_policy(self, config: PlatformConfig) -> logs.CfnResourcePolicy:
        """Lets OpenSearch Service write to exactly these log groups, for exactly this domain."""
        document = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("es.amazonaws.com")],
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[group.log_group_arn for group in self.log_groups.values()],
                    conditions={
                        "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                        "ArnLike": {"aws:SourceArn": self.domain_arn},
                    },
                )
            ]
        )
        return logs.CfnResourcePolicy(
            self,
            "LogPublishingPolicy",
            policy_name=f"{config.resource_prefix}-opensearch-logs",
            policy_document=Stack.of(self).to_json_string(document.to_json()),
        )

    def _acknowledge(self, settings: ObservabilityConfig) -> None:
        findings = {}
        if not settings.opensearch_dedicated_masters:
            findings["AwsSolutions-OS4"] = (
                "dev runs a single small node to keep cost down; prod has three dedicated masters (config)."
            )
        if not settings.opensearch_multi_az:
            findings["AwsSolutions-OS7"] = (
                "dev is single-AZ on purpose (a disposable copy of the stream); prod spans three AZs with standby."
            )
        findings["AwsSolutions-OS3"] = (
            "Access is by IAM principal (SigV4) plus fine-grained access control, and the domain is VPC-only "
            "behind a security group; its clients are Firehose ENIs and a function, not IP addresses."
        )
        acknowledge(self.domain, findings)


def open_https(
    scope: Construct, construct_id: str, *, source: ec2.ISecurityGroup, target: ec2.ISecurityGroup, description: str
) -> ec2.CfnSecurityGroupIngress:
    """Admit HTTPS from ``source`` into ``target``; the caller owns the source's egress rule.

    Returned so that whatever needs the path (the custom resource, the delivery stream) can depend
    on it: a security-group rule is its own resource, which CloudFormation would otherwise create in
    parallel with its users.
    """
    return ec2.CfnSecurityGroupIngress(
        scope,
        construct_id,
        group_id=target.security_group_id,
        source_security_group_id=source.security_group_id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        description=description,
    )


def _capacity(settings: ObservabilityConfig) -> opensearch.CapacityConfig:
    masters = settings.opensearch_dedicated_masters
    return opensearch.CapacityConfig(
        data_nodes=settings.opensearch_data_nodes,
        data_node_instance_type=settings.opensearch_instance_type,
        master_nodes=settings.opensearch_master_nodes if masters else None,
        master_node_instance_type=settings.opensearch_master_instance_type if masters else None,
        multi_az_with_standby_enabled=settings.opensearch_multi_az,
    )
