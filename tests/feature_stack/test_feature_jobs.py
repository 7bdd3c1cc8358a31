"""The three feature Glue jobs: Glue 5 Spark, packages shipped, workers from config, exact IAM."""

from __future__ import annotations

import pytest

from glue_jobs.ingest.records import rejects_prefix
from platform_core.config import load_config
from platform_core.names import CLICKSTREAM_RAW_PREFIX
from platform_core.schemas.cdc import CHURN_LABELS_PREFIX, SUBSCRIPTION_HISTORY_PREFIX
from platform_core.schemas.features import TRAINING_SET_PREFIX, USER_CLICKSTREAM, USER_SUBSCRIPTION
from stacks.constructs.glue_job import staged_libraries
from tests.feature_stack.conftest import ENVIRONMENTS, feature_template, flatten, grants, one, resources

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]

RAW = "arn:aws:s3:::mlp-dev-raw-<AWS::AccountId>-<AWS::Region>"
CURATED = "arn:aws:s3:::mlp-dev-curated-<AWS::AccountId>-<AWS::Region>"
WRITE = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
LISTING = {"s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"}

# script -> (datasets read: bucket ARN + prefix, datasets written under the curated bucket)
JOBS = {
    "clickstream_features": (
        {(RAW, CLICKSTREAM_RAW_PREFIX)},
        {USER_CLICKSTREAM.snapshot_prefix, rejects_prefix(USER_CLICKSTREAM)},
    ),
    "subscription_features": (
        {(CURATED, SUBSCRIPTION_HISTORY_PREFIX)},
        {USER_SUBSCRIPTION.snapshot_prefix, rejects_prefix(USER_SUBSCRIPTION)},
    ),
    "training_set": (
        {
            (CURATED, CHURN_LABELS_PREFIX),
            (CURATED, USER_CLICKSTREAM.snapshot_prefix),
            (CURATED, USER_SUBSCRIPTION.snapshot_prefix),
        },
        {TRAINING_SET_PREFIX},
    ),
}


def _job(template, script: str, env_name: str = "dev") -> dict:
    _, job = one(template, "AWS::Glue::Job", {"Name": f"mlp-{env_name}-{script.replace('_', '-')}"})
    return job["Properties"]


def _role_id(template, script: str) -> str:
    return _job(template, script)["Role"]["Fn::GetAtt"][0]


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
@pytest.mark.parametrize("script", sorted(JOBS))
def test_each_script_is_a_glue_5_spark_job_sized_from_config(env_name, script):
    # Given the stack of an environment
    template = feature_template(env_name)
    settings = load_config(env_name).glue
    # When reading the job of the entry script
    job = _job(template, script, env_name)
    # Then it is a Spark ETL job of Glue 5 running that script, sized and timed by GlueConfig
    assert job["GlueVersion"] == "5.0"
    assert job["Command"]["Name"] == "glueetl"
    assert job["Command"]["PythonVersion"] == "3"
    assert job["Command"]["ScriptLocation"].endswith(".py")
    assert job["WorkerType"] == settings.worker_type
    assert job["NumberOfWorkers"] == settings.number_of_workers
    assert job["Timeout"] == settings.timeout_minutes
    # The state machine owns retries: a Glue-side retry would run behind its back.
    assert job["MaxRetries"] == 0
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}


@pytest.mark.parametrize("script", sorted(JOBS))
def test_jobs_log_continuously_without_bookmarks_and_ship_the_packages(dev, script):
    arguments = _job(dev, script)["DefaultArguments"]
    assert arguments["--enable-continuous-cloudwatch-log"] == "true"
    # Every run recomputes from as_of: bookmarks would hide inputs a later window still needs.
    assert arguments["--job-bookmark-option"] == "job-bookmark-disable"
    assert arguments["--extra-py-files"].endswith(".zip")
    # --as_of is never defaulted: the orchestration passes it, the job never reads a clock.
    assert "--as_of" not in arguments


def test_job_arguments_name_the_lake_buckets_and_the_session_gap(dev):
    gap = str(load_config("dev").glue.session_gap_minutes)
    clickstream = _job(dev, "clickstream_features")["DefaultArguments"]
    assert clickstream["--session_gap_minutes"] == gap
    assert "mlp-dev-raw-" in str(clickstream["--lake_bucket"])
    for script in JOBS:
        assert "mlp-dev-curated-" in str(_job(dev, script)["DefaultArguments"]["--curated_bucket"])
    features = load_config("dev").features
    training = _job(dev, "training_set")["DefaultArguments"]
    assert training["--lead_days"] == str(features.label_lead_days)
    assert training["--max_feature_age_days"] == str(features.max_feature_age_days)


def test_the_packages_zip_is_one_asset_with_the_same_hash_in_every_synth():
    # Given two independent synths (dev and prod apps) of the same code
    zips = {
        _job(feature_template(env_name), script, env_name)["DefaultArguments"]["--extra-py-files"]
        for env_name in ENVIRONMENTS
        for script in JOBS
    }
    # Then every job of both ships the very same zip (content-addressed: deterministic)
    assert len(zips) == 1
    staged = staged_libraries()
    assert (staged / "glue_jobs" / "clickstream_features.py").is_file()
    assert (staged / "glue_jobs" / "transforms" / "training_set.py").is_file()
    assert (staged / "platform_core" / "schemas" / "features.py").is_file()


def test_every_job_has_a_kms_security_configuration(dev):
    configurations = resources(dev, "AWS::Glue::SecurityConfiguration")
    assert len(configurations) == 3
    for script in JOBS:
        name = _job(dev, script)["SecurityConfiguration"]
        (configuration,) = [c for k, c in configurations.items() if name == {"Ref": k}]
        encryption = configuration["Properties"]["EncryptionConfiguration"]
        assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
        assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
        assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"


@pytest.mark.parametrize("script", sorted(JOBS))
def test_job_roles_read_their_inputs_and_write_only_their_outputs(dev, script):
    # Given the job's role
    allowed = grants(dev, _role_id(dev, script))
    reads, writes = JOBS[script]
    # Then it reads exactly its input prefixes (and the code assets) ...
    object_grants = {(a, r) for a, r in allowed if a.startswith("s3:") and "/" in r.split(":::", 1)[1]}
    data_grants = {(a, r) for a, r in object_grants if "cdk-" not in r}
    expected = {("s3:GetObject", f"{bucket}/{prefix}*") for bucket, prefix in reads}
    expected |= {(action, f"{CURATED}/{prefix}*") for prefix in writes for action in WRITE}
    assert data_grants == expected
    # ... lists only the buckets it reads or writes, and never touches the Glue catalog
    buckets = {r for a, r in allowed if a in LISTING}
    assert buckets == {bucket for bucket, _ in reads} | {CURATED}
    assert not [a for a, _ in allowed if a.startswith("glue:")]


def test_continuous_log_groups_are_encrypted_and_kept_for_the_configured_time(dev):
    groups = [
        g["Properties"]
        for g in resources(dev, "AWS::Logs::LogGroup").values()
        if "/aws-glue/jobs/logs-v2-" in str(flatten(g["Properties"].get("LogGroupName")))
    ]
    assert len(groups) == 3
    assert all("KmsKeyId" in g for g in groups)
    assert {g["RetentionInDays"] for g in groups} == {load_config("dev").log_retention_days}


# The feature jobs ingest their snapshots into Feature Store (glue_jobs/ingest).

INGESTING_JOBS = {"clickstream_features": USER_CLICKSTREAM, "subscription_features": USER_SUBSCRIPTION}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
@pytest.mark.parametrize("script", sorted(JOBS))
def test_feature_jobs_may_put_records_into_their_own_feature_group_only(env_name, script):
    # Given the job of an environment and its role
    template = feature_template(env_name)
    job = _job(template, script, env_name)
    allowed = grants(template, job["Role"]["Fn::GetAtt"][0])
    put_records = {r for a, r in allowed if a.startswith("sagemaker:")}
    group = INGESTING_JOBS.get(script)
    if group is None:
        # Then the training set job writes no feature group
        assert put_records == set()
        assert "--feature_group_arn" not in job["DefaultArguments"]
        return
    # Then the job is told its group by ARN and may call exactly PutRecord on it (nothing else of SageMaker)
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:feature-group/{group.physical_name(f'mlp-{env_name}')}"
    assert job["DefaultArguments"]["--feature_group_arn"] == arn
    assert {(a, r) for a, r in allowed if a.startswith("sagemaker:")} == {("sagemaker:PutRecord", arn)}


def test_a_feature_job_cannot_run_before_its_feature_group_exists(dev):
    for script, group in INGESTING_JOBS.items():
        job_id, _ = one(dev, "AWS::Glue::Job", {"Name": f"mlp-dev-{script.replace('_', '-')}"})
        group_id, _ = one(dev, "AWS::SageMaker::FeatureGroup", {"FeatureGroupName": group.physical_name("mlp-dev")})
        assert group_id in dev.to_json()["Resources"][job_id]["DependsOn"]
