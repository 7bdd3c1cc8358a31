"""The benchmark runner's pure parts: normalisation, verdicts, planning and rendering.

No benchmark runs here: module outputs are samples shaped like the real ones.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from bench.runner import (
    EXPECTED_MODULES,
    GENERIC_LIMIT,
    Figure,
    ModuleRun,
    Target,
    child_main,
    judge,
    markdown_table,
    normalise,
    numeric_leaves,
    plan,
    render_markdown,
    results_document,
    run_module,
    summary,
)

TRANSFORM_OUTPUT = {
    "records_per_invocation": 500,
    "mean_event_bytes": 584,
    "first_invocation_seconds_cold_caches": 0.21,
    "handler_events_per_second": 31_000,
    "floor_events_per_second": 62_000,
    "floor_over_handler_ratio": 2.0,
    "target_events_per_second": 25_000,
    "target_max_ratio": 4.0,
}

PRODUCER_OUTPUT = {
    "events": 100_000,
    "floor_json_encode": {"events_per_cpu_second": 200_000, "cpu_seconds": 0.5},
    "plain": {"events_per_cpu_second": 100_000, "events_per_kinesis_record": 1.0},
    "aggregated": {"events_per_cpu_second": 80_000, "events_per_kinesis_record": 1560.2},
    "capacity_at_1m_events_per_second": {
        "min_aggregation_factor_to_be_byte_bound": 2,
        "shards_unaggregated": 1000,
        "shards_aggregated_with_kpl_overhead": 619,
    },
}


def rows_by_name(figures: list[Figure]) -> dict[str, Figure]:
    return {f.name: f for f in figures}


def test_targets_compare_as_written() -> None:
    assert Target(">=", 25_000).met_by(25_000)
    assert not Target(">=", 25_000).met_by(24_999)
    assert Target("<=", 4).met_by(4)
    assert Target("<", 60).met_by(59.9)
    assert not Target("<", 60).met_by(60)
    assert str(Target("<=", 4.0)) == "<= 4"


def test_verdicts() -> None:
    assert judge(30_000, Target(">=", 25_000)) == "pass"
    assert judge(20_000, Target(">=", 25_000)) == "fail"
    assert judge(20_000, None) == "info"
    assert judge(None, Target(">=", 1)) == "error"


def test_transform_figures_carry_their_floor_ratio_and_targets() -> None:
    # Given the transform benchmark's answer
    run = ModuleRun("bench_transform", "ok", result=TRANSFORM_OUTPUT)
    # When normalised
    rows = rows_by_name(normalise(run))
    # Then throughput is judged against 25,000 events/s per core, with the floor beside it
    throughput = rows["clickstream transform throughput"]
    assert throughput.value == 31_000
    assert throughput.floor == 62_000
    assert throughput.ratio == pytest.approx(0.5)
    assert throughput.target == Target(">=", 25_000)
    assert throughput.verdict == "pass"
    # and the cost against the floor must stay within 4x
    cost = rows["transform cost vs decode floor"]
    assert cost.target == Target("<=", 4.0)
    assert cost.verdict == "pass"


def test_a_slow_transform_fails_its_targets() -> None:
    slow = {**TRANSFORM_OUTPUT, "handler_events_per_second": 12_000, "floor_over_handler_ratio": 5.2}
    rows = rows_by_name(normalise(ModuleRun("bench_transform", "ok", result=slow)))
    assert rows["clickstream transform throughput"].verdict == "fail"
    assert rows["transform cost vs decode floor"].verdict == "fail"


def test_producer_aggregation_is_judged_against_the_byte_bound_factor() -> None:
    rows = rows_by_name(normalise(ModuleRun("bench_producer", "ok", result=PRODUCER_OUTPUT)))
    packing = rows["events per Kinesis record (aggregated)"]
    assert packing.target == Target(">=", 2)
    assert packing.verdict == "pass"
    assert rows["producer throughput, plain"].ratio == pytest.approx(0.5)
    shards = rows["shards for 1M events/s of 600 B, aggregated"]
    assert shards.ratio == pytest.approx(0.619)


def test_synth_is_judged_in_wall_seconds_under_a_minute() -> None:
    raw = {"app_seconds": 75.0, "empty_app_seconds": 20.0, "target_seconds": 60.0}
    [row] = normalise(ModuleRun("bench_synth", "ok", result=raw))
    assert row.ratio == pytest.approx(3.75)
    assert row.verdict == "fail"


def test_a_changed_output_shape_gives_error_rows_not_a_crash() -> None:
    rows = normalise(ModuleRun("bench_transform", "ok", result={"something_else": 1}))
    assert rows
    assert all(r.verdict == "error" for r in rows if r.target is not None)


@pytest.mark.parametrize("status", ["failed", "timeout", "missing"])
def test_a_module_without_figures_gets_one_error_row(status: str) -> None:
    run = ModuleRun("bench_video", status, error="Traceback ...\nRuntimeError: camera went away")  # type: ignore[arg-type]
    [row] = normalise(run)
    assert row.verdict == "error"
    assert row.note.startswith(status)
    assert "camera went away" in row.note


def test_an_unknown_module_is_listed_from_its_numbers() -> None:
    # Given a module the runner has no normaliser for, with nested numbers and text
    raw = {"model": "xgb", "latency_ms": {"p50": 3.5, "p99": 9}, "cases": [{"rps": 100}], "ok": True}
    # When normalised
    rows = normalise(ModuleRun("bench_inference", "ok", result=raw))
    # Then every number is an informational row and nothing else is
    assert [(r.name, r.value) for r in rows] == [
        ("latency_ms.p50", 3.5),
        ("latency_ms.p99", 9.0),
        ("cases[0].rps", 100.0),
    ]
    assert {r.verdict for r in rows} == {"info"}


def test_a_chatty_unknown_module_is_capped() -> None:
    raw = {f"figure_{i}": i for i in range(50)}
    assert len(normalise(ModuleRun("bench_other", "ok", result=raw))) == GENERIC_LIMIT


def test_numeric_leaves_skip_booleans_and_text() -> None:
    assert list(numeric_leaves({"a": True, "b": "x", "c": 2})) == [("c", 2.0)]


def test_plan_runs_the_expected_modules_first_then_others() -> None:
    order = plan(["bench_zeta", "bench_transform", "bench_parsers"])
    assert order[: len(EXPECTED_MODULES)] == list(EXPECTED_MODULES)
    assert order[-1] == "bench_zeta"


def test_plan_keeps_an_unknown_requested_module_so_it_is_reported() -> None:
    assert plan(["bench_parsers"], only=["bench_parsers", "bench_nope"]) == ["bench_parsers", "bench_nope"]


def test_a_missing_module_is_reported_without_running_anything(tmp_path: Path) -> None:
    run = run_module("bench_inference", 10, tmp_path, found=["bench_parsers"])
    assert run.status == "missing"
    assert "does not exist" in (run.error or "")


def test_the_child_reports_a_module_without_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a bench module that forgot its run() function
    monkeypatch.setitem(sys.modules, "bench.bench_norun", types.ModuleType("bench.bench_norun"))
    out = tmp_path / "out.json"
    # When the child runs it
    code = child_main("bench_norun", out)
    # Then it exits 1 and writes the reason where the runner reads it
    assert code == 1
    assert "has no run() function" in json.loads(out.read_text())["error"]


def test_the_child_writes_the_modules_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("bench.bench_tiny")
    module.run = lambda: {"answer": 42}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.bench_tiny", module)
    out = tmp_path / "out.json"
    assert child_main("bench_tiny", out) == 0
    assert json.loads(out.read_text()) == {"result": {"answer": 42}}


def test_markdown_table_and_results_document() -> None:
    # Given two modules' results
    runs = [
        ModuleRun("bench_transform", "ok", 11.0, 9.5, 120.0, result=TRANSFORM_OUTPUT),
        ModuleRun("bench_video", "failed", 3.0, 1.0, 80.0, error="boom | bang"),
    ]
    figures = [row for run in runs for row in normalise(run)]
    machine = {"cpu_count": 2, "load_average_before": 9.1, "load_average_after": 8.7, "finished_at": "now"}
    # When rendered
    table = markdown_table(figures)
    document = results_document(runs, figures, machine)
    markdown = render_markdown(runs, figures, machine)
    # Then the table has one row per figure, pipes escaped, and the JSON round-trips
    assert table.splitlines()[0] == "| figure | value | floor / peer | ratio | target | verdict |"
    assert len(table.splitlines()) == 2 + len(figures)
    assert "boom \\| bang" in table
    assert json.loads(json.dumps(document))["summary"] == summary(figures)
    assert document["modules"]["bench_video"]["status"] == "failed"
    assert document["figures"][0]["target"] == {"comparison": ">=", "threshold": 25_000.0}
    assert "| bench_video | failed |" in markdown
