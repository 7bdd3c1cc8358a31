"""The online features consumer: the function, its stream consumer defaults, state table, rejects queue."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from lambdas.online_features.events import FeatureEvent
from lambdas.online_features.settings import Settings
from lambdas.online_features.state import DynamoDBStateStore, UserState
from platform_core.config import load_config
from platform_core.schemas.features import USER_CLICKSTREAM
from stacks.constructs.online_features import STATE_TTL_ATTRIBUTE
from tests.feature_stack.conftest import ENVIRONMENTS, feature_template, flatten, grants, lake_key_ref, one, resources

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]

HANDLER = "lambdas.online_features.handler.handler"


def _function(template) -> tuple[str, dict]:
    return one(template, "AWS::Lambda::Function", {"Handler": HANDLER})


def _stream_read(template, source: str) -> str:
    """The stream a mapping reads: its EventSourceArn, or the StreamARN of the consumer it names."""
    consumers = resources(template, "AWS::Kinesis::StreamConsumer")
    for logical_id, consumer in consumers.items():
        if source == f"<{logical_id}.ConsumerARN>":
            return str(consumer["Properties"]["StreamARN"])
    return source


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_function_is_configured_for_the_feature_group_and_the_state_table(env_name):
    # Given the consumer function of an environment
    config = load_config(env_name)
    template = feature_template(env_name)
    _, function = _function(template)
    properties = flatten(function["Properties"])
    variables = properties["Environment"]["Variables"]
    # Then it writes the environment's user-clickstream group with the Spark job's session gap
    assert variables["FEATURE_GROUP_NAME"] == USER_CLICKSTREAM.physical_name(config.resource_prefix)
    assert variables["SESSION_GAP_MINUTES"] == str(config.glue.session_gap_minutes)
    table_id, _ = one(template, "AWS::DynamoDB::Table")
    queue_id, _ = one(template, "AWS::SQS::Queue", {"QueueName": f"{config.resource_prefix}-online-features-rejects"})
    assert variables["STATE_TABLE_NAME"] == f"<{table_id}>"
    assert variables["REJECTS_QUEUE_URL"] == f"<{queue_id}>"
    # And it is sized from the configuration, traced, and named for the alarms
    assert properties["MemorySize"] == config.features.online_function.memory_mb
    assert properties["Timeout"] == config.features.online_function.timeout_seconds
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["FunctionName"] == f"{config.resource_prefix}-online-features"
    # And the handler's own settings parser accepts that environment
    settings = Settings.from_env(variables)
    assert settings.session_gap_minutes == config.glue.session_gap_minutes
    assert settings.rejects_queue_url == variables["REJECTS_QUEUE_URL"]


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_consumer_uses_the_platform_stream_consumer_defaults(env_name):
    # Given the event source mapping of an environment
    settings = load_config(env_name).consumer
    template = feature_template(env_name)
    _, mapping = one(template, "AWS::Lambda::EventSourceMapping")
    properties = flatten(mapping["Properties"])
    # Then it reads the clickstream stream (in prod through its own fan-out consumer) with partial
    # batch responses, bisecting and bounded retries
    assert _stream_read(template, properties["EventSourceArn"]).endswith(f":stream/mlp-{env_name}-clickstream")
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert properties["MaximumRetryAttempts"] == settings.retry_attempts
    assert properties["MaximumRecordAgeInSeconds"] == settings.max_record_age_seconds
    assert properties["ParallelizationFactor"] == settings.parallelization_factor
    assert properties["BatchSize"] == settings.batch_size
    assert properties["MaximumBatchingWindowInSeconds"] == settings.max_batching_window_seconds
    assert properties["StartingPosition"] == "TRIM_HORIZON"
    # And a failed batch ends in the consumer's on-failure queue, named for the alarms
    dlq_id, _ = one(template, "AWS::SQS::Queue", {"QueueName": f"mlp-{env_name}-online-features-dlq"})
    assert properties["DestinationConfig"] == {"OnFailure": {"Destination": f"<{dlq_id}.Arn>"}}


def test_prod_parallelises_more_than_dev():
    factors = {
        env: one(feature_template(env), "AWS::Lambda::EventSourceMapping")[1]["Properties"]["ParallelizationFactor"]
        for env in ENVIRONMENTS
    }
    assert factors == {"dev": 2, "prod": 4}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_state_table_is_keyed_by_user_expires_and_is_kept(env_name):
    template = feature_template(env_name)
    _, table = one(template, "AWS::DynamoDB::Table")
    properties = flatten(table["Properties"])
    assert properties["TableName"] == f"mlp-{env_name}-online-features-state"
    assert properties["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "user_id", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": STATE_TTL_ATTRIBUTE, "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {
        "KMSMasterKeyId": lake_key_ref(template, env_name),
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert properties["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_the_state_store_writes_the_attributes_the_table_keys_and_expires_on(dev):
    # Given a table created exactly as the template defines it
    _, table = one(dev, "AWS::DynamoDB::Table")
    properties = table["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="state",
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
        store = DynamoDBStateStore("state", lambda: client, horizon_ms=60_000)
        # When the consumer's store saves a user's state
        state = UserState("user-1")
        state.merge([FeatureEvent("e-1", 1_700_000_000_000, "page_view", False, "direct")], horizon_ms=60_000)
        assert store.save(state)
        # Then the item is keyed as the table is and carries the TTL attribute (epoch seconds)
        item = client.get_item(TableName="state", Key={"user_id": {"S": "user-1"}})["Item"]
        ttl = properties["TimeToLiveSpecification"]["AttributeName"]
        assert int(item[ttl]["N"]) > 1_700_000_000


def test_rejects_queue_is_encrypted_and_kept(dev):
    _, queue = one(dev, "AWS::SQS::Queue", {"QueueName": "mlp-dev-online-features-rejects"})
    assert flatten(queue["Properties"]["KmsMasterKeyId"]) == lake_key_ref(dev)
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 86_400
    assert queue["DeletionPolicy"] == "Retain"


def test_function_role_holds_exactly_the_calls_the_handler_makes(dev):
    # Given the function's role
    _, function = _function(dev)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    allowed = grants(dev, role_id)
    table_id, _ = one(dev, "AWS::DynamoDB::Table")
    rejects_id, _ = one(dev, "AWS::SQS::Queue", {"QueueName": "mlp-dev-online-features-rejects"})
    # Then the state table, the feature group and the rejects queue are reached by exact actions only
    assert {(a, r) for a, r in allowed if a.startswith("dynamodb:")} == {
        ("dynamodb:BatchGetItem", f"<{table_id}.Arn>"),
        ("dynamodb:GetItem", f"<{table_id}.Arn>"),
        ("dynamodb:PutItem", f"<{table_id}.Arn>"),
    }
    assert {(a, r) for a, r in allowed if a.startswith("sagemaker:")} == {
        ("sagemaker:PutRecord", "arn:aws:sagemaker:eu-west-1:123456789012:feature-group/mlp-dev-user-clickstream")
    }
    assert ("sqs:SendMessage", f"<{rejects_id}.Arn>") in allowed
    assert {r for a, r in allowed if a.startswith("kms:")} == {lake_key_ref(dev)}


def test_consumer_alarms_page_the_platform_alarm_topic(dev):
    alarms = resources(dev, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 2
    for alarm in alarms.values():
        assert flatten(alarm["Properties"]["AlarmActions"]) == ["arn:aws:sns:eu-west-1:123456789012:mlp-dev-alarms"]


def test_prod_reads_through_an_enhanced_fan_out_consumer_and_dev_polls_the_stream():
    # Given the mappings of both environments
    dev_mapping = flatten(one(feature_template("dev"), "AWS::Lambda::EventSourceMapping")[1]["Properties"])
    prod = feature_template("prod")
    prod_mapping = flatten(one(prod, "AWS::Lambda::EventSourceMapping")[1]["Properties"])
    # Then dev names the stream, and prod the consumer registered on it for this function alone
    assert dev_mapping["EventSourceArn"] == "arn:aws:kinesis:eu-west-1:123456789012:stream/mlp-dev-clickstream"
    assert resources(feature_template("dev"), "AWS::Kinesis::StreamConsumer") == {}
    consumer_id, consumer = one(prod, "AWS::Kinesis::StreamConsumer")
    assert prod_mapping["EventSourceArn"] == f"<{consumer_id}.ConsumerARN>"
    assert consumer["Properties"] == {
        "ConsumerName": "mlp-prod-online-features",
        "StreamARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/mlp-prod-clickstream",
    }


def test_the_fan_out_consumer_role_reads_the_stream_through_its_consumer_with_exact_actions(prod):
    # Given prod's function role
    _, function = _function(prod)
    allowed = grants(prod, function["Properties"]["Role"]["Fn::GetAtt"][0])
    consumer_id, _ = one(prod, "AWS::Kinesis::StreamConsumer")
    stream = "arn:aws:kinesis:eu-west-1:123456789012:stream/mlp-prod-clickstream"
    # Then it may subscribe to the consumer's shards and describe the stream, nothing broader
    assert {(a, r) for a, r in allowed if a.startswith("kinesis:")} == {
        ("kinesis:DescribeStreamConsumer", f"<{consumer_id}.ConsumerARN>"),
        ("kinesis:SubscribeToShard", f"<{consumer_id}.ConsumerARN>"),
        ("kinesis:DescribeStream", stream),
        ("kinesis:DescribeStreamSummary", stream),
        ("kinesis:GetRecords", stream),
        ("kinesis:GetShardIterator", stream),
        ("kinesis:ListShards", stream),
    }
    # And the stream's records decrypt with the lake key
    assert ("kms:Decrypt", lake_key_ref(prod, "prod")) in allowed
