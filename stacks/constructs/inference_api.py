"""The inference API: ``GET /users/{user_id}/churn-score`` and ``POST /churn-score`` -> λ inference_api.

Callers are the platform's own services, so requests are signed with IAM (SigV4): no shared API
key to leak or rotate, and access is granted per caller role with ``execute-api:Invoke``. WAF (AWS
managed rules and a per-IP rate limit), stage throttling, access logs, X-Ray and request
validation sit in front of the function; the function reads the online features, calls the
endpoint with a bounded timeout and answers 200 / 400 / 404 / 503 (lambdas/inference_api).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from lambdas.inference_api.settings import environment as api_environment
from platform_core.config import PlatformConfig
from platform_core.names import DATA_CAPTURE_PREFIX, SERVING_MODELS_PREFIX, Names
from stacks.constructs.access import allow, allow_key, allow_objects
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import PlatformFunction, log_retention
from stacks.constructs.web_acl import regional_web_acl

FUNCTION = "inference_api"
STAGE = "v1"


class InferenceApi(Construct):
    """REST API (IAM auth, WAF) in front of ``lambdas/inference_api``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        key: kms.IKey,
        artifacts_bucket: s3.IBucket,
        raw_bucket: s3.IBucket,
        feature_groups: Mapping[str, str],
        endpoint_arn: str,
    ) -> None:
        """``feature_groups``: logical group name -> physical Feature Store group name."""
        super().__init__(scope, construct_id)
        names = Names(platform)
        serving = platform.serving
        self.function = PlatformFunction(
            self,
            "Function",
            name=FUNCTION,
            platform=platform,
            settings=serving.api_function,
            key=key,
            description="Churn score of one user: online features -> inference endpoint (bounded time)",
            environment=api_environment(platform, feature_groups=feature_groups, capture_bucket=raw_bucket.bucket_name),
        )
        resource = self.function.function.node.default_child
        assert isinstance(resource, lambda_.CfnFunction)
        resource.function_name = names.function(FUNCTION)  # alarms find it by this name
        self._grant(
            platform,
            key=key,
            artifacts_bucket=artifacts_bucket,
            raw_bucket=raw_bucket,
            feature_groups=feature_groups,
            endpoint_arn=endpoint_arn,
        )

        retention = log_retention(platform.log_retention_days)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=retention, encryption_key=key)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=names.inference_api,
            description="Churn scores of users (IAM-signed requests)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=serving.api_rate_limit_rps,
                throttling_burst_limit=serving.api_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        # Bodies API Gateway rejects answer in the function's shape: {"error": reason}.
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={"application/json": '{"error": "$context.error.validationErrorString"}'},
        )
        self._routes()
        self.web_acl = regional_web_acl(
            self, metric_name="InferenceWebAcl", per_ip_limit=serving.api_rate_limit_rps * 300
        )
        waf_logs = logs.LogGroup(
            self,
            "WafLogs",
            # WAF requires the name to start with aws-waf-logs-.
            log_group_name=f"aws-waf-logs-{names.inference_api}",
            retention=retention,
            encryption_key=key,
        )
        wafv2.CfnLoggingConfiguration(
            self, "WafLogging", resource_arn=self.web_acl.attr_arn, log_destination_configs=[waf_logs.log_group_arn]
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
        self._acknowledge()
        self.url = self.api.url

    def _routes(self) -> None:
        integration = apigw.LambdaIntegration(self.function.function, proxy=True)
        validator = self.api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        by_path = self.api.root.add_resource("users").add_resource("{user_id}").add_resource("churn-score")
        by_path.add_method(
            "GET",
            integration,
            request_parameters={"method.request.path.user_id": True},
            request_validator=validator,
        )
        body = self.api.add_model(
            "ScoreRequest",
            content_type="application/json",
            model_name="ScoreRequest",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                type=apigw.JsonSchemaType.OBJECT,
                required=["user_id"],
                properties={
                    "user_id": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1, max_length=128)
                },
            ),
        )
        self.api.root.add_resource("churn-score").add_method(
            "POST",
            integration,
            request_models={"application/json": body},
            request_validator=validator,
        )

    def _grant(
        self,
        platform: PlatformConfig,
        *,
        key: kms.IKey,
        artifacts_bucket: s3.IBucket,
        raw_bucket: s3.IBucket,
        feature_groups: Mapping[str, str],
        endpoint_arn: str,
    ) -> None:
        """Exactly the calls of lambdas/inference_api."""
        stack = Stack.of(self)
        names = Names(platform)
        function = self.function.function
        groups = [
            stack.format_arn(service="sagemaker", resource="feature-group", resource_name=name)
            for name in feature_groups.values()
        ]
        allow(function, ["sagemaker:GetRecord"], groups)
        allow(function, ["sagemaker:InvokeEndpoint"], [endpoint_arn])
        allow(
            function,
            ["ssm:GetParameter"],
            [
                stack.format_arn(
                    service="ssm", resource="parameter", resource_name=names.serving_manifest_parameter.lstrip("/")
                )
            ],
        )
        allow_objects(
            function,
            artifacts_bucket,
            prefixes=[SERVING_MODELS_PREFIX],
            actions=["s3:GetObject"],
            reason="The deployed version's transform.json and metadata.json, one folder per version.",
        )
        if platform.serving.serverless:
            allow_objects(
                function,
                raw_bucket,
                prefixes=[f"{DATA_CAPTURE_PREFIX}{names.inference_endpoint}/"],
                actions=["s3:PutObject"],
                reason="Serverless endpoints cannot capture: the API writes one capture record per request.",
            )
            allow_key(function, key, encrypt=True, decrypt=True)
        else:
            # Reads the artifacts and the KMS-encrypted online store.
            allow_key(function, key, decrypt=True)

    def _acknowledge(self) -> None:
        acknowledge(
            self.function.function,
            {
                "NIST.800.53.R5-LambdaDLQ": (
                    "API Gateway invokes the function synchronously and returns its errors to the caller; "
                    "a dead-letter queue applies only to asynchronous invocations."
                ),
                "Serverless-LambdaDLQ": "Synchronous API Gateway invocation: errors go back to the caller.",
                "Serverless-LambdaAsyncFailureDestination": "Synchronous API Gateway invocation: no async failures.",
                "NIST.800.53.R5-LambdaConcurrency": (
                    "The stage's throttling (rate and burst limits from ServingConfig) bounds concurrency; "
                    "a reservation would only take capacity from the account pool."
                ),
            },
        )
        for method in self.api.methods:
            acknowledge(
                method,
                {
                    "AwsSolutions-COG4": (
                        "Callers are the platform's services, not end users: requests are SigV4-signed "
                        "with IAM (AWS_IAM authorization), granted per caller role."
                    ),
                },
            )
        acknowledge(
            self.api.deployment_stage,
            {
                "NIST.800.53.R5-APIGWSSLEnabled": (
                    "The backend is a Lambda proxy integration reached by AWS-signed invocation; client "
                    "certificates only apply to HTTP backends."
                ),
                "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted": (
                    "Each score must reflect the user's features of the moment and every answer is "
                    "captured for the feedback loop; cached answers would be stale and uncaptured."
                ),
                "AwsSolutions-APIG6": (
                    "Execution logging is at ERROR level on all methods to keep request bodies (user ids) "
                    "out of logs; full access logs go to an encrypted log group."
                ),
            },
        )
        cloudwatch_role = self.api.node.try_find_child("CloudWatchRole")
        if cloudwatch_role is not None:
            acknowledge(
                cloudwatch_role,
                {
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AmazonAPIGatewayPushToCloudWatchLogs]": (
                        "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-maintained policy API Gateway "
                        "requires for its account-level logging role."
                    ),
                },
            )
