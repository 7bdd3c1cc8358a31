"""KinesisConsumer on its own: polling the stream, or reading through an enhanced fan-out consumer,
with the same safe settings either way (checked with the platform's own template check)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from aws_cdk import App, Environment, RemovalPolicy, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from platform_core.config import ConsumerConfig
from reliability.templates import consumer_problems, stream_event_source_mappings
from stacks.constructs.kinesis_consumer import FAN_OUT_CONSUMER_ACTIONS, FAN_OUT_STREAM_ACTIONS, KinesisConsumer
from tests.feature_stack.conftest import flatten, grants, one, resources

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]

STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks"
SETTINGS = ConsumerConfig(batch_size=250, retry_attempts=3, max_record_age_seconds=3600, parallelization_factor=3)


@cache
def consumer_template(
    enhanced_fan_out: bool, consumer_name: str | None = "clicks-reader", settings: ConsumerConfig = SETTINGS
) -> Template:
    """A stack holding one function consuming an imported, KMS-encrypted stream."""
    stack = Stack(App(), "Consumer", env=Environment(account="123456789012", region="eu-west-1"))
    key = kms.Key.from_key_arn(
        stack, "Key", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    stream = kinesis.Stream.from_stream_attributes(stack, "Stream", stream_arn=STREAM_ARN, encryption_key=key)
    function = lambda_.Function(
        stack,
        "Function",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"),
    )
    KinesisConsumer(
        stack,
        "Consumer",
        stream=stream,
        function=function,
        settings=settings,
        key=key,
        removal_policy=RemovalPolicy.RETAIN,
        dead_letter_queue_name="clicks-reader-dlq",
        enhanced_fan_out=enhanced_fan_out,
        consumer_name=consumer_name,
    )
    return Template.from_stack(stack)


def _mapping(template: Template) -> dict[str, Any]:
    return dict(flatten(one(template, "AWS::Lambda::EventSourceMapping")[1]["Properties"]))


def _role_id(template: Template) -> str:
    _, function = one(template, "AWS::Lambda::Function")
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


@pytest.mark.parametrize("enhanced_fan_out", [False, True], ids=["polling", "fan-out"])
def test_both_kinds_keep_every_safe_setting(enhanced_fan_out: bool) -> None:
    # Given a consumer of either kind
    template = consumer_template(enhanced_fan_out)
    mapping = _mapping(template)
    # Then its mapping has the safe settings, sized by the ConsumerConfig, and a DLQ named for the alarms
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["MaximumRetryAttempts"] == SETTINGS.retry_attempts
    assert mapping["MaximumRecordAgeInSeconds"] == SETTINGS.max_record_age_seconds
    assert mapping["ParallelizationFactor"] == SETTINGS.parallelization_factor
    assert mapping["BatchSize"] == SETTINGS.batch_size
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    dlq_id, _ = one(template, "AWS::SQS::Queue", {"QueueName": "clicks-reader-dlq"})
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": f"<{dlq_id}.Arn>"}}
    # And the platform's template check finds it, traces it to the stream, and has nothing to say
    (found,) = stream_event_source_mappings({"Consumer": template.to_json()})
    assert found.source_stream == STREAM_ARN
    assert consumer_problems(found) == []
    # And it alarms on falling behind and on dead letters
    assert len(resources(template, "AWS::CloudWatch::Alarm")) == 2


def test_polling_reads_the_stream_and_registers_no_consumer() -> None:
    template = consumer_template(False)
    assert _mapping(template)["EventSourceArn"] == STREAM_ARN
    assert resources(template, "AWS::Kinesis::StreamConsumer") == {}


def test_fan_out_maps_the_function_to_its_own_consumer_of_the_stream() -> None:
    # Given a fan-out consumer
    template = consumer_template(True)
    consumer_id, consumer = one(template, "AWS::Kinesis::StreamConsumer")
    # Then the consumer is registered on the stream under the given name, and the mapping names it
    assert consumer["Properties"] == {"ConsumerName": "clicks-reader", "StreamARN": STREAM_ARN}
    assert _mapping(template)["EventSourceArn"] == f"<{consumer_id}.ConsumerARN>"


def test_fan_out_grants_exact_actions_on_the_stream_and_the_consumer() -> None:
    # Given the function's role of a fan-out consumer
    template = consumer_template(True)
    consumer_id, _ = one(template, "AWS::Kinesis::StreamConsumer")
    allowed = grants(template, _role_id(template))
    # Then it subscribes through the consumer, describes and lists the stream, and decrypts its records
    kinesis_grants = {(a, r) for a, r in allowed if a.startswith("kinesis:")}
    assert kinesis_grants == {(a, STREAM_ARN) for a in FAN_OUT_STREAM_ACTIONS} | {
        (a, f"<{consumer_id}.ConsumerARN>") for a in FAN_OUT_CONSUMER_ACTIONS
    }
    assert ("kinesis:SubscribeToShard", f"<{consumer_id}.ConsumerARN>") in kinesis_grants
    assert not [a for a, _ in allowed if "*" in a and a.startswith("kinesis:")]
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert ("kms:Decrypt", key) in allowed
    # And the mapping is created only once the role's policy holds those grants
    (policy_id,) = resources(template, "AWS::IAM::Policy")
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
    assert policy_id in mapping["DependsOn"]


def test_fan_out_without_a_name_gets_a_unique_one_within_kinesis_limits() -> None:
    _, consumer = one(consumer_template(True, consumer_name=None), "AWS::Kinesis::StreamConsumer")
    name = consumer["Properties"]["ConsumerName"]
    assert name.startswith("Consumer-") and len(name) <= 128
