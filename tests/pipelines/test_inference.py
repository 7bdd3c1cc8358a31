"""Inference: SageMaker's handler functions and the HTTP container contract."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines import inference
from pipelines.model import ChurnModel
from pipelines.tables import read_table

RECORD = {
    "user_id": "u-0042",
    "sessions_30d": 3,
    "watch_minutes_30d": 250.0,
    "avg_rating_30d": None,
    "plan": "basic",
    "price_increased_60d": True,
}


def _serve(model_dir: Path) -> Iterator[inference.InferenceServer]:
    server = inference.InferenceServer(model_dir, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.holder.ready.wait(timeout=60)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server(small_model_dir: Path) -> Iterator[inference.InferenceServer]:
    yield from _serve(small_model_dir)


def _request(
    server: inference.InferenceServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _post(server: inference.InferenceServer, payload: Any, content_type: str = "application/json") -> tuple[int, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _request(server, "POST", "/invocations", body, {"Content-Type": content_type})


def test_handlers_score_a_record_a_list_and_instances(small_model_dir: Path) -> None:
    model = inference.model_fn(small_model_dir)
    single = inference.predict_fn(inference.input_fn(json.dumps(RECORD), "application/json"), model)
    many = inference.predict_fn(inference.input_fn(json.dumps([RECORD, {**RECORD, "user_id": None}])), model)
    wrapped = inference.predict_fn(inference.input_fn(json.dumps({"instances": [RECORD]}).encode()), model)
    assert single["scores"] == wrapped["scores"] == many["scores"][:1]
    assert many["user_ids"] == ["u-0042", None]
    assert single["model_version"] == model.version
    assert 0 < single["scores"][0] < 1
    body, content_type = inference.output_fn(single, "application/json")
    assert json.loads(body) == single and content_type == "application/json"


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"\xff\xfe", "application/json", "not UTF-8"),
        (b"[]", "application/json", "no record"),
        (b"42", "application/json", "must be a JSON object"),
        (b'[{"sessions_30d": 1}, 7]', "application/json", "record 1 must be a JSON object"),
        (b"a,b\n1,2", "text/csv", "not supported"),
    ],
)
def test_input_fn_refuses_bad_bodies_with_a_reason(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(inference.BadRequestError, match=reason):
        inference.input_fn(body, content_type)


def test_ping_answers_once_the_model_is_loaded(server: inference.InferenceServer, small_model: ChurnModel) -> None:
    status, body = _request(server, "GET", "/ping")
    assert (status, body) == (200, {"status": "ok", "model_version": small_model.version})


def test_invocations_match_batch_scoring(
    server: inference.InferenceServer, small_splits: Path, small_model: ChurnModel
) -> None:
    # Given test rows as a client would send them (JSON nulls for missing values)
    rows = read_table(small_splits / "test").head(25)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items() if k != "cutoff_time"}
        for r in rows.to_dict(orient="records")
    ]
    # When they are posted to the container
    status, body = _post(server, records)
    # Then the scores are the batch scores, with the model version and the users echoed
    assert status == 200
    np.testing.assert_allclose(body["scores"], small_model.predict(rows), rtol=1e-6)
    assert body["user_ids"] == rows["user_id"].tolist()
    assert body["model_version"] == small_model.version


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "reason"),
    [
        (b"{oops", "application/json", 400, "not valid JSON"),
        ({"instances": []}, "application/json", 400, "no record"),
        ({"sessions_30d": "many"}, "application/json", 400, "must be a number"),
        ({"plan": 3}, "application/json", 400, "must be a string"),
        ({"favourite_colour": "blue"}, "application/json", 400, "none of the model's features"),
        (b"1,2,3", "text/csv", 415, "not supported"),
    ],
)
def test_bad_requests_get_a_client_error_with_a_reason(
    server: inference.InferenceServer, payload: Any, content_type: str, status: int, reason: str
) -> None:
    got_status, body = _post(server, payload, content_type)
    assert got_status == status
    assert reason in body["error"]


def test_unknown_paths_missing_length_and_unacceptable_answers(server: inference.InferenceServer) -> None:
    assert _request(server, "GET", "/metrics")[0] == 404
    assert _request(server, "POST", "/predict", b"{}")[0] == 404
    status, body = _request(server, "POST", "/invocations", json.dumps(RECORD).encode(), {"Accept": "text/csv"})
    assert status == 406 and "application/json" in body["error"]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/invocations")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 411
    connection.close()


def test_one_connection_serves_many_requests(server: inference.InferenceServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = json.dumps(RECORD).encode()
    for _ in range(5):
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    connection.close()


def test_ping_reports_a_model_that_could_not_load(tmp_path: Path) -> None:
    for server in _serve(tmp_path / "missing"):
        status, body = _request(server, "GET", "/ping")
        assert status == 503
        assert body["status"] != "loading"  # the load failed, and /ping says why
        assert _post(server, RECORD)[0] == 503


def test_command_line_defaults_follow_the_container_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8123")
    args = inference.parse_args(["serve"])
    assert (args.port, args.model_dir) == (8123, Path("/opt/ml/model"))
    assert inference.parse_args(["--model-dir", "/m", "--port", "9000"]).port == 9000


def test_scores_do_not_depend_on_the_batch(small_model: ChurnModel, small_splits: Path) -> None:
    rows = pd.read_parquet(small_splits / "test").head(10)
    together = small_model.predict(rows)
    alone = np.concatenate([small_model.predict(rows.iloc[[i]]) for i in range(len(rows))])
    np.testing.assert_allclose(together, alone, rtol=1e-6)
