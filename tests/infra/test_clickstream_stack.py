"""Clickstream ingestion: collector API, transform function, Firehose to Parquet, Glue table."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from platform_core.config import load_config
from platform_core.schema import glue_columns
from platform_core.schemas.clickstream import CLICKSTREAM_RAW, EVENT_TYPES

pytestmark = pytest.mark.xdist_group("cdk")


def _delivery(template):
    streams = template.find_resources("AWS::KinesisFirehose::DeliveryStream")
    assert len(streams) == 1
    return next(iter(streams.values()))["Properties"]


def test_firehose_reads_the_clickstream_stream(template):
    props = _delivery(template("dev", "clickstream"))
    assert props["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert "stream/mlp-dev-clickstream" in json.dumps(props["KinesisStreamSourceConfiguration"]["KinesisStreamARN"])


def test_firehose_converts_to_parquet_with_the_generated_glue_table(template):
    destination = _delivery(template("dev", "clickstream"))["ExtendedS3DestinationConfiguration"]
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert conversion["InputFormatConfiguration"]["Deserializer"] == {"HiveJsonSerDe": {"TimestampFormats": ["millis"]}}
    assert conversion["OutputFormatConfiguration"]["Serializer"] == {"ParquetSerDe": {"Compression": "SNAPPY"}}
    assert conversion["SchemaConfiguration"]["DatabaseName"] == "mlp_dev_lake"
    assert conversion["SchemaConfiguration"]["TableName"] == "clickstream_raw"
    assert destination["CompressionFormat"] == "UNCOMPRESSED"


def test_firehose_partitions_by_event_hour_and_keeps_errors_and_source(template):
    destination = _delivery(template("dev", "clickstream"))["ExtendedS3DestinationConfiguration"]
    assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    for key in ("year", "month", "day", "hour"):
        assert f"{key}=!{{partitionKeyFromLambda:{key}}}/" in destination["Prefix"]
    assert destination["Prefix"].startswith("clickstream/")
    assert destination["ErrorOutputPrefix"].startswith("errors/clickstream/!{firehose:error-output-type}/")
    assert destination["S3BackupMode"] == "Enabled"
    assert destination["S3BackupConfiguration"]["Prefix"].startswith("source-backup/clickstream/")
    assert destination["CloudWatchLoggingOptions"]["Enabled"] is True
    settings = load_config("dev").clickstream.firehose
    assert destination["BufferingHints"] == {
        "IntervalInSeconds": settings.buffer_interval_seconds,
        "SizeInMBs": settings.buffer_size_mb,
    }


def test_firehose_transforms_with_the_clickstream_function(template):
    clickstream = template("dev", "clickstream")
    processors = _delivery(clickstream)["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Processors"]
    assert [p["Type"] for p in processors] == ["Lambda"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processors[0]["Parameters"]}
    assert set(parameters) == {"LambdaArn", "BufferSizeInMBs", "BufferIntervalInSeconds", "NumberOfRetries"}
    clickstream.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.clickstream_transform.handler.handler",
            "Runtime": "python3.14",
            "TracingConfig": {"Mode": "Active"},
            "Environment": {"Variables": Match.object_like({"IP_PROTECTION": "truncate"})},
        },
    )


def test_glue_table_columns_come_from_the_schema_package(template):
    tables = template("dev", "clickstream").find_resources("AWS::Glue::Table")
    table_input = next(iter(tables.values()))["Properties"]["TableInput"]
    columns = table_input["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [(c["name"], c["type"]) for c in glue_columns(CLICKSTREAM_RAW)]
    assert [p["Name"] for p in table_input["PartitionKeys"]] == ["year", "month", "day", "hour"]
    assert table_input["Parameters"]["projection.enabled"] == "true"
    assert table_input["Parameters"]["projection.hour.range"] == "0,23"
    assert "year=${year}/month=${month}/day=${day}/hour=${hour}/" in json.dumps(
        table_input["Parameters"]["storage.location.template"]
    )


def test_collector_writes_straight_to_kinesis_put_records(template):
    clickstream = template("dev", "clickstream")
    clickstream.resource_count_is("AWS::Lambda::Function", 1)  # the transform only: no Lambda in the hot path
    clickstream.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "ApiKeyRequired": True,
            "RequestValidatorId": Match.any_value(),
            "Integration": Match.object_like(
                {
                    "Type": "AWS",
                    "IntegrationHttpMethod": "POST",
                    "Uri": Match.string_like_regexp(r":kinesis:action/PutRecords$"),
                    "PassthroughBehavior": "NEVER",
                }
            ),
        },
    )


def test_collector_request_model_rejects_what_the_schema_rejects(template):
    models = template("dev", "clickstream").find_resources("AWS::ApiGateway::Model")
    schema = next(iter(models.values()))["Properties"]["Schema"]
    event = schema["properties"]["records"]["items"]
    assert schema["properties"]["records"]["maxItems"] == 500
    assert set(event["required"]) == {"event_id", "event_time", "event_type", "session_id"}
    assert set(event["properties"]["event_type"]["enum"]) == EVENT_TYPES


def test_collector_is_throttled_metered_logged_and_behind_waf(template):
    clickstream = template("dev", "clickstream")
    settings = load_config("dev").clickstream.collector
    clickstream.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": settings.rate_limit_rps, "BurstLimit": settings.burst_limit},
            "Quota": {"Limit": settings.daily_quota, "Period": "DAY"},
        },
    )
    clickstream.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "TracingEnabled": True,
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingRateLimit": settings.rate_limit_rps, "LoggingLevel": "ERROR"})]
            ),
        },
    )
    clickstream.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    clickstream.has_resource_properties("AWS::WAFv2::LoggingConfiguration", Match.any_value())
    # A batch of 500 events is ~300 KB: the managed rule that blocks bodies over 8 KB only counts
    (acl,) = clickstream.find_resources("AWS::WAFv2::WebACL").values()
    common = next(r for r in acl["Properties"]["Rules"] if r["Name"] == "AWSManagedRulesCommonRuleSet")
    assert common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"] == [
        {"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}
    ]
    clickstream.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse", {"ResponseType": "BAD_REQUEST_BODY", "StatusCode": "400"}
    )
    # and a web page can read the reason: the 400 carries the CORS header (prefixed exactly once)
    clickstream.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "BAD_REQUEST_BODY",
            "ResponseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"},
        },
    )
    # CORS preflight for browsers
    clickstream.has_resource_properties("AWS::ApiGateway::Method", {"HttpMethod": "OPTIONS"})


def test_iot_rule_is_off_by_default(template):
    clickstream = template("dev", "clickstream")
    clickstream.resource_count_is("AWS::IoT::TopicRule", 0)


def test_stateless_stack_imports_nothing_from_stack_exports(template):
    rendered = json.dumps(template("dev", "clickstream").to_json())
    assert "Fn::ImportValue" not in rendered


@pytest.fixture(scope="module")
def hashed_iot_stack():
    import dataclasses

    from stacks.clickstream_stack import ClickstreamStack
    from tests.infra.harness import build_stack

    def factory(app, config, env):
        clickstream = dataclasses.replace(config.clickstream, ip_protection="hash", iot_rule_enabled=True)
        return ClickstreamStack(
            app, "Clickstream", config=dataclasses.replace(config, clickstream=clickstream), env=env
        )

    return build_stack(factory)


def test_hash_mode_generates_a_retained_key_the_transform_may_read(hashed_iot_stack):
    from aws_cdk.assertions import Template

    template = Template.from_stack(hashed_iot_stack)
    secrets = template.find_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 1
    assert next(iter(secrets.values()))["DeletionPolicy"] == "Retain"
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like({"IP_PROTECTION": "hash", "IP_HASH_SECRET_ARN": Match.any_value()})
            }
        },
    )


def test_iot_rule_forwards_the_topic_to_a_direct_put_firehose(hashed_iot_stack):
    from aws_cdk.assertions import Template

    template = Template.from_stack(hashed_iot_stack)
    template.has_resource_properties(
        "AWS::IoT::TopicRule",
        {
            "TopicRulePayload": Match.object_like(
                {
                    "Sql": "SELECT * FROM 'clickstream/events'",
                    "Actions": [Match.object_like({"Firehose": Match.any_value()})],
                    "ErrorAction": Match.object_like({"S3": Match.any_value()}),
                }
            )
        },
    )
    template.has_resource_properties(
        "AWS::KinesisFirehose::DeliveryStream",
        {
            "DeliveryStreamType": "DirectPut",
            "DeliveryStreamEncryptionConfigurationInput": {
                "KeyType": "CUSTOMER_MANAGED_CMK",
                "KeyARN": Match.any_value(),
            },
        },
    )


def test_optional_features_are_scanner_clean(hashed_iot_stack):
    from tests.infra.harness import cfn_lint_findings, nag_findings

    assert nag_findings(hashed_iot_stack) == []
    assert cfn_lint_findings(hashed_iot_stack) == []


def _collector_validator(template):
    """A JSON Schema draft-4 validator (API Gateway's dialect) over the model as synthesised."""
    from jsonschema import Draft4Validator

    models = template("dev", "clickstream").find_resources("AWS::ApiGateway::Model")
    schema = next(iter(models.values()))["Properties"]["Schema"]
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    return Draft4Validator(schema)


def _collected_event(**fields):
    event = {
        "event_id": "0190f5a1-0000-7000-8000-0000000000aa",
        "event_time": "2025-03-01T10:15:30.250Z",
        "event_type": "page_view",
        "session_id": "sess-1",
        "user_id": None,
        "request": {"method": "GET", "path": "/", "status": 200, "latency_ms": 5.5},
        "properties": {"k": "v", "empty": None},
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not ...}


def test_collector_request_model_accepts_a_well_formed_batch(template):
    validator = _collector_validator(template)
    body = {"records": [_collected_event(), _collected_event(event_time=1740824130250, event_type="voice_command")]}
    assert list(validator.iter_errors(body)) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([_collected_event()], id="not-an-object"),
        pytest.param({}, id="no-records"),
        pytest.param({"records": []}, id="empty-batch"),
        pytest.param({"records": [_collected_event()] * 501}, id="over-500-records"),
        pytest.param({"records": ["page_view"]}, id="record-not-an-object"),
        pytest.param({"records": [_collected_event(session_id=...)]}, id="no-session-id"),
        pytest.param({"records": [_collected_event(event_id="")]}, id="empty-event-id"),
        pytest.param({"records": [_collected_event(event_type="teleport")]}, id="unknown-event-type"),
        pytest.param({"records": [_collected_event(session_id=42)]}, id="session-id-not-a-string"),
        pytest.param({"records": [_collected_event(event_time=True)]}, id="event-time-boolean"),
        pytest.param({"records": [_collected_event(request={"status": "200"})]}, id="status-not-an-integer"),
        pytest.param({"records": [_collected_event(properties={"n": 1})]}, id="property-not-a-string"),
    ],
)
def test_collector_request_model_rejects_malformed_bodies(template, body):
    # API Gateway answers these with the BAD_REQUEST_BODY gateway response (400, with the reason).
    assert list(_collector_validator(template).iter_errors(body)) != []
