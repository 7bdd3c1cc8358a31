"""The video stack synthesised for dev and prod with two cameras (one HLS URL, one Kinesis Video):
streams, function and layer, schedules, failure path, state, metadata into the lake, alarms, scanners."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from lambdas.video_ingest.handler import requested_cameras
from lambdas.video_ingest.settings import parse_cameras
from platform_core.config import VideoConfig
from platform_core.schema import glue_columns
from platform_core.schemas.video import CameraConfig
from stacks.constructs.video_ingest import METRICS_NAMESPACE
from stacks.constructs.video_lake import VIDEO_METADATA_TABLE
from stacks.video_stack import VideoStack
from tests.infra.harness import build_stack, cfn_lint_findings, nag_findings

pytestmark = pytest.mark.xdist_group("cdk")

HLS = CameraConfig("cam-hls", "https://cams.example.com/gate/master.m3u8", retention_days=30)
KVS = CameraConfig("cam-kvs", "kvs:lobby-camera", retention_days=7, frame_sample_seconds=5)
CAMERAS = (HLS, KVS)
LAKE_KEY = {"Ref": Match.string_like_regexp(r"^SsmParameterValue.*lakekeyarn")}


@cache
def video_stack(env_name: str) -> Stack:
    """Built once per environment for the whole module (a synth costs 20-30 s here)."""
    return build_stack(
        lambda app, config, env: VideoStack(
            app, "Video", config=dataclasses.replace(config, video=VideoConfig(cameras=CAMERAS)), env=env
        ),
        env_name,
    )


@cache
def template(env_name: str = "dev") -> Template:
    return Template.from_stack(video_stack(env_name))


def only(env_name: str, resource_type: str) -> tuple[str, Mapping[str, Any]]:
    found = template(env_name).find_resources(resource_type)
    assert len(found) == 1, f"{len(found)} {resource_type}"
    return next(iter(found.items()))


def ingest_function(env_name: str = "dev") -> tuple[str, Mapping[str, Any]]:
    found = template(env_name).find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "lambdas.video_ingest.handler.handler"}}
    )
    assert len(found) == 1
    return next(iter(found.items()))


def statements(env_name: str = "dev") -> list[dict[str, Any]]:
    _, function = ingest_function(env_name)
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = template(env_name).find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role}]}})
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


# ---------------------------------------------------------------------------------------------
# Cameras that publish into AWS: Kinesis Video streams
# ---------------------------------------------------------------------------------------------


def test_only_the_kvs_camera_gets_a_kinesis_video_stream_encrypted_with_the_lake_key():
    _, stream = only("dev", "AWS::KinesisVideo::Stream")
    assert stream["Properties"]["Name"] == "lobby-camera"
    assert stream["Properties"]["DataRetentionInHours"] == 7 * 24
    template("dev").has_resource_properties("AWS::KinesisVideo::Stream", {"KmsKeyId": LAKE_KEY})
    assert stream["DeletionPolicy"] == "Retain"


def test_the_function_may_open_hls_sessions_of_exactly_the_camera_streams():
    stream_id, _ = only("dev", "AWS::KinesisVideo::Stream")
    video_statements = [s for s in statements() if any(a.startswith("kinesisvideo:") for a in actions_of(s))]
    assert video_statements == [
        {
            "Action": ["kinesisvideo:GetDataEndpoint", "kinesisvideo:GetHLSStreamingSessionURL"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [stream_id, "Arn"]},
        }
    ]


# ---------------------------------------------------------------------------------------------
# The function and its PyAV layer
# ---------------------------------------------------------------------------------------------


def test_the_ingest_runs_on_one_vcpu_for_90_seconds_without_a_concurrency_reservation():
    template("dev").has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.video_ingest.handler.handler",
            "FunctionName": "mlp-dev-video-ingest",
            "Runtime": "python3.14",
            "MemorySize": 1769,
            "Timeout": 90,
            "ReservedConcurrentExecutions": Match.absent(),
            "TracingConfig": {"Mode": "Active"},
        },
    )


def test_the_function_is_configured_with_what_its_settings_parse():
    _, function = ingest_function()
    variables = function["Properties"]["Environment"]["Variables"]
    assert parse_cameras(variables["VIDEO_CAMERAS"]) == CAMERAS
    assert variables["VIDEO_METADATA_STREAM"] == "mlp-dev-video-metadata"
    assert variables["VIDEO_WATERMARK_TABLE"] == {"Ref": only("dev", "AWS::DynamoDB::Table")[0]}
    assert variables["VIDEO_POLL_INTERVAL_SECONDS"] == "0"
    assert variables["VIDEO_METRICS_NAMESPACE"] == METRICS_NAMESPACE == "MLPlatform/Video"
    assert "mlp-dev-raw-" in json.dumps(variables["VIDEO_RAW_BUCKET"])


def test_the_pyav_layer_is_attached_to_the_video_function_only():
    layers = template("dev").find_resources("AWS::Lambda::LayerVersion")
    pyav = [lid for lid, layer in layers.items() if "PyAV" in layer["Properties"]["Description"]]
    assert len(pyav) == 1
    functions = template("dev").find_resources("AWS::Lambda::Function")
    with_pyav = [fid for fid, f in functions.items() if {"Ref": pyav[0]} in f["Properties"].get("Layers", [])]
    video_id, video = ingest_function()
    assert with_pyav == [video_id]
    # The shared dependency layer stays on the function too, and both suit its runtime.
    assert len(video["Properties"]["Layers"]) == 2
    assert layers[pyav[0]]["Properties"]["CompatibleRuntimes"] == [video["Properties"]["Runtime"]]


# ---------------------------------------------------------------------------------------------
# Schedules and the asynchronous failure path
# ---------------------------------------------------------------------------------------------


def test_each_camera_has_its_own_schedule_whose_input_the_handler_accepts():
    video_id, _ = ingest_function()
    rules = template("dev").find_resources("AWS::Events::Rule")
    inputs = {}
    for rule in rules.values():
        assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
        [target] = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [video_id, "Arn"]}
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 2}
        assert "DeadLetterConfig" in target
        event = json.loads(target["Input"])
        inputs[event["camera_id"]] = requested_cameras(event)
    assert inputs == {"cam-hls": ["cam-hls"], "cam-kvs": ["cam-kvs"]}


def test_failed_invocations_go_to_an_encrypted_retained_queue_without_retries():
    queue_id, queue = next(
        iter(
            template("dev")
            .find_resources("AWS::SQS::Queue", {"Properties": {"QueueName": "mlp-dev-video-ingest-dlq"}})
            .items()
        )
    )
    template("dev").has_resource_properties(
        "AWS::SQS::Queue", {"QueueName": "mlp-dev-video-ingest-dlq", "KmsMasterKeyId": LAKE_KEY}
    )
    assert queue["DeletionPolicy"] == "Retain"
    template("dev").has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "MaximumRetryAttempts": 0,
            "MaximumEventAgeInSeconds": 60,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}},
        },
    )
    send = [s for s in statements() if "sqs:SendMessage" in actions_of(s)]
    assert send == [{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": {"Fn::GetAtt": [queue_id, "Arn"]}}]


# ---------------------------------------------------------------------------------------------
# Permissions: exact actions only
# ---------------------------------------------------------------------------------------------


def test_the_function_writes_video_prefixes_and_the_metadata_stream_with_exact_actions():
    by_action: dict[str, str] = {}
    for statement in statements():
        for action in actions_of(statement):
            by_action[action] = json.dumps(statement["Resource"])
    assert not [a for a in by_action if "*" in a]
    for prefix in ("/video/*", "/video-frames/*", "/video-quarantine/*"):
        assert prefix in by_action["s3:PutObject"]
    assert "/video/*" in by_action["s3:GetObject"] and "/video-frames/*" not in by_action["s3:GetObject"]
    # ListBucket on the bucket itself: a missing key must answer 404, not 403 (step recovery).
    assert by_action["s3:ListBucket"].endswith('"-", {"Ref": "AWS::Region"}]]}')
    assert by_action["kinesis:PutRecord"] == '"arn:aws:kinesis:eu-west-1:123456789012:stream/mlp-dev-video-metadata"'
    assert "WatermarkTable" in by_action["dynamodb:UpdateItem"]
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= set(by_action)


# ---------------------------------------------------------------------------------------------
# State: the watermark table
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_the_watermark_table_is_keyed_by_camera_encrypted_recoverable_and_retained(env_name):
    _, table = only(env_name, "AWS::DynamoDB::Table")
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    template(env_name).has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": f"mlp-{env_name}-video-watermarks",
            "KeySchema": [{"AttributeName": "camera_id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "camera_id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": LAKE_KEY},
            "DeletionProtectionEnabled": True,
        },
    )


def test_prod_keeps_the_stack_from_being_deleted():
    assert video_stack("prod").termination_protection is True
    assert video_stack("dev").termination_protection is False


# ---------------------------------------------------------------------------------------------
# video-metadata into the lake
# ---------------------------------------------------------------------------------------------


def test_firehose_converts_the_metadata_stream_to_parquet_by_arrival_hour_without_a_transform():
    _, delivery = only("dev", "AWS::KinesisFirehose::DeliveryStream")
    props = delivery["Properties"]
    assert props["DeliveryStreamName"] == "mlp-dev-video-metadata-to-lake"
    assert props["KinesisStreamSourceConfiguration"]["KinesisStreamARN"].endswith(":stream/mlp-dev-video-metadata")
    destination = props["ExtendedS3DestinationConfiguration"]
    assert "ProcessingConfiguration" not in destination
    assert "DynamicPartitioningConfiguration" not in destination
    assert destination["Prefix"] == (
        "video-metadata/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
    )
    assert destination["ErrorOutputPrefix"].startswith("errors/video-metadata/!{firehose:error-output-type}/")
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["InputFormatConfiguration"]["Deserializer"] == {
        "HiveJsonSerDe": {"TimestampFormats": ["yyyy-MM-dd'T'HH:mm:ss.SSSZZ"]}
    }
    assert conversion["SchemaConfiguration"]["TableName"] == "video_metadata_raw"
    assert destination["S3BackupConfiguration"]["Prefix"].startswith("source-backup/video-metadata/")


def test_the_glue_table_has_the_columns_of_all_three_events_and_projected_hours():
    table_id, table = only("dev", "AWS::Glue::Table")
    table_input = table["Properties"]["TableInput"]
    columns = table_input["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        (c["name"], c["type"]) for c in glue_columns(VIDEO_METADATA_TABLE)
    ]
    assert {"media_sequence", "from_sequence", "to_sequence", "reason", "width"} <= {c["Name"] for c in columns}
    assert [p["Name"] for p in table_input["PartitionKeys"]] == ["year", "month", "day", "hour"]
    assert table_input["Parameters"]["projection.enabled"] == "true"
    _, delivery = only("dev", "AWS::KinesisFirehose::DeliveryStream")
    assert table_id in delivery["DependsOn"]


# ---------------------------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------------------------


def test_each_camera_alarms_when_unreachable_failing_or_silent_to_the_platform_topic():
    topic = "arn:aws:sns:eu-west-1:123456789012:mlp-dev-alarms"
    for camera in ("cam-hls", "cam-kvs"):
        dimension = [{"Name": "camera_id", "Value": camera}]
        for metric, statistic, operator, missing in (
            ("CameraUnreachable", "Minimum", "GreaterThanOrEqualToThreshold", "notBreaching"),
            ("IngestErrors", "Maximum", "GreaterThanOrEqualToThreshold", "notBreaching"),
            ("IngestErrors", "SampleCount", "LessThanThreshold", "breaching"),
        ):
            template("dev").has_resource_properties(
                "AWS::CloudWatch::Alarm",
                {
                    "Namespace": "MLPlatform/Video",
                    "MetricName": metric,
                    "Dimensions": dimension,
                    "Statistic": statistic,
                    "ComparisonOperator": operator,
                    "Threshold": 1,
                    "Period": 300,
                    "TreatMissingData": missing,
                    "AlarmActions": [topic],
                    "OKActions": [topic],
                },
            )


def test_both_failure_queues_alarm_on_their_first_message():
    queues = template("dev").find_resources("AWS::SQS::Queue")
    for queue_id in queues:
        template("dev").has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
            },
        )
    assert len(queues) == 2


# ---------------------------------------------------------------------------------------------
# Scanners
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_no_nag_finding_remains(env_name):
    assert nag_findings(video_stack(env_name)) == []


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_cfn_lint_reports_nothing(env_name):
    assert cfn_lint_findings(video_stack(env_name)) == []
