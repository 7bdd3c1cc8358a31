"""The model deployer against moto's SageMaker control plane, with events shaped as AWS sends them.

moto implements models, endpoint configurations, endpoints, model packages, Application Auto
Scaling, S3 and SSM, but not ``UpdateEndpoint``: that one call is answered at the botocore
boundary (after botocore validated the request against the real API model), and the endpoint is
moved to the new configuration, as SageMaker does when a blue/green deployment completes, or
left where it was, as after an automatic rollback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

from lambdas.model_deployer import handler as deployer_handler
from lambdas.model_deployer.artifacts import ServingArtifactStore
from lambdas.model_deployer.deployer import Deployer, EndpointNotServing
from lambdas.model_deployer.registry import ModelRegistry
from lambdas.model_deployer.scaling import Autoscaling
from lambdas.model_deployer.settings import Settings, environment
from lambdas.model_deployer.state import StateStore
from platform_core.config import load_config
from platform_core.names import Names
from tests.serving.conftest import ACCOUNT, REGION, load_event, model_archive, package_event

ARTIFACTS = f"mlp-artifacts-{ACCOUNT}-{REGION}"
RAW = f"mlp-raw-{ACCOUNT}-{REGION}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlp-serving-model-execution"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@dataclass
class World:
    """moto's AWS with the deployer wired to it, and what the deployer asked SageMaker to do."""

    env_name: str
    settings: Settings
    sagemaker: Any  # the tests' own client (setup and inspection)
    deployer_sagemaker: Any  # the deployer's client: its writes are recorded, UpdateEndpoint answered
    autoscaling: Any
    s3: Any
    ssm: Any
    updates: list[dict[str, Any]] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    roll_back_next_update: bool = False

    @property
    def names(self) -> Names:
        return Names(load_config(self.env_name))

    def register(self, version: int, status: str = "PendingManualApproval") -> str:
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=self.settings.model_package_group,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                        "ModelDataUrl": f"s3://{ARTIFACTS}/models/churn/v{version}/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
        assert arn.endswith(f"/{version}")
        if status != "PendingManualApproval":
            self.set_status(arn, status)
        return str(arn)

    def set_status(self, arn: str, status: str) -> None:
        self.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        return deployer_handler.handler(event, None)

    def approve_and_handle(self, version: int) -> dict[str, Any]:
        self.set_status(self.arn(version), "Approved")
        return self.handle(package_event(self.settings.model_package_group, version, "Approved"))

    def arn(self, version: int) -> str:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{self.settings.model_package_group}/{version}"

    def endpoint(self) -> dict[str, Any]:
        return dict(self.sagemaker.describe_endpoint(EndpointName=self.settings.endpoint_name))

    def endpoint_in_service_event(self) -> dict[str, Any]:
        return load_event("endpoint_state_change", EndpointName=self.settings.endpoint_name)

    def manifest(self) -> dict[str, Any]:
        value = self.ssm.get_parameter(Name=self.settings.manifest_parameter)["Parameter"]["Value"]
        return dict(json.loads(value))

    def manifest_version(self) -> int:
        return int(self.ssm.get_parameter(Name=self.settings.manifest_parameter)["Parameter"]["Version"])

    def set_endpoint_status(self, status: str) -> None:
        sagemaker_backends[ACCOUNT][REGION].endpoints[self.settings.endpoint_name].endpoint_status = status


@dataclass
class Aws:
    """moto for the whole module (clients are slow to create); each test resets its state."""

    mock: Any
    sagemaker: Any
    deployer_sagemaker: Any
    autoscaling: Any
    s3: Any
    ssm: Any
    current: World | None = None


def _fake_update_endpoint(aws: Aws) -> Any:
    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        world = aws.current
        assert world is not None
        request = json.loads(params["body"])
        world.updates.append(request)
        endpoint = sagemaker_backends[ACCOUNT][REGION].endpoints[request["EndpointName"]]
        if world.roll_back_next_update:
            world.roll_back_next_update = False  # an alarm fired: SageMaker keeps the old fleet
        else:
            endpoint.endpoint_config_name = request["EndpointConfigName"]
        return AWSResponse(params["url"], 200, {}, None), {"EndpointArn": endpoint.arn}

    return answer


def _record_writes(aws: Aws) -> Any:
    def record(model: Any, **_: Any) -> None:
        if aws.current is not None and model.name.startswith(("Create", "Update", "Delete")):
            aws.current.writes.append(model.name)

    return record


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    mock = mock_aws()
    mock.start()
    try:
        session = boto3.Session(region_name=REGION)
        shared = Aws(
            mock=mock,
            sagemaker=session.client("sagemaker"),
            deployer_sagemaker=session.client("sagemaker"),
            autoscaling=session.client("application-autoscaling"),
            s3=session.client("s3"),
            ssm=session.client("ssm"),
        )
        shared.deployer_sagemaker.meta.events.register(
            "before-call.sagemaker.UpdateEndpoint", _fake_update_endpoint(shared)
        )
        shared.deployer_sagemaker.meta.events.register("before-call.sagemaker", _record_writes(shared))
        yield shared
    finally:
        mock.stop()


@pytest.fixture(params=["dev"])
def env_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def world(aws: Aws, env_name: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    aws.mock.reset()
    settings = Settings.from_env(
        environment(
            load_config(env_name),
            execution_role_arn=ROLE,
            kms_key_arn=KEY,
            artifacts_bucket=ARTIFACTS,
            capture_s3_uri=f"s3://{RAW}/serving/data-capture",
        )
    )
    w = World(
        env_name=env_name,
        settings=settings,
        sagemaker=aws.sagemaker,
        deployer_sagemaker=aws.deployer_sagemaker,
        autoscaling=aws.autoscaling,
        s3=aws.s3,
        ssm=aws.ssm,
    )
    w.s3.create_bucket(Bucket=ARTIFACTS)
    archive = model_archive(model_dir)
    for version in range(1, 4):
        w.s3.put_object(Bucket=ARTIFACTS, Key=f"models/churn/v{version}/model.tar.gz", Body=archive)
    w.sagemaker.create_model_package_group(ModelPackageGroupName=settings.model_package_group)
    deployer = Deployer(
        settings=settings,
        sagemaker=lambda: w.deployer_sagemaker,
        registry=ModelRegistry(lambda: w.deployer_sagemaker, settings.model_package_group),
        artifacts=ServingArtifactStore(lambda: w.s3, bucket=ARTIFACTS, prefix=settings.serving_models_prefix),
        autoscaling=Autoscaling(lambda: w.autoscaling, settings),
        state=StateStore(lambda: w.ssm, settings.manifest_parameter),
    )
    monkeypatch.setattr(deployer_handler, "deployer", lambda: deployer)
    aws.current = w
    yield w
    aws.current = None


# -- approval -------------------------------------------------------------------------------------


def test_an_approved_package_creates_model_config_and_serverless_endpoint_in_dev(world: World) -> None:
    # Given version 1 registered and then approved
    world.register(1)

    # When its approval event arrives
    outcome = world.approve_and_handle(1)

    # Then the model comes from the package, the config is serverless, and the endpoint is created
    assert outcome["action"] == "creating"
    release = outcome["release"]
    assert release.startswith("mlp-dev-inference-v1-")
    model = world.sagemaker.describe_model(ModelName=release)
    assert model["Containers"] == [{"ModelPackageName": world.arn(1)}]
    assert model["ExecutionRoleArn"] == ROLE
    config = world.sagemaker.describe_endpoint_config(EndpointConfigName=release)
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": release,
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
        }
    ]
    assert not config.get("DataCaptureConfig")  # serverless endpoints cannot capture
    assert world.endpoint()["EndpointConfigName"] == release
    assert world.manifest()["attempt"]["release"] == release
    assert world.manifest()["serving"] is None


def test_once_in_service_the_manifest_and_the_versions_transform_are_published(world: World, model_dir: Path) -> None:
    # Given version 1 deployed
    world.register(1)
    release = world.approve_and_handle(1)["release"]

    # When the endpoint reports it is in service
    outcome = world.handle(world.endpoint_in_service_event())

    # Then the manifest names the release and the transform copied out of model.tar.gz
    assert outcome["action"] == "serving"
    assert outcome["changes"] == ["manifest"]  # serverless: no autoscaling
    serving = world.manifest()["serving"]
    assert serving["endpoint_config_name"] == release
    assert serving["model_package_version"] == 1
    assert serving["transform_uri"] == f"s3://{ARTIFACTS}/serving/models/mlp-dev-churn/v1/transform.json"
    copied = world.s3.get_object(Bucket=ARTIFACTS, Key="serving/models/mlp-dev-churn/v1/transform.json")
    assert copied["Body"].read() == (model_dir / "transform.json").read_bytes()
    assert world.manifest()["attempt"] is None


@pytest.mark.parametrize("env_name", ["prod"], indirect=True)
def test_prod_deploys_instances_with_data_capture_and_attaches_target_tracking(world: World) -> None:
    # Given an approved version 1 in prod
    world.register(1)

    # When it is approved and the endpoint later comes into service
    release = world.approve_and_handle(1)["release"]
    outcome = world.handle(world.endpoint_in_service_event())

    # Then two instances (spread over AZs by SageMaker) capture requests and responses to the raw bucket
    config = world.sagemaker.describe_endpoint_config(EndpointConfigName=release)
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 2)
    assert config["KmsKeyId"] == KEY
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["DestinationS3Uri"] == f"s3://{RAW}/serving/data-capture"
    assert capture["KmsKeyId"] == KEY
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert capture["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/json"]}
    # And autoscaling tracks invocations per instance between the configured bounds
    assert outcome["changes"] == ["scalable_target", "scaling_policy", "manifest"]
    (target,) = world.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == "endpoint/mlp-prod-inference/variant/AllTraffic"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 10)
    (policy,) = world.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert tracking["TargetValue"] == float(load_config("prod").serving.invocations_per_instance_target)


@pytest.mark.parametrize("env_name", ["prod"], indirect=True)
def test_a_newer_approval_updates_blue_green_with_canary_and_alarm_rollback(world: World) -> None:
    # Given version 1 serving in prod
    world.register(1)
    world.approve_and_handle(1)
    world.handle(world.endpoint_in_service_event())
    world.register(2)

    # When version 2 is approved
    outcome = world.approve_and_handle(2)

    # Then the endpoint is updated to version 2 with a canary, baking and the rollback alarms
    assert outcome["action"] == "updating"
    (update,) = world.updates
    assert update["EndpointConfigName"] == outcome["release"] and "-v2-" in outcome["release"]
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    serving = load_config("prod").serving
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": serving.canary_percent},
        "WaitIntervalInSeconds": serving.canary_wait_seconds,
    }
    assert policy["TerminationWaitInSeconds"] == serving.final_bake_seconds
    assert update["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [
            {"AlarmName": "mlp-prod-inference-rollback-errors"},
            {"AlarmName": "mlp-prod-inference-rollback-latency"},
        ]
    }


def test_dev_updates_serverless_without_a_blue_green_policy(world: World) -> None:
    # Given version 1 serving in dev (serverless)
    world.register(1)
    world.approve_and_handle(1)
    world.handle(world.endpoint_in_service_event())
    world.register(2)

    # When version 2 is approved
    world.approve_and_handle(2)

    # Then the update carries no deployment policy: SageMaker swaps all traffic at once
    (update,) = world.updates
    assert "-v2-" in update["EndpointConfigName"]
    assert "DeploymentConfig" not in update


# -- events that must change nothing --------------------------------------------------------------


def test_a_rejected_package_is_never_deployed(world: World) -> None:
    # Given version 1 registered and rejected
    world.register(1, status="Rejected")

    # When its rejection event arrives
    outcome = world.handle(package_event("mlp-dev-churn", 1, "Rejected"))

    # Then nothing is created anywhere
    assert outcome["action"] == "nothing_approved"
    assert world.writes == []
    assert world.sagemaker.list_endpoints()["Endpoints"] == []


def test_a_stale_approval_event_of_a_package_rejected_since_deploys_nothing(world: World) -> None:
    # Given version 1 approved, then rejected before the deployer ran
    world.register(1, status="Rejected")

    # When the (now stale) approval event arrives
    outcome = world.handle(package_event("mlp-dev-churn", 1, "Approved"))

    # Then the registry's current answer wins
    assert outcome["action"] == "nothing_approved"
    assert world.writes == []


def test_an_event_of_another_model_package_group_is_ignored(world: World) -> None:
    # Given an approved package in our group, not deployed yet
    world.register(1, status="Approved")

    # When an approval of another team's group arrives
    outcome = world.handle(package_event("someone-elses-models", 7, "Approved"))

    # Then it is ignored: no registry read decides anything, nothing is created
    assert outcome["action"] == "ignored"
    assert "someone-elses-models" in outcome["detail"]
    assert world.writes == []


def test_a_replayed_approval_changes_nothing(world: World) -> None:
    # Given version 1 deployed and serving, its manifest written
    world.register(1)
    event = package_event("mlp-dev-churn", 1, "Approved")
    world.set_status(world.arn(1), "Approved")
    world.handle(event)
    world.handle(world.endpoint_in_service_event())
    writes, manifest_version = list(world.writes), world.manifest_version()

    # When EventBridge delivers the same approval again (and the schedule runs)
    first = world.handle(event)
    second = world.handle(load_event("scheduled_event"))

    # Then no SageMaker write happens and the manifest is not rewritten
    assert (first["action"], first["changes"]) == ("serving", [])
    assert (second["action"], second["changes"]) == ("serving", [])
    assert world.writes == writes
    assert world.manifest_version() == manifest_version


def test_an_approval_of_an_older_version_does_not_move_the_endpoint_back(world: World) -> None:
    # Given versions 1 and 2 registered, 2 approved and serving
    world.register(1)
    world.register(2)
    world.approve_and_handle(2)
    world.handle(world.endpoint_in_service_event())
    writes = list(world.writes)

    # When version 1 is approved afterwards
    outcome = world.approve_and_handle(1)

    # Then the endpoint stays on version 2
    assert outcome["action"] == "serving" and "-v2-" in outcome["release"]
    assert world.writes == writes


def test_rejecting_the_served_version_rolls_back_to_the_latest_approved_one(world: World) -> None:
    # Given versions 1 and 2 approved, 2 serving
    world.register(1, status="Approved")
    world.register(2)
    world.approve_and_handle(2)
    world.handle(world.endpoint_in_service_event())

    # When version 2 is rejected
    world.set_status(world.arn(2), "Rejected")
    outcome = world.handle(package_event("mlp-dev-churn", 2, "Rejected"))

    # Then the endpoint goes back to version 1
    assert outcome["action"] == "updating"
    assert "-v1-" in world.updates[-1]["EndpointConfigName"]


# -- the endpoint's own state ------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ["prod"], indirect=True)
def test_a_deployment_rolled_back_by_its_alarms_is_not_retried(world: World) -> None:
    # Given version 1 serving and version 2's deployment rolled back by an alarm
    world.register(1)
    world.approve_and_handle(1)
    world.handle(world.endpoint_in_service_event())
    world.register(2)
    world.roll_back_next_update = True
    world.approve_and_handle(2)
    assert "-v1-" in world.endpoint()["EndpointConfigName"]

    # When the endpoint state change and the schedule wake the deployer
    after_event = world.handle(world.endpoint_in_service_event())
    after_tick = world.handle(load_event("scheduled_event"))

    # Then it does not try version 2 again (it would roll back again); a person or version 3 decides
    assert after_event["action"] == after_tick["action"] == "rolled_back"
    assert len(world.updates) == 1


def test_a_busy_endpoint_is_left_alone_until_a_later_trigger(world: World) -> None:
    # Given version 1 deployed and the endpoint still updating
    world.register(1)
    world.approve_and_handle(1)
    world.set_endpoint_status("Updating")
    writes = list(world.writes)

    # When the schedule runs
    outcome = world.handle(load_event("scheduled_event"))

    # Then nothing is asked of SageMaker
    assert outcome["action"] == "busy"
    assert world.writes == writes


def test_a_failed_endpoint_raises_for_a_person(world: World) -> None:
    # Given a deployed endpoint that failed
    world.register(1)
    world.approve_and_handle(1)
    world.set_endpoint_status("Failed")

    # When the deployer runs, Then it fails loudly (error alarm, on-failure queue)
    with pytest.raises(EndpointNotServing, match="Failed"):
        world.handle(load_event("scheduled_event"))
