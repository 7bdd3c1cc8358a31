"""The stages of a local run, in the order data flows through the platform."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_runtime import (
    cdc_stage,
    clickstream_stage,
    feature_store_stage,
    online_features_stage,
    serving_stage,
    spark_stage,
    training_stage,
    video_stage,
)
from local_runtime.context import Progress, RunContext
from local_runtime.embedded_aws import embedded_aws
from local_runtime.inputs import DEMO_EVENTS_PER_USER, demo_inputs
from local_runtime.provision import provision
from local_runtime.report import write_report
from local_runtime.summary import cdc_summary, clickstream_summary, parquet_rows
from platform_core.config import load_config


@dataclass(frozen=True)
class DemoOptions:
    clickstream_file: Path | None = None
    cdc_file: Path | None = None
    cameras: tuple[str, ...] = ()
    out: Path = Path("demo_output")
    users: int = 1000
    months: int = 6
    seed: int = 7
    events_per_user: float = DEMO_EVENTS_PER_USER
    quiet: bool = False


MIN_TRAINING_ROWS = 50


class StageFailedError(RuntimeError):
    """A stage failed; the message names it."""


def run_demo(options: DemoOptions) -> dict[str, Any]:
    global _LOG_DIR  # noqa: PLW0603 (one run at a time; the stages log under its output folder)
    progress = Progress(quiet=options.quiet)
    options.out.mkdir(parents=True, exist_ok=True)
    _LOG_DIR = options.out / "logs"
    config = load_config("dev")
    inputs = demo_inputs(
        users=options.users,
        seed=options.seed,
        months=options.months,
        clickstream_file=options.clickstream_file,
        cdc_file=options.cdc_file,
        lead_days=config.features.label_lead_days,
        events_per_user=options.events_per_user,
    )
    progress.say(
        "inputs",
        f"{len(inputs.clickstream.lines)} clickstream lines "
        f"({inputs.clickstream.injected_duplicates} duplicates, {inputs.clickstream.injected_bad} bad injected), "
        f"{len(inputs.cdc_lines)} CDC records",
    )
    _forget_cached_clients()
    with embedded_aws() as aws:
        ctx = RunContext(aws=aws, config=config, out=options.out, progress=progress, seed=options.seed)
        progress.say("aws", f"embedded AWS on {aws.endpoint_url}")
        _stage("provision", lambda: provision(ctx))
        _stage("clickstream", lambda: clickstream_stage.run(ctx, inputs.clickstream))
        cdc = _stage("cdc", lambda: cdc_stage.run(ctx, inputs.cdc_lines))
        video = _stage("video", lambda: video_stage.run(ctx, options.cameras))
        spark, owned = _stage("spark", spark_stage.start_spark)
        try:
            glue = _stage("glue jobs", lambda: spark_stage.run(ctx, spark, cdc.snapshot_files))
            feature_store = _stage("feature store", lambda: feature_store_stage.run(ctx, spark))
            online = _stage("online features", lambda: online_features_stage.run(ctx, spark))
            training = None
            if glue.training_rows < MIN_TRAINING_ROWS:
                ctx.skipped["model"] = f"only {glue.training_rows} labelled rows; training needs {MIN_TRAINING_ROWS}"
            else:
                truth = _truth(inputs.world) if inputs.world is not None and options.cdc_file is None else None
                training = _stage("training", lambda: training_stage.run(ctx, truth=truth))
            serving = None
            if training is None or not training.approved:
                ctx.skipped["serving"] = "no approved model"
            else:
                model_dir, test_dir = training.model_dir, training.test_dir
                serving = _stage("serving", lambda: serving_stage.run(ctx, spark, model_dir, test_dir))
        finally:
            if owned:  # a session someone else started (a test run's) is theirs to stop
                spark.stop()
        ctx.summary["clickstream"] = clickstream_summary(options.out, len(inputs.clickstream.lines))
        ctx.summary["clickstream"]["injected_duplicates"] = inputs.clickstream.injected_duplicates
        ctx.summary["clickstream"]["injected_bad"] = inputs.clickstream.injected_bad
        ctx.summary["cdc"] = cdc_summary(options.out, len(inputs.cdc_lines))
        ctx.summary["video"] = {
            "cameras": video.cameras,
            "camera_status": video.statuses,
            "segments_stored": video.segments_stored,
            "segments_quarantined": video.segments_quarantined,
            "gaps": video.gaps,
            "metadata_rows": video.metadata_rows,
        }
        ctx.summary["features"] = {
            "users": parquet_rows(options.out / "lake" / "features" / "user_clickstream", distinct="user_id"),
            "snapshot_dates": len(glue.snapshot_dates),
            "training_rows": glue.training_rows,
            "online_offline_mismatches": online.mismatched_users,
            "online_users": online.online_users,
            "feature_store": feature_store.summary,
        }
        metrics = training.evaluation["binary_classification_metrics"] if training else {}
        ctx.summary["model"] = {
            "pr_auc": metrics.get("pr_auc", {}).get("value"),
            "roc_auc": metrics.get("roc_auc", {}).get("value"),
            "oracle_pr_auc": training.evaluation.get("oracle", {}).get("pr_auc") if training else None,
            "registered": bool(training and training.registered),
            "approved": bool(training and training.approved),
        }
        ctx.summary["serving"] = {
            "requests": serving.requests if serving else 0,
            "p50_ms": serving.p50_ms if serving else None,
            "p99_ms": serving.p99_ms if serving else None,
            "labelled_feedback_rows": serving.labelled_rows if serving else 0,
            "production_pr_auc": serving.production_pr_auc if serving else None,
        }
        ctx.summary["lost"] = ctx.summary["clickstream"]["lost"]
        ctx.write_summary()
        write_report(options.out, {**ctx.summary, "skipped": ctx.skipped})
        progress.say("done", f"lost={ctx.summary['lost']}")
    _forget_cached_clients()
    return ctx.summary


def _forget_cached_clients() -> None:
    """Handlers cache their settings and AWS clients per container (functools.cache); a run owns
    its embedded AWS, so nothing cached against another endpoint may outlive it or leak in."""
    for name, module in list(sys.modules.items()):
        if name.startswith("lambdas."):
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()


def _truth(world: Any) -> Any:
    """The generator's true churn probability per (user, renewal date), keyed like the training
    labels (cutoff = the renewal date's 00:00 UTC, ``lead_days`` earlier)."""
    import pandas as pd

    renewals = world.history.renewals
    lead = pd.Timedelta(days=world.config.lead_days)
    return pd.DataFrame(
        {
            "user_id": renewals["user_id"].astype(str),
            "cutoff_time": pd.to_datetime(renewals["renewal_date"]).dt.tz_localize("UTC") - lead,
            "true_churn_probability": renewals["true_churn_probability"],
        }
    ).drop_duplicates(["user_id", "cutoff_time"])


_LOG_DIR: Path | None = None


def _stage(name: str, action: Any) -> Any:
    """Run one stage; what its handlers print (their CloudWatch log lines) goes to logs/<stage>.log."""
    log_dir = _LOG_DIR or Path("demo_output") / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name.replace(' ', '_')}.log").open("a") as log, contextlib.redirect_stdout(log):
        try:
            return action()
        except Exception as error:
            raise StageFailedError(f"stage {name!r} failed: {type(error).__name__}: {error}") from error
