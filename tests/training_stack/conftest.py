"""The training pipeline's definition and stack, each built once per test session (the SageMaker SDK
import and a CDK synth each cost 10-30 s on this machine), and helpers to read them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from aws_cdk import Stack
from aws_cdk.assertions import Template

from platform_core.config import load_config
from stacks.training_stack import TrainingStack
from tests.infra.harness import build_stack

ENVIRONMENTS = ("dev", "prod")
REGION = "eu-west-1"
ROLE = "arn:aws:iam::000000000000:role/role-placeholder"
ARTIFACTS = "artifacts-placeholder"
CURATED = "curated-placeholder"
CODE = "s3://code-placeholder/bundle.tar.gz"
KEY = "arn:aws:kms:eu-west-1:000000000000:key/key-placeholder"


def definition_kwargs(env_name: str = "dev") -> dict[str, Any]:
    return {
        "region": REGION,
        "role_arn_placeholder": ROLE,
        "bucket_placeholder": ARTIFACTS,
        "curated_bucket_placeholder": CURATED,
        "scripts_s3_prefix_placeholder": CODE,
        "kms_key_placeholder": KEY,
        "config": load_config(env_name).training,
        "pipeline_name": f"mlp-{env_name}-training",
        "model_package_group": f"mlp-{env_name}-churn",
        "label_horizon_days": 30,
    }


@cache
def definition_text(env_name: str = "dev") -> str:
    from pipelines.definition import build_definition

    return build_definition(**definition_kwargs(env_name))


def definition(env_name: str = "dev") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(definition_text(env_name))
    return document


@cache
def baseline_definition_text() -> str:
    """Prod's definition with Model Monitor's data-quality baseline steps (Model Monitor on)."""
    from pipelines.definition import build_definition

    return build_definition(**definition_kwargs("prod"), monitoring_baseline=True)


def steps(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step by name, the condition's branches included."""
    found: dict[str, dict[str, Any]] = {}
    pending = list(document["Steps"])
    while pending:
        step = pending.pop()
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            pending += step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]
    return found


def references(value: Any) -> set[str]:
    """Every ``{"Get": ...}`` path inside a value (parameters, step properties, execution variables)."""
    if isinstance(value, dict):
        found = {value["Get"]} if isinstance(value.get("Get"), str) else set()
        for item in value.values():
            found |= references(item)
        return found
    if isinstance(value, list):
        return set().union(*(references(item) for item in value)) if value else set()
    return set()


@contextmanager
def network_forbidden() -> Iterator[list[str]]:
    """Every attempt to resolve or connect is recorded (and fails), also from background threads."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network access is forbidden while building the pipeline definition")

    patched = {
        (socket, "getaddrinfo"): refuse,
        (socket, "create_connection"): refuse,
        (socket.socket, "connect"): refuse,
        (socket.socket, "connect_ex"): refuse,
    }
    saved = {target: getattr(*target) for target in patched}
    for (owner, name), replacement in patched.items():
        setattr(owner, name, replacement)
    try:
        yield attempts
    finally:
        for (owner, name), original in saved.items():
            setattr(owner, name, original)


def training_factory(app: Any, config: Any, env: Any) -> Stack:
    return TrainingStack(app, "Training", config=config, env=env)


@cache
def training_stack(env_name: str) -> Stack:
    return build_stack(training_factory, env_name)


@cache
def training_template(env_name: str) -> Template:
    return Template.from_stack(training_stack(env_name))


def flatten(value: Any) -> Any:
    """A CloudFormation value with intrinsics written as ``<Ref>`` / ``<Resource.Attribute>``."""
    if isinstance(value, list):
        return [flatten(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(str(flatten(p)) for p in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return {k: flatten(v) for k, v in value.items()}


def one(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"{len(found)} {resource_type}"
    ((logical_id, resource),) = found.items()
    return logical_id, dict(resource)


def grants(template: Template) -> dict[str, set[str]]:
    """Action -> flattened resources the pipeline role is allowed (with its conditions in the key)."""
    role_id, _ = one(template, "AWS::IAM::Role")
    allowed: dict[str, set[str]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                allowed.setdefault(action, set()).update(str(flatten(r)) for r in resources)
    return allowed


def deployed_definition(template: Template) -> dict[str, Any]:
    """The pipeline definition as CloudFormation will pass it, references flattened to text."""
    _, pipeline = one(template, "AWS::SageMaker::Pipeline")
    body = flatten(pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
    assert isinstance(body, str)
    document: dict[str, Any] = json.loads(body)
    return document
