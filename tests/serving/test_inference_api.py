"""The inference API handler with API Gateway REST proxy events, end to end.

What is real: the handler's composition (settings from the stack's environment, clients with their
timeouts and retry budget), the deployed-model manifest and artifacts (moto SSM and S3), the
capture written in dev (moto S3) and the model itself: ``InvokeEndpoint`` requests are answered at
the botocore boundary by the real inference container (``pipelines.inference`` on loopback, with a
small trained model), or, to test timeouts, by the ``ReadTimeoutError`` botocore raises when an
endpoint does not answer in time. The online store is the in-memory store of the online features
writer (moto has no featurestore-runtime), filled with records built by the schema package.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws

from lambdas.inference_api import clients
from lambdas.inference_api import handler as api_handler
from lambdas.inference_api.settings import environment, get_settings
from lambdas.online_features.feature_store import InMemoryFeatureStore
from pipelines.inference import InferenceServer
from platform_core.config import load_config
from platform_core.names import Names
from platform_core.schemas.features import USER_CLICKSTREAM, USER_SUBSCRIPTION, to_feature_record
from platform_core.schemas.serving import BATCH_PREDICTION_COLUMNS
from tests.serving.conftest import ACCOUNT, REGION, load_event

ARTIFACTS = f"mlp-dev-artifacts-{ACCOUNT}-{REGION}"
RAW = f"mlp-dev-raw-{ACCOUNT}-{REGION}"
GROUPS = {USER_SUBSCRIPTION.name: "mlp-dev-user-subscription", USER_CLICKSTREAM.name: "mlp-dev-user-clickstream"}


@dataclass
class Endpoint:
    """Answers InvokeEndpoint: by the real container, or with a read timeout."""

    port: int
    mode: str = "container"
    calls: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, request: Any, **_: Any) -> AWSResponse:
        self.calls += 1
        if self.mode == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        body = request.body if isinstance(request.body, bytes) else request.body.read()
        self.bodies.append(json.loads(body))
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return AWSResponse(request.url, response.status, {"Content-Type": "application/json"}, _Raw(payload))


class _Raw(io.BytesIO):
    """The urllib3-like body botocore reads a response from (read, or stream for small bodies)."""

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self.getvalue()


@pytest.fixture(scope="module")
def container(model_dir: Path) -> Iterator[int]:
    server = InferenceServer(model_dir, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.holder.ready.wait(30)
    yield server.port
    server.shutdown()
    server.server_close()


def _records() -> InMemoryFeatureStore:
    """u-0001's records: subscription features 6 hours old, clickstream features 5 minutes old."""
    now = datetime.now(UTC)
    store = InMemoryFeatureStore()
    subscription: dict[str, Any] = {name: None for name in USER_SUBSCRIPTION.feature_names}
    subscription.update(
        user_id="u-0001",
        event_time=now - timedelta(hours=6),
        is_active=1,
        plan="premium",
        price=14.99,
        renewal_month=4,
        days_until_renewal=12,
        tenure_days=400.0,
        cancellations=1,
        days_since_last_transition=90.0,
    )
    store.put_record(GROUPS[USER_SUBSCRIPTION.name], to_feature_record(USER_SUBSCRIPTION, subscription))
    clicks = {"user_id": "u-0001", "event_time": now - timedelta(minutes=5), "sessions_7d": 3, "events_7d": 40}
    store.put_record(GROUPS[USER_CLICKSTREAM.name], to_feature_record(USER_CLICKSTREAM, clicks))
    # u-0002 went quiet 20 days ago: the online clickstream record still says what they did then
    subscription.update(user_id="u-0002")
    store.put_record(GROUPS[USER_SUBSCRIPTION.name], to_feature_record(USER_SUBSCRIPTION, subscription))
    quiet = {"user_id": "u-0002", "event_time": now - timedelta(days=20), "sessions_7d": 9, "events_7d": 80}
    store.put_record(GROUPS[USER_CLICKSTREAM.name], to_feature_record(USER_CLICKSTREAM, quiet))
    return store


@pytest.fixture(scope="module")
def deployed(container: int, model_dir: Path) -> Iterator[Endpoint]:
    """moto, the stack's environment and a deployed model, once for the module."""
    config = load_config("dev")
    names = Names(config)
    cached = (get_settings, api_handler.scorer, clients.sagemaker_runtime, clients.ssm, clients.s3)
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in environment(config, feature_groups=GROUPS, capture_bucket=RAW).items():
            patch.setenv(name, value)
        for factory in cached:
            factory.cache_clear()
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (ARTIFACTS, RAW):
            s3.create_bucket(Bucket=bucket)
        folder = "serving/models/mlp-dev-churn/v1/"
        for name in ("transform.json", "metadata.json"):
            s3.put_object(Bucket=ARTIFACTS, Key=f"{folder}{name}", Body=(model_dir / name).read_bytes())
        manifest = {
            "serving": {
                "endpoint_config_name": "mlp-dev-inference-v1-0a1b2c3d",
                "model_package_version": 1,
                "transform_uri": f"s3://{ARTIFACTS}/{folder}transform.json",
                "metadata_uri": f"s3://{ARTIFACTS}/{folder}metadata.json",
            },
            "attempt": None,
        }
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=names.serving_manifest_parameter, Value=json.dumps(manifest), Type="String"
        )
        endpoint = Endpoint(port=container)
        clients.sagemaker_runtime().meta.events.register_first(
            "before-send.sagemaker-runtime.InvokeEndpoint", endpoint.answer
        )
        store = _records()
        patch.setattr(api_handler, "online_store", lambda: store)
        yield endpoint
        for factory in cached:
            factory.cache_clear()


@pytest.fixture
def api(deployed: Endpoint) -> Endpoint:
    """The deployed API with a healthy endpoint that has not been called yet."""
    deployed.mode, deployed.calls = "container", 0
    deployed.bodies.clear()
    return deployed


def _call(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = api_handler.handler(event, None)
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def _get(user_id: str) -> dict[str, Any]:
    event = load_event("api_gateway_get_score")
    event["pathParameters"] = {"user_id": user_id}
    event["path"] = f"/users/{user_id}/churn-score"
    return event


def test_a_known_user_gets_the_models_score_version_and_feature_ages(api: Endpoint, model_dir: Path) -> None:
    # Given user u-0001 with both feature records online
    # When a client asks for the user's churn score
    status, body, _ = _call(_get("u-0001"))

    # Then the container's score for exactly the online features comes back with its version
    assert status == 200
    assert body["fallback"] is False
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert body["model_version"] == metadata["model_version"]
    assert body["model_package_version"] == 1
    assert 0.0 < body["score"] < 1.0
    ages = body["features_age_seconds"]
    assert 6 * 3600 - 60 < ages["user-subscription"] < 6 * 3600 + 60
    assert 5 * 60 - 60 < ages["user-clickstream"] < 5 * 60 + 60
    (sent,) = api.bodies
    assert sent["user_id"] == "u-0001" and sent["plan"] == "premium" and sent["sessions_7d"] == 3
    # Features the model reads but the record lacked are reported (the transform imputes them)
    assert "sessions_30d" in body["missing_features"] and "plan" not in body["missing_features"]
    assert body["inference_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def test_the_same_score_comes_from_a_json_body(api: Endpoint) -> None:
    # Given the same user, asked for through POST /churn-score
    status_get, by_path, _ = _call(_get("u-0001"))
    status_post, by_body, _ = _call(load_event("api_gateway_post_score"))

    # Then both routes give the same answer
    assert status_get == status_post == 200
    assert by_body["score"] == by_path["score"]


def test_dev_captures_the_exchange_in_sagemakers_format(api: Endpoint) -> None:
    # Given a serverless endpoint (dev), which cannot capture itself
    # When a user is scored
    _call(_get("u-0001"))

    # Then the API wrote one capture line under the endpoint's capture prefix
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=RAW, Prefix="serving/data-capture/mlp-dev-inference/AllTraffic/")["Contents"]
    (key,) = [item["Key"] for item in listed if item["Key"].endswith("/c6af9ac6-7b61-11e6-9a41-93e8deadbeef.jsonl")]
    line = json.loads(s3.get_object(Bucket=RAW, Key=key)["Body"].read())
    assert line["eventVersion"] == "0"
    assert line["eventMetadata"]["eventId"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    answer = json.loads(line["captureData"]["endpointOutput"]["data"])
    assert answer["user_ids"] == ["u-0001"]
    assert json.loads(line["captureData"]["endpointInput"]["data"])["user_id"] == "u-0001"


def test_a_record_older_than_the_maximum_age_is_not_sent_to_the_model(api: Endpoint) -> None:
    # Given u-0002, whose clickstream record is 20 days old (older than max_feature_age_days, 8)
    # When a client asks for the user's churn score
    status, body, _ = _call(_get("u-0002"))

    # Then the model scores without those features, as training saw users without a fresh snapshot
    assert status == 200 and body["fallback"] is False
    (sent,) = api.bodies
    assert sent["plan"] == "premium"
    assert sent["sessions_7d"] is None and sent["events_7d"] is None
    assert "sessions_7d" in body["missing_features"]
    # and the response still says how old the record was
    assert 20 * 86400 - 60 < body["features_age_seconds"]["user-clickstream"] < 20 * 86400 + 60


def test_an_unknown_user_is_404(api: Endpoint) -> None:
    status, body, _ = _call(_get("u-9999"))

    assert status == 404
    assert "u-9999" in body["error"]
    assert api.calls == 0  # the endpoint is not asked about nobody


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('["u-0001"]', "must be a JSON object"),
        ('{"user": "u-0001"}', "user_id is required"),
        ('{"user_id": 42}', "user_id must be a string"),
        ('{"user_id": "has space"}', "printable characters without spaces"),
        (None, "body must be a JSON object"),
    ],
)
def test_a_malformed_body_is_400_with_the_reason(api: Endpoint, body: str | None, reason: str) -> None:
    event = load_event("api_gateway_post_score")
    event["body"] = body

    status, answer, _ = _call(event)

    assert status == 400
    assert reason in answer["error"]
    assert api.calls == 0


def test_a_slow_endpoint_gets_one_retry_then_a_503_with_the_prior_as_fallback(api: Endpoint, model_dir: Path) -> None:
    # Given an endpoint that does not answer within the read timeout
    api.mode = "timeout"

    # When a user is scored
    status, body, headers = _call(_get("u-0001"))

    # Then after the one retry the caller gets 503 with the documented fallback
    assert api.calls == 2
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert body["fallback"] is True
    assert body["reason"] == "endpoint_timeout"
    weight = json.loads((model_dir / "metadata.json").read_text())["scale_pos_weight"]
    assert body["score"] == pytest.approx(1 / (1 + weight))  # the training churn rate
    assert body["model_version"] is None


def test_the_predictions_table_has_the_columns_of_the_containers_answer(model_dir: Path) -> None:
    # Given the container's answer to one record (what batch transform writes per line)
    from pipelines import inference

    answer = inference.predict_fn([{"user_id": "u-0001", "plan": "basic"}], inference.model_fn(model_dir))

    # Then the Glue table of batch predictions declares exactly its fields
    assert [name for name, _, _ in BATCH_PREDICTION_COLUMNS] == sorted(answer)
