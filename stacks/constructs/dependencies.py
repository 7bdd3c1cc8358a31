"""Dependencies between generated resources that CloudFormation should see, and no more."""

from __future__ import annotations

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct


def depend_on_role_policy_only(construct: IConstruct, role: iam.IRole) -> None:
    """Make ``construct``'s resource depend on ``role``'s default policy only.

    A function or state machine references its role already (GetAtt), so the DependsOn on the role
    the CDK adds is redundant (cfn-lint W3005); the dependency on the role's policy carries
    information (the policy must exist before the resource first runs). No policy: nothing to do.
    """
    resource = construct.node.default_child
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None:
        return
    policy_resource = policy.node.default_child
    assert isinstance(resource, CfnResource) and isinstance(policy_resource, CfnResource)
    resource.add_override("DependsOn", [Stack.of(construct).get_logical_id(policy_resource)])
