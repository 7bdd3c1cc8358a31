"""The queue where something that failed is kept for a person: one definition for every such queue.

Dead-letter queues of event source mappings, EventBridge targets and asynchronous invocations hold
the only record of what went wrong (batch coordinates, undelivered events). They are data: retained
like the lake (``data_removal_policy``), kept the longest SQS allows, TLS-only and encrypted.

Encryption: with the lake key when the writer is a Lambda role we grant (event source mappings,
asynchronous invocation destinations); SQS-managed when the writer is EventBridge or DMS, which can
write to a KMS-encrypted queue only if the key policy names them, and the lake key's policy belongs
to the data lake stack. Such queues hold event envelopes (identifiers, messages), no data.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.nag import acknowledge

# The longest retention SQS offers: a failure may be noticed days later, after a weekend.
FAILURE_RETENTION = Duration.days(14)


def failure_queue(
    scope: Construct,
    construct_id: str,
    *,
    holds: str,
    removal_policy: RemovalPolicy,
    key: kms.IKey | None = None,
    queue_name: str | None = None,
) -> sqs.Queue:
    """A retained, encrypted, TLS-only queue that keeps ``holds`` (e.g. "schedule starts EventBridge
    could not deliver") until a person reads them; nothing consumes or redrives from it."""
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=queue_name,
        encryption=sqs.QueueEncryption.KMS if key is not None else sqs.QueueEncryption.SQS_MANAGED,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=FAILURE_RETENTION,
        removal_policy=removal_policy,
    )
    reason = f"This queue is itself where {holds} are kept for a person; nothing consumes or redrives from it."
    acknowledge(queue, {"AwsSolutions-SQS3": reason, "Serverless-SQSRedrivePolicy": reason})
    return queue
