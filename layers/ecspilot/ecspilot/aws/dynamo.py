"""DynamoDB's attribute maps and update expressions, for the state table's modules. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

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
    """``SET`` clauses for ``values``, and ``if_not_exists`` ones for ``if_missing``."""
    names: dict[str, str] = {}
    attr: dict[str, Any] = {}
    sets: list[str] = []
    for i, (name, value) in enumerate(values.items()):
        names[f"#f{i}"], attr[f":f{i}"] = name, value
        sets.append(f"#f{i} = :f{i}")
    for i, (name, value) in enumerate((if_missing or {}).items()):
        names[f"#c{i}"], attr[f":c{i}"] = name, value
        sets.append(f"#c{i} = if_not_exists(#c{i}, :c{i})")
    return Update(sets, names, attr)
