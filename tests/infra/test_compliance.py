"""cdk-nag packs over every stack of both environments: no open finding."""

from __future__ import annotations

import pytest

from stacks.compliance import rule_packs

pytestmark = pytest.mark.xdist_group("cdk")


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_no_nag_finding_remains(platform, env_name):
    built = platform(env_name)
    for stack in built.stacks:
        for pack in rule_packs(stack):
            report = pack.validate_scope(stack)
            open_findings = [
                f"{v.rule_name}: {[r.construct_path for r in v.violating_resources]}" for v in report.violations
            ]
            assert open_findings == [], f"{stack.stack_name} / {pack.read_pack_name}"


def test_synth_works_in_another_region(template):
    clickstream = template("dev", "clickstream", region="ap-southeast-2")
    clickstream.resource_count_is("AWS::KinesisFirehose::DeliveryStream", 1)
    lake = template("dev", "data_lake", region="ap-southeast-2")
    lake.resource_count_is("AWS::S3::Bucket", 4)
