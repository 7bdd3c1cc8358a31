"""The feature engineering Glue jobs, each granted exactly the lake prefixes it reads and writes.

None of the jobs uses job bookmarks: each run is a pure function of ``--as_of`` and of everything
its inputs hold up to then (a sliding 30-day window of raw events, the whole SCD2 history, every
label and snapshot), and overwrites its own output partition. Bookmarks would hide already-read
files from the next run and so break both the windows and the idempotent re-run of a past day.

The jobs do not retry on their own (``max_retries = 0``): the orchestration state machine owns
the retry policy and waits for each run (``.sync``), so a Glue-side retry would run behind its
back and collide with its own retry.

They read and write by S3 path, never through the Glue catalog, so their roles hold no catalog
permission; the tables over their outputs are defined by CloudFormation with partition projection.

The two feature jobs then put their snapshot into the group's feature group (``glue_jobs.ingest``):
``sagemaker:PutRecord`` on that one group, the lake key they already hold (the online store is
encrypted with it), and a rejects prefix for the rows Feature Store would not take. The offline
store's files are written by SageMaker under the feature store's own role, not by the jobs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import aws_s3 as s3
from constructs import Construct

from glue_jobs.ingest.records import rejects_prefix
from platform_core.config import PlatformConfig
from platform_core.names import CLICKSTREAM_RAW_PREFIX, Names
from platform_core.schemas.cdc import CHURN_LABELS_PREFIX, SUBSCRIPTION_HISTORY_PREFIX
from platform_core.schemas.features import TRAINING_SET_PREFIX, USER_CLICKSTREAM, USER_SUBSCRIPTION, FeatureGroup
from stacks.constructs.access import allow, allow_bucket_listing, allow_objects
from stacks.constructs.feature_store import FeatureStore
from stacks.constructs.glue_job import GlueJob
from stacks.constructs.lake_refs import LakeRefs

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "glue_jobs"

# What a Spark overwrite of an output prefix does: read back, write (multipart), delete the old files.
WRITE_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
READ_ACTIONS = ("s3:GetObject",)


class FeatureJobs(Construct):
    """``clickstream_features``, ``subscription_features`` and ``training_set`` as Glue 5 Spark jobs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        lake: LakeRefs,
        feature_store: FeatureStore,
    ) -> None:
        """``feature_store``: the groups the feature jobs ingest their snapshots into."""
        super().__init__(scope, construct_id)
        self._platform = platform
        self._lake = lake
        self._feature_store = feature_store
        raw, curated = lake.raw_bucket, lake.curated_bucket

        self.clickstream_features = self._job(
            "ClickstreamFeaturesJob",
            "clickstream_features",
            description="Raw clickstream (dedup, sessions) -> daily user-clickstream feature snapshot",
            arguments={
                "--lake_bucket": raw.bucket_name,
                "--curated_bucket": curated.bucket_name,
                # The same gap as the online consumer's, so online and offline sessions agree.
                "--session_gap_minutes": str(platform.glue.session_gap_minutes),
            },
            reads={raw: [CLICKSTREAM_RAW_PREFIX]},
            writes=[USER_CLICKSTREAM.snapshot_prefix],
            ingests=USER_CLICKSTREAM,
        )
        self.subscription_features = self._job(
            "SubscriptionFeaturesJob",
            "subscription_features",
            description="Subscription history (SCD2) -> daily user-subscription feature snapshot",
            arguments={"--curated_bucket": curated.bucket_name},
            reads={curated: [SUBSCRIPTION_HISTORY_PREFIX]},
            writes=[USER_SUBSCRIPTION.snapshot_prefix],
            ingests=USER_SUBSCRIPTION,
        )
        self.training_set = self._job(
            "TrainingSetJob",
            "training_set",
            description="Churn labels + feature snapshots -> point-in-time training set",
            arguments={
                "--curated_bucket": curated.bucket_name,
                "--lead_days": str(platform.features.label_lead_days),
                "--max_feature_age_days": str(platform.features.max_feature_age_days),
            },
            reads={curated: [CHURN_LABELS_PREFIX, USER_CLICKSTREAM.snapshot_prefix, USER_SUBSCRIPTION.snapshot_prefix]},
            writes=[TRAINING_SET_PREFIX],
        )

    @property
    def jobs(self) -> list[GlueJob]:
        return [self.clickstream_features, self.subscription_features, self.training_set]

    def _job(
        self,
        construct_id: str,
        script: str,
        *,
        description: str,
        arguments: Mapping[str, str],
        reads: Mapping[s3.IBucket, Sequence[str]],
        writes: Sequence[str],
        ingests: FeatureGroup | None = None,
    ) -> GlueJob:
        """``glue_jobs/<script>.py`` named ``Names.glue_job(script)``; writes go to the curated bucket.

        ``ingests``: the group whose feature group the job puts its snapshot into.
        """
        if ingests is not None:
            arguments = {**arguments, "--feature_group_arn": self._feature_store.feature_group_arn(ingests)}
            writes = [*writes, rejects_prefix(ingests)]
        job = GlueJob(
            self,
            construct_id,
            job_name=Names(self._platform).glue_job(script),
            script=SCRIPTS / f"{script}.py",
            platform=self._platform,
            settings=dataclasses.replace(self._platform.glue, max_retries=0),
            key=self._lake.key,
            description=description,
            arguments=arguments,
            bookmarks=False,
        )
        curated = self._lake.curated_bucket
        for bucket, prefixes in reads.items():
            if bucket is curated:
                continue  # granted together with the writes below (one listing grant per bucket)
            allow_bucket_listing(job.role, bucket)
            allow_objects(
                job.role,
                bucket,
                prefixes=prefixes,
                actions=READ_ACTIONS,
                reason="The job reads every object of its input datasets, whose keys are partitioned by time.",
            )
        allow_bucket_listing(job.role, curated)
        curated_reads = [p for p in reads.get(curated, ()) if p not in writes]
        if curated_reads:
            allow_objects(
                job.role,
                curated,
                prefixes=curated_reads,
                actions=READ_ACTIONS,
                reason="The job reads every object of its curated input datasets (partitioned or rewritten whole).",
            )
        allow_objects(
            job.role,
            curated,
            prefixes=writes,
            actions=WRITE_ACTIONS,
            reason="Spark overwrites the output (delete, then multipart writes of part files) and reads it back to count.",
        )
        if ingests is not None:
            self._allow_ingest(job, ingests)
        return job

    def _allow_ingest(self, job: GlueJob, group: FeatureGroup) -> None:
        """``PutRecord`` on the group's feature group only; and no run before the group exists."""
        allow(job.role, ["sagemaker:PutRecord"], [self._feature_store.feature_group_arn(group)])
        job.job.node.add_dependency(self._feature_store.groups[group.name])
