"""DynamoDB's attribute maps and update expressions, for the state table's modules (pure), and
the one conditional ``UpdateItem`` they all write with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.errors import AwsError, error_code
from ecspilot.records import dataclass

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict as a DynamoDB attribute map (None values dropped)."""
    return {k: _SERIALIZER.serialize(v) for k, v in item.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB attribute map as a plain dict."""
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


@dataclass
class Update:
    sets: list[str]
    names: dict[str, str]
    values: dict[str, Any]

    @property
    def expression(self) -> str:
        return "SET " + ", ".join(self.sets)


def set_expression(values: Mapping[str, Any], if_missing: Mapping[str, Any] | None = None) -> Update:
    """``SET`` clauses for ``values``, and ``if_not_exists`` ones for ``if_missing``.

    A None value is left out entirely (no clause, no name, no placeholder): :func:`serialize`
    drops Nones, and DynamoDB refuses an expression whose placeholder has no value. An absent
    optional field (an event without ``timeoutAction``) is simply not written."""
    names: dict[str, str] = {}
    attr: dict[str, Any] = {}
    sets: list[str] = []
    kept = [(n, v) for n, v in values.items() if v is not None]
    for i, (name, value) in enumerate(kept):
        names[f"#f{i}"], attr[f":f{i}"] = name, value
        sets.append(f"#f{i} = :f{i}")
    kept = [(n, v) for n, v in (if_missing or {}).items() if v is not None]
    for i, (name, value) in enumerate(kept):
        names[f"#c{i}"], attr[f":c{i}"] = name, value
        sets.append(f"#c{i} = if_not_exists(#c{i}, :c{i})")
    return Update(sets, names, attr)


def conditional_update(
    client: Any,
    table: str,
    key: Mapping[str, Any],
    expression: str,
    names: Mapping[str, str],
    values: Mapping[str, Any],
    condition: str | None = None,
    *,
    error: type[AwsError] = AwsError,
    what: str = "updating the state table",
) -> dict[str, Any] | None:
    """One ``UpdateItem`` (``values`` plain, serialized here), under ``condition`` when given.

    Returns the item as it was (``{}`` when it was new), or None when the condition failed: the
    caller's "someone else moved it first". Any other failure is ``error`` (``what`` failed),
    raised from the cause.
    """
    extra: dict[str, Any] = {"ConditionExpression": condition} if condition else {}
    try:
        resp = client.update_item(
            TableName=table,
            Key=serialize(key),
            UpdateExpression=expression,
            ExpressionAttributeNames=dict(names),
            ExpressionAttributeValues=serialize(values),
            ReturnValues="ALL_OLD",
            **extra,
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise error(f"{what} failed: {exc}", table=table) from exc
    except BotoCoreError as exc:
        raise error(f"{what} failed: {exc}", table=table) from exc
    return deserialize(resp.get("Attributes", {}))
