"""Where ingested video goes: objects in the raw bucket and events on the metadata stream."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# 412: the key exists; 409: a concurrent conditional write to the key is in flight. Either way the
# object is (being) written by someone else with the same bytes, because keys are deterministic.
_ALREADY_WRITTEN = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_MISSING = frozenset({"NoSuchKey", "404"})


@dataclass(frozen=True)
class Sinks:
    s3: Any  # boto3 S3 client
    kinesis: Any  # boto3 Kinesis client
    bucket: str
    stream: str  # name or ARN of the video-metadata stream

    def put_once(self, key: str, body: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None) -> bool:
        """Write ``key`` unless it exists (S3 conditional write); True when this call created it.

        A repeated step therefore never makes a second object, nor a second version in a
        versioned bucket."""
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=dict(metadata or {}),
                IfNoneMatch="*",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _ALREADY_WRITTEN:
                return False
            raise
        return True

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return bytes(response["Body"].read())

    def announce(self, event: Mapping[str, Any]) -> None:
        """Put one event on the metadata stream, keyed by camera so a camera's events stay in order."""
        data = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        target = {"StreamARN": self.stream} if self.stream.startswith("arn:") else {"StreamName": self.stream}
        self.kinesis.put_record(Data=data, PartitionKey=str(event["camera_id"]), **target)
