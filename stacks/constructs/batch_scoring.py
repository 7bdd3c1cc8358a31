"""Batch scoring of every active user with the deployed model, daily, as a Step Functions workflow.

    schedule ─> ResolveRun ─> GetDeployedModel (SSM manifest) ─┬─ nothing deployed ─> NothingToScore
                                                               └─> ExportActiveUsers (Athena UNLOAD, JSON lines)
                 ─> ScoreActiveUsers (SageMaker batch transform, .sync) ─> RegisterPartition (Glue) ─> Done

Inputs are the day's feature snapshots (``curated/features/...``, written at 01:00 by the feature
orchestration): subscribers with ``is_active = 1`` and their clickstream features, one JSON object
per line, exactly the record the endpoint receives, so the same container and transform score them.
Each run exports to its own folder (Athena's UNLOAD needs an empty one) and writes its predictions
to ``curated/predictions/run_date=<day>/scored_at=<start>/``; the partition is registered only once
the transform job succeeded, so a failed or half-written run is never visible in the table, and
re-running a day adds a second, separately addressable run instead of mixing two.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.names import ATHENA_RESULTS_PREFIX, BATCH_INPUT_PREFIX, Names
from platform_core.schemas.features import USER_CLICKSTREAM, USER_SUBSCRIPTION
from platform_core.schemas.serving import (
    BATCH_PREDICTION_COLUMNS,
    BATCH_PREDICTION_PARTITIONS,
    PREDICTIONS_PREFIX,
    PREDICTIONS_TABLE,
)
from stacks.constructs.access import allow, allow_key, allow_objects, flatten_reference
from stacks.constructs.dependencies import depend_on_role_policy_only
from stacks.constructs.failure_queue import failure_queue
from stacks.constructs.feature_catalog import snapshot_table_name
from stacks.constructs.lake_refs import LakeRefs
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import log_retention
from stacks.policies import data_removal_policy

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


def active_users_query(database: str, bucket: str) -> str:
    """The UNLOAD of one day's active subscribers with every feature, as a ``States.Format``
    template: ``{}`` is the run date, then the run id (the export folder)."""
    subscription = ", ".join(f's."{name}"' for name in USER_SUBSCRIPTION.value_names)
    clickstream = ", ".join(f'c."{name}"' for name in USER_CLICKSTREAM.value_names)
    # Identifiers come from the schema package and the typed config; nothing here is input.
    return (
        f'UNLOAD (SELECT s."user_id", {subscription}, {clickstream} '  # noqa: S608
        f'FROM "{database}"."{snapshot_table_name(USER_SUBSCRIPTION)}" s '
        f'LEFT JOIN "{database}"."{snapshot_table_name(USER_CLICKSTREAM)}" c '
        'ON c."user_id" = s."user_id" AND c."snapshot_date" = s."snapshot_date" '
        'WHERE s."snapshot_date" = \'{}\' AND s."is_active" = 1) '
        f"TO 's3://{bucket}/{BATCH_INPUT_PREFIX}{{}}/' WITH (format = 'JSON', compression = 'GZIP')"
    )


class BatchScoring(Construct):
    """The predictions table, the scoring workflow, its schedule and its failure alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        lake: LakeRefs,
        model_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        self._names = names = Names(platform)
        self._platform = platform
        self._lake = lake
        stack = Stack.of(self)
        curated = lake.curated_bucket.bucket_name
        self.predictions_location = f"s3://{curated}/{PREDICTIONS_PREFIX}"
        self.table = self._table(stack.account, lake.database_name)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{names.batch_scoring_state_machine}",
            retention=log_retention(platform.log_retention_days),
            encryption_key=lake.key,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=names.batch_scoring_state_machine,
            comment="Scores every active user with the deployed churn model (batch transform)",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition(model_role)),
            timeout=Duration.minutes(platform.serving.batch_timeout_minutes + 30),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        self._grant(lake.key)
        depend_on_role_policy_only(self.state_machine, self.state_machine.role)
        self.schedule = self._schedule()
        # Failed and timed-out runs page through the observability stack (PlatformAlarms), by name.
        self._acknowledge()

    # -- table ------------------------------------------------------------------------------------
    def _table(self, catalog_id: str, database: str) -> glue.CfnTable:
        columns = [glue.CfnTable.ColumnProperty(name=n, type=t, comment=c) for n, t, c in BATCH_PREDICTION_COLUMNS]
        self._storage = glue.CfnTable.StorageDescriptorProperty(
            location=self.predictions_location,
            input_format=TEXT_INPUT,
            output_format=TEXT_OUTPUT,
            serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=JSON_SERDE),
            columns=columns,
        )
        return glue.CfnTable(
            self,
            "PredictionsTable",
            catalog_id=catalog_id,
            database_name=database,
            table_input=glue.CfnTable.TableInputProperty(
                name=PREDICTIONS_TABLE,
                description=(
                    "Daily batch churn scores of active users: one JSON line per user as the inference "
                    "container answers it (user_ids[1], scores[1]); one partition per successful run."
                ),
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "json"},
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=n, type=t, comment=c) for n, t, c in BATCH_PREDICTION_PARTITIONS
                ],
                storage_descriptor=self._storage,
            ),
        )

    # -- workflow ---------------------------------------------------------------------------------
    def _definition(self, model_role: iam.IRole) -> sfn.IChainable:
        names, serving, lake = self._names, self._platform.serving, self._lake
        curated = lake.curated_bucket.bucket_name
        resolve = sfn.Pass(
            self,
            "ResolveRun",
            parameters={
                "run_date": sfn.JsonPath.array_get_item(
                    sfn.JsonPath.string_split(sfn.JsonPath.string_at("$$.Execution.StartTime"), "T"), 0
                ),
                "scored_at": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                # A short, unique, name-safe id of the run (job names allow 63 characters).
                "id": sfn.JsonPath.hash(sfn.JsonPath.string_at("$$.Execution.Name"), "MD5"),
            },
            result_path="$.run",
        )
        deployed = tasks.CallAwsService(
            self,
            "GetDeployedModel",
            service="ssm",
            action="getParameter",
            iam_action="ssm:GetParameter",
            iam_resources=[
                Stack.of(self).format_arn(
                    service="ssm", resource="parameter", resource_name=names.serving_manifest_parameter.lstrip("/")
                )
            ],
            parameters={"Name": names.serving_manifest_parameter},
            result_selector={"manifest": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.Parameter.Value"))},
            result_path="$.deployed",
        )
        deployed.add_retry(errors=["Ssm.SsmException", "Ssm.InternalServerErrorException"], max_attempts=3)
        release = "$.deployed.manifest.serving.endpoint_config_name"
        export = tasks.AthenaStartQueryExecution(
            self,
            "ExportActiveUsers",
            query_string=sfn.JsonPath.format(
                active_users_query(lake.database_name, curated),
                sfn.JsonPath.string_at("$.run.run_date"),
                sfn.JsonPath.string_at("$.run.id"),
            ),
            work_group=names.athena_workgroup,
            query_execution_context=tasks.QueryExecutionContext(
                catalog_name="AwsDataCatalog", database_name=lake.database_name
            ),
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_path=sfn.JsonPath.DISCARD,
        )
        score = tasks.SageMakerCreateTransformJob(
            self,
            "ScoreActiveUsers",
            transform_job_name=sfn.JsonPath.format(
                f"{names.batch_scoring_state_machine}-{{}}", sfn.JsonPath.string_at("$.run.id")
            ),
            # The model of the served release (model and endpoint config share its name).
            model_name=sfn.JsonPath.string_at(release),
            role=model_role,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            batch_strategy=tasks.BatchStrategy.SINGLE_RECORD,
            transform_input=tasks.TransformInput(
                transform_data_source=tasks.TransformDataSource(
                    s3_data_source=tasks.TransformS3DataSource(
                        s3_uri=sfn.JsonPath.format(
                            f"s3://{curated}/{BATCH_INPUT_PREFIX}{{}}/", sfn.JsonPath.string_at("$.run.id")
                        ),
                        s3_data_type=tasks.S3DataType.S3_PREFIX,
                    )
                ),
                content_type="application/json",
                split_type=tasks.SplitType.LINE,
                compression_type=tasks.CompressionType.GZIP,
            ),
            transform_output=tasks.TransformOutput(
                s3_output_path=sfn.JsonPath.format(
                    f"{self.predictions_location}run_date={{}}/scored_at={{}}/",
                    sfn.JsonPath.string_at("$.run.run_date"),
                    sfn.JsonPath.string_at("$.run.scored_at"),
                ),
                accept="application/json",
                assemble_with=tasks.AssembleWith.LINE,
                encryption_key=lake.key,
            ),
            transform_resources=tasks.TransformResources(
                instance_count=serving.batch_instance_count,
                instance_type=ec2.InstanceType(serving.batch_instance_type.removeprefix("ml.")),
                volume_encryption_key=lake.key,
            ),
            task_timeout=sfn.Timeout.duration(Duration.minutes(serving.batch_timeout_minutes)),
            result_path=sfn.JsonPath.DISCARD,
        )
        register = tasks.CallAwsService(
            self,
            "RegisterPartition",
            service="glue",
            action="createPartition",
            iam_action="glue:CreatePartition",
            iam_resources=self._table_arns(),
            parameters={
                "DatabaseName": lake.database_name,
                "TableName": PREDICTIONS_TABLE,
                "PartitionInput": {
                    "Values": sfn.JsonPath.array(
                        sfn.JsonPath.string_at("$.run.run_date"), sfn.JsonPath.string_at("$.run.scored_at")
                    ),
                    "StorageDescriptor": {
                        "Location": sfn.JsonPath.format(
                            f"{self.predictions_location}run_date={{}}/scored_at={{}}/",
                            sfn.JsonPath.string_at("$.run.run_date"),
                            sfn.JsonPath.string_at("$.run.scored_at"),
                        ),
                        "InputFormat": TEXT_INPUT,
                        "OutputFormat": TEXT_OUTPUT,
                        "SerdeInfo": {"SerializationLibrary": JSON_SERDE},
                        "Columns": [{"Name": n, "Type": t} for n, t, _ in BATCH_PREDICTION_COLUMNS],
                    },
                },
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        done = sfn.Succeed(self, "Done")
        # A retried registration of the same run finds its partition there: that is success.
        register.add_catch(done, errors=["Glue.AlreadyExistsException"], result_path=sfn.JsonPath.DISCARD)
        nothing = sfn.Succeed(self, "NothingToScore", comment="No model has been deployed yet")
        has_model = (
            sfn.Choice(self, "ModelDeployed?")
            .when(sfn.Condition.is_present(release), export.next(score).next(register).next(done))
            .otherwise(nothing)
        )
        return resolve.next(deployed).next(has_model)

    def _table_arns(self) -> list[str]:
        stack = Stack.of(self)
        return [
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=self._lake.database_name),
            stack.format_arn(
                service="glue", resource="table", resource_name=f"{self._lake.database_name}/{PREDICTIONS_TABLE}"
            ),
        ]

    def _grant(self, key: kms.IKey) -> None:
        """What Athena (run as the state machine) needs for the export; the rest the tasks granted."""
        lake, stack = self._lake, Stack.of(self)
        role = self.state_machine.role
        database = lake.database_name
        allow(
            role,
            ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions", "glue:GetPartition"],
            [
                stack.format_arn(service="glue", resource="catalog"),
                stack.format_arn(service="glue", resource="database", resource_name=database),
                *(
                    stack.format_arn(
                        service="glue", resource="table", resource_name=f"{database}/{snapshot_table_name(g)}"
                    )
                    for g in (USER_SUBSCRIPTION, USER_CLICKSTREAM)
                ),
            ],
        )
        curated = lake.curated_bucket
        allow_objects(
            role,
            curated,
            prefixes=[g.snapshot_prefix for g in (USER_SUBSCRIPTION, USER_CLICKSTREAM)],
            actions=["s3:GetObject"],
            reason="Athena reads the feature snapshots' Parquet files (one daily partition per group).",
        )
        allow_objects(
            role,
            curated,
            prefixes=[BATCH_INPUT_PREFIX],
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            reason="Athena's UNLOAD writes the run's export under its own folder of the batch input prefix.",
        )
        allow(role, ["s3:ListBucket", "s3:GetBucketLocation"], [curated.bucket_arn, lake.artifacts_bucket.bucket_arn])
        allow_objects(
            role,
            lake.artifacts_bucket,
            prefixes=[ATHENA_RESULTS_PREFIX],
            actions=["s3:GetObject", "s3:PutObject"],
            reason="The workgroup's enforced result location (one object per query).",
        )
        allow_key(role, key, encrypt=True, decrypt=True)

    def _schedule(self) -> events.Rule:
        undelivered = failure_queue(
            self,
            "UndeliveredStarts",
            holds="batch scoring starts EventBridge could not deliver",
            removal_policy=data_removal_policy(self._platform),
        )
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"EventBridge schedule of {self._names.batch_scoring_state_machine}",
        )
        acknowledge(
            role,
            {"NIST.800.53.R5-IAMNoInlinePolicy": "The one states:StartExecution statement of the schedule."},
        )
        serving = self._platform.serving
        return events.Rule(
            self,
            "Schedule",
            description=f"Starts {self._names.batch_scoring_state_machine} daily",
            schedule=events.Schedule.expression(serving.batch_schedule_expression),
            enabled=serving.batch_schedule_enabled,
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    role=role,
                    dead_letter_queue=undelivered,
                    retry_attempts=10,
                    max_event_age=Duration.hours(2),
                )
            ],
        )

    def _acknowledge(self) -> None:
        stack = Stack.of(self)
        transform_jobs = stack.format_arn(service="sagemaker", resource="transform-job", resource_name="*")
        database = self._lake.database_name
        athena_catalog = {
            f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(arn))}]": (
                "Generated by the CDK for the Athena task: read access to the lake database's tables and "
                "functions, which the export's query (two feature snapshot tables) resolves at run time."
            )
            for arn in (
                stack.format_arn(service="glue", resource="table", resource_name=f"{database}/*"),
                stack.format_arn(service="glue", resource="userDefinedFunction", resource_name=f"{database}/*"),
            )
        }
        acknowledge(
            self.state_machine.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "Generated by the CDK: X-Ray, vended log delivery and Athena's query-execution actions "
                    "support no resource-level permissions."
                ),
                **athena_catalog,
                f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(transform_jobs))}]": (
                    "Generated by the CDK for the batch transform task: each run names its own job "
                    "(<state machine>-<run hash>), unknown before the run."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The policy is generated from the workflow's tasks for this one role; a managed policy "
                    "would be attached to nothing else."
                ),
            },
        )
