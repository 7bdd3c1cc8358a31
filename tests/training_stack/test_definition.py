"""The pipeline definition: its steps and their wiring, the gate, the registration, determinism,
and that building it never touches the network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelines.definition import (
    APPROVAL_STATUS,
    BASELINE_DATASET,
    DATA_QUALITY_BASELINE,
    EVALUATE,
    EVALUATIONS_PREFIX,
    GATE,
    GATE_FAILED,
    HYPERPARAMETERS,
    PR_AUC_PATH,
    PREPROCESS,
    REGISTER,
    SERVING_ENTRY_POINT,
    TRAIN,
    build_definition,
    model_monitor_image_uri,
)
from pipelines.train import Hyperparameters
from platform_core.config import load_config
from stacks.constructs.data_quality_monitor import MODEL_MONITOR_ACCOUNTS
from tests.training_stack.conftest import (
    ARTIFACTS,
    CODE,
    CURATED,
    KEY,
    REGION,
    ROLE,
    baseline_definition_text,
    definition,
    definition_kwargs,
    definition_text,
    network_forbidden,
    references,
    steps,
)

EXECUTION_ID = "Execution.PipelineExecutionId"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return definition("dev")


@pytest.fixture(scope="module")
def by_name(document) -> dict[str, dict[str, Any]]:
    return steps(document)


@pytest.fixture(scope="module")
def offline_rebuild() -> tuple[str, list[str]]:
    """A second build of the same definition, with every network access forbidden and recorded
    (the first build too, and the SDK's import, unless another test of the session did them)."""
    with network_forbidden() as attempts:
        definition_text("dev")
        text = build_definition(**definition_kwargs("dev"))
    return text, attempts


def test_two_builds_are_byte_identical(offline_rebuild):
    # Given the definition built once, When it is built again
    again, _ = offline_rebuild
    # Then the bytes are the same, and canonical (sorted keys, no whitespace)
    assert again == definition_text("dev")
    assert again == json.dumps(json.loads(again), sort_keys=True, separators=(",", ":"))


def test_building_touches_no_network(offline_rebuild):
    # Given a build during which every socket resolution or connection fails and is recorded
    text, attempts = offline_rebuild
    # Then nothing tried, and the build still produced the pipeline
    assert attempts == []
    assert '"Name":"Preprocess"' in text


def test_steps_run_preprocess_train_evaluate_then_the_gate(document, by_name):
    # Given the top-level steps
    top = [(step["Name"], step["Type"]) for step in document["Steps"]]
    # Then they are the four stages, the gate choosing between registration and failure
    assert top == [(PREPROCESS, "Processing"), (TRAIN, "Training"), (EVALUATE, "Processing"), (GATE, "Condition")]
    gate = by_name[GATE]["Arguments"]
    assert [s["Name"] for s in gate["IfSteps"]] == [REGISTER]
    assert [s["Name"] for s in gate["ElseSteps"]] == [GATE_FAILED]
    assert by_name[REGISTER]["Type"] == "RegisterModel"
    assert by_name[GATE_FAILED]["Type"] == "Fail"


def _step_refs(step: dict[str, Any]) -> set[str]:
    return {ref.split(".")[1] for ref in references(step["Arguments"]) if ref.startswith("Steps.")}


def test_each_step_depends_on_exactly_the_steps_whose_outputs_it_reads(by_name):
    # Then the data dependencies give the order: train after preprocess, evaluate after both,
    # the gate and the registration after evaluation and training
    assert _step_refs(by_name[PREPROCESS]) == set()
    assert _step_refs(by_name[TRAIN]) == {PREPROCESS}
    assert _step_refs(by_name[EVALUATE]) == {PREPROCESS, TRAIN}
    gate_conditions = {"Arguments": by_name[GATE]["Arguments"]["Conditions"]}
    assert _step_refs(gate_conditions) == {EVALUATE}
    assert _step_refs(by_name[REGISTER]) == {TRAIN, EVALUATE}


def _inputs(step: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["InputName"]: i["S3Input"] for i in step["Arguments"]["ProcessingInputs"]}


def _outputs(step: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["OutputName"]: o["S3Output"] for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]}


def test_preprocess_reads_the_curated_training_set_and_writes_four_outputs_per_execution(document, by_name):
    step = by_name[PREPROCESS]
    # Then the training set comes from a parameter whose default is the curated lake's prefix
    parameters = {p["Name"]: p for p in document["Parameters"]}
    assert parameters["TrainingDataUri"]["DefaultValue"] == f"s3://{CURATED}/curated/training_set/"
    inputs = _inputs(step)
    assert inputs["training-set"]["S3Uri"] == {"Get": "Parameters.TrainingDataUri"}
    assert inputs["training-set"]["LocalPath"] == "/opt/ml/processing/input"
    assert inputs["code"]["S3Uri"] == CODE
    # And every split lands under the execution's own prefix of the artifacts bucket
    outputs = _outputs(step)
    assert sorted(outputs) == ["test", "train", "transform", "validation"]
    for name, output in outputs.items():
        assert output["LocalPath"] == f"/opt/ml/processing/{name}"
        join = output["S3Uri"]["Std:Join"]
        assert join["Values"] == ["s3:/", ARTIFACTS, "training", "preprocess", {"Get": EXECUTION_ID}, name]
    # And the time split gets its fractions and the label horizon (the churn window)
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert "--validation-fraction=0.15" in arguments
    assert "--test-fraction=0.15" in arguments
    assert "--label-horizon-days=30" in arguments
    # And the training split is written as one file per training instance (ShardedByS3Key)
    assert {
        "Std:Join": {"On": "=", "Values": ["--train-shards", {"Get": "Parameters.TrainingInstanceCount"}]}
    } in arguments


@pytest.mark.parametrize(("step_name", "script"), [(PREPROCESS, "preprocess"), (EVALUATE, "evaluate")])
def test_processing_steps_unpack_the_code_bundle_and_run_their_script(by_name, step_name, script):
    app = by_name[step_name]["Arguments"]["AppSpecification"]
    entrypoint = app["ContainerEntrypoint"]
    # Then the shell extracts the bundle and runs pipelines/<script>.py with the step's arguments
    assert entrypoint[:2] == ["/bin/sh", "-c"]
    assert f"/opt/ml/code/pipelines/{script}.py" in entrypoint[2]
    assert entrypoint[2].endswith('"$@"')
    # And every element fits SageMaker's 256-character limit
    assert all(len(part) <= 256 for part in entrypoint)
    assert app["ImageUri"] == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0"
    cluster = by_name[step_name]["Arguments"]["ProcessingResources"]["ClusterConfig"]
    assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
    assert cluster["VolumeKmsKeyId"] == KEY
    assert by_name[step_name]["Arguments"]["ProcessingOutputConfig"]["KmsKeyId"] == KEY
    assert by_name[step_name]["Arguments"]["RoleArn"] == ROLE


def test_training_runs_train_py_in_script_mode_with_hyperparameters_from_parameters(document, by_name):
    arguments = by_name[TRAIN]["Arguments"]
    hyperparameters = arguments["HyperParameters"]
    # Then the framework container's script mode runs pipelines/train.py from the bundle
    assert json.loads(hyperparameters["sagemaker_program"]) == "pipelines/train.py"
    assert json.loads(hyperparameters["sagemaker_submit_directory"]) == CODE
    assert arguments["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-xgboost:3.2-0")
    # And each hyperparameter is a pipeline parameter (as a string) defaulting to train.py's own default
    parameters = {p["Name"]: p for p in document["Parameters"]}
    defaults = Hyperparameters()
    for spec in HYPERPARAMETERS:
        assert hyperparameters[spec.hyperparameter] == {
            "Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{spec.parameter}"}]}
        }
        assert parameters[spec.parameter]["DefaultValue"] == (getattr(defaults, spec.hyperparameter) or 0)
    # And the class weight is train.py's automatic negatives/positives unless a run sets it
    assert parameters["ScalePosWeight"]["DefaultValue"] == 0


def test_training_instances_come_from_parameters_and_hosts_get_their_own_shard(document, by_name):
    arguments = by_name[TRAIN]["Arguments"]
    resources = arguments["ResourceConfig"]
    # Then instance type and count are parameters with the environment's defaults
    assert resources["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    assert resources["InstanceCount"] == {"Get": "Parameters.TrainingInstanceCount"}
    assert resources["VolumeKmsKeyId"] == KEY
    parameters = {p["Name"]: p["DefaultValue"] for p in document["Parameters"]}
    assert parameters["TrainingInstanceCount"] == load_config("dev").training.training_instance_count == 1
    # And the training split is sharded across hosts while validation and the transform are replicated
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in arguments["InputDataConfig"]}
    assert channels["train"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert channels["validation"]["S3DataDistributionType"] == "FullyReplicated"
    assert channels["transform"]["S3DataDistributionType"] == "FullyReplicated"
    assert channels["train"]["S3Uri"] == {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }
    assert arguments["OutputDataConfig"]["KmsKeyId"] == KEY


def test_evaluation_scores_the_trained_model_and_declares_its_report_a_property_file(by_name):
    step = by_name[EVALUATE]
    inputs = _inputs(step)
    # Then it reads the model the training step produced and the held-out splits
    assert inputs["model"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert inputs["test"]["S3Uri"] == {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"}
    # And evaluation.json in its output is the property file the gate reads
    assert step["PropertyFiles"] == [
        {"FilePath": "evaluation.json", "OutputName": "evaluation", "PropertyFileName": "Evaluation"}
    ]
    assert "evaluation" in _outputs(step)
    # And it lands under the prefix whose evaluation.json files the baseline readers may get
    # (the feature orchestration's baseline_metrics function, the feedback job)
    join = _outputs(step)["evaluation"]["S3Uri"]["Std:Join"]
    assert "/".join(join["Values"][2:4]) + "/" == EVALUATIONS_PREFIX


def test_the_gate_compares_test_pr_auc_with_the_floor_and_the_approved_model(document, by_name):
    conditions = by_name[GATE]["Arguments"]["Conditions"]
    pr_auc = {"Std:JsonGet": {"Path": PR_AUC_PATH, "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"}}}
    # Then both conditions (all must hold) read PR-AUC from evaluation.json
    assert conditions == [
        {"Type": "GreaterThanOrEqualTo", "LeftValue": pr_auc, "RightValue": {"Get": "Parameters.MinPrAuc"}},
        {"Type": "GreaterThanOrEqualTo", "LeftValue": pr_auc, "RightValue": {"Get": "Parameters.BaselinePrAuc"}},
    ]
    # And the floor defaults to the configuration, the approved model's score to 0 (none yet)
    parameters = {p["Name"]: p for p in document["Parameters"]}
    assert parameters["MinPrAuc"] == {"Name": "MinPrAuc", "Type": "Float", "DefaultValue": 0.3}
    assert parameters["BaselinePrAuc"] == {"Name": "BaselinePrAuc", "Type": "Float", "DefaultValue": 0.0}
    # And a failed gate says why, with the numbers
    message = by_name[GATE_FAILED]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert pr_auc in message
    assert {"Get": "Parameters.BaselinePrAuc"} in message


def test_registration_is_pending_manual_approval_with_the_evaluation_as_model_metrics(by_name):
    arguments = by_name[REGISTER]["Arguments"]
    # Then the package goes into the group, waiting for a person
    assert arguments["ModelPackageGroupName"] == "mlp-dev-churn"
    assert arguments["ModelApprovalStatus"] == APPROVAL_STATUS == "PendingManualApproval"
    # And its model quality statistics are evaluation.json of this execution
    statistics = arguments["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
                "evaluation.json",
            ],
        }
    }
    # And the container, deployable as registered, is the framework image serving the trained
    # model with pipelines/inference.py's handlers from the code bundle (script mode)
    (container,) = arguments["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert container["Image"].endswith("/sagemaker-xgboost:3.2-0")
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": SERVING_ENTRY_POINT,
        "SAGEMAKER_SUBMIT_DIRECTORY": CODE,
        "SAGEMAKER_REGION": "eu-west-1",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    }
    assert arguments["InferenceSpecification"]["SupportedContentTypes"] == ["application/json"]
    # And the package records which model (content hash) and which run it is
    metadata = arguments["CustomerMetadataProperties"]
    assert metadata["model_version"]["Std:JsonGet"]["Path"] == "model_version"
    assert metadata["pr_auc"]["Std:Join"]["Values"][0]["Std:JsonGet"]["Path"] == PR_AUC_PATH
    assert metadata["pipeline_execution_arn"] == {"Get": "Execution.PipelineExecutionArn"}


def test_every_execution_is_a_trial_of_the_pipelines_experiment(document):
    assert document["PipelineExperimentConfig"] == {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": EXECUTION_ID},
    }


def test_placeholders_must_keep_the_sdk_offline():
    # Given a role *name* (the SDK would look it up in IAM) or a local code path (it would upload)
    # Then the builder refuses before the SDK sees them
    with pytest.raises(ValueError, match="ARN"):
        build_definition(**{**definition_kwargs(), "role_arn_placeholder": "role-name"})
    with pytest.raises(ValueError, match="s3://"):
        build_definition(**{**definition_kwargs(), "scripts_s3_prefix_placeholder": "/tmp/code"})


# -- Model Monitor's data-quality baseline (Model Monitor on) ---------------------------------------


@pytest.fixture(scope="module")
def baseline_steps() -> dict[str, dict[str, Any]]:
    return steps(json.loads(baseline_definition_text()))


def test_without_model_monitor_no_baseline_step_runs(by_name):
    assert BASELINE_DATASET not in by_name and DATA_QUALITY_BASELINE not in by_name


def test_a_registered_models_run_writes_the_baseline_after_the_registration(baseline_steps):
    # Given the definition with Model Monitor on
    gate = baseline_steps[GATE]["Arguments"]
    # Then the baseline steps run only on the gate's passing branch, after the registration
    assert [s["Name"] for s in gate["IfSteps"]] == [REGISTER, BASELINE_DATASET, DATA_QUALITY_BASELINE]
    assert [s["Name"] for s in gate["ElseSteps"]] == [GATE_FAILED]
    assert baseline_steps[BASELINE_DATASET]["DependsOn"] == [REGISTER]
    # And the registration reads nothing of them (it never waits for Model Monitor)
    assert _step_refs(baseline_steps[REGISTER]) == {TRAIN, EVALUATE}
    assert "DependsOn" not in baseline_steps[REGISTER]
    # And the analyzer reads the dataset step's output
    assert _step_refs(baseline_steps[DATA_QUALITY_BASELINE]) == {BASELINE_DATASET}


def test_the_baseline_dataset_is_the_curated_training_set_as_requests(baseline_steps):
    step = baseline_steps[BASELINE_DATASET]
    assert step["Type"] == "Processing"
    # Then it reads the training set the run trains on, and the code bundle
    inputs = _inputs(step)
    assert inputs["training-set"]["S3Uri"] == {"Get": "Parameters.TrainingDataUri"}
    assert inputs["code"]["S3Uri"] == CODE
    # And writes JSON lines under the execution's own prefix
    (output,) = _outputs(step).values()
    assert output["S3Uri"]["Std:Join"]["Values"] == [
        "s3:/",
        ARTIFACTS,
        "training",
        "baseline-dataset",
        {"Get": EXECUTION_ID},
    ]
    app = step["Arguments"]["AppSpecification"]
    assert "/opt/ml/code/pipelines/monitoring_baseline.py" in app["ContainerEntrypoint"][2]
    assert app["ContainerArguments"] == [
        "--input-dir=/opt/ml/processing/input",
        "--output-dir=/opt/ml/processing/dataset",
    ]
    assert step["Arguments"]["ProcessingOutputConfig"]["KmsKeyId"] == KEY


def test_the_quality_check_only_baselines_with_the_analyzer_into_the_fixed_prefix(baseline_steps):
    step = baseline_steps[DATA_QUALITY_BASELINE]
    # Then it is a data-quality check step that computes a baseline and checks nothing
    assert (step["Type"], step["CheckType"]) == ("QualityCheck", "DATA_QUALITY")
    assert (step["SkipCheck"], step["RegisterNewBaseline"], step["FailOnViolation"]) == (True, True, False)
    arguments = step["Arguments"]
    # And Model Monitor's analyzer image of the region runs it (the account the schedule uses too)
    image = arguments["AppSpecification"]["ImageUri"]
    assert image == model_monitor_image_uri(REGION)
    assert image == f"{MODEL_MONITOR_ACCOUNTS[REGION]}.dkr.ecr.{REGION}.amazonaws.com/sagemaker-model-monitor-analyzer"
    # And it reads the JSON lines of the dataset step
    (dataset,) = arguments["ProcessingInputs"]
    assert dataset["S3Input"]["S3Uri"] == {
        "Get": f"Steps.{BASELINE_DATASET}.ProcessingOutputConfig.Outputs['dataset'].S3Output.S3Uri"
    }
    environment = arguments["Environment"]
    assert json.loads(environment["dataset_format"]) == {"json": {"lines": True}}
    assert environment["dataset_source"] == dataset["S3Input"]["LocalPath"]
    # And writes statistics.json and constraints.json to the one prefix the monitoring schedule reads
    (output,) = arguments["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == f"s3://{ARTIFACTS}/serving/monitoring/baseline"
    assert output["S3Output"]["LocalPath"] == environment["output_path"]
    # And volumes and outputs are encrypted with the lake key, on the run's processing instance type
    assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == KEY
    cluster = arguments["ProcessingResources"]["ClusterConfig"]
    assert (cluster["VolumeKmsKeyId"], cluster["InstanceType"]) == (KEY, {"Get": "Parameters.ProcessingInstanceType"})
    assert arguments["RoleArn"] == ROLE


def test_the_definition_with_the_baseline_is_deterministic_and_offline(baseline_steps):
    with network_forbidden() as attempts:
        again = build_definition(**definition_kwargs("prod"), monitoring_baseline=True)
    assert attempts == []
    assert again == baseline_definition_text()
