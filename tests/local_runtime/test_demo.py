"""A smaller `make demo`: the whole local platform on generated data, checked by its identities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_runtime.run import DemoOptions, run_demo

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.xdist_group("spark")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, spark: object) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    summary = run_demo(DemoOptions(users=150, months=3, seed=11, out=out, quiet=True))
    return out, summary


def test_nothing_is_lost_and_every_record_is_accounted_for(demo):
    _, summary = demo
    clickstream = summary["clickstream"]
    assert summary["lost"] == 0
    assert clickstream["accepted"] + clickstream["rejected"] == clickstream["input_records"]
    assert clickstream["curated_rows"] == clickstream["accepted"] - clickstream["duplicates_dropped"]
    # The injected faults are all found again: every resent event removed once, every bad one rejected.
    assert clickstream["duplicates_dropped"] == clickstream["injected_duplicates"]
    assert clickstream["rejected"] == clickstream["injected_bad"]
    assert clickstream["curated_rows"] == clickstream["distinct_event_ids_raw"]


def test_summary_on_disk_matches_and_names_every_stage(demo):
    out, summary = demo
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["lost"] == summary["lost"]
    for section in ("clickstream", "cdc", "video", "features", "model", "serving"):
        assert section in on_disk, section


def test_cdc_history_and_transitions_landed(demo):
    _, summary = demo
    cdc = summary["cdc"]
    assert cdc["rejected"] == 0
    assert cdc["applied_changes"] + cdc["stale_ignored"] + cdc["duplicates_dropped"] == cdc["input_records"]
    assert cdc["transitions"].get("renewed", 0) > 0
    assert cdc["history_rows"] > 0 and cdc["label_rows"] > 0


def test_video_segments_match_their_metadata(demo):
    _, summary = demo
    video = summary["video"]
    # 8 segments published, one withheld by the camera: 6 good + 1 quarantined, one gap recorded.
    assert video["segments_stored"] == video["metadata_rows"] == 6
    assert video["segments_quarantined"] == 1
    assert video["gaps"] == 1


def test_lake_and_outputs_exist(demo):
    out, _ = demo
    for dataset in (
        "clickstream_raw",
        "clickstream_curated",
        "cdc_transitions",
        "subscription_history",
        "video_segments",
        "features",
        "training_set",
        "predictions",
        "production_labelled",
    ):
        assert any((out / "lake" / dataset).rglob("*.parquet")), dataset
    assert any((out / "errors" / "clickstream").rglob("*.json*"))
    assert (out / "report.html").read_text().count("<h2>") >= 4


def test_online_features_agree_with_the_spark_job(demo):
    out, summary = demo
    features = summary["features"]
    # Every signed-in user's online record equals the Spark job's features as of the same instant
    assert features["online_users"] > 100
    assert features["online_offline_mismatches"] == 0
    assert not (out / "errors" / "features" / "online_offline_mismatches.jsonl").exists()


def test_the_loop_closes_from_the_gate_to_the_feedback(demo):
    out, summary = demo
    # The model on the platform's own features passes the gate and is approved and served
    model = summary["model"]
    assert model["registered"] and model["approved"], model
    assert 0.3 <= model["pr_auc"] <= model["oracle_pr_auc"]  # above the floor, never above the truth
    serving = summary["serving"]
    assert serving["requests"] > 0
    # Every served prediction is about a held-out renewal, so the feedback job finds its label
    assert serving["labelled_feedback_rows"] == serving["requests"]
    captured = (out / "lake" / "serving_capture" / "capture.jsonl").read_text().splitlines()
    assert len(captured) == serving["requests"]
    assert json.loads(captured[0])["eventMetadata"]["inferenceTime"].endswith("Z")  # SageMaker's format
