"""The SageMaker training pipeline: its code bundle, its model package group, its role, the pipeline.

The definition comes from :func:`pipelines.definition.build_definition`, built offline at synth with
literal placeholders that are then replaced by CloudFormation references (the CDK turns the string
into an ``Fn::Join``). The code bundle is one deterministic gzip tarball of ``pipelines/`` and
``platform_core/`` (a file asset): the framework container's script mode extracts exactly that
format, and the processing steps untar it themselves. One role serves the pipeline (it creates the
jobs and the model package) and the jobs (they read and write the lake and pull the image); every
statement names its resources, and each remaining wildcard (job names, object keys) is
acknowledged next to it.

With Model Monitor on (``ServingConfig.model_monitor_enabled``) the pipeline also writes the
data-quality baseline the endpoint's monitoring schedule reads: the role may then pull AWS's
analyzer image and write exactly the two baseline objects.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from aws_cdk import ArnFormat, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipelines.definition import (
    ARTIFACTS_PREFIX,
    BASELINE_CONSTRAINTS,
    BASELINE_STATISTICS,
    MODEL_MONITOR_REPOSITORY,
    MONITORING_BASELINE_PREFIX,
    REPOSITORY,
    SERVING_ENTRY_POINT,
    SERVING_ENTRY_SOURCE,
    build_definition,
    image_uri,
    model_monitor_image_uri,
)
from platform_core.config import PlatformConfig
from platform_core.schemas.features import TRAINING_SET_PREFIX
from stacks.constructs.access import allow, allow_bucket_listing, allow_key, allow_objects, flatten_reference
from stacks.constructs.nag import acknowledge

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGING_ROOT = REPO_ROOT / "build" / "training-assets"
# What the containers import; the definition builder itself runs at synth only.
BUNDLED_PACKAGES = ("pipelines", "platform_core")
NOT_BUNDLED = frozenset({"pipelines/definition.py"})
# Source and the data files the packages read; never editor backups, caches or hidden files.
BUNDLED_SUFFIXES = frozenset({".py", ".json", ".avsc"})

# Literal placeholders the SDK accepts (an ARN with a "/", bucket-shaped names, an s3:// URI);
# replaced by CloudFormation references once the definition is built.
ROLE_PLACEHOLDER = "arn:aws:iam::000000000000:role/training-pipeline-role-placeholder"
ARTIFACTS_BUCKET_PLACEHOLDER = "artifacts-bucket-placeholder"
CURATED_BUCKET_PLACEHOLDER = "curated-bucket-placeholder"
CODE_PLACEHOLDER = "s3://code-bundle-placeholder/code.tar.gz"
KEY_PLACEHOLDER = "arn:aws:kms:placeholder:000000000000:key/lake-key-placeholder"


def bundle_members(root: Path = REPO_ROOT) -> list[Path]:
    """The files of the code bundle, relative to the repository root, in a fixed order."""
    members = []
    for package in BUNDLED_PACKAGES:
        for path in (root / package).rglob("*"):
            relative = path.relative_to(root)
            if (
                path.is_file()
                and path.suffix in BUNDLED_SUFFIXES
                and not any(part.startswith(".") or part == "__pycache__" for part in relative.parts)
                and relative.as_posix() not in NOT_BUNDLED
            ):
                members.append(relative)
    return sorted(members, key=lambda p: p.as_posix())


def bundle_bytes(root: Path = REPO_ROOT) -> bytes:
    """A gzip tarball of the bundle whose bytes depend only on the files' names and contents.

    Times, owners and permissions are fixed (mtime 0, root, 0644) and the gzip header carries no
    name or time, so the asset hash, and with it the template, changes only when the code does.
    """
    files = {relative.as_posix(): (root / relative).read_bytes() for relative in bundle_members(root)}
    # The framework serving container imports SAGEMAKER_PROGRAM from the bundle's root.
    files[SERVING_ENTRY_POINT] = SERVING_ENTRY_SOURCE.encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0) as archive:
        archive.write(raw.getvalue())
    return compressed.getvalue()


@cache
def staged_bundle() -> Path:
    """The bundle as a file named by its content (written once, atomically: parallel synths agree)."""
    data = bundle_bytes()
    target = STAGING_ROOT / f"code-{hashlib.sha256(data).hexdigest()[:16]}.tar.gz"
    if not target.exists():
        STAGING_ROOT.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=STAGING_ROOT, suffix=".partial")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    return target


class TrainingPipeline(Construct):
    """``AWS::SageMaker::Pipeline`` named ``pipeline_name``, its role, code and model package group.

    Reads the curated training set (``curated/training_set/``), writes everything under
    ``s3://<artifacts>/training/<step>/<execution id>/``, encrypts volumes and outputs with ``key`` and
    registers models in the group ``model_package_group`` (retained: it holds the model versions).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        pipeline_name: str,
        model_package_group: str,
        key: kms.IKey,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        if Token.is_unresolved(stack.region):
            raise ValueError(
                "the training pipeline needs a stack with a concrete region: SageMaker images are regional"
            )
        settings = platform.training
        self.pipeline_name = pipeline_name
        self.monitoring_baseline = platform.serving.model_monitor_enabled
        self.image_uri = image_uri(stack.region, settings.xgboost_framework_version)

        self.code = s3_assets.Asset(self, "Code", path=str(staged_bundle()))
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=model_package_group,
            model_package_group_description=(
                f"{platform.resource_prefix}: churn classifier versions registered by {pipeline_name}"
            ),
        )
        self.model_package_group.apply_removal_policy(removal_policy)

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{pipeline_name}: runs the pipeline, its processing and training jobs, registers models",
        )
        self._grant_data(key=key, curated_bucket=curated_bucket, artifacts_bucket=artifacts_bucket)
        self._grant_runtime()
        self._grant_sagemaker(model_package_group)
        if self.monitoring_baseline:
            self._grant_monitoring_baseline(artifacts_bucket)
        acknowledge(
            self.role,
            {
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "Explicit statements for this one pipeline role (its buckets, key, jobs and model "
                    "group); a managed policy would be attached to nothing else."
                ),
            },
        )

        self.definition = self._definition(
            platform,
            model_package_group=model_package_group,
            key=key,
            curated_bucket=curated_bucket,
            artifacts_bucket=artifacts_bucket,
        )
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description="Churn model: preprocess, train (XGBoost), evaluate, quality gate, register",
            pipeline_definition={"PipelineDefinitionBody": self.definition},
            role_arn=self.role.role_arn,
        )
        # An execution may start as soon as the pipeline exists: the role's policy must exist first
        # (the role itself is already a dependency, through its ARN).
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self.pipeline.node.add_dependency(policy)

    def _definition(
        self,
        platform: PlatformConfig,
        *,
        model_package_group: str,
        key: kms.IKey,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
    ) -> str:
        text = build_definition(
            region=Stack.of(self).region,
            role_arn_placeholder=ROLE_PLACEHOLDER,
            bucket_placeholder=ARTIFACTS_BUCKET_PLACEHOLDER,
            curated_bucket_placeholder=CURATED_BUCKET_PLACEHOLDER,
            scripts_s3_prefix_placeholder=CODE_PLACEHOLDER,
            kms_key_placeholder=KEY_PLACEHOLDER,
            config=platform.training,
            pipeline_name=self.pipeline_name,
            model_package_group=model_package_group,
            label_horizon_days=platform.cdc.churn_window_days,
            monitoring_baseline=self.monitoring_baseline,
        )
        substitutions = {
            # The code placeholder first: it is a whole URI, and no other placeholder is inside it.
            CODE_PLACEHOLDER: self.code.s3_object_url,
            ROLE_PLACEHOLDER: self.role.role_arn,
            ARTIFACTS_BUCKET_PLACEHOLDER: artifacts_bucket.bucket_name,
            CURATED_BUCKET_PLACEHOLDER: curated_bucket.bucket_name,
            KEY_PLACEHOLDER: key.key_arn,
        }
        for placeholder, value in substitutions.items():
            if placeholder not in text:
                raise ValueError(f"the pipeline definition never uses {placeholder!r}: the wiring is wrong")
            text = text.replace(placeholder, value)
        return text

    # -- permissions -----------------------------------------------------------------------------

    def _grant_data(self, *, key: kms.IKey, curated_bucket: s3.IBucket, artifacts_bucket: s3.IBucket) -> None:
        allow_bucket_listing(self.role, curated_bucket)
        allow_objects(
            self.role,
            curated_bucket,
            prefixes=[TRAINING_SET_PREFIX],
            actions=["s3:GetObject"],
            reason="Preprocessing reads every Parquet part file the training set job wrote under its prefix.",
        )
        allow_bucket_listing(self.role, artifacts_bucket)
        allow_objects(
            self.role,
            artifacts_bucket,
            prefixes=[ARTIFACTS_PREFIX],
            actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            reason=(
                "Each execution writes its splits, model and evaluation under training/<step>/<execution id>/, "
                "an id SageMaker assigns at run time; later steps read them back."
            ),
        )
        # The code bundle: exactly this asset's object.
        allow(self.role, ["s3:GetObject"], [self.code.bucket.arn_for_objects(self.code.s3_object_key)])
        allow_key(self.role, key, encrypt=True, decrypt=True)
        # Volume encryption with the lake key: SageMaker creates grants for the instances' EBS volumes.
        allow(self.role, ["kms:CreateGrant"], [key.key_arn], Bool={"kms:GrantIsForAWSResource": "true"})

    def _grant_runtime(self) -> None:
        stack = Stack.of(self)
        image_account = self.image_uri.split(".", 1)[0]
        allow(
            self.role,
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [f"arn:{stack.partition}:ecr:{stack.region}:{image_account}:repository/{REPOSITORY}"],
        )
        allow(self.role, ["ecr:GetAuthorizationToken"], ["*"])
        log_groups = [
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"/aws/sagemaker/{jobs}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for jobs in ("ProcessingJobs", "TrainingJobs")
        ]
        allow(
            self.role,
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            log_groups,
        )
        allow(
            self.role,
            ["cloudwatch:PutMetricData"],
            ["*"],
            StringLike={"cloudwatch:namespace": "/aws/sagemaker/*"},
        )
        self._acknowledge_wildcards(
            [
                (
                    "*",
                    "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level permissions; "
                    "PutMetricData is limited to the /aws/sagemaker/* namespaces by a condition.",
                ),
                *(
                    (arn, "SageMaker names each job's log streams <job name>/<host>-<timestamp> at run time.")
                    for arn in log_groups
                ),
            ]
        )

    def _grant_monitoring_baseline(self, artifacts_bucket: s3.IBucket) -> None:
        """The analyzer image (AWS's account of the region) and the two baseline files, nothing else:
        the baseline dataset is written under training/ like every other step's output."""
        stack = Stack.of(self)
        image_account = model_monitor_image_uri(stack.region).split(".", 1)[0]
        allow(
            self.role,
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [f"arn:{stack.partition}:ecr:{stack.region}:{image_account}:repository/{MODEL_MONITOR_REPOSITORY}"],
        )
        allow(
            self.role,
            ["s3:PutObject"],
            [
                artifacts_bucket.arn_for_objects(f"{MONITORING_BASELINE_PREFIX}{name}")
                for name in (BASELINE_STATISTICS, BASELINE_CONSTRAINTS)
            ],
        )

    def _grant_sagemaker(self, model_package_group: str) -> None:
        stack = Stack.of(self)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        # SageMaker Pipelines names every job it starts pipelines-<execution id>-<step>-<suffix>.
        processing_jobs, training_jobs = arn("processing-job", "pipelines-*"), arn("training-job", "pipelines-*")
        allow(
            self.role,
            ["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob"],
            [processing_jobs],
        )
        allow(
            self.role,
            ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
            [training_jobs],
        )
        group = arn("model-package-group", model_package_group)
        packages = arn("model-package", f"{model_package_group}/*")
        allow(
            self.role,
            ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"],
            [group, packages],
        )
        # Experiments: the pipeline's experiment, one trial per execution, one component per job.
        experiment = arn("experiment", self.pipeline_name)
        trials = arn("experiment-trial", "*")
        components = arn("experiment-trial-component", "*")
        allow(self.role, ["sagemaker:CreateExperiment", "sagemaker:DescribeExperiment"], [experiment])
        allow(self.role, ["sagemaker:CreateTrial", "sagemaker:DescribeTrial"], [trials])
        allow(
            self.role, ["sagemaker:AssociateTrialComponent", "sagemaker:DescribeTrialComponent"], [components, trials]
        )
        # Pipelines tags what it creates with the execution's ARN.
        tagged = [processing_jobs, training_jobs, group, packages, experiment, trials, components]
        allow(self.role, ["sagemaker:AddTags"], tagged)
        allow(
            self.role,
            ["iam:PassRole"],
            [self.role.role_arn],
            StringEquals={"iam:PassedToService": "sagemaker.amazonaws.com"},
        )
        self._acknowledge_wildcards(
            [
                (
                    processing_jobs,
                    "SageMaker Pipelines names the jobs it starts pipelines-<execution id>-<step>-<suffix>.",
                ),
                (
                    training_jobs,
                    "SageMaker Pipelines names the jobs it starts pipelines-<execution id>-<step>-<suffix>.",
                ),
                (packages, "Model package versions are numbered by SageMaker inside this one group."),
                (trials, "One trial per execution, named by the execution id that SageMaker assigns at run time."),
                (components, "Trial components are named after the jobs, themselves named at run time."),
            ]
        )

    def _acknowledge_wildcards(self, resources: Iterable[tuple[str, str]]) -> None:
        stack = Stack.of(self)
        acknowledge(
            self.role,
            {
                f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(resource))}]": reason
                for resource, reason in resources
            },
        )
