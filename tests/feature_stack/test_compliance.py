"""The feature stack passes every scanner the platform runs, in both environments."""

from __future__ import annotations

import pytest

from tests.feature_stack.conftest import ENVIRONMENTS, feature_stack
from tests.infra.harness import cfn_lint_findings, nag_findings

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_no_cdk_nag_finding_remains(env_name):
    assert nag_findings(feature_stack(env_name)) == []


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_cfn_lint_reports_nothing_with_informational_checks(env_name):
    assert cfn_lint_findings(feature_stack(env_name)) == []


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_stack_carries_the_environments_termination_protection(env_name):
    assert feature_stack(env_name).termination_protection is (env_name == "prod")
