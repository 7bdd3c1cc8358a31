"""Acknowledging cdk-nag findings, always on one construct and always with a reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, findings: dict[str, str]) -> None:
    """Acknowledge findings (rule id -> specific reason) on exactly this construct.

    Reasons must say why the rule does not apply here; a short reason is refused so that nobody
    acknowledges a finding with "ok".
    """
    for rule_id, reason in findings.items():
        if len(reason) < 25:
            raise ValueError(f"acknowledgment of {rule_id} on {construct.node.path} needs a real reason")
    Validations.of(construct).acknowledge(
        *[Acknowledgment(id=rule_id, reason=reason) for rule_id, reason in findings.items()]
    )
