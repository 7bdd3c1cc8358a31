"""The training pipeline's SageMaker definition: preprocess -> train -> evaluate -> gate -> register.

Built offline, at synth, with the SageMaker Python SDK v3 (``sagemaker.mlops.workflow``), and
returned as canonical JSON (sorted keys, no whitespace): the same inputs always give the same bytes,
so a synth never shows a spurious change. Nothing here talks to AWS (see :func:`_offline_sdk`).

Deploy-time values (the role, the buckets, the key, the code bundle) are unknown at synth; the
caller passes *placeholders* that look like the real thing to the SDK (an ARN with a ``/``, a bucket
name) and replaces them with CloudFormation references in the returned text.

=====================  ======================================================================
step                   what runs
=====================  ======================================================================
``Preprocess``         processing job: ``pipelines/preprocess.py`` reads the curated training
                       set (``TrainingDataUri``), splits it by time, fits the feature transform
``Train``              training job: ``pipelines/train.py`` in the SageMaker XGBoost framework
                       container (script mode), class-weighted, hyperparameters and instance
                       type/count from pipeline parameters; Rabit across hosts when count > 1
``Evaluate``           processing job: ``pipelines/evaluate.py`` scores the test split and writes
                       ``evaluation.json`` (SageMaker model-quality format, a property file)
``QualityGate``        PR-AUC >= ``MinPrAuc`` and PR-AUC >= ``BaselinePrAuc`` (the approved model's)
``RegisterModel``      model package in the group, ``PendingManualApproval``, with its metrics
``QualityGateFailed``  the run fails with both numbers in its message
=====================  ======================================================================

With ``monitoring_baseline`` (Model Monitor on, ``ServingConfig.model_monitor_enabled``), a registered
model's run also writes Model Monitor's data-quality baseline, after the registration (which never
waits for Model Monitor, nor fails with it):

=============================  ==============================================================
``MonitoringBaselineDataset``  processing job: ``pipelines/monitoring_baseline.py`` writes the
                               training set as the requests the endpoint receives (JSON lines)
``DataQualityBaseline``        quality check (Model Monitor's analyzer image, baselining only):
                               ``statistics.json`` and ``constraints.json`` to the fixed prefix
                               :data:`MONITORING_BASELINE_PREFIX` that the monitoring schedule reads
=============================  ==============================================================

Code: every step runs the repository's ``pipelines/`` package from one gzip tarball (the code
bundle). The training job hands it to the framework container's script mode
(``sagemaker_submit_directory`` + ``sagemaker_program``), which extracts it, sets ``SM_HOSTS``,
``SM_CHANNEL_*`` and ``SM_MODEL_DIR`` and passes hyperparameters as ``--name value``. Processing jobs
have no such toolkit: their entrypoint extracts the bundle and runs the script as a file.

The registered model package is deployable as registered: the same image serves
``pipelines/inference.py``'s handlers through script mode (``SAGEMAKER_PROGRAM=inference.py``, a
root module the bundle carries, see :data:`SERVING_ENTRY_SOURCE`).

SDK limits met on the way (all documented in docs/training.md): ``ModelBuilder`` defaults to
uploading inference code, so ``dependencies=None``; importing ``sagemaker.mlops`` creates a boto3
client (credentials and a region must resolve without the instance metadata service); telemetry
is opted out through the session's config, which also keeps the SDK from reading a developer's
``~/.config/sagemaker/config.yaml``; the SDK re-validates that config on every lookup, so a build
validates it once (:func:`_config_validated_once`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from platform_core.names import MONITORING_PREFIX
from platform_core.schemas.features import TRAINING_SET_PREFIX
from platform_core.schemas.training import BASELINE_PR_AUC_PARAMETER, EVALUATION_PR_AUC_PATH, PR_AUC_METADATA_KEY

if TYPE_CHECKING:
    from platform_core.config import TrainingConfig

# --- names other parts rely on (tests, docs, the deployer reading a package) -----------------
PREPROCESS, TRAIN, EVALUATE = "Preprocess", "Train", "Evaluate"
GATE, REGISTER, GATE_FAILED = "QualityGate", "RegisterModel", "QualityGateFailed"
EVALUATION_PROPERTY_FILE = "Evaluation"
PR_AUC_PATH = ".".join(EVALUATION_PR_AUC_PATH)
APPROVAL_STATUS = "PendingManualApproval"
# Every execution writes under s3://<artifacts>/<ARTIFACTS_PREFIX><preprocess|model|evaluation>/<execution id>/.
ARTIFACTS_PREFIX = "training/"
# Where every execution's evaluation.json lands: registered packages point their metrics here.
EVALUATIONS_PREFIX = f"{ARTIFACTS_PREFIX}evaluation/"
# Where SageMaker's script mode extracts the bundle in training jobs, and where processing
# entrypoints extract it themselves.
CODE_INPUT_DIR = "/opt/ml/processing/code"
CODE_DIR = "/opt/ml/code"
# Serving: the framework container's script mode imports SAGEMAKER_PROGRAM from the bundle's root.
# That file is generated into the bundle (SERVING_ENTRY_SOURCE) and re-exports pipelines.inference.
SERVING_ENTRY_POINT = "inference.py"
SERVING_ENTRY_SOURCE = (
    '"""SageMaker framework serving entry point (SAGEMAKER_PROGRAM): the handlers of pipelines.inference."""\n'
    "\n"
    "from pipelines.inference import input_fn, model_fn, output_fn, predict_fn\n"
    "\n"
    '__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]\n'
)
REPOSITORY = "sagemaker-xgboost"
# Model Monitor's data-quality baseline: every registered model's run overwrites the two files under
# s3://<artifacts>/<MONITORING_BASELINE_PREFIX>, the fixed URIs the endpoint's monitoring schedule reads.
BASELINE_DATASET, DATA_QUALITY_BASELINE = "MonitoringBaselineDataset", "DataQualityBaseline"
MONITORING_BASELINE_PREFIX = f"{MONITORING_PREFIX}baseline/"
BASELINE_STATISTICS, BASELINE_CONSTRAINTS = "statistics.json", "constraints.json"
MODEL_MONITOR_REPOSITORY = "sagemaker-model-monitor-analyzer"

_PROCESSING = "/opt/ml/processing"
_JSON = "application/json"


@dataclass(frozen=True)
class HyperparameterSpec:
    """A pipeline parameter that becomes one ``train.py`` hyperparameter."""

    parameter: str  # pipeline parameter name, e.g. MaxDepth
    hyperparameter: str  # train.py's argument, e.g. max_depth
    kind: type  # int or float


# The hyperparameters a run may override (defaults: pipelines.train.Hyperparameters). A
# ``ScalePosWeight`` of 0 means "negatives / positives of the training labels" (train.py's rule).
HYPERPARAMETERS = (
    HyperparameterSpec("MaxDepth", "max_depth", int),
    HyperparameterSpec("Eta", "eta", float),
    HyperparameterSpec("NumRound", "num_round", int),
    HyperparameterSpec("EarlyStoppingRounds", "early_stopping_rounds", int),
    HyperparameterSpec("Subsample", "subsample", float),
    HyperparameterSpec("ColsampleBytree", "colsample_bytree", float),
    HyperparameterSpec("MinChildWeight", "min_child_weight", float),
    HyperparameterSpec("RegLambda", "reg_lambda", float),
    HyperparameterSpec("ScalePosWeight", "scale_pos_weight", float),
    HyperparameterSpec("Seed", "seed", int),
    HyperparameterSpec("Refit", "refit", int),
)


def image_uri(region: str, framework_version: str) -> str:
    """The SageMaker XGBoost framework image of ``region`` (from the SDK's bundled table, offline)."""
    with _offline_sdk(region):
        from sagemaker.core import image_uris

        return str(
            image_uris.retrieve(framework="xgboost", region=region, version=framework_version, image_scope="training")
        )


def model_monitor_image_uri(region: str) -> str:
    """Model Monitor's analyzer image of ``region`` (AWS's account per region, from the SDK's table)."""
    with _offline_sdk(region):
        from sagemaker.core import image_uris

        return str(image_uris.retrieve(framework="model-monitor", region=region))


def processing_entrypoint(script: str) -> list[str]:
    """Extract the code bundle and run ``pipelines/<script>.py`` as a file, with the step's arguments.

    ``sh -c`` keeps every entrypoint element under SageMaker's 256-character limit; ``$0`` names
    the step in process listings and ``"$@"`` are the ContainerArguments.
    """
    command = (
        f"mkdir -p {CODE_DIR} && tar -xzf {CODE_INPUT_DIR}/* -C {CODE_DIR} "
        f'&& exec python3 {CODE_DIR}/pipelines/{script}.py "$@"'
    )
    return ["/bin/sh", "-c", command, script]


def build_definition(
    *,
    region: str,
    role_arn_placeholder: str,
    bucket_placeholder: str,
    scripts_s3_prefix_placeholder: str,
    config: TrainingConfig,
    pipeline_name: str,
    model_package_group: str,
    curated_bucket_placeholder: str | None = None,
    kms_key_placeholder: str | None = None,
    label_horizon_days: float = 0.0,
    monitoring_baseline: bool = False,
) -> str:
    """The pipeline definition JSON (canonical: two calls with the same arguments are byte-identical).

    ``bucket_placeholder`` is the artifacts bucket (splits, model, evaluation), ``curated_bucket_placeholder``
    the bucket of the curated training set (default: the same bucket), ``scripts_s3_prefix_placeholder``
    the S3 URI of the code bundle (a ``.tar.gz`` object), ``kms_key_placeholder`` the key that
    encrypts volumes and outputs. ``label_horizon_days`` is the label's horizon (the churn window):
    preprocess purges training rows whose label was only known after validation starts.
    ``monitoring_baseline`` adds the steps that write Model Monitor's data-quality baseline.
    """
    if "/" not in role_arn_placeholder:
        # The SDK looks a role *name* up in IAM; an ARN-shaped placeholder keeps it offline.
        raise ValueError("role_arn_placeholder must look like an ARN (contain '/') so the SDK never calls IAM")
    if not scripts_s3_prefix_placeholder.startswith("s3://"):
        raise ValueError("scripts_s3_prefix_placeholder must be an s3:// URI: a local path would be uploaded")
    request = _Request(
        region=region,
        role=role_arn_placeholder,
        bucket=bucket_placeholder,
        curated_bucket=curated_bucket_placeholder or bucket_placeholder,
        code=scripts_s3_prefix_placeholder,
        key=kms_key_placeholder,
        config=config,
        pipeline_name=pipeline_name,
        group=model_package_group,
        label_horizon_days=label_horizon_days,
        monitoring_baseline=monitoring_baseline,
    )
    with _offline_sdk(region):
        document = json.loads(_pipeline(request).definition())
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class _Request:
    region: str
    role: str
    bucket: str
    curated_bucket: str
    code: str
    key: str | None
    config: TrainingConfig
    pipeline_name: str
    group: str
    label_horizon_days: float
    monitoring_baseline: bool = False


@contextlib.contextmanager
def _offline_sdk(region: str) -> Iterator[None]:
    """An environment in which the SDK builds requests without reaching any network.

    ``sagemaker.mlops`` creates a boto3 client when imported: it needs a region, and credentials
    that resolve from the environment (never the instance metadata service, which is a network
    call). The dummy credentials sign nothing: no request is ever sent. The SDK's warnings about
    running "within a PipelineSession" and its INFO logs are noise at synth. Everything is restored.
    """
    overrides = {
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "SAGEMAKER_VALIDATE_ROLE": "false",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "offline-synth",
        "AWS_SECRET_ACCESS_KEY": "offline-synth",
    }
    saved = {name: os.environ.get(name) for name in [*overrides, "AWS_SESSION_TOKEN"]}
    sdk_logger = logging.getLogger("sagemaker")
    saved_level = sdk_logger.level
    os.environ.update(overrides)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    sdk_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), _config_validated_once():
            warnings.simplefilter("ignore")
            yield
    finally:
        sdk_logger.setLevel(saved_level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _config_validated_once() -> Iterator[None]:
    """Validate the SDK config once per distinct config, not on each of the ~50 lookups of a build.

    The SDK re-validates its whole config against a JSON schema on every lookup (about half a
    second each here), which made a build take 30 s; the config is a constant of this module, so
    one validation says everything the other 49 would.
    """
    from sagemaker.core.config.config_manager import SageMakerConfig

    original = SageMakerConfig.__dict__["validate_sagemaker_config"]  # a staticmethod
    validated: set[str] = set()

    def validate_once(sagemaker_config: Any = None) -> None:
        fingerprint = json.dumps(sagemaker_config, sort_keys=True, default=str)
        if fingerprint not in validated:
            original.__func__(sagemaker_config)
            validated.add(fingerprint)

    setattr(SageMakerConfig, "validate_sagemaker_config", staticmethod(validate_once))  # noqa: B010
    try:
        yield
    finally:
        setattr(SageMakerConfig, "validate_sagemaker_config", original)  # noqa: B010


def _pipeline(request: _Request) -> Any:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.mlops.workflow import Pipeline, PipelineExperimentConfig

    session = _session(request.region)
    parameters = _Parameters.create(request)
    preprocess = _preprocess_step(request, session, parameters)
    train = _train_step(request, session, parameters, preprocess)
    evaluate = _evaluate_step(request, session, parameters, preprocess, train)
    gate = _gate_step(request, session, parameters, train, evaluate)
    return Pipeline(
        name=request.pipeline_name,
        parameters=parameters.all(),
        steps=[preprocess, train, evaluate, gate],
        # One experiment per pipeline, one trial per execution: every job's trial component
        # (parameters, metrics, artifacts) is grouped under the run that produced it.
        pipeline_experiment_config=PipelineExperimentConfig(
            ExecutionVariables.PIPELINE_NAME, ExecutionVariables.PIPELINE_EXECUTION_ID
        ),
        sagemaker_session=session,
    )


def _session(region: str) -> Any:
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    # An explicit SDK config: telemetry off (it is an HTTP call) and no config file read from disk.
    sdk_config = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
    return PipelineSession(
        boto_session=boto3.Session(region_name=region),
        # Never used for uploads (every input is an s3:// URI), but the SDK must not look one up.
        default_bucket="offline-synth-unused",
        sagemaker_config=sdk_config,
    )


@dataclass(frozen=True)
class _Parameters:
    """The pipeline parameters: what a run may change without a deployment."""

    training_data: Any
    processing_instance_type: Any
    training_instance_type: Any
    training_instance_count: Any
    min_pr_auc: Any
    baseline_pr_auc: Any
    hyperparameters: tuple[tuple[HyperparameterSpec, Any], ...]

    @classmethod
    def create(cls, request: _Request) -> _Parameters:
        from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

        from pipelines.train import Hyperparameters

        defaults = Hyperparameters()
        known = {f.name for f in fields(Hyperparameters)}
        hyperparameters = []
        for spec in HYPERPARAMETERS:
            if spec.hyperparameter not in known:
                raise ValueError(f"pipelines/train.py has no hyperparameter {spec.hyperparameter!r}")
            default = getattr(defaults, spec.hyperparameter) or 0
            kind = ParameterInteger if spec.kind is int else ParameterFloat
            hyperparameters.append((spec, kind(name=spec.parameter, default_value=spec.kind(default))))
        config = request.config
        return cls(
            training_data=ParameterString(
                name="TrainingDataUri", default_value=f"s3://{request.curated_bucket}/{TRAINING_SET_PREFIX}"
            ),
            processing_instance_type=ParameterString(
                name="ProcessingInstanceType", default_value=config.processing_instance_type
            ),
            training_instance_type=ParameterString(
                name="TrainingInstanceType", default_value=config.training_instance_type
            ),
            training_instance_count=ParameterInteger(
                name="TrainingInstanceCount", default_value=config.training_instance_count
            ),
            min_pr_auc=ParameterFloat(name="MinPrAuc", default_value=config.min_pr_auc),
            # The approved model's PR-AUC, passed by whoever starts the run (the feature
            # orchestration and the feedback loop, both from platform_core.model_baseline);
            # 0 means "no approved model yet": only MinPrAuc applies.
            baseline_pr_auc=ParameterFloat(name=BASELINE_PR_AUC_PARAMETER, default_value=0.0),
            hyperparameters=tuple(hyperparameters),
        )

    def all(self) -> list[Any]:
        return [
            self.training_data,
            self.processing_instance_type,
            self.training_instance_type,
            self.training_instance_count,
            self.min_pr_auc,
            self.baseline_pr_auc,
            *(parameter for _, parameter in self.hyperparameters),
        ]


def _output_uri(request: _Request, kind: str, *parts: str) -> Any:
    """s3://<artifacts>/training/<kind>/<execution id>/<parts>: each run writes its own prefix.

    The kind comes first so that a lifecycle rule can expire the bulky splits
    (``training/preprocess/``) while models and evaluations, which registered versions point at, stay.
    """
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="/",
        values=[
            "s3:/",
            request.bucket,
            ARTIFACTS_PREFIX.rstrip("/"),
            kind,
            ExecutionVariables.PIPELINE_EXECUTION_ID,
            *parts,
        ],
    )


def _retries() -> list[Any]:
    """Retry what is not the code's fault: throttling, service faults, no capacity, internal errors."""
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )

    return [
        StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
            interval_seconds=30,
            backoff_rate=2.0,
            max_attempts=3,
        ),
        SageMakerJobStepRetryPolicy(
            failure_reason_types=[
                SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
            ],
            interval_seconds=60,
            backoff_rate=2.0,
            max_attempts=3,
        ),
    ]


def _processor(request: _Request, session: Any, parameters: _Parameters, script: str) -> Any:
    from sagemaker.core.processing import Processor

    config = request.config
    return Processor(
        role=request.role,
        image_uri=image_uri(request.region, config.xgboost_framework_version),
        instance_count=1,
        instance_type=parameters.processing_instance_type,
        entrypoint=processing_entrypoint(script),
        volume_size_in_gb=config.processing_volume_gb,
        volume_kms_key=request.key,
        output_kms_key=request.key,
        max_runtime_in_seconds=config.processing_max_runtime_minutes * 60,
        base_job_name=script,
        sagemaker_session=session,
    )


def _s3_input(name: str, uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=local_path,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def _s3_output(name: str, uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(s3_uri=uri, local_path=local_path, s3_upload_mode="EndOfJob"),
    )


def _preprocess_step(request: _Request, session: Any, parameters: _Parameters) -> Any:
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ProcessingStep

    splits = ("train", "validation", "test", "transform")
    args = _processor(request, session, parameters, "preprocess").run(
        inputs=[
            _s3_input("code", request.code, CODE_INPUT_DIR),
            _s3_input("training-set", parameters.training_data, f"{_PROCESSING}/input"),
        ],
        outputs=[
            _s3_output(split, _output_uri(request, "preprocess", split), f"{_PROCESSING}/{split}") for split in splits
        ],
        arguments=[
            f"--input-dir={_PROCESSING}/input",
            *(f"--{split}-dir={_PROCESSING}/{split}" for split in splits),
            f"--validation-fraction={request.config.validation_fraction}",
            f"--test-fraction={request.config.test_fraction}",
            f"--label-horizon-days={request.label_horizon_days}",
            # One training file per training instance: ShardedByS3Key gives each host its own.
            Join(on="=", values=["--train-shards", parameters.training_instance_count]),
        ],
    )
    return ProcessingStep(
        name=PREPROCESS,
        step_args=args,
        description="Time split of the curated training set; feature transform fitted on the training split",
        retry_policies=_retries(),
    )


def _split_uri(preprocess: Any, split: str) -> Any:
    return preprocess.properties.ProcessingOutputConfig.Outputs[split].S3Output.S3Uri


def _train_step(request: _Request, session: Any, parameters: _Parameters, preprocess: Any) -> Any:
    from sagemaker.core.shapes import (
        Channel,
        DataSource,
        MetricDefinition,
        OutputDataConfig,
        S3DataSource,
        StoppingCondition,
    )
    from sagemaker.core.training.configs import Compute
    from sagemaker.mlops.workflow import TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    def channel(name: str, uri: Any, distribution: str) -> Any:
        source = S3DataSource(s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type=distribution)
        return Channel(channel_name=name, data_source=DataSource(s3_data_source=source), input_mode="File")

    config = request.config
    hyperparameters: dict[str, Any] = {
        # Script mode of the framework container; JSON-encoded strings, as the toolkit decodes them.
        "sagemaker_program": json.dumps("pipelines/train.py"),
        "sagemaker_submit_directory": json.dumps(request.code),
        "sagemaker_region": json.dumps(request.region),
    }
    for spec, parameter in parameters.hyperparameters:
        hyperparameters[spec.hyperparameter] = parameter.to_string()
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=request.role,
        training_image=image_uri(request.region, config.xgboost_framework_version),
        base_job_name="train",
        compute=Compute(
            instance_type=parameters.training_instance_type,
            instance_count=parameters.training_instance_count,
            volume_size_in_gb=config.training_volume_gb,
            volume_kms_key_id=request.key,
        ),
        hyperparameters=hyperparameters,
        stopping_condition=StoppingCondition(max_runtime_in_seconds=config.training_max_runtime_minutes * 60),
        output_data_config=OutputDataConfig(s3_output_path=_output_uri(request, "model"), kms_key_id=request.key),
        input_data_config=[
            # Each host reads its own shard of the training split; everything else is replicated.
            channel("train", _split_uri(preprocess, "train"), "ShardedByS3Key"),
            channel("validation", _split_uri(preprocess, "validation"), "FullyReplicated"),
            channel("transform", _split_uri(preprocess, "transform"), "FullyReplicated"),
        ],
    )
    # train.py logs XGBoost's evaluation lines ("[100] train-aucpr:0.41 ... validation-aucpr:0.38"):
    # these become CloudWatch metrics of the job and metrics of its trial component.
    trainer.with_metric_definitions(
        [
            MetricDefinition(
                name=f"{split}:{metric}", regex=rf"{split}-{metric}:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
            )
            for split in ("train", "validation")
            for metric in ("aucpr", "logloss")
        ]
    )
    return TrainingStep(
        name=TRAIN,
        step_args=trainer.train(),
        description="XGBoost (script mode: pipelines/train.py), minority class weighted, early stopping on PR-AUC",
        retry_policies=_retries(),
    )


def _evaluate_step(request: _Request, session: Any, parameters: _Parameters, preprocess: Any, train: Any) -> Any:
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ProcessingStep

    from pipelines.evaluate import EVALUATION_FILE

    args = _processor(request, session, parameters, "evaluate").run(
        inputs=[
            _s3_input("code", request.code, CODE_INPUT_DIR),
            _s3_input("model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{_PROCESSING}/model"),
            _s3_input("validation", _split_uri(preprocess, "validation"), f"{_PROCESSING}/validation"),
            _s3_input("test", _split_uri(preprocess, "test"), f"{_PROCESSING}/test"),
        ],
        outputs=[_s3_output("evaluation", _output_uri(request, "evaluation"), f"{_PROCESSING}/evaluation")],
        arguments=[
            f"--model-dir={_PROCESSING}/model",
            f"--validation-dir={_PROCESSING}/validation",
            f"--test-dir={_PROCESSING}/test",
            f"--output-dir={_PROCESSING}/evaluation",
        ],
    )
    return ProcessingStep(
        name=EVALUATE,
        step_args=args,
        description="Threshold chosen on validation, metrics on the held-out test split (evaluation.json)",
        property_files=[PropertyFile(name=EVALUATION_PROPERTY_FILE, output_name="evaluation", path=EVALUATION_FILE)],
        retry_policies=_retries(),
    )


def _gate_step(request: _Request, session: Any, parameters: _Parameters, train: Any, evaluate: Any) -> Any:
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.functions import JsonGet
    from sagemaker.mlops.workflow import ConditionStep, FailStep

    (evaluation,) = evaluate.property_files
    pr_auc = JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=PR_AUC_PATH)
    register = _register_step(request, session, train, evaluate)
    failed = FailStep(
        name=GATE_FAILED,
        description="The model is not better than the floor or than the approved model",
        error_message=_gate_message(pr_auc, parameters),
    )
    return ConditionStep(
        name=GATE,
        description="PR-AUC on the test split >= MinPrAuc and >= BaselinePrAuc (the approved model's)",
        conditions=[
            ConditionGreaterThanOrEqualTo(left=pr_auc, right=parameters.min_pr_auc),
            ConditionGreaterThanOrEqualTo(left=pr_auc, right=parameters.baseline_pr_auc),
        ],
        if_steps=[register, *_monitoring_baseline_steps(request, session, parameters, register)],
        else_steps=[failed],
    )


def _gate_message(pr_auc: Any, parameters: _Parameters) -> Any:
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="",
        values=[
            "Test PR-AUC ",
            pr_auc,
            " is below MinPrAuc ",
            parameters.min_pr_auc,
            " or BaselinePrAuc ",
            parameters.baseline_pr_auc,
            ": the model is not registered.",
        ],
    )


def _register_step(request: _Request, session: Any, train: Any, evaluate: Any) -> Any:
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    from pipelines.evaluate import EVALUATION_FILE

    evaluation_uri = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
    (evaluation,) = evaluate.property_files
    metrics = ModelMetrics(
        model_statistics=MetricsSource(
            s3_uri=Join(on="/", values=[evaluation_uri, EVALUATION_FILE]), content_type=_JSON
        )
    )
    config = request.config
    builder = ModelBuilder(
        image_uri=image_uri(request.region, config.xgboost_framework_version),
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
        role_arn=request.role,
        sagemaker_session=session,
        # The package is deployed as registered (the deployer creates its model from the package):
        # the framework container serves pipelines/inference.py's handlers from the code bundle.
        env_vars={
            "SAGEMAKER_PROGRAM": SERVING_ENTRY_POINT,
            "SAGEMAKER_SUBMIT_DIRECTORY": request.code,
            "SAGEMAKER_REGION": request.region,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        },
        # The default ({"auto": True}) packages and uploads inference code from this machine.
        dependencies=None,
    )
    register_args = builder.register(
        model_package_group_name=request.group,
        content_types=[_JSON],
        response_types=[_JSON],
        inference_instances=list(config.inference_instance_types),
        transform_instances=list(config.transform_instance_types),
        model_metrics=metrics,
        approval_status=APPROVAL_STATUS,
        description="Churn classifier (XGBoost), registered by the training pipeline after the quality gate",
        # Traceability: the model's content hash (metadata.json) and the run that produced it.
        customer_metadata_properties={
            # The gate's number, readable without fetching evaluation.json: the baseline of the next run.
            PR_AUC_METADATA_KEY: Join(
                on="", values=[JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=PR_AUC_PATH)]
            ),
            "model_version": JsonGet(step_name=evaluate.name, property_file=evaluation, json_path="model_version"),
            "pipeline_execution_arn": ExecutionVariables.PIPELINE_EXECUTION_ARN,
        },
    )
    return ModelStep(name=REGISTER, step_args=register_args, description="Model package, pending manual approval")


# -- Model Monitor's data-quality baseline (only with ``monitoring_baseline``) ----------------------


def _monitoring_baseline_steps(request: _Request, session: Any, parameters: _Parameters, register: Any) -> list[Any]:
    """The baseline dataset, then Model Monitor's analyzer on it, both after the registration.

    After, not before: a model that failed the gate never replaces the baseline of the one being
    served, and registration never waits for (or fails with) Model Monitor.
    """
    if not request.monitoring_baseline:
        return []
    dataset = _baseline_dataset_step(request, session, parameters, register)
    return [dataset, _data_quality_baseline_step(request, session, parameters, dataset)]


def _baseline_dataset_step(request: _Request, session: Any, parameters: _Parameters, register: Any) -> Any:
    from sagemaker.mlops.workflow import ProcessingStep

    args = _processor(request, session, parameters, "monitoring_baseline").run(
        inputs=[
            _s3_input("code", request.code, CODE_INPUT_DIR),
            # The curated training set itself, not a split: Arrow reads its integer columns as
            # integers (a pandas split turns those with gaps into floats, unlike the requests).
            _s3_input("training-set", parameters.training_data, f"{_PROCESSING}/input"),
        ],
        outputs=[_s3_output("dataset", _output_uri(request, "baseline-dataset"), f"{_PROCESSING}/dataset")],
        arguments=[f"--input-dir={_PROCESSING}/input", f"--output-dir={_PROCESSING}/dataset"],
    )
    return ProcessingStep(
        name=BASELINE_DATASET,
        step_args=args,
        description="The training set as the requests the endpoint receives (user_id and features, JSON lines)",
        depends_on=[register],
        retry_policies=_retries(),
    )


def _data_quality_baseline_step(request: _Request, session: Any, parameters: _Parameters, dataset: Any) -> Any:
    """A QualityCheckStep that only baselines: no drift check against an earlier baseline (``skip_check``),
    so nothing here fails a run on a changed population; the schedule compares traffic with it."""
    from sagemaker.core.model_monitor.dataset_format import DatasetFormat
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
    from sagemaker.mlops.workflow.quality_check_step import DataQualityCheckConfig, QualityCheckStep

    config = request.config
    check_job = CheckJobConfig(
        role=request.role,
        instance_count=1,
        instance_type=parameters.processing_instance_type,
        volume_size_in_gb=config.processing_volume_gb,
        volume_kms_key=request.key,
        output_kms_key=request.key,
        max_runtime_in_seconds=config.processing_max_runtime_minutes * 60,
        base_job_name="data-quality-baseline",
        sagemaker_session=session,
    )
    quality_check = DataQualityCheckConfig(
        baseline_dataset=dataset.properties.ProcessingOutputConfig.Outputs["dataset"].S3Output.S3Uri,
        dataset_format=DatasetFormat.json(lines=True),
        output_s3_uri=f"s3://{request.bucket}/{MONITORING_BASELINE_PREFIX.rstrip('/')}",
    )
    return QualityCheckStep(
        name=DATA_QUALITY_BASELINE,
        description="Model Monitor's statistics.json and constraints.json of the baseline dataset",
        quality_check_config=quality_check,
        check_job_config=check_job,
        skip_check=True,
        fail_on_violation=False,
        register_new_baseline=True,
    )
