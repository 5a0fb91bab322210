"""The update-expression builder (aws/dynamo.py): a value it leaves out leaves no placeholder.

DynamoDB refuses an expression whose ``:placeholder`` has no value ("An expression attribute
value used in expression is not defined"), and unused names or values too; ``serialize`` drops
None values, so the builder must drop the clause and its names with them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ecspilot.aws.dynamo import serialize, set_expression


def _consistent(expression: str, names: dict[str, str], values: dict[str, Any]) -> None:
    used_values = set(re.findall(r":[A-Za-z0-9_]+", expression))
    used_names = set(re.findall(r"#[A-Za-z0-9_]+", expression))
    assert used_values == set(serialize(values)), "every placeholder has a value, every value is used"
    assert used_names == set(names), "every name placeholder is defined and used"


@pytest.mark.parametrize(
    ("values", "if_missing", "kept"),
    [
        ({"a": 1, "b": None}, None, {"a"}),
        ({"a": None}, {"c": "x", "d": None}, {"c"}),
        (
            {"status": "EVALUATING", "until": 5},
            {"timeout_action": None, "hook_expires_at": None, "x": 1},
            None,
        ),
        ({}, {"only": None}, set()),
        ({"zero": 0, "empty": "", "false": False, "list": []}, None, {"zero", "empty", "false", "list"}),
    ],
)
def test_a_none_value_leaves_no_clause_no_name_and_no_placeholder(
    values: dict[str, Any], if_missing: dict[str, Any] | None, kept: set[str] | None
) -> None:
    update = set_expression(values, if_missing)
    written = set(update.names.values())
    expected = {k for k, v in {**values, **(if_missing or {})}.items() if v is not None}
    assert written == (expected if kept is None else kept)
    if update.sets:
        _consistent(update.expression, update.names, update.values)
    assert None not in update.values.values()


def test_if_missing_clauses_keep_if_not_exists_for_the_values_kept() -> None:
    update = set_expression({"status": "WAITING"}, {"created_at": "t", "timeout_action": None})
    assert update.expression == "SET #f0 = :f0, #c0 = if_not_exists(#c0, :c0)"
    assert update.names == {"#f0": "status", "#c0": "created_at"}
    assert update.values == {":f0": "WAITING", ":c0": "t"}
