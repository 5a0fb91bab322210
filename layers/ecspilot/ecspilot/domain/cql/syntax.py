"""The cluster query language's vocabulary and syntax tree.

Subjects, operators (every spelling ECS documents, folded to one canonical :class:`Op`), the
checks each field's values must pass, and the node classes. Checks live in the node classes, so
every AST that can be built can also be printed and parsed back (see :mod:`.printer`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TypeAlias

from ecspilot.records import dataclass

MAX_LENGTH = 2000  # ECS's limit on a constraint expression
ATTRIBUTE_PREFIX = "attribute:"
TASK_GROUP = "task:group"


class Op(StrEnum):
    """A comparison operator, named by its canonical (symbolic) spelling."""

    EQ = "=="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    IN = "in"
    NOT_IN = "!in"
    MATCHES = "=~"
    NOT_MATCHES = "!~"


EXISTS, NOT_EXISTS = "exists", "!exists"
# Every spelling ECS documents, folded to an Op (or to the two existence tests).
OPERATORS: Mapping[str, Op | str] = MappingProxyType(
    {
        **{op.value: op for op in Op},
        "equals": Op.EQ,
        "not_equals": Op.NE,
        "greater_than": Op.GT,
        "greater_than_equal": Op.GE,
        "less_than": Op.LT,
        "less_than_equal": Op.LE,
        "not_in": Op.NOT_IN,
        "matches": Op.MATCHES,
        "not_matches": Op.NOT_MATCHES,
        EXISTS: EXISTS,
        NOT_EXISTS: NOT_EXISTS,
        "not_exists": NOT_EXISTS,
    }
)
LIST_OPS = frozenset({Op.IN, Op.NOT_IN})
REGEX_OPS = frozenset({Op.MATCHES, Op.NOT_MATCHES})
_STRING_OPS = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.MATCHES, Op.NOT_MATCHES})
_ORDERED_OPS = frozenset({Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE})
# The fields ECS documents, with the operators it lists for each.
FIELDS: Mapping[str, frozenset[Op]] = MappingProxyType(
    {
        "agentConnected": _STRING_OPS,
        "agentVersion": _ORDERED_OPS,
        "ec2InstanceId": _STRING_OPS,
        "registeredAt": _ORDERED_OPS,
        "runningTasksCount": _ORDERED_OPS,
    }
)
KEYWORDS = frozenset({"and", "or", "&&", "||"})  # must be quoted to be used as values
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_./\\-]{1,128}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})?)?")
_VERSION = re.compile(r"\d+(?:\.\d+)*")
BARE = re.compile(r"[^\s()\[\],'\"]+")


def subject_problem(subject: str) -> str | None:
    """Why ``subject`` is not a valid subject (``attribute:NAME``, ``task:group``, a field), or None."""
    if subject in FIELDS or subject == TASK_GROUP:
        return None
    if subject.startswith(ATTRIBUTE_PREFIX):
        name = subject.removeprefix(ATTRIBUTE_PREFIX)
        if not name:
            return "missing attribute name after 'attribute:'"
        if not _ATTRIBUTE_NAME.fullmatch(name):
            return f"invalid attribute name {name!r}: use letters, digits, - _ . / \\ (at most 128)"
        return None
    return f"unknown subject {subject!r}; expected attribute:NAME, {TASK_GROUP}, {', '.join(FIELDS)}"


def operator_problem(subject: str, op: Op | str) -> str | None:
    allowed = FIELDS.get(subject)
    if allowed is None or op in allowed:
        return None
    return f"operator {op} is not valid for {subject}; use one of {' '.join(o for o in Op if o in allowed)}"


def value_problem(subject: str, op: Op, value: str) -> str | None:
    if not value:
        return "empty value"
    if "'" in value and '"' in value:
        return "a value cannot contain both ' and \""
    if op in REGEX_OPS:
        try:
            re.compile(value)
        except re.error as exc:
            return f"invalid regular expression {value!r}: {exc.msg}"
        return None
    if subject == "registeredAt" and _date_or_none(value) is None:
        return f"invalid date {value!r}; use 2018-06-18, 2018-06-18T22:28:28, with Z or +00:00 optional"
    if subject == "runningTasksCount" and not re.fullmatch(r"[0-9]+", value):
        return f"runningTasksCount takes a whole number, not {value!r}"
    if subject == "agentVersion" and not _VERSION.fullmatch(value):
        return f"agentVersion takes a version such as 1.14.5, not {value!r}"
    if subject == "agentConnected" and value not in ("true", "false"):
        return f"agentConnected takes true or false, not {value!r}"
    return None


def _date_or_none(value: str) -> datetime | None:
    if not _DATE.fullmatch(value):
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def as_utc(moment: datetime) -> datetime:
    # ECS documents forms without an offset (2018-06-18, 2018-06-18T22:28:28); read them as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Compare:
    """``attribute op value``; ``value`` is a tuple for ``in`` / ``!in``, else one string."""

    attribute: str
    op: Op
    value: str | tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", Op(self.op))
        problem = subject_problem(self.attribute) or operator_problem(self.attribute, self.op)
        if problem is None and (self.op in LIST_OPS) != isinstance(self.value, tuple):
            problem = f"operator {self.op} takes {'a list' if self.op in LIST_OPS else 'one value'}"
        if problem is None and self.value == ():
            problem = "empty value list"
        for value in (self.value,) if isinstance(self.value, str) else self.value:
            problem = problem or value_problem(self.attribute, self.op, value)
        if problem:
            raise ValueError(problem)


@dataclass(frozen=True)
class Exists:
    """``attribute exists`` (or ``attribute !exists`` when ``negated``)."""

    attribute: str
    negated: bool = False

    def __post_init__(self) -> None:
        problem = subject_problem(self.attribute) or operator_problem(self.attribute, EXISTS)
        if problem:
            raise ValueError(problem)


@dataclass(frozen=True)
class And:
    """All operands hold (two or more)."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.operands) < 2:
            raise ValueError("And takes at least two operands")


@dataclass(frozen=True)
class Or:
    """At least one operand holds (two or more)."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.operands) < 2:
            raise ValueError("Or takes at least two operands")


@dataclass(frozen=True)
class Not:
    """The operand does not hold."""

    operand: Expr


Expr: TypeAlias = Compare | Exists | And | Or | Not
