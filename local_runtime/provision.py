"""Create the platform's resources in the embedded AWS, from the same config and names as the stacks."""

from __future__ import annotations

from typing import Any

from local_runtime.context import RunContext
from platform_core.names import BUCKET_PURPOSES


def provision(ctx: RunContext) -> dict[str, Any]:
    """Buckets, streams and the Glue database; stages add what only they use."""
    s3 = ctx.aws.client("s3")
    kinesis = ctx.aws.client("kinesis")
    glue = ctx.aws.client("glue")
    for purpose in sorted(BUCKET_PURPOSES):
        s3.create_bucket(Bucket=ctx.bucket(purpose))
    streams = [ctx.names.clickstream_stream, ctx.names.cdc_stream, ctx.names.video_metadata_stream]
    for stream in streams:
        kinesis.create_stream(StreamName=stream, ShardCount=2)
    glue.create_database(DatabaseInput={"Name": ctx.names.glue_database})
    return {"buckets": sorted(ctx.bucket(p) for p in BUCKET_PURPOSES), "streams": streams}
