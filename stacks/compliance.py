"""The rule packs every synth runs: AWS Solutions, Serverless and NIST 800-53 rev 5."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, NagPack, NIST80053R5Checks, ServerlessChecks
from constructs import Construct


def rule_packs(scope: Construct) -> list[NagPack]:
    # Acknowledgments are also written into each resource's template Metadata (cdk_nag) so that
    # the reasons travel with the template for auditors.
    return [
        AwsSolutionsChecks(scope, write_suppressions_to_cloud_formation=True),
        ServerlessChecks(scope),
        NIST80053R5Checks(scope),
    ]


def attach_rule_packs(app: App) -> None:
    """Register the packs once at the app root; findings fail ``cdk synth`` unless acknowledged."""
    Validations.of(app).add_plugins(*rule_packs(app))
