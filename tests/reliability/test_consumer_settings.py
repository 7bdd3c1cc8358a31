"""Every stream consumer of the synthesised platform has the safe settings: bisect on error, finite
retries, a finite maximum record age, partial batch responses and an on-failure destination."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from platform_core.config import load_config
from platform_core.names import Names
from reliability.templates import EventSourceMapping, Templates, consumer_problems, stream_event_source_mappings
from tests.infra.conftest import platform_for

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]


def templates(env_name: str) -> Templates:
    return {s.stack_name: Template.from_stack(s).to_json() for s in platform_for(env_name).stacks}


@pytest.fixture(scope="module", params=["dev", "prod"])
def environment(request: pytest.FixtureRequest) -> tuple[str, Templates]:
    return request.param, templates(request.param)


def test_every_stream_consumer_has_the_safe_settings(environment: tuple[str, Templates]) -> None:
    env_name, env_templates = environment
    mappings = stream_event_source_mappings(env_templates)
    # The CDC processor and the online features consumer at least: a check over nothing proves nothing.
    names = Names(load_config(env_name))
    sources = {_stream_name(m) for m in mappings}
    assert {names.cdc_stream, names.clickstream_stream} <= sources
    assert [p for m in mappings for p in consumer_problems(m)] == []


def _stream_name(mapping: EventSourceMapping) -> str:
    # The stream read, directly or through an enhanced fan-out consumer (prod's online features).
    arn = mapping.source_stream
    return arn.rsplit("/", 1)[-1] if isinstance(arn, str) else str(arn)


# The check itself, on templates made up to break each rule (so that it can fail).

SAFE: dict[str, Any] = {
    "EventSourceArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/s",
    "StartingPosition": "TRIM_HORIZON",
    "BisectBatchOnFunctionError": True,
    "MaximumRetryAttempts": 5,
    "MaximumRecordAgeInSeconds": 21600,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:eu-west-1:123456789012:dlq"}},
}


def _template(**properties: Any) -> Templates:
    merged = {k: v for k, v in {**SAFE, **properties}.items() if v is not None}
    return {"Stack": {"Resources": {"Esm": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": merged}}}}


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"BisectBatchOnFunctionError": None}, "BisectBatchOnFunctionError"),
        ({"MaximumRetryAttempts": -1}, "MaximumRetryAttempts"),
        ({"MaximumRetryAttempts": None}, "MaximumRetryAttempts"),
        ({"MaximumRecordAgeInSeconds": -1}, "MaximumRecordAgeInSeconds"),
        ({"FunctionResponseTypes": None}, "FunctionResponseTypes"),
        ({"DestinationConfig": {}}, "OnFailure"),
    ],
)
def test_the_check_names_each_missing_setting(override: dict[str, Any], complaint: str) -> None:
    (mapping,) = stream_event_source_mappings(_template(**override))
    problems = consumer_problems(mapping)
    assert len(problems) == 1 and complaint in problems[0]


def test_the_check_recognises_stream_sources_and_leaves_queues_alone() -> None:
    dynamodb_stream = {"Fn::GetAtt": ["Table", "StreamArn"]}
    template = _template(EventSourceArn=dynamodb_stream)
    template["Stack"]["Resources"]["Table"] = {"Type": "AWS::DynamoDB::Table", "Properties": {}}
    assert len(stream_event_source_mappings(template)) == 1
    sqs = _template(EventSourceArn="arn:aws:sqs:eu-west-1:123456789012:q", StartingPosition=None)
    assert stream_event_source_mappings(sqs) == []
    imported = _template(EventSourceArn={"Fn::ImportValue": "stream-arn"})
    assert len(stream_event_source_mappings(imported)) == 1


# Enhanced fan-out: the mapping names a stream consumer instead of the stream.

STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks"
CONSUMER = {"Type": "AWS::Kinesis::StreamConsumer", "Properties": {"ConsumerName": "c", "StreamARN": STREAM_ARN}}


def _fan_out_template(reference: dict[str, Any], **properties: Any) -> Templates:
    template = _template(EventSourceArn=reference, **properties)
    template["Stack"]["Resources"]["Consumer"] = CONSUMER
    return template


@pytest.mark.parametrize(
    "reference", [{"Fn::GetAtt": ["Consumer", "ConsumerARN"]}, {"Ref": "Consumer"}], ids=["GetAtt", "Ref"]
)
def test_a_mapping_on_a_stream_consumer_is_checked_and_traced_to_its_stream(reference: dict[str, Any]) -> None:
    # Given a mapping that reads through a fan-out consumer of the stream, with every safe setting
    (mapping,) = stream_event_source_mappings(_fan_out_template(reference))
    # Then it counts as a stream consumer, reads that stream, and passes
    assert mapping.source_stream == STREAM_ARN
    assert consumer_problems(mapping) == []


def test_a_consumer_arn_from_outside_the_template_is_traced_to_its_stream() -> None:
    imported = _template(EventSourceArn=f"{STREAM_ARN}/consumer/c:1700000000")
    (mapping,) = stream_event_source_mappings(imported)
    assert mapping.source_stream == STREAM_ARN


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"BisectBatchOnFunctionError": None}, "BisectBatchOnFunctionError"),
        ({"MaximumRecordAgeInSeconds": None}, "MaximumRecordAgeInSeconds"),
        ({"DestinationConfig": {}}, "OnFailure"),
    ],
)
def test_a_mapping_on_a_stream_consumer_still_fails_without_a_safe_setting(
    override: dict[str, Any], complaint: str
) -> None:
    (mapping,) = stream_event_source_mappings(
        _fan_out_template({"Fn::GetAtt": ["Consumer", "ConsumerARN"]}, **override)
    )
    problems = consumer_problems(mapping)
    assert len(problems) == 1 and complaint in problems[0]
