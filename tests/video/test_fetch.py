"""HTTP GET with retries against the loopback camera."""

from __future__ import annotations

import time

import pytest

from lambdas.video_ingest.fetch import Fetched, FetchFailure, HttpFetcher


@pytest.fixture
def camera(camera_factory):
    return camera_factory(segments=3, window=3)


def _fetcher(**kwargs):
    pauses: list[float] = []
    settings = {"timeout_seconds": 2.0, "max_attempts": 3, "backoff_seconds": 0.01} | kwargs
    return HttpFetcher(**settings, sleep=pauses.append), pauses


def test_a_transient_404_is_retried_with_exponential_backoff(camera):
    camera.withhold(1, times=2)
    fetcher, pauses = _fetcher(backoff_seconds=0.5)
    outcome = fetcher.get(camera.base_url + "/live/seg_1.ts")
    assert isinstance(outcome, Fetched)
    assert (outcome.attempts, outcome.body) == (3, camera.segment_bytes(1))
    assert pauses == [0.5, 1.0]


def test_a_permanent_404_is_not_found_after_every_attempt(camera):
    camera.withhold(1)
    fetcher, _ = _fetcher()
    outcome = fetcher.get(camera.base_url + "/live/seg_1.ts")
    assert outcome == FetchFailure("not_found", 3, "HTTP 404 after 3 attempt(s)", 404)


def test_a_response_slower_than_the_timeout_is_a_timeout(camera):
    camera.delay(1, 5.0)
    fetcher, _ = _fetcher(timeout_seconds=0.3, max_attempts=2)
    outcome = fetcher.get(camera.base_url + "/live/seg_1.ts")
    assert isinstance(outcome, FetchFailure)
    assert (outcome.kind, outcome.attempts, outcome.cut_short) == ("timeout", 2, False)


def test_a_refused_connection_is_unreachable(camera):
    camera.go_offline()
    fetcher, _ = _fetcher()
    outcome = fetcher.get(camera.url)
    assert isinstance(outcome, FetchFailure)
    assert (outcome.kind, outcome.attempts) == ("unreachable", 3)
    assert "ConnectionRefusedError" in outcome.detail


def test_retries_stop_at_the_deadline_and_say_so(camera):
    camera.withhold(1)
    fetcher, pauses = _fetcher(backoff_seconds=5.0)
    outcome = fetcher.get(camera.base_url + "/live/seg_1.ts", deadline=time.monotonic() + 3.0)
    assert isinstance(outcome, FetchFailure)
    assert (outcome.kind, outcome.attempts, outcome.cut_short) == ("not_found", 1, True)
    assert pauses == []


def test_nothing_is_attempted_after_the_deadline(camera):
    fetcher, _ = _fetcher()
    outcome = fetcher.get(camera.url, deadline=time.monotonic() - 1)
    assert isinstance(outcome, FetchFailure)
    assert (outcome.attempts, outcome.cut_short) == (0, True)
    assert camera.requests == []


def test_a_body_over_the_limit_is_refused(camera):
    fetcher, _ = _fetcher(max_bytes=1000)
    outcome = fetcher.get(camera.base_url + "/live/seg_0.ts")
    assert isinstance(outcome, FetchFailure)
    assert (outcome.kind, outcome.attempts) == ("http_error", 1)


def test_an_unknown_path_is_a_404_without_retry_storm(camera):
    fetcher, _ = _fetcher(max_attempts=1)
    outcome = fetcher.get(camera.base_url + "/nothing/here")
    assert isinstance(outcome, FetchFailure)
    assert (outcome.kind, outcome.status) == ("not_found", 404)
