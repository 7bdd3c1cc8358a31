"""The embedded AWS's cheaper transaction snapshot keeps DynamoDB's all-or-nothing semantics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_runtime.moto_transactions import linear_transactions

TABLE = "state"


def _create(client: Any, name: str, *, range_key: bool = False, stream: bool = False) -> None:
    keys = [{"AttributeName": "user_id", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "user_id", "AttributeType": "S"}]
    if range_key:
        keys.append({"AttributeName": "seq", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "seq", "AttributeType": "N"})
    extra: dict[str, Any] = {}
    if stream:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    client.create_table(
        TableName=name, KeySchema=keys, AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST", **extra
    )


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws(), linear_transactions():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client, TABLE)
        client.put_item(TableName=TABLE, Item={"user_id": {"S": "kept"}, "v": {"N": "1"}})
        yield client


def _put(user: str, value: int, *, table: str = TABLE, absent: bool = False, **key: Any) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": table, "Item": {"user_id": {"S": user}, "v": {"N": str(value)}, **key}}
    if absent:
        put["ConditionExpression"] = "attribute_not_exists(user_id)"
    return {"Put": put}


def _users(client: Any, table: str = TABLE) -> dict[str, str]:
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["user_id"]["S"]: item["v"]["N"] for item in items}


def test_a_committed_transaction_writes_every_action(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[_put("a", 1, absent=True), _put("kept", 2)])
    assert _users(dynamodb) == {"a": "1", "kept": "2"}


def test_a_failed_condition_undoes_the_actions_before_it(dynamodb: Any) -> None:
    # Given an item "other", and a transaction whose last action's condition fails (it exists)
    dynamodb.put_item(TableName=TABLE, Item={"user_id": {"S": "other"}, "v": {"N": "1"}})
    delete = {"Delete": {"TableName": TABLE, "Key": {"user_id": {"S": "kept"}}}}
    # When it runs
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[_put("a", 1), delete, _put("other", 9, absent=True)])
    # Then it is refused, and neither the put nor the delete before the failure remain
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _users(dynamodb) == {"kept": "1", "other": "1"}


def test_updates_keep_the_full_snapshot_and_still_roll_back(dynamodb: Any) -> None:
    update = {
        "Update": {
            "TableName": TABLE,
            "Key": {"user_id": {"S": "kept"}},
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": {"N": "5"}},
        }
    }
    dynamodb.put_item(TableName=TABLE, Item={"user_id": {"S": "other"}, "v": {"N": "1"}})
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[update, _put("other", 9, absent=True)])
    assert _users(dynamodb) == {"kept": "1", "other": "1"}
    dynamodb.transact_write_items(TransactItems=[update])
    assert _users(dynamodb) == {"kept": "5", "other": "1"}


def test_tables_with_a_range_key_roll_back_too(dynamodb: Any) -> None:
    _create(dynamodb, "events", range_key=True)
    seq = {"seq": {"N": "1"}}
    dynamodb.put_item(TableName="events", Item={"user_id": {"S": "u"}, "v": {"N": "1"}, **seq})
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                _put("u", 2, table="events", seq={"N": "2"}),
                _put("u", 3, table="events", absent=True, **seq),
            ]
        )
    items = dynamodb.scan(TableName="events")["Items"]
    assert [(i["seq"]["N"], i["v"]["N"]) for i in items] == [("1", "1")]


def test_outside_the_block_moto_is_as_it_was() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    with linear_transactions(), linear_transactions():
        assert DynamoDBBackend.transact_write_items is not original
    assert DynamoDBBackend.transact_write_items is original
    assert not hasattr(Table, "__deepcopy__")
