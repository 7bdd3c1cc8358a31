"""Linear-time DynamoDB transactions in the embedded AWS: same semantics, cheaper rollback snapshot.

moto makes ``TransactWriteItems`` all-or-nothing by deep-copying every table a transaction touches,
once per action, before it starts, and putting the copy back if an action fails. The copy costs the
size of the whole table, so a run that commits one transaction per user (the CDC processor does)
is quadratic: 1,000 users took longer than the whole rest of the demo.

For transactions made only of ``Put``, ``Delete`` and ``ConditionCheck`` on tables without a
stream, the table's item dictionary is the only thing an action changes, and it changes by
replacing or removing entries, never by mutating an item in place (``Table.put_item`` and
``Table.delete_item``). A shallow copy of that dictionary is then as good a snapshot as a deep
copy. Anything else (``Update``, which mutates items in place; a table with a stream, whose
records a rollback must also drop) keeps moto's own deep copy. Nothing else changes: moto still
parses, validates, evaluates conditions, writes and rolls back.
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# Set while a transaction that qualifies for the shallow snapshot runs (per thread: moto's server
# answers requests on several threads).
_SHALLOW = ContextVar("shallow_table_snapshot", default=False)
_SHALLOW_ACTIONS = frozenset({"Put", "Delete", "ConditionCheck"})
_LOCK = threading.Lock()
_installed: dict[str, Any] = {}


def _snapshot(table: Any, memo: dict[int, Any]) -> Any:
    """A copy of ``table`` whose item dictionary can be put back in place of the live one."""
    clone = object.__new__(type(table))
    memo[id(table)] = clone
    if _SHALLOW.get():
        clone.__dict__.update(table.__dict__)
        items: defaultdict[Any, Any] = defaultdict(dict)
        if table.range_key_attr is not None:
            items.update({hash_key: dict(by_range) for hash_key, by_range in table.items.items()})
        else:
            items.update(table.items)
        clone.items = items
    else:  # what copy.deepcopy does for a plain object
        clone.__dict__.update(copy.deepcopy(table.__dict__, memo))
    return clone


def _qualifies(backend: Any, transact_items: list[dict[str, Any]]) -> bool:
    for entry in transact_items:
        if len(entry) != 1:
            return False  # moto refuses it; let it do so its own way
        action, operation = next(iter(entry.items()))
        if action not in _SHALLOW_ACTIONS:
            return False
        table = backend.tables.get(operation.get("TableName"))
        if table is not None and table.stream_shard is not None:
            return False
    return True


@contextmanager
def linear_transactions() -> Iterator[None]:
    """Install the cheaper snapshot for the duration of the block (nestable, thread-safe)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    with _LOCK:
        if not _installed:
            original = DynamoDBBackend.transact_write_items

            def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
                token = _SHALLOW.set(_qualifies(self, transact_items))
                try:
                    original(self, transact_items)
                finally:
                    _SHALLOW.reset(token)

            _installed["original"] = original
            DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
            Table.__deepcopy__ = _snapshot  # type: ignore[attr-defined]
        _installed["users"] = _installed.get("users", 0) + 1
    try:
        yield
    finally:
        with _LOCK:
            _installed["users"] -= 1
            if not _installed["users"]:
                DynamoDBBackend.transact_write_items = _installed["original"]  # type: ignore[method-assign]
                del Table.__deepcopy__  # type: ignore[attr-defined]
                _installed.clear()
