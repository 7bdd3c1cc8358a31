"""The feature stack, synthesised once per environment for the whole test session (each synth costs
10-30 s of CPU), and helpers to read its template."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from stacks.feature_stack import FeatureStack
from tests.infra.harness import build_stack

ENVIRONMENTS = ("dev", "prod")


@cache
def feature_stack(env_name: str) -> Stack:
    return build_stack(lambda app, config, env: FeatureStack(app, "Features", config=config, env=env), env_name)


@cache
def feature_template(env_name: str) -> Template:
    return Template.from_stack(feature_stack(env_name))


@pytest.fixture(scope="module")
def dev() -> Template:
    return feature_template("dev")


@pytest.fixture(scope="module")
def prod() -> Template:
    return feature_template("prod")


def flatten(value: Any) -> Any:
    """A CloudFormation value with its intrinsics written as ``<Ref>`` / ``<Resource.Attribute>``,
    so that joined strings (ARNs, a state machine definition) can be read as plain text."""
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


def resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in template.find_resources(resource_type).items()}


def one(template: Template, resource_type: str, props: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The one resource of a type (matching ``props``): its logical id and its definition."""
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, f"{len(found)} {resource_type}"
    ((logical_id, resource),) = found.items()
    return logical_id, dict(resource)


def policy_statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to a role, with resources flattened to text."""
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = policy["Properties"].get("Roles", [])
        if {"Ref": role_logical_id} in roles:
            for raw in policy["Properties"]["PolicyDocument"]["Statement"]:
                statement = flatten(raw)
                for key in ("Action", "Resource"):
                    if isinstance(statement.get(key), str):
                        statement[key] = [statement[key]]
                statements.append(statement)
    return statements


def grants(template: Template, role_logical_id: str) -> set[tuple[str, str]]:
    """(action, resource) pairs the role is allowed, for exact comparisons."""
    return {
        (action, resource)
        for statement in policy_statements(template, role_logical_id)
        if statement["Effect"] == "Allow"
        for action in statement["Action"]
        for resource in statement["Resource"]
    }


def state_machine_definition(template: Template) -> dict[str, Any]:
    """The state machine's definition as a parsed document (intrinsics flattened inside strings)."""
    _, machine = one(template, "AWS::StepFunctions::StateMachine")
    text = flatten(machine["Properties"]["DefinitionString"])
    assert isinstance(text, str)
    document: dict[str, Any] = json.loads(text)
    return document


def lake_key_ref(template: Template, env_name: str = "dev") -> str:
    """How the flattened template writes the lake key's ARN: a reference to the SSM parameter
    through which the stack finds it (``Names.lake_key_arn_parameter``)."""
    parameter = f"/mlp-{env_name}/lake/key-arn"
    (logical_id,) = [k for k, p in template.to_json()["Parameters"].items() if p.get("Default") == parameter]
    return f"<{logical_id}>"
