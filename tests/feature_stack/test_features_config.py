"""FeaturesConfig: the orchestration and online consumer settings, checked at synth time."""

from __future__ import annotations

import pytest

from platform_core.config import FeaturesConfig, load_config


def test_every_environment_schedules_the_pipeline_daily_with_bounded_retries():
    for env_name in ("dev", "prod"):
        settings = load_config(env_name).features
        assert settings.schedule_expression.startswith("cron(")
        assert settings.retry_max_attempts >= 1
        assert settings.retry_backoff_rate >= 1.0


@pytest.mark.parametrize(
    "bad",
    [
        {"schedule_expression": "every day"},
        {"retry_interval_seconds": 0},
        {"retry_backoff_rate": 0.5},
        {"retry_max_attempts": 11},
        {"orchestration_timeout_minutes": 0},
    ],
)
def test_settings_step_functions_or_eventbridge_would_refuse_fail_early(bad):
    with pytest.raises(ValueError):
        FeaturesConfig(**bad)


def test_only_prod_reads_the_clickstream_through_an_enhanced_fan_out_consumer():
    # prod's stream has several busy readers; dev's traffic fits the shared read limits
    assert load_config("prod").features.online_enhanced_fan_out is True
    assert load_config("dev").features.online_enhanced_fan_out is False
