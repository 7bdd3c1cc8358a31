"""The platform's alarms, built from the *names* of what they watch.

Nothing here needs another stack's constructs: streams, functions, queues, the state machine, the
pipeline and the endpoint are addressed by their physical names (``platform_core.names.Names``),
so the alarm set deploys before, after or without the stacks that create those resources. An alarm
on a resource that does not exist yet simply has no data (treated as not breaching).

Metric alarms notify the topic on ALARM and on OK; failures that exist only as events (Glue job
runs, SageMaker pipeline executions) are routed to the same topic by EventBridge rules.

Serving is watched end to end: the endpoint (server errors, p99 model latency, measured model
quality), the inference API in front of it (API Gateway server errors and p99 latency), the two
serving functions (errors, throttles, and an invocation close to its timeout), the deployer's
on-failure queue, the batch scoring and Model Monitor set-up workflows, and, with Model Monitor on,
the per-feature drift its hourly runs measure against the training baseline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Arn, ArnFormat, Aws, Duration, Fn, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from platform_core.config import FunctionConfig, ObservabilityConfig, PlatformConfig
from platform_core.names import MODEL_QUALITY_METRIC, MODEL_QUALITY_NAMESPACE, Names
from platform_core.schemas.features import FEATURE_GROUPS
from stacks.constructs.data_quality_monitor import DATA_METRICS_NAMESPACE, setup_state_machine_name
from stacks.constructs.failure_queue import failure_queue

GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
GE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
ONE_HOUR = Duration.hours(1)
# A metric math alarm reads at most 10 queries: the metrics and the expression over them.
MAX_METRICS_PER_EXPRESSION = 9


@dataclass(frozen=True)
class WatchedResources:
    """What the alarms watch, by physical name (function ARNs are accepted too)."""

    streams: Sequence[str] = ()
    lake_deliveries: Sequence[str] = ()  # Firehose -> S3 with Parquet conversion and a transform
    search_deliveries: Sequence[str] = ()  # Firehose -> OpenSearch with a transform
    functions: Sequence[str] = ()
    queues: Sequence[str] = ()  # dead-letter queues: any message is a record that needs a person
    glue_job_prefix: str | None = None
    state_machines: Sequence[str] = ()
    pipelines: Sequence[str] = ()  # SageMaker pipelines
    endpoint: str | None = None
    endpoint_variant: str = "AllTraffic"
    search_domain: str | None = None
    search_volume_gb: int = 10  # per data node, for the free-storage alarm
    # Functions (physical names, as in ``functions``) whose duration is alarmed against their timeout.
    function_timeouts: Mapping[str, int] = field(default_factory=dict)
    api: str | None = None  # API Gateway REST API name (the ApiName dimension)
    # Model Monitor: the schedule's name and the features whose drift it measures.
    monitoring_schedule: str | None = None
    monitored_features: Sequence[str] = ()

    @classmethod
    def of_platform(
        cls,
        config: PlatformConfig,
        *,
        functions: Sequence[str],
        dead_letter_queue_owners: Sequence[str],
        extra_functions: Sequence[str] = (),
        extra_queues: Sequence[str] = (),
        function_settings: Mapping[str, FunctionConfig] | None = None,
    ) -> WatchedResources:
        """Everything the platform runs, named from the configuration.

        ``functions``: the ``lambdas/<name>`` folders (named ``Names.function``);
        ``dead_letter_queue_owners``: those that own an on-failure queue (``Names.dead_letter_queue``);
        ``function_settings``: the settings of those whose duration is watched against their timeout
        (by default the serving functions, whose every call is bounded).
        """
        names = Names(config)
        observability = config.observability
        serving = config.serving
        if function_settings is None:
            function_settings = serving_function_settings(config)
        monitoring = serving.model_monitor_enabled
        setup_machines = (setup_state_machine_name(names),) if monitoring else ()
        return cls(
            streams=(names.clickstream_stream, names.cdc_stream),
            lake_deliveries=(names.clickstream_firehose,),
            search_deliveries=(names.clickstream_search_firehose,) if observability.opensearch_enabled else (),
            functions=(*(names.function(f) for f in functions), *extra_functions),
            queues=(*(names.dead_letter_queue(f) for f in dead_letter_queue_owners), *extra_queues),
            glue_job_prefix=names.glue_job_prefix,
            state_machines=(names.orchestration_state_machine, names.batch_scoring_state_machine, *setup_machines),
            pipelines=(names.training_pipeline,),
            endpoint=names.inference_endpoint,
            endpoint_variant=names.inference_variant,
            search_domain=names.search_domain if observability.opensearch_enabled else None,
            search_volume_gb=observability.opensearch_volume_gb,
            function_timeouts={
                names.function(function): settings.timeout_seconds for function, settings in function_settings.items()
            },
            api=names.inference_api,
            monitoring_schedule=names.data_quality_monitoring_schedule if monitoring else None,
            monitored_features=monitored_features() if monitoring else (),
        )


def serving_function_settings(config: PlatformConfig) -> dict[str, FunctionConfig]:
    """The serving functions (``lambdas/<name>``) and their settings."""
    return {"model_deployer": config.serving.deployer, "inference_api": config.serving.api_function}


def monitored_features() -> tuple[str, ...]:
    """What Model Monitor measures drift on: every feature the endpoint receives (``user_id``, an
    identifier whose every value is new, is in the requests but its drift says nothing)."""
    return tuple(name for group in FEATURE_GROUPS for name in group.value_names)


@dataclass
class AlarmArea:
    """The alarms of one part of the platform (one row of the dashboard)."""

    title: str
    alarms: list[cloudwatch.Alarm] = field(default_factory=list)


class PlatformAlarms(Construct):
    """Every platform alarm, plus the EventBridge rules for event-only failures, to one topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resources: WatchedResources,
        thresholds: ObservabilityConfig,
        topic: sns.ITopic,
        name_prefix: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._topic = topic
        # Events EventBridge could not deliver to the topic. SQS-managed encryption: EventBridge can
        # write to it without a key grant, and it holds only event envelopes (job and pipeline ids).
        self.undelivered_events = failure_queue(
            self,
            "UndeliveredEvents",
            holds="alarm events EventBridge could not deliver to the topic",
            removal_policy=removal_policy,
        )
        self._prefix = name_prefix
        self._t = thresholds
        self.areas: dict[str, AlarmArea] = {}
        self.rules: list[events.Rule] = []
        self._streams(resources.streams)
        self._deliveries(resources.lake_deliveries, resources.search_deliveries)
        self._functions(resources.functions, resources.function_timeouts)
        self._queues(resources.queues)
        self._orchestration(resources)
        self._serving(resources)
        self._inference_api(resources.api)
        self._monitoring(resources)
        if resources.search_domain is not None:
            self._search_domain(resources.search_domain, resources.search_volume_gb)
        if self.rules:
            self._alarm(
                "orchestration",
                "Batch orchestration",
                "undelivered failure events",
                self.undelivered_events.metric_approximate_number_of_messages_visible(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                threshold=0,
                operator=GT,
                periods=1,
                why="EventBridge could not deliver a failure event to the alarm topic (check the topic's key policy)",
            )

    @property
    def alarms(self) -> list[cloudwatch.Alarm]:
        return [alarm for area in self.areas.values() for alarm in area.alarms]

    # -----------------------------------------------------------------------------------------

    def _streams(self, streams: Sequence[str]) -> None:
        for stream in streams:
            dims = {"StreamName": stream}
            self._alarm(
                "streams",
                "Kinesis streams",
                f"{stream} iterator age",
                _metric("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", dims, "Maximum", ONE_MINUTE),
                threshold=self._t.stream_iterator_age_seconds * 1000,
                operator=GT,
                periods=5,
                why="a consumer of the stream is falling behind (records wait longer than the threshold)",
            )
            self._alarm(
                "streams",
                "Kinesis streams",
                f"{stream} write throttles",
                _metric("AWS/Kinesis", "WriteProvisionedThroughputExceeded", dims, "Sum", FIVE_MINUTES),
                threshold=self._t.stream_write_throttle_threshold,
                operator=GT,
                periods=2,
                why="producers are throttled for ten minutes in a row (the stream lacks write capacity)",
            )

    def _deliveries(self, lake: Sequence[str], search: Sequence[str]) -> None:
        for stream in lake:
            dims = {"DeliveryStreamName": stream}
            self._alarm(
                "firehose",
                "Firehose deliveries",
                f"{stream} data freshness",
                _metric("AWS/Firehose", "DeliveryToS3.DataFreshness", dims, "Maximum", FIVE_MINUTES),
                threshold=self._t.firehose_freshness_seconds,
                operator=GT,
                periods=1,
                why="the oldest record not yet in the lake is older than the threshold",
            )
            self._alarm(
                "firehose",
                "Firehose deliveries",
                f"{stream} failed conversions",
                _metric("AWS/Firehose", "FailedConversion.Records", dims, "Sum", FIVE_MINUTES),
                threshold=0,
                operator=GT,
                periods=1,
                why="records could not be converted to Parquet (they are in the error prefix)",
            )
            self._processing_alarm(stream)
        for stream in search:
            self._alarm(
                "firehose",
                "Firehose deliveries",
                f"{stream} data freshness",
                _metric(
                    "AWS/Firehose",
                    "DeliveryToAmazonOpenSearchService.DataFreshness",
                    {"DeliveryStreamName": stream},
                    "Maximum",
                    FIVE_MINUTES,
                ),
                threshold=self._t.firehose_freshness_seconds,
                operator=GT,
                periods=1,
                why="the dashboards lag the stream by more than the threshold",
            )
            self._processing_alarm(stream)

    def _processing_alarm(self, stream: str) -> None:
        self._alarm(
            "firehose",
            "Firehose deliveries",
            f"{stream} processing failures",
            _metric(
                "AWS/Firehose", "ExecuteProcessing.Success", {"DeliveryStreamName": stream}, "Average", FIVE_MINUTES
            ),
            threshold=self._t.firehose_processing_success_min,
            operator=LT,
            periods=2,
            why="transform invocations fail (Firehose retries, then sends whole batches to the error output)",
        )

    def _functions(self, functions: Sequence[str], timeouts: Mapping[str, int]) -> None:
        for index, function in enumerate(functions, start=1):
            label = function if not Token.is_unresolved(function) else f"function {index}"
            dims = {"FunctionName": function_name(function)}
            self._alarm(
                "functions",
                "Lambda functions",
                f"{label} errors",
                _metric("AWS/Lambda", "Errors", dims, "Sum", FIVE_MINUTES),
                threshold=self._t.lambda_error_threshold,
                operator=GE,
                periods=1,
                why="invocations failed (see the function's log group)",
            )
            self._alarm(
                "functions",
                "Lambda functions",
                f"{label} throttles",
                _metric("AWS/Lambda", "Throttles", dims, "Sum", FIVE_MINUTES),
                threshold=self._t.lambda_throttle_threshold,
                operator=GT,
                periods=1,
                why="invocations were throttled (account or reserved concurrency exhausted)",
            )
            if function in timeouts:
                self._duration_alarm(label, dims, timeouts[function])

    def _duration_alarm(self, label: str, dims: dict[str, str], timeout_seconds: int) -> None:
        fraction = self._t.lambda_duration_timeout_fraction
        self._alarm(
            "functions",
            "Lambda functions",
            f"{label} duration near timeout",
            _metric("AWS/Lambda", "Duration", dims, "Maximum", FIVE_MINUTES),  # milliseconds
            threshold=round(timeout_seconds * 1000 * fraction),
            operator=GT,
            periods=1,
            why=(
                f"an invocation took more than {fraction:.0%} of the {timeout_seconds} s timeout "
                "(a call it makes is not bounded as it should be, or a dependency is slow)"
            ),
        )

    def _queues(self, queues: Sequence[str]) -> None:
        for queue in queues:
            self._alarm(
                "queues",
                "Dead-letter queues",
                f"{queue} depth",
                _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue}, "Maximum", FIVE_MINUTES),
                threshold=self._t.dlq_depth_threshold,
                operator=GT,
                periods=1,
                why="records ended in the dead-letter queue: each one needs a person to look at it",
            )

    def _orchestration(self, resources: WatchedResources) -> None:
        stack = Stack.of(self)
        for machine in resources.state_machines:
            arn = stack.format_arn(
                service="states",
                resource="stateMachine",
                resource_name=machine,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for metric_name in ("ExecutionsFailed", "ExecutionsTimedOut"):
                self._alarm(
                    "orchestration",
                    "Batch orchestration",
                    f"{machine} {metric_name}",
                    _metric("AWS/States", metric_name, {"StateMachineArn": arn}, "Sum", FIVE_MINUTES),
                    threshold=0,
                    operator=GT,
                    periods=1,
                    why="a run of the state machine did not succeed",
                )
        if resources.glue_job_prefix is not None:
            self._rule(
                "GlueJobFailures",
                "Glue job runs that failed or timed out",
                events.EventPattern(
                    source=["aws.glue"],
                    detail_type=["Glue Job State Change"],
                    detail={"state": ["FAILED", "TIMEOUT"], "jobName": [{"prefix": resources.glue_job_prefix}]},
                ),
            )
        if resources.pipelines:
            pipeline_arns = [
                # SageMaker writes pipeline names lower-case in ARNs.
                stack.format_arn(service="sagemaker", resource="pipeline", resource_name=p.lower())
                for p in resources.pipelines
            ]
            self._rule(
                "PipelineFailures",
                "SageMaker pipeline executions that failed",
                events.EventPattern(
                    source=["aws.sagemaker"],
                    detail_type=["SageMaker Model Building Pipeline Execution Status Change"],
                    detail={"currentPipelineExecutionStatus": ["Failed"], "pipelineArn": pipeline_arns},
                ),
            )

    def _serving(self, resources: WatchedResources) -> None:
        endpoint = resources.endpoint
        if endpoint is None:
            return
        dims = {"EndpointName": endpoint, "VariantName": resources.endpoint_variant}
        self._alarm(
            "serving",
            "Model serving",
            f"{endpoint} 5xx errors",
            _metric("AWS/SageMaker", "Invocation5XXErrors", dims, "Sum", FIVE_MINUTES),
            threshold=self._t.endpoint_5xx_threshold,
            operator=GE,
            periods=1,
            why="the endpoint answers with server errors",
        )
        self._alarm(
            "serving",
            "Model serving",
            f"{endpoint} p99 model latency",
            # ModelLatency is in microseconds.
            _metric("AWS/SageMaker", "ModelLatency", dims, "p99", FIVE_MINUTES),
            threshold=self._t.endpoint_latency_ms * 1000,
            operator=GT,
            periods=2,
            why="the slowest 1% of predictions exceed the latency budget for ten minutes",
        )
        self._alarm(
            "serving",
            "Model serving",
            f"{endpoint} model quality (PR AUC)",
            _metric(
                MODEL_QUALITY_NAMESPACE, MODEL_QUALITY_METRIC, {"EndpointName": endpoint}, "Minimum", Duration.hours(1)
            ),
            threshold=self._t.model_pr_auc_min,
            operator=LT,
            periods=1,
            why="the model's measured PR AUC on labelled traffic fell below the floor (retrain or roll back)",
        )

    def _inference_api(self, api: str | None) -> None:
        if api is None:
            return
        dims = {"ApiName": api}
        self._alarm(
            "serving",
            "Model serving",
            f"{api} 5xx errors",
            _metric("AWS/ApiGateway", "5XXError", dims, "Sum", FIVE_MINUTES),
            threshold=self._t.inference_api_5xx_threshold,
            operator=GE,
            periods=1,
            why="the inference API fails (its function errs or times out; an endpoint outage is a fallback, not a 5xx)",
        )
        self._alarm(
            "serving",
            "Model serving",
            f"{api} p99 latency",
            _metric("AWS/ApiGateway", "Latency", dims, "p99", FIVE_MINUTES),  # milliseconds
            threshold=self._t.inference_api_latency_p99_ms,
            operator=GT,
            periods=2,
            why="the slowest 1% of scoring requests exceed the API's budget for ten minutes",
        )

    def _monitoring(self, resources: WatchedResources) -> None:
        """Model Monitor's per-feature drift, a few features per alarm (one metric math alarm reads at
        most ten queries): any feature of the group drifting for the configured hours alarms."""
        schedule, endpoint = resources.monitoring_schedule, resources.endpoint
        if schedule is None or endpoint is None:
            return
        features = list(resources.monitored_features)
        groups = [
            features[start : start + MAX_METRICS_PER_EXPRESSION]
            for start in range(0, len(features), MAX_METRICS_PER_EXPRESSION)
        ]
        dims = {"Endpoint": endpoint, "MonitoringSchedule": schedule}
        threshold, periods = self._t.feature_drift_max, self._t.feature_drift_periods
        for number, group in enumerate(groups, start=1):
            drift = cloudwatch.MathExpression(
                expression="MAX(METRICS())",
                using_metrics={
                    f"f{index}": _metric(
                        DATA_METRICS_NAMESPACE, f"feature_baseline_drift_{name}", dims, "Maximum", ONE_HOUR
                    )
                    for index, name in enumerate(group)
                },
                label=f"largest drift of {group[0]} .. {group[-1]}",
                period=ONE_HOUR,
            )
            self._alarm(
                "monitoring",
                "Model Monitor (data quality)",
                f"{endpoint} feature drift {number} of {len(groups)}",
                drift,
                threshold=threshold,
                operator=GT,
                periods=periods,
                why=(
                    f"for {periods} hourly runs the served requests drifted from the training baseline on one "
                    f"of {', '.join(group)} (see the run's report under serving/monitoring/reports/)"
                ),
            )

    def _search_domain(self, domain: str, volume_gb: int) -> None:
        dims = {"DomainName": domain, "ClientId": Aws.ACCOUNT_ID}
        checks = (
            ("cluster red", "ClusterStatus.red", "Maximum", 1, GE, ONE_MINUTE, 1, "a primary shard is unassigned"),
            (
                "writes blocked",
                "ClusterIndexWritesBlocked",
                "Maximum",
                1,
                GE,
                FIVE_MINUTES,
                1,
                "the cluster refuses writes (disk or memory pressure)",
            ),
            (
                "free storage",
                "FreeStorageSpace",  # MiB, per node; the minimum is the fullest node
                "Minimum",
                volume_gb * 1024 * self._t.opensearch_free_storage_min_fraction,
                LT,
                FIVE_MINUTES,
                1,
                "the fullest node is running out of disk (lower the retention or grow the volumes)",
            ),
            (
                "JVM memory pressure",
                "JVMMemoryPressure",
                "Maximum",
                self._t.opensearch_jvm_pressure_max_percent,
                GT,
                FIVE_MINUTES,
                3,
                "sustained heap pressure precedes circuit breakers and rejected writes",
            ),
            (
                "snapshot failure",
                "AutomatedSnapshotFailure",
                "Maximum",
                1,
                GE,
                Duration.hours(1),
                1,
                "the automated snapshot failed",
            ),
        )
        for label, metric_name, statistic, threshold, operator, period, periods, why in checks:
            self._alarm(
                "search",
                "Search domain",
                f"{domain} {label}",
                _metric("AWS/ES", metric_name, dims, statistic, period),
                threshold=threshold,
                operator=operator,
                periods=periods,
                why=why,
            )

    # -----------------------------------------------------------------------------------------

    def _alarm(
        self,
        area: str,
        area_title: str,
        subject: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        operator: cloudwatch.ComparisonOperator,
        periods: int,
        why: str,
    ) -> cloudwatch.Alarm:
        alarms = self.areas.setdefault(area, AlarmArea(area_title)).alarms
        alarm = cloudwatch.Alarm(
            self,
            _construct_id(area, subject, len(alarms)),
            alarm_name=subject if subject.startswith(self._prefix) else f"{self._prefix} {subject}",
            alarm_description=f"{subject}: {why}. Threshold {_symbol(operator)} {threshold:g}.",
            metric=metric,
            threshold=threshold,
            comparison_operator=operator,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            # Sparse metrics (no errors, no traffic, resource not deployed yet) are healthy.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self._topic))
        alarm.add_ok_action(actions.SnsAction(self._topic))
        alarms.append(alarm)
        return alarm

    def _rule(self, construct_id: str, description: str, pattern: events.EventPattern) -> events.Rule:
        rule = events.Rule(
            self,
            construct_id,
            description=f"{self._prefix}: {description} -> alarm topic",
            event_pattern=pattern,
            targets=[targets.SnsTopic(self._topic, dead_letter_queue=self.undelivered_events, retry_attempts=10)],
        )
        self.rules.append(rule)
        return rule


def function_name(function: str) -> str:
    """The FunctionName metric dimension of a name or an ARN (``arn:aws:lambda:r:a:function:NAME``)."""
    if Token.is_unresolved(function):
        return Fn.select(6, Fn.split(":", function))
    if function.startswith("arn:"):
        return Arn.split(function, ArnFormat.COLON_RESOURCE_NAME).resource_name or function
    return function


def _metric(
    namespace: str, name: str, dimensions: dict[str, str], statistic: str, period: Duration
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace, metric_name=name, dimensions_map=dimensions, statistic=statistic, period=period
    )


def _construct_id(area: str, subject: str, index: int) -> str:
    if Token.is_unresolved(subject):
        return f"{area}-{index}"
    return re.sub(r"[^A-Za-z0-9-]+", "-", f"{area}-{subject}").strip("-")


def _symbol(operator: cloudwatch.ComparisonOperator) -> str:
    return {GT: ">", GE: ">=", LT: "<"}.get(operator, str(operator))
