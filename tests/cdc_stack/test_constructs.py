"""The reusable constructs of the CDC stack, each in a small stack of its own."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from platform_core.config import GlueConfig, load_config
from platform_core.schema import Field, Primitive, Schema
from stacks.constructs.glue_job import GlueJob
from stacks.constructs.schema_registry import SchemaRegistry, schema_versions
from stacks.constructs.subscriptions_database import migration_properties
from tests.infra.harness import ACCOUNT, CDK_CONTEXT, REGION, nag_findings

pytestmark = pytest.mark.xdist_group("cdk")

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENT = Schema(
    name="Event",
    namespace="test",
    fields=(Field("id", Primitive.STRING, required=True), Field("note", Primitive.STRING)),
)


def _stack() -> Stack:
    app = App(context=CDK_CONTEXT)
    return Stack(app, "Under", env=Environment(account=ACCOUNT, region=REGION))


def _write_versions(root: Path, *numbers: int) -> Path:
    folder = root / EVENT.name
    folder.mkdir(parents=True)
    for number in numbers:
        fields: list[dict[str, Any]] = [{"name": "id", "type": "string"}]
        if number > 1:
            fields.append({"name": f"added_in_v{number}", "type": ["null", "string"], "default": None})
        (folder / f"v{number}.avsc").write_text(
            json.dumps({"type": "record", "name": EVENT.name, "namespace": "test", "fields": fields}, indent=2)
        )
    return root


def test_later_schema_files_become_registry_versions_in_file_order(tmp_path: Path) -> None:
    # Given three checked-in versions of one schema
    registry_dir = _write_versions(tmp_path, 1, 2, 3)
    stack = _stack()

    # When the registry is built from them
    SchemaRegistry(
        stack,
        "Registry",
        registry_name="test-registry",
        schemas=[EVENT],
        registry_dir=registry_dir,
        removal_policy=RemovalPolicy.RETAIN,
        description="test",
    )
    template = Template.from_stack(stack)

    # Then v1 creates the schema, v2 and v3 are versions registered one after the other
    schema = next(iter(template.find_resources("AWS::Glue::Schema").values()))
    assert json.loads(schema["Properties"]["SchemaDefinition"])["fields"] == [{"name": "id", "type": "string"}]
    assert schema["Properties"]["Compatibility"] == "BACKWARD"
    versions = template.find_resources("AWS::Glue::SchemaVersion")
    by_field = {
        json.loads(v["Properties"]["SchemaDefinition"])["fields"][-1]["name"]: (k, v) for k, v in versions.items()
    }
    assert sorted(by_field) == ["added_in_v2", "added_in_v3"]
    v2_id, v2 = by_field["added_in_v2"]
    _, v3 = by_field["added_in_v3"]
    assert v3["DependsOn"] == [v2_id]
    schema_id = next(iter(template.find_resources("AWS::Glue::Schema")))
    assert v2["Properties"]["Schema"] == {"SchemaArn": {"Fn::GetAtt": [schema_id, "Arn"]}}
    assert "DependsOn" not in v2
    assert {v["DeletionPolicy"] for v in versions.values()} == {"Retain"}


def test_a_gap_in_the_schema_files_is_refused(tmp_path: Path) -> None:
    registry_dir = _write_versions(tmp_path, 1, 3)

    with pytest.raises(ValueError, match="without gaps"):
        schema_versions(registry_dir, EVENT)


def test_definitions_are_compacted_but_equal(tmp_path: Path) -> None:
    registry_dir = _write_versions(tmp_path, 1)

    (definition,) = schema_versions(registry_dir, EVENT)

    assert "\n" not in definition
    assert json.loads(definition) == json.loads((registry_dir / "Event" / "v1.avsc").read_text())


def test_migration_files_must_follow_the_flyway_naming(tmp_path: Path) -> None:
    (tmp_path / "V1__create.sql").write_text("SELECT 1;")
    (tmp_path / "create_more.sql").write_text("SELECT 2;")

    with pytest.raises(ValueError, match=re.escape("V<version>__<description>.sql")):
        migration_properties(tmp_path)


def test_migrations_are_ordered_by_number_not_by_name(tmp_path: Path) -> None:
    for number in (1, 2, 10):
        (tmp_path / f"V{number}__step_{number}.sql").write_text(f"SELECT {number};")

    assert [m["Version"] for m in migration_properties(tmp_path)] == ["1", "2", "10"]


@pytest.fixture(scope="module")
def glue_stack() -> Stack:
    stack = _stack()
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    GlueJob(
        stack,
        "Job",
        job_name="test-incremental",
        script=REPO_ROOT / "glue_jobs" / "subscription_history.py",
        platform=load_config("dev"),
        settings=GlueConfig(worker_type="G.2X", number_of_workers=3, timeout_minutes=15, max_retries=0),
        key=key,
        description="An incremental job",
        arguments={"--source": "s3://bucket/prefix/"},
        bookmarks=True,
    )
    return stack


def test_the_glue_job_takes_workers_and_bookmarks_from_its_arguments(glue_stack: Stack) -> None:
    template = Template.from_stack(glue_stack)
    template.has_resource_properties(
        "AWS::Glue::Job",
        {
            "GlueVersion": "5.0",
            "WorkerType": "G.2X",
            "NumberOfWorkers": 3,
            "Timeout": 15,
            "MaxRetries": 0,
            "DefaultArguments": Match.object_like(
                {
                    "--job-bookmark-option": "job-bookmark-enable",
                    "--enable-continuous-cloudwatch-log": "true",
                    "--source": "s3://bucket/prefix/",
                }
            ),
        },
    )


def test_the_glue_job_logs_to_encrypted_groups_with_retention(glue_stack: Stack) -> None:
    template = Template.from_stack(glue_stack)
    groups = template.find_resources("AWS::Logs::LogGroup")
    assert len(groups) == 3
    names = [json.dumps(g["Properties"]["LogGroupName"]) for g in groups.values()]
    assert sum("/aws-glue/jobs/logs-v2-" in n for n in names) == 1
    assert sum(n.endswith('/output"]]}') for n in names) == 1
    assert sum(n.endswith('/error"]]}') for n in names) == 1
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == load_config("dev").log_retention_days
        assert "KmsKeyId" in group["Properties"]


def test_the_glue_job_role_reads_only_its_own_assets(glue_stack: Stack) -> None:
    template = Template.from_stack(glue_stack)
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (reads,) = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert len(reads["Resource"]) == 2
    assert all("/" in json.dumps(resource).split("assets-")[1] for resource in reads["Resource"])
    assert not any(str(s["Action"]).startswith("s3:List") for s in statements)


def test_the_glue_job_is_scanner_clean_on_its_own(glue_stack: Stack) -> None:
    assert nag_findings(glue_stack) == []
