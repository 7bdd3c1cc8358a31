"""Data safety over the synthesised ``prod`` templates: every stateful resource is retained on
stack deletion and on replacement, its logical id is pinned (a change replaces the resource, so it
must be deliberate), and no template empties buckets on deletion."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from reliability.stateful_ids import REGENERATE, checked_in
from reliability.templates import (
    Templates,
    forbidden_resources,
    ids_diff,
    resources,
    retention_problem,
    retention_problems,
    stateful_ids,
)
from tests.infra.conftest import platform_for

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]


def prod_templates() -> Templates:
    return {s.stack_name: Template.from_stack(s).to_json() for s in platform_for("prod").stacks}


@pytest.fixture(scope="module")
def prod() -> Templates:
    return prod_templates()


def test_stateful_logical_ids_match_the_checked_in_list(prod: Templates) -> None:
    expected, actual = checked_in(), stateful_ids(prod)
    diff = ids_diff(expected, actual)
    assert diff == [], (
        "Stateful resources changed logical id, appeared or disappeared. A changed id REPLACES the "
        "resource (a new empty bucket/table/stream). If that is intended, regenerate the list:\n"
        f"    {REGENERATE}\n" + "\n".join(diff)
    )


def _cases() -> list[object]:
    return [pytest.param(stack, lid, id=f"{stack}/{lid}") for stack, ids in checked_in().items() for lid in ids]


@pytest.mark.parametrize(("stack", "logical_id"), _cases())
def test_stateful_resource_is_retained(prod: Templates, stack: str, logical_id: str) -> None:
    resource = resources(prod[stack]).get(logical_id)
    assert resource is not None, (
        f"{stack}/{logical_id} is gone: see test_stateful_logical_ids_match_the_checked_in_list"
    )
    assert retention_problem(resource) is None, retention_problem(resource)


def test_every_stateful_resource_is_retained(prod: Templates) -> None:
    # Also catches a stateful resource that is not in the checked-in list yet.
    assert retention_problems(prod) == []


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_no_stack_deletes_bucket_contents(env_name: str) -> None:
    templates = {s.stack_name: Template.from_stack(s).to_json() for s in platform_for(env_name).stacks}
    assert forbidden_resources(templates) == []


# The checks themselves, on made-up templates (so that they can fail).


def test_the_retention_check_names_what_is_missing() -> None:
    template = {
        "Resources": {
            "Kept": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"},
            "Snapshot": {
                "Type": "AWS::RDS::DBCluster",
                "DeletionPolicy": "Snapshot",
                "UpdateReplacePolicy": "Snapshot",
            },
            "Default": {"Type": "AWS::SQS::Queue"},
            "Stateless": {"Type": "AWS::Lambda::Function"},
        }
    }
    assert retention_problems({"S": template}) == [
        "S/Default (AWS::SQS::Queue): DeletionPolicy=Delete (default), UpdateReplacePolicy=Delete (default)",
        "S/Snapshot (AWS::RDS::DBCluster): DeletionPolicy=Snapshot, UpdateReplacePolicy=Snapshot",
    ]
    assert stateful_ids({"S": template}) == {"S": ["Default", "Kept", "Snapshot"]}
    assert ids_diff({"S": ["Kept", "Old"]}, {"S": ["Kept", "New"]}) == ["- S/Old", "+ S/New"]
    auto_delete = {"Resources": {"X": {"Type": "Custom::S3AutoDeleteObjects"}}}
    assert forbidden_resources({"S": auto_delete}) == ["S/X (Custom::S3AutoDeleteObjects)"]
