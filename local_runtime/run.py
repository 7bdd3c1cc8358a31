"""The stages of a local run, in the order data flows through the platform."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_runtime import cdc_stage, clickstream_stage, spark_stage, video_stage
from local_runtime.context import Progress, RunContext
from local_runtime.embedded_aws import embedded_aws
from local_runtime.inputs import demo_inputs
from local_runtime.provision import provision
from local_runtime.summary import cdc_summary, clickstream_summary
from platform_core.config import load_config


@dataclass(frozen=True)
class DemoOptions:
    clickstream_file: Path | None = None
    cdc_file: Path | None = None
    cameras: tuple[str, ...] = ()
    out: Path = Path("demo_output")
    users: int = 3000
    seed: int = 7
    quiet: bool = False


class StageFailedError(RuntimeError):
    """A stage failed; the message names it."""


def run_demo(options: DemoOptions) -> dict[str, Any]:
    progress = Progress(quiet=options.quiet)
    options.out.mkdir(parents=True, exist_ok=True)
    inputs = demo_inputs(
        users=options.users, seed=options.seed, clickstream_file=options.clickstream_file, cdc_file=options.cdc_file
    )
    progress.say(
        "inputs",
        f"{len(inputs.clickstream.lines)} clickstream lines "
        f"({inputs.clickstream.injected_duplicates} duplicates, {inputs.clickstream.injected_bad} bad injected), "
        f"{len(inputs.cdc_lines)} CDC records",
    )
    with embedded_aws() as aws:
        ctx = RunContext(aws=aws, config=load_config("dev"), out=options.out, progress=progress, seed=options.seed)
        progress.say("aws", f"embedded AWS on {aws.endpoint_url}")
        _stage("provision", lambda: provision(ctx))
        _stage("clickstream", lambda: clickstream_stage.run(ctx, inputs.clickstream))
        cdc = _stage("cdc", lambda: cdc_stage.run(ctx, inputs.cdc_lines))
        video = _stage("video", lambda: video_stage.run(ctx, options.cameras))
        spark = _stage("spark", spark_stage.start_spark)
        try:
            _stage("glue jobs", lambda: spark_stage.run(ctx, spark, cdc.snapshot_files))
        finally:
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
        ctx.summary["lost"] = ctx.summary["clickstream"]["lost"]
        ctx.write_summary()
        progress.say("done", f"lost={ctx.summary['lost']}")
    return ctx.summary


def _stage(name: str, action: Any) -> Any:
    try:
        return action()
    except Exception as error:
        raise StageFailedError(f"stage {name!r} failed: {type(error).__name__}: {error}") from error
