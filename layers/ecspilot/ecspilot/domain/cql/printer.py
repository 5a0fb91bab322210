"""The cluster query language's printer: an AST in canonical form.

Symbolic operators and minimal quoting, so ``parse(to_text(e)) == e``.
"""

from __future__ import annotations

from typing import assert_never

from ecspilot.domain.cql.syntax import BARE, EXISTS, KEYWORDS, NOT_EXISTS, And, Compare, Exists, Expr, Not, Or


def _quote(value: str) -> str:
    if BARE.fullmatch(value) and value not in KEYWORDS and "&&" not in value and "||" not in value:
        return value
    return f'"{value}"' if "'" in value else f"'{value}'"


def to_text(expr: Expr) -> str:
    """Print an AST in canonical form (symbolic operators, minimal quoting)."""
    if isinstance(expr, Compare):
        if isinstance(expr.value, tuple):
            return f"{expr.attribute} {expr.op} [{', '.join(map(_quote, expr.value))}]"
        return f"{expr.attribute} {expr.op} {_quote(expr.value)}"
    if isinstance(expr, Exists):
        return f"{expr.attribute} {NOT_EXISTS if expr.negated else EXISTS}"
    if isinstance(expr, Not):
        return f"not ({to_text(expr.operand)})"
    if isinstance(expr, And | Or):
        joiner = " and " if isinstance(expr, And) else " or "
        # Nested groups are always parenthesised: they parse back to the same tree and read clearly.
        return joiner.join(
            f"({to_text(o)})" if isinstance(o, And | Or) else to_text(o) for o in expr.operands
        )
    assert_never(expr)
