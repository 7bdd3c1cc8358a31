"""The observability stack, synthesised once per environment: the search domain, the second
Firehose, read-only access, dashboards as code, alarms and the platform dashboard."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from observability.index_template import clickstream_index_template
from observability.saved_objects import load_saved_objects
from platform_core.config import load_config
from platform_core.names import MODEL_QUALITY_METRIC, MODEL_QUALITY_NAMESPACE
from platform_core.schemas.features import FEATURE_GROUPS
from stacks.constructs.data_quality_monitor import DATA_METRICS_NAMESPACE
from stacks.observability_stack import ObservabilityStack, platform_functions
from tests.infra.harness import build_stack, cfn_lint_findings, nag_findings

pytestmark = pytest.mark.xdist_group("cdk")


@pytest.fixture(scope="module", autouse=True)
def venv_tools_first() -> Iterator[None]:
    """The harness runs ``cfn-lint`` from PATH: use this environment's pinned one, not another install."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        yield


@pytest.fixture(scope="module")
def stacks() -> dict[str, Stack]:
    return {
        env: build_stack(lambda app, config, e: ObservabilityStack(app, "Observability", config=config, env=e), env)
        for env in ("dev", "prod")
    }


@pytest.fixture(scope="module")
def templates(stacks) -> dict[str, Template]:
    return {env: Template.from_stack(stack) for env, stack in stacks.items()}


@pytest.fixture(scope="module")
def dev(templates) -> Template:
    return templates["dev"]


@pytest.fixture(scope="module")
def prod(templates) -> Template:
    return templates["prod"]


def _one(template: Template, resource_type: str) -> dict[str, Any]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"{len(found)} {resource_type}"
    (resource,) = found.values()
    return dict(resource)


def _logical_id(template: Template, resource_type: str, props: dict[str, Any]) -> str:
    found = template.find_resources(resource_type, {"Properties": props})
    assert len(found) == 1, f"{len(found)} {resource_type} match"
    return next(iter(found))


# ---------------------------------------------------------------------------------------------
# The domain
# ---------------------------------------------------------------------------------------------


def test_prod_domain_spans_three_zones_with_standby_and_dedicated_masters(prod):
    domain = _one(prod, "AWS::OpenSearchService::Domain")["Properties"]
    settings = load_config("prod").observability
    assert domain["ClusterConfig"] == {
        "DedicatedMasterCount": 3,
        "DedicatedMasterEnabled": True,
        "DedicatedMasterType": settings.opensearch_master_instance_type,
        "InstanceCount": settings.opensearch_data_nodes,
        "InstanceType": "r6g.large.search",
        "MultiAZWithStandbyEnabled": True,
        "ZoneAwarenessConfig": {"AvailabilityZoneCount": 3},
        "ZoneAwarenessEnabled": True,
    }
    assert len(domain["VPCOptions"]["SubnetIds"]) == 3
    assert domain["EBSOptions"] == {"EBSEnabled": True, "VolumeSize": 100, "VolumeType": "gp3"}


def test_dev_domain_is_one_small_node_in_one_zone(dev):
    domain = _one(dev, "AWS::OpenSearchService::Domain")["Properties"]
    assert domain["ClusterConfig"] == {
        "DedicatedMasterEnabled": False,
        "InstanceCount": 1,
        "InstanceType": "t3.small.search",
        "MultiAZWithStandbyEnabled": False,
        "ZoneAwarenessEnabled": False,
    }
    assert len(domain["VPCOptions"]["SubnetIds"]) == 1


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_domain_is_private_encrypted_and_https_only(templates, env):
    template = templates[env]
    domain = _one(template, "AWS::OpenSearchService::Domain")["Properties"]
    assert domain["DomainName"] == f"mlp-{env}-search"
    assert domain["EngineVersion"] == "OpenSearch_2.19"
    assert domain["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert domain["DomainEndpointOptions"] == {
        "EnforceHTTPS": True,
        "TLSSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10",
    }
    # Encrypted with the lake key, found through its SSM parameter.
    assert domain["EncryptionAtRestOptions"]["Enabled"] is True
    assert "lakekeyarn" in json.dumps(domain["EncryptionAtRestOptions"]["KmsKeyId"])
    assert set(domain["VPCOptions"]) == {"SubnetIds", "SecurityGroupIds"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_engine_upgrades_happen_in_place_and_the_domain_is_retained(templates, env):
    domain = _one(templates[env], "AWS::OpenSearchService::Domain")
    assert domain["UpdatePolicy"] == {"EnableVersionUpgrade": True}
    assert domain["DeletionPolicy"] == "Retain"
    assert domain["UpdateReplacePolicy"] == "Retain"
    # ...and so is the network its interfaces live in.
    for resource_type in ("AWS::EC2::VPC", "AWS::EC2::Subnet"):
        for resource in templates[env].find_resources(resource_type).values():
            assert resource["DeletionPolicy"] == "Retain"


def test_master_user_is_the_provisioning_functions_role_not_a_password(dev):
    domain = _one(dev, "AWS::OpenSearchService::Domain")["Properties"]
    function_role = _one_function_role(dev, "lambdas.dashboards_import.handler.handler")
    assert domain["AdvancedSecurityOptions"] == {
        "Enabled": True,
        "InternalUserDatabaseEnabled": False,
        "MasterUserOptions": {"MasterUserARN": {"Fn::GetAtt": [function_role, "Arn"]}},
    }


def _one_function_role(template: Template, handler: str) -> str:
    function = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    assert len(function) == 1
    return next(iter(function.values()))["Properties"]["Role"]["Fn::GetAtt"][0]


def test_audit_slow_and_error_logs_go_to_encrypted_log_groups(dev):
    domain = _one(dev, "AWS::OpenSearchService::Domain")
    publishing = domain["Properties"]["LogPublishingOptions"]
    assert set(publishing) == {"AUDIT_LOGS", "ES_APPLICATION_LOGS", "SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS"}
    groups = dev.find_resources("AWS::Logs::LogGroup")
    for option in publishing.values():
        assert option["Enabled"] is True
        group = groups[option["CloudWatchLogsLogGroupArn"]["Fn::GetAtt"][0]]
        assert "KmsKeyId" in group["Properties"]
    # OpenSearch may write to exactly these groups, for exactly this domain, before the domain exists.
    policy_id = _logical_id(dev, "AWS::Logs::ResourcePolicy", {"PolicyName": "mlp-dev-opensearch-logs"})
    assert domain["DependsOn"] == [policy_id]
    document = json.dumps(dev.find_resources("AWS::Logs::ResourcePolicy")[policy_id]["Properties"]["PolicyDocument"])
    assert "es.amazonaws.com" in document and "arn:aws:es:eu-west-1:123456789012:domain/mlp-dev-search" in document


def test_only_named_principals_reach_the_http_api_with_the_verbs_they_need(dev):
    statements = _one(dev, "AWS::OpenSearchService::Domain")["Properties"]["AccessPolicies"]["Statement"]
    by_principal = {s["Principal"]["AWS"]["Fn::GetAtt"][0]: set(s["Action"]) for s in statements}
    reader = _logical_id(dev, "AWS::IAM::Role", {"RoleName": "mlp-dev-dashboards-reader"})
    assert by_principal[reader] == {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"}
    firehose_role = _firehose_role(dev)
    assert by_principal[firehose_role] == {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"}
    assert len(by_principal) == 3  # + the master user
    assert all(s["Effect"] == "Allow" and "*" not in json.dumps(s["Principal"]) for s in statements)


def _firehose_role(template: Template) -> str:
    stream = _one(template, "AWS::KinesisFirehose::DeliveryStream")["Properties"]
    return stream["AmazonopensearchserviceDestinationConfiguration"]["RoleARN"]["Fn::GetAtt"][0]


def test_network_is_isolated_with_only_a_locked_down_s3_gateway_endpoint(dev):
    dev.resource_count_is("AWS::EC2::InternetGateway", 0)
    dev.resource_count_is("AWS::EC2::NatGateway", 0)
    dev.resource_count_is("AWS::EC2::Subnet", 3)
    dev.has_resource_properties("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": False})
    dev.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"})
    endpoint = _one(dev, "AWS::EC2::VPCEndpoint")["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    (statement,) = endpoint["PolicyDocument"]["Statement"]
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"] == "arn:aws:s3:::cloudformation-custom-resource-response-*/*"


def test_domain_admits_https_from_firehose_and_the_provisioner_only(dev):
    ingress = dev.find_resources("AWS::EC2::SecurityGroupIngress")
    assert len(ingress) == 2
    assert {
        (r["Properties"]["FromPort"], r["Properties"]["ToPort"], r["Properties"]["IpProtocol"])
        for r in ingress.values()
    } == {(443, 443, "tcp")}
    domain_group = _one(dev, "AWS::OpenSearchService::Domain")["Properties"]["VPCOptions"]["SecurityGroupIds"][0]
    assert all(r["Properties"]["GroupId"] == domain_group for r in ingress.values())


# ---------------------------------------------------------------------------------------------
# Stream to search
# ---------------------------------------------------------------------------------------------


def test_a_second_firehose_reads_the_clickstream_into_daily_indices(dev):
    stream = _one(dev, "AWS::KinesisFirehose::DeliveryStream")["Properties"]
    assert stream["DeliveryStreamName"] == "mlp-dev-clickstream-to-search"
    assert stream["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert stream["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == (
        "arn:aws:kinesis:eu-west-1:123456789012:stream/mlp-dev-clickstream"
    )
    destination = stream["AmazonopensearchserviceDestinationConfiguration"]
    assert destination["DomainARN"] == "arn:aws:es:eu-west-1:123456789012:domain/mlp-dev-search"
    assert destination["IndexName"] == "clickstream"
    assert destination["IndexRotationPeriod"] == "OneDay"
    assert destination["RetryOptions"] == {
        "DurationInSeconds": load_config("dev").observability.opensearch_retry_seconds
    }
    assert destination["DocumentIdOptions"] == {"DefaultDocumentIdFormat": "FIREHOSE_DEFAULT"}
    assert len(destination["VpcConfiguration"]["SubnetIds"]) == 3


def test_failed_documents_are_kept_in_the_raw_bucket_under_errors_opensearch(dev):
    destination = _one(dev, "AWS::KinesisFirehose::DeliveryStream")["Properties"][
        "AmazonopensearchserviceDestinationConfiguration"
    ]
    assert destination["S3BackupMode"] == "FailedDocumentsOnly"
    backup = destination["S3Configuration"]
    assert backup["Prefix"].startswith("errors/opensearch/")
    assert backup["ErrorOutputPrefix"].startswith("errors/opensearch/!{firehose:error-output-type}/")
    assert "mlp-dev-raw-" in json.dumps(backup["BucketARN"])
    assert "KMSEncryptionConfig" in backup["EncryptionConfiguration"]


def test_the_search_path_has_its_own_transform_and_touches_nothing_of_the_lake_path(dev):
    destination = _one(dev, "AWS::KinesisFirehose::DeliveryStream")["Properties"][
        "AmazonopensearchserviceDestinationConfiguration"
    ]
    (processor,) = destination["ProcessingConfiguration"]["Processors"]
    lambda_arn = next(p["ParameterValue"] for p in processor["Parameters"] if p["ParameterName"] == "LambdaArn")
    transforms = dev.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "lambdas.clickstream_transform.handler.handler"}}
    )
    assert list(transforms) == [lambda_arn["Fn::GetAtt"][0]]
    transform = next(iter(transforms.values()))["Properties"]
    assert transform["FunctionName"] == "mlp-dev-clickstream-transform-search"
    assert transform["Environment"]["Variables"]["REJECTS_PREFIX"] == "errors/opensearch/rejected/"
    # No S3 destination here, and nobody in this stack may write the lake's prefixes or the stream.
    rendered = json.dumps(dev.to_json())
    assert "ExtendedS3DestinationConfiguration" not in rendered
    for prefix in ("/clickstream/*", "/errors/clickstream/", "/source-backup/"):
        assert prefix not in rendered
    assert "kinesis:PutRecord" not in rendered


def test_the_firehose_role_writes_only_failed_documents(dev):
    role = _firehose_role(dev)
    policies = dev.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role}]}})
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    puts = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert len(puts) == 1
    assert json.dumps(puts[0]["Resource"]).endswith('"/errors/opensearch/*"]]}')


def test_firehose_starts_after_the_provisioning_mapped_its_role(dev):
    stream = _one(dev, "AWS::KinesisFirehose::DeliveryStream")
    provisioning = next(iter(dev.find_resources("Custom::OpenSearchProvisioning")))
    assert provisioning in stream["DependsOn"]


# ---------------------------------------------------------------------------------------------
# Read-only access and dashboards as code
# ---------------------------------------------------------------------------------------------


def test_dashboard_users_assume_a_role_mapped_read_only(dev):
    reader = _logical_id(dev, "AWS::IAM::Role", {"RoleName": "mlp-dev-dashboards-reader"})
    provisioning = _one(dev, "Custom::OpenSearchProvisioning")["Properties"]
    mappings = json.dumps(provisioning["RoleMappings"])
    assert mappings.count(reader) == 2  # clickstream_reader and opensearch_dashboards_read_only
    assert _firehose_role(dev) in mappings
    roles = json.loads(provisioning["SecurityRoles"])
    assert roles["clickstream_reader"]["index_permissions"] == [
        {"allowed_actions": ["read"], "index_patterns": ["clickstream-*"]}
    ]


def test_the_provisioning_carries_the_saved_objects_and_the_schema_mapping(dev):
    provisioning = _one(dev, "Custom::OpenSearchProvisioning")
    properties = provisioning["Properties"]
    assert properties["SavedObjects"] == load_saved_objects()
    assert json.loads(properties["IndexTemplates"]) == {"clickstream": clickstream_index_template(load_config("dev"))}
    assert set(json.loads(properties["IsmPolicies"])) == {"clickstream-retention"}
    assert properties["DefaultIndexPattern"] == "clickstream"
    assert properties["DomainEndpoint"]["Fn::GetAtt"][1] == "DomainEndpoint"
    # It waits for its network paths: to the domain, and to the response URL through the S3 endpoint.
    ingress = dev.find_resources("AWS::EC2::SecurityGroupIngress")
    assert set(provisioning["DependsOn"]) & set(ingress)
    assert set(provisioning["DependsOn"]) >= set(dev.find_resources("AWS::EC2::VPCEndpoint"))


def test_the_provisioning_function_runs_in_the_vpc_with_https_out_only(dev):
    function = dev.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "lambdas.dashboards_import.handler.handler"}}
    )
    properties = next(iter(function.values()))["Properties"]
    assert properties["FunctionName"] == "mlp-dev-dashboards-import"
    assert len(properties["VpcConfig"]["SubnetIds"]) == 3
    (group,) = properties["VpcConfig"]["SecurityGroupIds"]
    egress = dev.find_resources("AWS::EC2::SecurityGroup")[group["Fn::GetAtt"][0]]["Properties"]["SecurityGroupEgress"]
    assert [(e["FromPort"], e["ToPort"], e["IpProtocol"]) for e in egress] == [(443, 443, "tcp")]


# ---------------------------------------------------------------------------------------------
# Alarms and the platform dashboard
# ---------------------------------------------------------------------------------------------


def _alarm(template: Template, name: str) -> dict[str, Any]:
    found = template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": name}})
    assert len(found) == 1, f"alarm {name!r}: {len(found)}"
    return next(iter(found.values()))["Properties"]


def test_alarms_notify_an_encrypted_topic_on_alarm_and_on_recovery(dev):
    topic_id = _logical_id(dev, "AWS::SNS::Topic", {"TopicName": "mlp-dev-alarms"})
    topic = dev.find_resources("AWS::SNS::Topic")[topic_id]["Properties"]
    assert "lakekeyarn" in json.dumps(topic["KmsMasterKeyId"])
    alarms = dev.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) > 30
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]


@pytest.mark.parametrize("stream", ["mlp-dev-clickstream", "mlp-dev-cdc"])
def test_streams_alarm_on_iterator_age_and_write_throttles(dev, stream):
    settings = load_config("dev").observability
    age = _alarm(dev, f"{stream} iterator age")
    assert (age["Namespace"], age["MetricName"], age["Statistic"]) == (
        "AWS/Kinesis",
        "GetRecords.IteratorAgeMilliseconds",
        "Maximum",
    )
    assert age["Threshold"] == settings.stream_iterator_age_seconds * 1000
    assert age["Dimensions"] == [{"Name": "StreamName", "Value": stream}]
    throttles = _alarm(dev, f"{stream} write throttles")
    assert throttles["MetricName"] == "WriteProvisionedThroughputExceeded"
    assert throttles["ComparisonOperator"] == "GreaterThanThreshold"


def test_firehose_alarms_on_freshness_conversion_and_processing(dev):
    settings = load_config("dev").observability
    fresh = _alarm(dev, "mlp-dev-clickstream-to-lake data freshness")
    assert (fresh["MetricName"], fresh["Threshold"]) == (
        "DeliveryToS3.DataFreshness",
        settings.firehose_freshness_seconds,
    )
    assert _alarm(dev, "mlp-dev-clickstream-to-lake failed conversions")["MetricName"] == "FailedConversion.Records"
    processing = _alarm(dev, "mlp-dev-clickstream-to-lake processing failures")
    assert (processing["MetricName"], processing["ComparisonOperator"], processing["Threshold"]) == (
        "ExecuteProcessing.Success",
        "LessThanThreshold",
        settings.firehose_processing_success_min,
    )
    search = _alarm(dev, "mlp-dev-clickstream-to-search data freshness")
    assert search["MetricName"] == "DeliveryToAmazonOpenSearchService.DataFreshness"


def test_every_platform_function_has_error_and_throttle_alarms(dev):
    functions = [f"mlp-dev-{name.replace('_', '-')}" for name in platform_functions(include_search=True)]
    assert "mlp-dev-cdc-processor" in functions and "mlp-dev-dashboards-import" in functions
    for function in [*functions, "mlp-dev-clickstream-transform-search"]:
        errors = _alarm(dev, f"{function} errors")
        assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": function}]
        assert (errors["ComparisonOperator"], errors["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert _alarm(dev, f"{function} throttles")["MetricName"] == "Throttles"


@pytest.mark.parametrize(
    "queue",
    [
        "mlp-dev-cdc-processor-dlq",
        "mlp-dev-online-features-dlq",
        "mlp-dev-video-ingest-dlq",
        "mlp-dev-model-deployer-dlq",
        "mlp-dev-online-features-rejects",
    ],
)
def test_dead_letter_queues_alarm_on_any_message(dev, queue):
    depth = _alarm(dev, f"{queue} depth")
    assert (depth["Namespace"], depth["MetricName"], depth["Threshold"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        0,
    )


def test_state_machine_failures_alarm_by_arn(dev):
    failed = _alarm(dev, "mlp-dev-orchestration ExecutionsFailed")
    assert failed["Namespace"] == "AWS/States"
    assert failed["Dimensions"] == [
        {"Name": "StateMachineArn", "Value": "arn:aws:states:eu-west-1:123456789012:stateMachine:mlp-dev-orchestration"}
    ]


def test_endpoint_alarms_on_5xx_latency_and_model_quality(dev):
    settings = load_config("dev").observability
    dims = [{"Name": "EndpointName", "Value": "mlp-dev-inference"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    errors = _alarm(dev, "mlp-dev-inference 5xx errors")
    assert (errors["MetricName"], errors["Threshold"], errors["Dimensions"]) == (
        "Invocation5XXErrors",
        settings.endpoint_5xx_threshold,
        dims,
    )
    latency = _alarm(dev, "mlp-dev-inference p99 model latency")
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Threshold"], latency["Dimensions"]) == (
        "ModelLatency",
        "p99",
        settings.endpoint_latency_ms * 1000,  # ModelLatency is in microseconds
        dims,
    )
    quality = _alarm(dev, "mlp-dev-inference model quality (PR AUC)")
    assert (quality["Namespace"], quality["MetricName"], quality["ComparisonOperator"], quality["Threshold"]) == (
        MODEL_QUALITY_NAMESPACE,
        MODEL_QUALITY_METRIC,
        "LessThanThreshold",
        settings.model_pr_auc_min,
    )


@pytest.mark.parametrize(
    ("function", "timeout_seconds"),
    [("mlp-dev-model-deployer", 120), ("mlp-dev-inference-api", 10)],
)
def test_serving_functions_alarm_on_errors_throttles_and_a_duration_near_their_timeout(dev, function, timeout_seconds):
    serving, settings = load_config("dev").serving, load_config("dev").observability
    assert {serving.deployer.timeout_seconds, serving.api_function.timeout_seconds} == {120, 10}
    dims = [{"Name": "FunctionName", "Value": function}]
    # Then errors and throttles are alarmed like every function's
    assert _alarm(dev, f"{function} errors")["Dimensions"] == dims
    assert _alarm(dev, f"{function} throttles")["Dimensions"] == dims
    # And the slowest invocation of five minutes alarms past the configured share of the timeout (ms)
    duration = _alarm(dev, f"{function} duration near timeout")
    assert (duration["Namespace"], duration["MetricName"], duration["Statistic"], duration["Dimensions"]) == (
        "AWS/Lambda",
        "Duration",
        "Maximum",
        dims,
    )
    assert duration["ComparisonOperator"] == "GreaterThanThreshold"
    assert duration["Threshold"] == timeout_seconds * 1000 * settings.lambda_duration_timeout_fraction


def test_only_functions_with_bounded_calls_get_a_duration_alarm(dev):
    durations = dev.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "Duration"}})
    assert sorted(a["Properties"]["Dimensions"][0]["Value"] for a in durations.values()) == [
        "mlp-dev-inference-api",
        "mlp-dev-model-deployer",
    ]


def test_inference_api_alarms_on_5xx_and_p99_latency_by_api_name(dev):
    settings = load_config("dev").observability
    dims = [{"Name": "ApiName", "Value": "mlp-dev-inference-api"}]
    errors = _alarm(dev, "mlp-dev-inference-api 5xx errors")
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"], errors["Dimensions"]) == (
        "AWS/ApiGateway",
        "5XXError",
        "Sum",
        dims,
    )
    assert (errors["ComparisonOperator"], errors["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        settings.inference_api_5xx_threshold,
    )
    latency = _alarm(dev, "mlp-dev-inference-api p99 latency")
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Dimensions"]) == ("Latency", "p99", dims)
    assert (latency["Threshold"], latency["EvaluationPeriods"]) == (settings.inference_api_latency_p99_ms, 2)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_batch_scoring_failures_and_timeouts_alarm_by_arn(templates, env):
    arn = f"arn:aws:states:eu-west-1:123456789012:stateMachine:mlp-{env}-batch-scoring"
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        alarm = _alarm(templates[env], f"mlp-{env}-batch-scoring {metric}")
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", metric)
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": arn}]


def test_prod_watches_the_model_monitor_set_up_workflow(prod, dev):
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:mlp-prod-inference-data-quality-setup"
    failed = _alarm(prod, "mlp-prod-inference-data-quality-setup ExecutionsFailed")
    assert failed["Dimensions"] == [{"Name": "StateMachineArn", "Value": arn}]
    assert not dev.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": Match.string_like_regexp("data-quality-setup")}}
    )


def _drift_alarms(template: Template) -> list[dict[str, Any]]:
    found = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": Match.string_like_regexp("feature drift")}}
    )
    return [resource["Properties"] for resource in found.values()]


def test_prod_alarms_on_every_features_drift_by_endpoint_and_schedule(prod):
    settings = load_config("prod").observability
    alarms = _drift_alarms(prod)
    watched: list[str] = []
    for alarm in alarms:
        queries = {q["Id"]: q for q in alarm["Metrics"]}
        # Then each alarm is the largest drift of at most nine features (ten queries with the expression)
        (expression,) = [q for q in queries.values() if "Expression" in q]
        assert expression["Expression"] == "MAX(METRICS())" and expression["ReturnData"] is True
        metrics = [q["MetricStat"] for q in queries.values() if "MetricStat" in q]
        assert 1 <= len(metrics) <= 9
        for stat in metrics:
            assert stat["Metric"]["Namespace"] == DATA_METRICS_NAMESPACE
            assert stat["Metric"]["Dimensions"] == [
                {"Name": "Endpoint", "Value": "mlp-prod-inference"},
                {"Name": "MonitoringSchedule", "Value": "mlp-prod-inference-data-quality"},
            ]
            assert (stat["Period"], stat["Stat"]) == (3600, "Maximum")
            watched.append(stat["Metric"]["MetricName"].removeprefix("feature_baseline_drift_"))
        # And a drift above the analyzer's own threshold for the configured number of hourly runs alarms
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (settings.feature_drift_max, "GreaterThanThreshold")
        assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == settings.feature_drift_periods
        assert alarm["TreatMissingData"] == "notBreaching"
    # And together they cover every feature the endpoint receives, once
    assert sorted(watched) == sorted(name for group in FEATURE_GROUPS for name in group.value_names)


def test_dev_has_no_drift_alarm_without_model_monitor(dev):
    assert _drift_alarms(dev) == []


def test_glue_and_pipeline_failures_are_routed_to_the_topic(dev):
    topic_id = _logical_id(dev, "AWS::SNS::Topic", {"TopicName": "mlp-dev-alarms"})
    dev.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {"state": ["FAILED", "TIMEOUT"], "jobName": [{"prefix": "mlp-dev-"}]},
            },
            "Targets": [Match.object_like({"Arn": {"Ref": topic_id}, "DeadLetterConfig": Match.any_value()})],
        },
    )
    dev.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
                "detail": {
                    "currentPipelineExecutionStatus": ["Failed"],
                    "pipelineArn": ["arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlp-dev-training"],
                },
            },
            "Targets": [Match.object_like({"Arn": {"Ref": topic_id}})],
        },
    )


def test_search_domain_health_is_alarmed(dev):
    red = _alarm(dev, "mlp-dev-search cluster red")
    assert (red["Namespace"], red["MetricName"]) == ("AWS/ES", "ClusterStatus.red")
    storage = _alarm(dev, "mlp-dev-search free storage")
    assert storage["Threshold"] == 10 * 1024 * 0.25  # MiB: a quarter of the dev volume


def test_one_dashboard_shows_every_area(dev):
    dashboard = _one(dev, "AWS::CloudWatch::Dashboard")["Properties"]
    assert dashboard["DashboardName"] == "mlp-dev-platform"
    body = json.dumps(dashboard["DashboardBody"])
    for area in (
        "Kinesis streams",
        "Firehose deliveries",
        "Lambda functions",
        "Dead-letter queues",
        "Model serving",
        "Search domain",
    ):
        assert f"{area}: alarms" in body
    assert "Model Monitor (data quality): alarms" not in body


def _dashboard_widgets(template: Template) -> list[dict[str, Any]]:
    """The dashboard body's widgets, references to alarms flattened to their logical ids."""
    body = _one(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(
        part if isinstance(part, str) else f"<{part.get('Ref') or '.'.join(part.get('Fn::GetAtt', []))}>"
        for part in parts
    )
    return list(json.loads(text)["widgets"])


def test_prod_dashboard_shows_serving_and_model_monitor_with_each_duration_against_its_own_timeout(prod):
    widgets = _dashboard_widgets(prod)
    titles = [w["properties"].get("title") for w in widgets]
    assert "Model serving: alarms" in titles and "Model Monitor (data quality): alarms" in titles
    # One Duration graph per timeout: each draws its own function's threshold
    durations = [w["properties"] for w in widgets if w["properties"].get("title") == "Duration"]
    thresholds = sorted(d["annotations"]["horizontal"][0]["value"] for d in durations)
    assert thresholds == [8000, 96000]
    # The API's latency and errors are graphed too
    assert {"Latency", "5XXError", "ModelLatency"} <= set(titles)


# ---------------------------------------------------------------------------------------------
# Scanners
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_nag_finding_remains(stacks, env):
    assert nag_findings(stacks[env]) == []


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_cfn_lint_is_clean(stacks, env):
    assert cfn_lint_findings(stacks[env]) == []


def test_stateless_stack_imports_nothing_from_stack_exports(dev, prod):
    for template in (dev, prod):
        assert "Fn::ImportValue" not in json.dumps(template.to_json())
