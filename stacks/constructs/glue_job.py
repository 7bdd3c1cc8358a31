"""A Glue 5 Spark job with the platform's defaults.

The entry script is an asset; ``glue_jobs/`` and ``platform_core/`` travel with it as one zip in
``--extra-py-files``, so the script imports the transforms and schemas exactly as in the repository.
Every job gets its own security configuration (SSE-KMS for S3 and CloudWatch Logs, CSE-KMS for job
bookmarks, all with the lake key), pre-created log groups with retention for the names Glue writes
to under that configuration, continuous logging and metrics, and a role with explicit statements
only; what the job reads and writes is granted by the caller on :attr:`GlueJob.role`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from platform_core.config import GlueConfig, PlatformConfig
from stacks.constructs.access import allow, allow_key
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import log_retention
from stacks.constructs.staging import stage_tree

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGING_ROOT = REPO_ROOT / "build" / "glue-assets"
GLUE_VERSION = "5.0"  # Spark 3.5, Python 3.11
# Packages every job script may import; staged together into the --extra-py-files zip.
LIBRARY_PACKAGES = ("glue_jobs", "platform_core")

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", "tests")


@cache
def staged_libraries() -> Path:
    """A folder holding the importable packages (CDK zips it into one asset)."""

    def populate(target: Path) -> None:
        for package in LIBRARY_PACKAGES:
            shutil.copytree(REPO_ROOT / package, target / package, ignore=_IGNORE)

    return stage_tree(STAGING_ROOT, "libraries", populate)


class GlueJob(Construct):
    """``glue_jobs/<script>`` as a Glue ETL job named ``job_name``.

    ``arguments`` become default job arguments (``{"--lake_bucket": ...}``); ``bookmarks`` turns job
    bookmarks on for jobs that process only new input on each run.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job_name: str,
        script: Path,
        platform: PlatformConfig,
        settings: GlueConfig,
        key: kms.IKey,
        description: str,
        arguments: Mapping[str, str] | None = None,
        bookmarks: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if not script.is_file():
            raise FileNotFoundError(f"Glue job script {script} does not exist")
        self.job_name = job_name
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description=f"Glue job {job_name}",
        )
        self.script = s3_assets.Asset(self, "Script", path=str(script))
        self.libraries = s3_assets.Asset(self, "Libraries", path=str(staged_libraries()))
        for asset in (self.script, self.libraries):
            # The exact objects, not the whole bootstrap bucket.
            allow(self.role, ["s3:GetObject"], [asset.bucket.arn_for_objects(asset.s3_object_key)])

        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=job_name,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn
                ),
            ),
        )
        self.log_groups = self._log_groups(platform, key)
        allow(
            self.role,
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            [group.log_group_arn for group in self.log_groups],
        )
        allow_key(self.role, key, encrypt=True, decrypt=True)
        # Job metrics (--enable-metrics, --enable-observability-metrics) go to the Glue namespace only.
        allow(self.role, ["cloudwatch:PutMetricData"], ["*"], StringEquals={"cloudwatch:namespace": "Glue"})

        self.job = glue.CfnJob(
            self,
            "Job",
            name=job_name,
            description=description,
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=self.script.s3_object_url
            ),
            worker_type=settings.worker_type,
            number_of_workers=settings.number_of_workers,
            timeout=settings.timeout_minutes,
            max_retries=settings.max_retries,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            security_configuration=self.security_configuration.ref,
            default_arguments={
                "--job-language": "python",
                "--extra-py-files": self.libraries.s3_object_url,
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--job-bookmark-option": "job-bookmark-enable" if bookmarks else "job-bookmark-disable",
                **(arguments or {}),
            },
        )
        # The role's policy must exist before a run can start.
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self.job.node.add_dependency(policy)
        for group in self.log_groups:
            self.job.node.add_dependency(group)
        acknowledge(
            self.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "cloudwatch:PutMetricData supports no resource-level permissions; the statement is "
                    "limited to the Glue namespace by a condition."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The policy is generated from explicit least-privilege grants for this one job role; "
                    "a managed policy would be attached to nothing else."
                ),
            },
        )

    def _log_groups(self, platform: PlatformConfig, key: kms.IKey) -> list[logs.LogGroup]:
        """The groups Glue writes to under a security configuration with CloudWatch encryption.

        Created here (instead of by Glue on the first run) so that they have a retention and are
        encrypted from the start: continuous logs go to ``logs-v2-<configuration>``, driver output
        and errors to ``<configuration>-role/<role name>/{output,error}``.
        """
        configuration = self.security_configuration.ref
        role_name = self.role.role_name
        names = {
            "ContinuousLogs": f"/aws-glue/jobs/logs-v2-{configuration}",
            "OutputLogs": f"/aws-glue/jobs/{configuration}-role/{role_name}/output",
            "ErrorLogs": f"/aws-glue/jobs/{configuration}-role/{role_name}/error",
        }
        retention = log_retention(platform.log_retention_days)
        return [
            logs.LogGroup(self, construct_id, log_group_name=name, retention=retention, encryption_key=key)
            for construct_id, name in names.items()
        ]

    @property
    def job_arn(self) -> str:
        return Stack.of(self).format_arn(service="glue", resource="job", resource_name=self.job_name)
