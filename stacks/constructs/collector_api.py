"""The collector API: browsers and apps POST events; API Gateway writes them straight to Kinesis.

No Lambda sits in the hot path: an AWS service integration calls ``PutRecords`` with the
partition key ``session_id``. The request model (derived from the schema package) rejects malformed
bodies with a clear 400 before anything reaches the stream, and the response tells the client, per
record, whether Kinesis acknowledged it, so that the client retries only what failed.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from platform_core.config import CollectorConfig
from platform_core.schemas.clickstream import collector_request_schema
from stacks.constructs.access import allow, allow_key
from stacks.constructs.nag import acknowledge
from stacks.constructs.web_acl import regional_web_acl

# Kinesis PutRecords body built from {"records": [...]}; each record is sent exactly as received.
_REQUEST_TEMPLATE = """#set($records = $input.path('$.records'))
{
  "StreamName": "%s",
  "Records": [
#foreach($record in $records)
    {
      "Data": "$util.base64Encode($input.json("$.records[$foreach.index]"))",
      "PartitionKey": "$util.escapeJavaScript($record.session_id)"
    }#if($foreach.hasNext),#end
#end
  ]
}"""

# Per-record acknowledgements in request order.
_RESPONSE_TEMPLATE = """#set($response = $input.path('$'))
{
  "failed_record_count": $response.FailedRecordCount,
  "records": [
#foreach($record in $response.Records)
    #if($record.ErrorCode)
    {"acknowledged": false, "error_code": "$record.ErrorCode"}#else
    {"acknowledged": true, "sequence_number": "$record.SequenceNumber", "shard_id": "$record.ShardId"}#end#if($foreach.hasNext),#end
#end
  ]
}"""

_UPSTREAM_ERROR = '{"message": "The stream did not accept the batch; retry with backoff."}'


class CollectorApi(Construct):
    """REST API ``POST /events`` -> Kinesis ``PutRecords``, with WAF, throttling, quotas and logs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api_name: str,
        stream: kinesis.IStream,
        key: kms.IKey,
        settings: CollectorConfig,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, encryption_key=key)
        cors_origins = list(settings.cors_allow_origins)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=api_name,
            description="Clickstream collector: POST /events writes to Kinesis",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                throttling_rate_limit=settings.rate_limit_rps,
                throttling_burst_limit=settings.burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=cors_origins,
                allow_methods=["POST", "OPTIONS"],
                allow_headers=["Content-Type", "X-Api-Key"],
            ),
        )
        # The CDK prefixes "gatewayresponse.header." itself: a browser can then read the 400's reason.
        cors_header = {"Access-Control-Allow-Origin": f"'{cors_origins[0]}'"}
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            response_headers=cors_header,
            templates={
                "application/json": '{"message": "Invalid request body", "reason": "$context.error.validationErrorString"}'
            },
        )

        integration_role = iam.Role(
            self,
            "KinesisIntegrationRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="Lets the collector API put records on the clickstream stream",
        )
        allow(integration_role, ["kinesis:PutRecords", "kinesis:PutRecord"], [stream.stream_arn])
        allow_key(integration_role, key, encrypt=True)
        acknowledge(
            integration_role,
            {"NIST.800.53.R5-IAMNoInlinePolicy": "Explicit statements for this integration role only."},
        )

        model = self.api.add_model(
            "CollectorRequest",
            content_type="application/json",
            model_name="CollectorRequest",
            schema=_to_json_schema(collector_request_schema(settings.max_batch_records)),
        )
        validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        error_response = {"application/json": _UPSTREAM_ERROR}
        integration = apigw.AwsIntegration(
            service="kinesis",
            action="PutRecords",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=integration_role,
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_parameters={"integration.request.header.Content-Type": "'application/x-amz-json-1.1'"},
                request_templates={"application/json": _REQUEST_TEMPLATE % stream.stream_name},
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code="200",
                        response_templates={"application/json": _RESPONSE_TEMPLATE},
                        response_parameters={
                            "method.response.header.Access-Control-Allow-Origin": f"'{cors_origins[0]}'"
                        },
                    ),
                    apigw.IntegrationResponse(
                        selection_pattern=r"4\d{2}|5\d{2}",
                        status_code="503",
                        response_templates=error_response,
                        response_parameters={
                            "method.response.header.Access-Control-Allow-Origin": f"'{cors_origins[0]}'"
                        },
                    ),
                ],
            ),
        )
        events = self.api.root.add_resource("events")
        cors_method_header = {"method.response.header.Access-Control-Allow-Origin": True}
        self.method = events.add_method(
            "POST",
            integration,
            api_key_required=True,
            request_validator=validator,
            request_models={"application/json": model},
            method_responses=[
                apigw.MethodResponse(status_code="200", response_parameters=cors_method_header),
                apigw.MethodResponse(status_code="503", response_parameters=cors_method_header),
            ],
        )

        plan = self.api.add_usage_plan(
            "UsagePlan",
            name=f"{api_name}-default",
            throttle=apigw.ThrottleSettings(rate_limit=settings.rate_limit_rps, burst_limit=settings.burst_limit),
            quota=apigw.QuotaSettings(limit=settings.daily_quota, period=apigw.Period.DAY),
        )
        plan.add_api_stage(stage=self.api.deployment_stage)
        self.api_key = self.api.add_api_key("ClientKey", description="Identifies collector clients for quotas")
        plan.add_api_key(self.api_key)

        self.web_acl = regional_web_acl(
            self, metric_name="CollectorWebAcl", per_ip_limit=settings.burst_limit * 60, large_bodies=True
        )
        # WAF requires the log group name to start with aws-waf-logs-.
        waf_logs = logs.LogGroup(
            self,
            "WafLogs",
            log_group_name=f"aws-waf-logs-{api_name}",
            retention=log_retention,
            encryption_key=key,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[waf_logs.log_group_arn],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

        acknowledge(
            self.method,
            {
                "AwsSolutions-APIG4": (
                    "Browsers and apps send events before sign-in; clients are identified by API key and "
                    "usage plan, abuse is limited by WAF rate rules and stage throttling."
                ),
                "AwsSolutions-COG4": (
                    "Anonymous clickstream collection cannot use a Cognito user pool; API keys, WAF and "
                    "throttling protect the endpoint instead."
                ),
            },
        )
        acknowledge(
            self.api.deployment_stage,
            {
                "NIST.800.53.R5-APIGWSSLEnabled": (
                    "The backend is an AWS service integration (Kinesis) reached over AWS-signed TLS; "
                    "client certificates only apply to HTTP backends."
                ),
                "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted": (
                    "Event ingestion is a POST of new data per request; nothing is cacheable."
                ),
                "AwsSolutions-APIG6": (
                    "Execution logging is at ERROR level on all methods to avoid logging event bodies (PII); "
                    "full access logs go to an encrypted log group."
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
        self.url = f"{self.api.url}events"
        self.region = Aws.REGION


def _to_json_schema(schema: dict[str, object]) -> apigw.JsonSchema:
    """Convert a plain JSON Schema dict into the CDK's typed ``JsonSchema``."""
    type_map = {
        "string": apigw.JsonSchemaType.STRING,
        "integer": apigw.JsonSchemaType.INTEGER,
        "number": apigw.JsonSchemaType.NUMBER,
        "boolean": apigw.JsonSchemaType.BOOLEAN,
        "object": apigw.JsonSchemaType.OBJECT,
        "array": apigw.JsonSchemaType.ARRAY,
        "null": apigw.JsonSchemaType.NULL,
    }

    def convert(node: dict[str, object]) -> apigw.JsonSchema:
        kwargs: dict[str, object] = {}
        for key, value in node.items():
            if key == "$schema":
                kwargs["schema"] = apigw.JsonSchemaVersion.DRAFT4
            elif key == "type":
                kwargs["type"] = [type_map[t] for t in value] if isinstance(value, list) else type_map[str(value)]
            elif key == "properties":
                assert isinstance(value, dict)
                kwargs["properties"] = {name: convert(sub) for name, sub in value.items()}
            elif key == "items":
                assert isinstance(value, dict)
                kwargs["items"] = convert(value)
            elif key == "additionalProperties":
                kwargs["additional_properties"] = convert(value) if isinstance(value, dict) else value
            elif key in {"minItems", "maxItems", "minLength", "maxLength"}:
                kwargs[_snake(key)] = value
            elif key in {"required", "enum", "pattern", "title"}:
                kwargs[key] = value
        return apigw.JsonSchema(**kwargs)  # type: ignore[arg-type]

    return convert(schema)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
