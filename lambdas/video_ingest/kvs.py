"""Kinesis Video Streams as a camera source: its live HLS session URL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# Errors that mean "this stream cannot be played as HLS now": reported as an unreachable camera.
_UNAVAILABLE = frozenset(
    {
        "ResourceNotFoundException",
        "NoDataRetentionException",
        "MissingCodecPrivateDataException",
        "InvalidCodecPrivateDataException",
        "UnsupportedStreamMediaTypeException",
        "NotAuthorizedException",
    }
)
# The longest session Kinesis Video allows; the URL is resolved anew on every invocation anyway.
_SESSION_SECONDS = 43_200


@dataclass(frozen=True)
class KvsResolver:
    control: Callable[[], Any]  # factory of the kinesisvideo client
    archived_media: Callable[[str], Any]  # endpoint URL -> kinesis-video-archived-media client

    def __call__(self, stream_name: str) -> str:
        """The HLS master playlist URL of the stream's live edge, served as MPEG-TS segments
        (the container this ingest stores); raises LookupError when the stream is not playable."""
        try:
            endpoint = self.control().get_data_endpoint(
                StreamName=stream_name, APIName="GET_HLS_STREAMING_SESSION_URL"
            )["DataEndpoint"]
            response = self.archived_media(endpoint).get_hls_streaming_session_url(
                StreamName=stream_name,
                PlaybackMode="LIVE",
                ContainerFormat="MPEG_TS",
                Expires=_SESSION_SECONDS,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _UNAVAILABLE:
                raise LookupError(f"{stream_name}: {code}") from None
            raise
        return str(response["HLSStreamingSessionURL"])
