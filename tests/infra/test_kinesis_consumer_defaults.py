"""KinesisConsumer defaults that the event source mapping checks do not see: the on-failure queue is
encrypted with the given key, TLS-only and kept; the iterator-age alarm follows the config."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from platform_core.config import ConsumerConfig
from tests.feature_stack.test_kinesis_consumer import consumer_template as polling_consumer_template

pytestmark = pytest.mark.xdist_group("cdk")

KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Not the defaults, so that a construct ignoring the config fails.
SETTINGS = ConsumerConfig(batch_size=100, iterator_age_alarm_seconds=120)


def consumer_template() -> Template:
    return polling_consumer_template(False, settings=SETTINGS)


def test_on_failure_queue_is_encrypted_with_the_key_tls_only_and_kept() -> None:
    template = consumer_template()
    template.has_resource(
        "AWS::SQS::Queue",
        {
            "Properties": Match.object_like(
                {"QueueName": "clicks-reader-dlq", "KmsMasterKeyId": KEY_ARN, "MessageRetentionPeriod": 14 * 86_400}
            ),
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                    )
                }
            )
        },
    )


def test_iterator_age_alarm_watches_the_function_against_the_configured_threshold() -> None:
    template = consumer_template()
    (function_id,) = template.find_resources("AWS::Lambda::Function")
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "IteratorAge",
            "Statistic": "Maximum",
            "Period": 60,
            "Threshold": SETTINGS.iterator_age_alarm_seconds * 1000,
            "ComparisonOperator": "GreaterThanThreshold",
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function_id}}],
        },
    )
