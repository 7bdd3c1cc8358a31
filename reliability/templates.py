"""Checks over synthesised CloudFormation templates: stream consumer settings and data safety.

Templates are plain dicts (``Template.from_stack(stack).to_json()`` or a ``cdk.out`` file), keyed
by stack name, so the checks run on whatever produced them. Every check returns a list of
problems, one readable line each (empty when all is well).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Templates = Mapping[str, Mapping[str, Any]]
"""Stack name -> template."""

# Resources that hold data, or the keys and schemas without which the data cannot be read. Their
# loss is not repaired by a redeploy, so each must survive deletion of its stack and replacement.
STATEFUL_TYPES: frozenset[str] = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::Kinesis::Stream",
        "AWS::KinesisVideo::Stream",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::RDS::DBCluster",
        "AWS::RDS::DBInstance",
        "AWS::OpenSearchService::Domain",
        "AWS::Elasticsearch::Domain",
        "AWS::SageMaker::FeatureGroup",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::KMS::Key",
        "AWS::Glue::Registry",
        "AWS::Glue::Schema",
        "AWS::Glue::Database",
        "AWS::SecretsManager::Secret",
        # Every queue of the platform holds data: dead-letter queues, rejects, undelivered events.
        "AWS::SQS::Queue",
    }
)
RETAIN = "Retain"
FORBIDDEN_TYPES: frozenset[str] = frozenset({"Custom::S3AutoDeleteObjects"})

# A mapping reads a stream directly, or a Kinesis stream through an enhanced fan-out consumer
# (``AWS::Kinesis::StreamConsumer``, whose ARN the mapping names instead of the stream's).
STREAM_SOURCE_TYPES: frozenset[str] = frozenset(
    {"AWS::Kinesis::Stream", "AWS::Kinesis::StreamConsumer", "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"}
)
STREAM_CONSUMER_TYPE = "AWS::Kinesis::StreamConsumer"
_STREAM_ARN_MARKERS = (":kinesis:", ":dynamodb:")
_OTHER_SOURCE_MARKERS = (":sqs:", ":kafka:", ":mq:", ":docdb:", ":rds:")
_CONSUMER_ARN_MARKER = "/consumer/"


def resources(template: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    return template.get("Resources", {}) or {}


# ---------------------------------------------------------------------------------------------
# Stateful resources
# ---------------------------------------------------------------------------------------------


def stateful_resources(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id -> type of every stateful resource of a template."""
    return {lid: r["Type"] for lid, r in resources(template).items() if r.get("Type") in STATEFUL_TYPES}


def stateful_ids(templates: Templates) -> dict[str, list[str]]:
    """Stack name -> sorted logical ids of its stateful resources (stacks without any left out)."""
    found = {stack: sorted(stateful_resources(t)) for stack, t in templates.items()}
    return {stack: ids for stack, ids in sorted(found.items()) if ids}


def retention_problem(resource: Mapping[str, Any]) -> str | None:
    """Why a resource is not retained on stack deletion and on replacement (None when it is)."""
    deletion, replace = resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")
    if deletion == RETAIN and replace == RETAIN:
        return None
    return f"DeletionPolicy={deletion or 'Delete (default)'}, UpdateReplacePolicy={replace or 'Delete (default)'}"


def retention_problems(templates: Templates) -> list[str]:
    problems = []
    for stack, template in sorted(templates.items()):
        for lid, kind in sorted(stateful_resources(template).items()):
            problem = retention_problem(resources(template)[lid])
            if problem is not None:
                problems.append(f"{stack}/{lid} ({kind}): {problem}")
    return problems


def forbidden_resources(templates: Templates, forbidden: frozenset[str] = FORBIDDEN_TYPES) -> list[str]:
    """Resources whose type must not appear (e.g. the custom resource that empties buckets)."""
    return [
        f"{stack}/{lid} ({r['Type']})"
        for stack, template in sorted(templates.items())
        for lid, r in sorted(resources(template).items())
        if r.get("Type") in forbidden
    ]


def ids_diff(expected: Mapping[str, list[str]], actual: Mapping[str, list[str]]) -> list[str]:
    """Per stack, the stateful logical ids that appeared (+) or disappeared (-)."""
    lines = []
    for stack in sorted(set(expected) | set(actual)):
        before, after = set(expected.get(stack, [])), set(actual.get(stack, []))
        lines += [f"- {stack}/{lid}" for lid in sorted(before - after)]
        lines += [f"+ {stack}/{lid}" for lid in sorted(after - before)]
    return lines


# ---------------------------------------------------------------------------------------------
# Stream consumers (Lambda event source mappings on Kinesis and DynamoDB streams)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSourceMapping:
    stack: str
    logical_id: str
    properties: Mapping[str, Any]
    # The stream read: ``EventSourceArn``, or for a fan-out consumer the consumer's ``StreamARN``.
    source_stream: Any = None

    @property
    def name(self) -> str:
        return f"{self.stack}/{self.logical_id}"


def stream_event_source_mappings(templates: Templates) -> list[EventSourceMapping]:
    """Event source mappings whose source is a Kinesis stream or a DynamoDB stream."""
    return [
        EventSourceMapping(stack, lid, r.get("Properties", {}), _source_stream(r.get("Properties", {}), template))
        for stack, template in sorted(templates.items())
        for lid, r in sorted(resources(template).items())
        if r.get("Type") == "AWS::Lambda::EventSourceMapping" and _is_stream_source(r.get("Properties", {}), template)
    ]


def _referenced_resource(value: Any, template: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The resource of the template a ``Fn::GetAtt`` or a ``Ref`` points at (None otherwise)."""
    if not isinstance(value, Mapping):
        return None
    if "Fn::GetAtt" in value:
        return resources(template).get(str(value["Fn::GetAtt"][0]))
    if "Ref" in value:
        return resources(template).get(str(value["Ref"]))
    return None


def _source_stream(properties: Mapping[str, Any], template: Mapping[str, Any]) -> Any:
    source = properties.get("EventSourceArn")
    target = _referenced_resource(source, template)
    if target is not None and target.get("Type") == STREAM_CONSUMER_TYPE:
        return (target.get("Properties") or {}).get("StreamARN")
    if isinstance(source, str) and _CONSUMER_ARN_MARKER in source:
        # arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<created>
        return source.split(_CONSUMER_ARN_MARKER, 1)[0]
    return source


def _is_stream_source(properties: Mapping[str, Any], template: Mapping[str, Any]) -> bool:
    source = properties.get("EventSourceArn")
    texts = " ".join(_strings(source))
    if any(marker in texts for marker in _STREAM_ARN_MARKERS):
        return True
    if any(marker in texts for marker in _OTHER_SOURCE_MARKERS):
        return False
    target = _referenced_resource(source, template)
    if target is not None:
        return target.get("Type") in STREAM_SOURCE_TYPES
    # An ARN from a parameter or an import: only stream (and Kafka) sources take a starting position.
    kafka = "SelfManagedEventSource" in properties or "AmazonManagedKafkaEventSourceConfig" in properties
    return "StartingPosition" in properties and not kafka


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def consumer_problems(mapping: EventSourceMapping) -> list[str]:
    """What a stream consumer lacks of the safe settings (bisect, finite retries and age,
    partial batch responses, an on-failure destination)."""
    p = mapping.properties
    problems = []
    if p.get("BisectBatchOnFunctionError") is not True:
        problems.append("BisectBatchOnFunctionError is not true")
    retries = p.get("MaximumRetryAttempts")
    if not _finite(retries, 0, 10_000):
        problems.append(f"MaximumRetryAttempts must be 0..10000 (absent or -1 is infinite), got {retries!r}")
    age = p.get("MaximumRecordAgeInSeconds")
    if not _finite(age, 60, 604_800):
        problems.append(f"MaximumRecordAgeInSeconds must be 60..604800 (absent or -1 is infinite), got {age!r}")
    if p.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
        problems.append(
            f"FunctionResponseTypes must be ['ReportBatchItemFailures'], got {p.get('FunctionResponseTypes')!r}"
        )
    destination = (p.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
    if not destination:
        problems.append("DestinationConfig.OnFailure.Destination is missing")
    return [f"{mapping.name}: {problem}" for problem in problems]


def _finite(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
