"""Fault injection at the boundaries the platform's guarantees are about.

- :class:`UnreliableKinesis` stands between the producer and Kinesis (moto): it **loses
  acknowledgements** (the entry reaches the stream but the producer is told it failed, so it sends
  it again: a duplicate in the stream), **throttles** (the entry is not forwarded and the producer
  is told ``ProvisionedThroughputExceededException``) and, optionally, loses the answer to a whole
  call after every entry landed (a read timeout).
- :class:`DieAfterCall` proxies a boto3 client so that chosen calls run and then the process
  **dies** (:class:`ProcessDied`, a ``BaseException`` that no ``except Exception`` in the function
  can swallow, as a timeout or an out-of-memory kill cannot be caught): a side effect happened,
  the checkpoint or the answer did not.
- :class:`LambdaRuntime` is the boundary the Lambda service draws around a function: a dead
  process becomes a function error for the caller (an event source mapping, Firehose).
- :class:`CrashAfterReturn` lets the handler finish every side effect and then fails the
  invocation instead of answering.
- :class:`FirehoseInvocationRetries` re-invokes a failed transformation with the very same records
  (same ``recordId``\\ s), as Firehose does during its retry duration, and when the attempts are
  used up answers ``ProcessingFailed`` for every record (Firehose then writes them to its error
  output): nothing is dropped.

Every decision comes from a seeded :class:`random.Random` or from explicit call numbers, so a run
can be repeated exactly.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ReadTimeoutError

Handler = Callable[[dict[str, Any], Any], Any]

THROTTLED = "ProvisionedThroughputExceededException"
LOST_ACK = "InternalFailure"


class ProcessDied(BaseException):
    """The function's process died right after a side effect (timeout, out of memory, kill).

    A ``BaseException`` on purpose: code under test must not be able to catch it with
    ``except Exception``, exactly as it cannot catch a real crash.
    """


class InvocationFailedError(RuntimeError):
    """What the caller of a Lambda function sees when the invocation failed (a function error)."""


# ---------------------------------------------------------------------------------------------
# Producer side: Kinesis PutRecords that loses acknowledgements and throttles
# ---------------------------------------------------------------------------------------------


@dataclass
class KinesisFaultReport:
    calls: int = 0
    entries: int = 0  # entries the producer sent, every attempt counted
    forwarded: int = 0  # entries that reached the stream
    lost_acks: int = 0  # forwarded, but reported to the producer as failed
    throttled: int = 0  # not forwarded, reported as throttled
    lost_calls: int = 0  # calls whose entries all landed but whose answer never came back
    lost_call_entries: int = 0
    distinct_forwarded: set[bytes] = field(default_factory=set, repr=False)  # digests of the data

    @property
    def copies_in_stream(self) -> int:
        """Records in the stream beyond the first copy of each distinct payload."""
        return self.forwarded - len(self.distinct_forwarded)

    def figures(self) -> dict[str, int]:
        return {
            "put_records_calls": self.calls,
            "entries_sent": self.entries,
            "entries_forwarded": self.forwarded,
            "lost_acknowledgements": self.lost_acks,
            "throttled": self.throttled,
            "lost_calls": self.lost_calls,
            "lost_call_entries": self.lost_call_entries,
            "duplicate_records_in_stream": self.copies_in_stream,
        }


class UnreliableKinesis:
    """A Kinesis client whose ``put_records`` misbehaves at the given rates (per entry, per attempt).

    With probability ``lost_call_rate`` a call is forwarded whole and its answer lost (a read
    timeout). Otherwise, for each entry: with probability ``throttle_rate`` it is throttled; else
    it is forwarded, and ``lost_ack_rate`` of all entries get an ``InternalFailure`` instead of
    their acknowledgement (the producer retries them, so the stream holds them twice). Every other
    method is the wrapped client's.
    """

    def __init__(
        self,
        client: Any,
        *,
        lost_ack_rate: float,
        throttle_rate: float,
        lost_call_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not (lost_ack_rate >= 0 and throttle_rate >= 0 and lost_ack_rate + throttle_rate <= 1):
            raise ValueError("rates must be >= 0 and add up to at most 1")
        if not 0 <= lost_call_rate <= 1:
            raise ValueError("lost_call_rate must be 0..1")
        self._client = client
        self._throttle_rate = throttle_rate
        # Drawn only for entries that were not throttled, so that lost_ack_rate is a share of all entries.
        self._lost_ack_given_forwarded = lost_ack_rate / (1 - throttle_rate) if throttle_rate < 1 else 0.0
        self._lost_call_rate = lost_call_rate
        self._rng = random.Random(seed)
        self.report = KinesisFaultReport()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_records(self, **kwargs: Any) -> Mapping[str, Any]:
        report = self.report
        report.calls += 1
        entries: list[dict[str, Any]] = list(kwargs["Records"])
        report.entries += len(entries)
        if self._rng.random() < self._lost_call_rate:
            self._forward(kwargs, entries)
            report.lost_calls += 1
            report.lost_call_entries += len(entries)
            raise ReadTimeoutError(endpoint_url="https://kinesis.us-east-1.amazonaws.com/")
        throttled = [self._rng.random() < self._throttle_rate for _ in entries]
        answers = iter(self._forward(kwargs, [e for e, t in zip(entries, throttled, strict=True) if not t]))
        results: list[dict[str, Any]] = []
        for was_throttled in throttled:
            if was_throttled:
                report.throttled += 1
                results.append({"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard (injected)"})
                continue
            answer = next(answers)
            if "ErrorCode" not in answer and self._rng.random() < self._lost_ack_given_forwarded:
                report.lost_acks += 1
                results.append({"ErrorCode": LOST_ACK, "ErrorMessage": "acknowledgement lost (injected)"})
                continue
            results.append(answer)
        return {"FailedRecordCount": sum(1 for r in results if "ErrorCode" in r), "Records": results}

    def _forward(self, request: Mapping[str, Any], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not entries:
            return []
        call = {key: value for key, value in request.items() if key != "Records"}
        response = self._client.put_records(**call, Records=entries)
        answers: list[dict[str, Any]] = response["Records"]
        for entry, answer in zip(entries, answers, strict=True):
            if "ErrorCode" not in answer:
                self.report.forwarded += 1
                self.report.distinct_forwarded.add(hashlib.sha1(entry["Data"], usedforsecurity=False).digest())
        return answers


# ---------------------------------------------------------------------------------------------
# Consumer side: crashes after side effects
# ---------------------------------------------------------------------------------------------


class DieAfterCall:
    """A boto3 client proxy: the ``die_on``-th calls (1-based) of ``operation`` run, then the process dies.

    Everything else (other operations, ``exceptions``, ``meta``) is the wrapped client's.
    """

    def __init__(self, client: Any, operation: str, *, die_on: Collection[int]) -> None:
        self._client = client
        self._operation = operation
        self._die_on = frozenset(die_on)
        self.calls = 0
        self.deaths = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._operation:
            return attribute

        def call(**kwargs: Any) -> Any:
            result = attribute(**kwargs)
            self.calls += 1
            if self.calls in self._die_on:
                self.deaths += 1
                raise ProcessDied(f"process died right after {self._operation} call #{self.calls} (injected)")
            return result

        return call


@dataclass
class LambdaRuntime:
    """Invokes a handler as the Lambda service does; a dead process is a function error to the caller."""

    handler: Handler
    invocations: int = 0
    failures: int = 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.invocations += 1
        try:
            return self.handler(event, context)
        except ProcessDied as death:
            self.failures += 1
            raise InvocationFailedError(str(death)) from None


CrashRule = Callable[[int, dict[str, Any], Any], bool]
"""(invocation number, 1-based; event; the handler's answer) -> whether the process dies now."""


def on_invocations(*numbers: int) -> CrashRule:
    """Die after the given invocations (1-based, retries counted)."""
    chosen = frozenset(numbers)
    return lambda number, _event, _answer: number in chosen


@dataclass
class CrashAfterReturn:
    """The chosen invocations run to the end, side effects included, and then the process dies
    instead of answering: the answer (for a stream consumer, the checkpoint) is what is lost."""

    handler: Handler
    crash_when: CrashRule
    invocations: int = 0
    crashes: int = 0
    crashed: list[tuple[dict[str, Any], Any]] = field(default_factory=list)  # (event, lost answer)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.invocations += 1
        answer = self.handler(event, context)
        if self.crash_when(self.invocations, event, answer):
            self.crashes += 1
            self.crashed.append((event, answer))
            raise ProcessDied(f"invocation #{self.invocations} died after its side effects (injected)")
        return answer


@dataclass
class FirehoseInvocationRetries:
    """Firehose's handling of a failed transformation invocation (see the module doc)."""

    handler: Handler
    attempts: int = 3
    invocations: int = 0
    retries: int = 0
    exhausted_batches: int = 0

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        for attempt in range(1, self.attempts + 1):
            self.invocations += 1
            try:
                answer: dict[str, Any] = self.handler(event, context)
            except (Exception, ProcessDied):  # a failed invocation, whatever the cause
                if attempt < self.attempts:
                    self.retries += 1
                continue
            return answer
        self.exhausted_batches += 1
        return {
            "records": [
                {"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]} for r in event["records"]
            ]
        }
