"""Per-camera progress in DynamoDB: the watermark, the worker's lease and the step in flight.

One item per camera (partition key ``camera_id``, a string):

- ``watermark``: the last media sequence fully handled (stored and announced, quarantined, or
  declared missing). It only moves forward, with a write conditional on its previous value.
- ``lease_owner`` / ``lease_expires_ms``: the one worker allowed to act for the camera. A second
  worker (a concurrent invocation) finds the lease held and does nothing.
- ``pending_seq`` / ``pending_at``: the step a worker is about to perform and when it began, written
  before any side effect. A worker that takes over after a crash repeats that step with the same
  time, so it rebuilds the very same S3 keys and event payloads.

Every write after the lease is taken is conditional on still holding it (fencing): a worker whose
lease was taken over cannot move the watermark, and stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from platform_core.schemas.video import iso_utc

_CONDITION_FAILED = "ConditionalCheckFailedException"


class LeaseLostError(RuntimeError):
    """The lease expired and another worker took the camera over, or the watermark moved under us."""


@dataclass(frozen=True)
class CameraState:
    watermark: int | None  # None: nothing was ever ingested
    pending_seq: int | None
    pending_at: datetime | None


@dataclass(frozen=True)
class WatermarkStore:
    client: Any  # boto3 DynamoDB client
    table: str

    def acquire(self, camera_id: str, owner: str, *, now_ms: int, until_ms: int) -> CameraState | None:
        """Take the camera's lease until ``until_ms``; None when another worker holds it."""
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=_key(camera_id),
                UpdateExpression="SET lease_owner = :me, lease_expires_ms = :until",
                ConditionExpression=(
                    "attribute_not_exists(lease_expires_ms) OR lease_expires_ms < :now OR lease_owner = :me"
                ),
                ExpressionAttributeValues={":me": {"S": owner}, ":until": _n(until_ms), ":now": _n(now_ms)},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _condition_failed(error):
                return None
            raise
        item = response["Attributes"]
        return CameraState(
            watermark=int(item["watermark"]["N"]) if "watermark" in item else None,
            pending_seq=int(item["pending_seq"]["N"]) if "pending_seq" in item else None,
            pending_at=datetime.fromisoformat(item["pending_at"]["S"].replace("Z", "+00:00"))
            if "pending_at" in item
            else None,
        )

    def begin_step(self, camera_id: str, owner: str, *, sequence: int, at: datetime, now_ms: int) -> None:
        """Record the step about to run, before any of its side effects."""
        self._fenced(
            camera_id,
            owner,
            now_ms,
            update="SET pending_seq = :seq, pending_at = :at",
            values={":seq": _n(sequence), ":at": {"S": iso_utc(at)}},
        )

    def advance(self, camera_id: str, owner: str, *, previous: int | None, to: int, now_ms: int) -> None:
        """Move the watermark from ``previous`` to ``to``: the last write of every step."""
        condition = "attribute_not_exists(watermark)" if previous is None else "watermark = :prev"
        values: dict[str, Any] = {":to": _n(to)}
        if previous is not None:
            values[":prev"] = _n(previous)
        self._fenced(
            camera_id,
            owner,
            now_ms,
            update="SET watermark = :to REMOVE pending_seq, pending_at",
            values=values,
            condition=condition,
        )

    def release(self, camera_id: str, owner: str) -> None:
        """Give the lease back so the next scheduled run need not wait for it to expire."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_key(camera_id),
                UpdateExpression="SET lease_expires_ms = :zero",
                ConditionExpression="lease_owner = :me",
                ExpressionAttributeValues={":zero": _n(0), ":me": {"S": owner}},
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise

    def _fenced(
        self,
        camera_id: str,
        owner: str,
        now_ms: int,
        *,
        update: str,
        values: dict[str, Any],
        condition: str | None = None,
    ) -> None:
        fence = "lease_owner = :me AND lease_expires_ms > :now"
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_key(camera_id),
                UpdateExpression=update,
                ConditionExpression=fence if condition is None else f"{fence} AND {condition}",
                ExpressionAttributeValues={**values, ":me": {"S": owner}, ":now": _n(now_ms)},
            )
        except ClientError as error:
            if _condition_failed(error):
                raise LeaseLostError(f"camera {camera_id}: lease lost or watermark moved by another worker") from None
            raise


def _key(camera_id: str) -> dict[str, Any]:
    return {"camera_id": {"S": camera_id}}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _condition_failed(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == _CONDITION_FAILED)
