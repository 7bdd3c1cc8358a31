"""Price files as data, and the command line."""

from __future__ import annotations

import json

import pytest

from planner.__main__ import main
from planner.prices import PriceSheet, Tier, TieredPrice, available_regions, load_prices, parse_sheet


def test_us_east_1_and_a_european_region_have_price_files() -> None:
    regions = available_regions()
    assert "us-east-1" in regions
    assert any(region.startswith("eu-") for region in regions)


@pytest.mark.parametrize("region", available_regions())
def test_every_price_names_its_unit_source_and_date(region: str) -> None:
    sheet = load_prices(region)
    assert sheet.read_on
    for price in sheet.prices.values():
        assert price.value > 0
        assert price.unit
        assert price.source.startswith("https://")
    for tiered in sheet.tiered.values():
        assert tiered.source.startswith("https://")


@pytest.mark.parametrize("region", available_regions())
def test_every_region_prices_what_the_planner_uses(region: str) -> None:
    us = load_prices("us-east-1")
    sheet = load_prices(region)
    assert set(sheet.prices) == set(us.prices)
    assert set(sheet.tiered) == set(us.tiered)


def test_a_price_without_a_source_is_refused() -> None:
    raw = {
        "region": "xx-test-1",
        "read_on": "2026-11-30",
        "prices": {"glue.dpu_hour": {"value": 0.44, "unit": "USD per DPU-hour"}},
    }
    with pytest.raises(ValueError, match="source"):
        parse_sheet(raw)


def test_tiers_charge_each_part_at_its_own_rate() -> None:
    price = TieredPrice(
        "firehose.ingestion",
        (Tier(100, 0.03), Tier(300, 0.02), Tier(None, 0.01)),
        "USD per GB",
        "https://example.com",
    )
    assert price.cost(50) == pytest.approx(1.5)
    assert price.cost(350) == pytest.approx(100 * 0.03 + 200 * 0.02 + 50 * 0.01)


def test_usage_beyond_the_last_published_tier_is_refused() -> None:
    price = TieredPrice("t", (Tier(100, 0.03),), "USD per GB", "https://example.com")
    with pytest.raises(ValueError, match="last published tier"):
        price.cost(101)


def test_unconfirmed_prices_are_reported() -> None:
    sheet = load_prices("eu-west-2")
    doubtful = sheet.doubtful(["kinesis.provisioned.shard_hour", "glue.dpu_hour", "firehose.ingestion"])
    assert [p.key for p in doubtful] == ["kinesis.provisioned.shard_hour"]
    assert isinstance(sheet, PriceSheet)


def test_cli_prints_the_plan_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the README's example load
    args = ["--events-per-second", "1000", "--event-bytes", "1024", "--retention-hours", "24"]
    args += ["--consumers", "1", "--history-days", "365", "--json"]
    # When the planner runs
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    # Then it sizes one shard, bills Firehose five times the bytes, and totals both modes
    assert plan["kinesis"]["shards"] == 1
    assert plan["firehose"]["billed_gib"] == pytest.approx(5 * plan["firehose"]["actual_gib"])
    assert plan["cost"]["total_with_on_demand"] > plan["cost"]["total_with_provisioned"] > 0
    assert plan["region"] == "us-east-1"


def test_cli_text_names_every_component(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--events-per-second", "500", "--event-bytes", "600", "--region", "eu-west-2", "--consumers", "3"])
    text = capsys.readouterr().out
    for word in ("shard", "Lambda", "Firehose", "S3", "Glue", "Athena", "TOTAL", "enhanced fan-out"):
        assert word in text
    assert "not confirmed for this region" in text


def test_cli_refuses_an_unknown_region(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--events-per-second", "1", "--event-bytes", "1", "--region", "mars-1"])
    assert exit_info.value.code == 2
    assert "no price file" in capsys.readouterr().err
