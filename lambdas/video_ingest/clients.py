"""AWS clients, created on first use (never at import, so tests can intercept them) and reused
across invocations of a warm function."""

from __future__ import annotations

import functools
from typing import Any

import boto3


@functools.cache
def s3() -> Any:
    return boto3.client("s3")


@functools.cache
def kinesis() -> Any:
    return boto3.client("kinesis")


@functools.cache
def dynamodb() -> Any:
    return boto3.client("dynamodb")


@functools.cache
def kinesisvideo() -> Any:
    return boto3.client("kinesisvideo")


@functools.cache
def kinesis_video_archived_media(endpoint_url: str) -> Any:
    """The archived-media API is served from a per-stream data endpoint."""
    return boto3.client("kinesis-video-archived-media", endpoint_url=endpoint_url)
