"""A Python Lambda function with the platform's defaults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from platform_core.config import FunctionConfig, PlatformConfig
from stacks.constructs.dependencies import depend_on_role_policy_only
from stacks.constructs.lambda_packaging import dependencies_layer_dir, staged_function_code
from stacks.constructs.nag import acknowledge

# The dependency layer is built for this Python version (Makefile: LAMBDA_PYTHON).
RUNTIME = lambda_.Runtime.PYTHON_3_14


def dependencies_layer(scope: Construct) -> lambda_.LayerVersion:
    """One dependency layer per stack, shared by every function in it."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("PythonDependenciesLayer")
    if isinstance(existing, lambda_.LayerVersion):
        return existing
    return lambda_.LayerVersion(
        stack,
        "PythonDependenciesLayer",
        code=lambda_.Code.from_asset(str(dependencies_layer_dir())),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[lambda_.Architecture.X86_64],
        description="Third-party packages of lambdas/requirements.txt (manylinux wheels)",
    )


class PlatformFunction(Construct):
    """``lambdas/<name>/handler.py`` packaged without Docker, traced, with a KMS-encrypted log group.

    Invocation-specific acknowledgments (VPC, DLQ, concurrency) are left to the caller, who knows how
    the function is invoked.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        platform: PlatformConfig,
        settings: FunctionConfig,
        key: kms.IKey,
        description: str,
        environment: Mapping[str, str] | None = None,
        extra_layers: Sequence[lambda_.ILayerVersion] = (),
    ) -> None:
        """``extra_layers``: third-party packages this function alone needs (e.g. PyAV for video),
        attached after the shared dependency layer so that the other functions stay small."""
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention(platform.log_retention_days),
            encryption_key=key,
        )
        # An explicit role: only this function's log group, instead of the managed basic execution
        # policy that may write to every log group of the account.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Lambda {name} ({platform.resource_prefix})",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=f"lambdas.{name}.handler.handler",
            code=lambda_.Code.from_asset(str(staged_function_code(name))),
            layers=[dependencies_layer(self), *extra_layers],
            memory_size=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            reserved_concurrent_executions=settings.reserved_concurrency,
            description=description,
            environment={
                "POWERTOOLS_SERVICE_NAME": name,
                "PLATFORM_ENV": platform.env_name,
                **(environment or {}),
            },
            role=self.role,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
        )
        depend_on_role_policy_only(self.function, self.role)
        acknowledge(
            self.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The policy is generated from explicit least-privilege grants for this one role; a "
                    "managed policy would be attached to nothing else."
                ),
            },
        )
        acknowledge(
            self.function,
            {
                "NIST.800.53.R5-LambdaInsideVPC": (
                    "The function talks only to AWS service endpoints (no private resources); a VPC "
                    "would add NAT cost and cold-start latency without narrowing its access, which IAM scopes."
                ),
            },
        )


_RETENTIONS = (
    (1, logs.RetentionDays.ONE_DAY),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (90, logs.RetentionDays.THREE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
    (731, logs.RetentionDays.TWO_YEARS),
    (1827, logs.RetentionDays.FIVE_YEARS),
    (3653, logs.RetentionDays.TEN_YEARS),
)


def log_retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention that keeps logs at least ``days`` days."""
    for limit, retention in _RETENTIONS:
        if limit >= days:
            return retention
    return _RETENTIONS[-1][1]
