"""A Glue Schema Registry holding the platform's Avro schemas, version by version.

Registered versions are the checked-in files ``<registry_dir>/<SchemaName>/v<N>.avsc`` (see
``platform_core/schemas/registry/README.md``): ``v1`` creates the schema, each later file is one
``AWS::Glue::SchemaVersion``. CloudFormation can only *replace* a schema whose definition changes
(``SchemaDefinition`` is create-only, and a named schema cannot be replaced in place), so a new file
adds a version on the next deploy instead, and the registry itself checks BACKWARD compatibility
against the versions before it. The newest registered version is always the newest checked-in file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_glue as glue
from constructs import Construct

from platform_core.schema import Schema

COMPATIBILITY = "BACKWARD"
_VERSION_FILE = re.compile(r"v([1-9][0-9]*)\.avsc")


def schema_versions(registry_dir: Path, schema: Schema) -> list[str]:
    """The checked-in versions of ``schema`` as compact JSON, oldest first (v1..vN, no gaps)."""
    folder = registry_dir / schema.name
    numbered = {}
    for path in folder.glob("v*.avsc"):
        match = _VERSION_FILE.fullmatch(path.name)
        if match:
            numbered[int(match.group(1))] = path
    if sorted(numbered) != list(range(1, len(numbered) + 1)) or not numbered:
        raise ValueError(f"{folder} must hold v1.avsc..vN.avsc without gaps, found {sorted(numbered)}")
    # Compact JSON: the registry compares definitions, not their whitespace, and the template stays small.
    return [json.dumps(json.loads(numbered[n].read_text()), separators=(",", ":")) for n in sorted(numbered)]


class SchemaRegistry(Construct):
    """One registry, one schema per entry of ``schemas`` (compatibility BACKWARD), retained."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        registry_name: str,
        schemas: Sequence[Schema],
        registry_dir: Path,
        removal_policy: RemovalPolicy,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.registry = glue.CfnRegistry(self, "Registry", name=registry_name, description=description)
        self.registry.apply_removal_policy(removal_policy)
        self.schemas: dict[str, glue.CfnSchema] = {}
        self.versions: dict[str, list[glue.CfnSchemaVersion]] = {}
        for schema in schemas:
            first, *later = schema_versions(registry_dir, schema)
            cfn_schema = glue.CfnSchema(
                self,
                schema.name,
                name=schema.name,
                registry=glue.CfnSchema.RegistryProperty(arn=self.registry.attr_arn),
                data_format="AVRO",
                compatibility=COMPATIBILITY,
                schema_definition=first,
                description=schema.doc[:2048],
            )
            cfn_schema.apply_removal_policy(removal_policy)
            self.schemas[schema.name] = cfn_schema
            previous: glue.CfnSchemaVersion | None = None
            self.versions[schema.name] = []
            for number, definition in enumerate(later, start=2):
                version = glue.CfnSchemaVersion(
                    self,
                    f"{schema.name}V{number}",
                    schema=glue.CfnSchemaVersion.SchemaProperty(schema_arn=cfn_schema.attr_arn),
                    schema_definition=definition,
                )
                version.apply_removal_policy(removal_policy)
                # The registry numbers versions in the order they arrive: register them in file order
                # (the first one already follows the schema through its reference to it).
                if previous is not None:
                    version.node.add_dependency(previous)
                previous = version
                self.versions[schema.name].append(version)

    @property
    def registry_arn(self) -> str:
        return self.registry.attr_arn
