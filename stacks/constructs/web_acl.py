"""The regional WAF web ACL in front of the platform's public APIs."""

from __future__ import annotations

from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
# The common rule set's rule that blocks request bodies over 8 KB.
BODY_SIZE_RULE = "SizeRestrictions_BODY"


def regional_web_acl(
    scope: Construct, *, metric_name: str, per_ip_limit: int, large_bodies: bool = False
) -> wafv2.CfnWebACL:
    """AWS managed rules, then a block on any IP above ``per_ip_limit`` requests per 5 minutes.

    ``large_bodies``: the API takes bodies over 8 KB by design (the collector's batches: 500 events
    of ~600 bytes are ~300 KB), so the common rule set's body size rule only counts instead of
    blocking; API Gateway's request model and payload limit bound the body instead.
    """
    overrides = (
        [
            wafv2.CfnWebACL.RuleActionOverrideProperty(
                name=BODY_SIZE_RULE, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
            )
        ]
        if large_bodies
        else None
    )
    rules = [
        wafv2.CfnWebACL.RuleProperty(
            name=name,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS",
                    name=name,
                    rule_action_overrides=overrides if name == "AWSManagedRulesCommonRuleSet" else None,
                )
            ),
            visibility_config=_visibility(name),
        )
        for priority, name in enumerate(MANAGED_RULE_GROUPS)
    ]
    rules.append(
        wafv2.CfnWebACL.RuleProperty(
            name="PerIpRateLimit",
            priority=len(rules),
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    aggregate_key_type="IP", limit=max(100, per_ip_limit)
                )
            ),
            visibility_config=_visibility("PerIpRateLimit"),
        )
    )
    return wafv2.CfnWebACL(
        scope,
        "WebAcl",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility(metric_name),
        rules=rules,
    )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
