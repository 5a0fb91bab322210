"""The cluster query language's evaluator: does one container instance satisfy an expression, and why not."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any, assert_never

from ecspilot.domain.cql.printer import to_text
from ecspilot.domain.cql.syntax import (
    ATTRIBUTE_PREFIX,
    REGEX_OPS,
    TASK_GROUP,
    And,
    Compare,
    Exists,
    Expr,
    Not,
    Op,
    Or,
    as_utc,
)
from ecspilot.records import dataclass


@dataclass(frozen=True)
class InstanceFacts:
    """What an expression can ask about one container instance."""

    container_instance_arn: str
    ec2_instance_id: str | None = None
    attributes: Mapping[str, str | None] = field(default_factory=dict, hash=False)
    agent_connected: bool | None = None
    agent_version: str | None = None
    registered_at: datetime | None = None
    running_tasks_count: int | None = None
    task_groups: frozenset[str] = frozenset()

    @classmethod
    def from_container_instance(
        cls, ci: Mapping[str, Any], task_groups: Collection[str] = ()
    ) -> InstanceFacts:
        """Build facts from one ``describe_container_instances`` item.

        ``task_groups`` are the groups of the tasks running on the instance
        (``describe_tasks`` ``group``), which ``task:group`` tests.
        """
        attributes = {
            item["name"]: item.get("value")
            for item in ci.get("attributes") or ()
            if isinstance(item.get("name"), str)
        }
        registered = ci.get("registeredAt")
        if isinstance(registered, str):
            registered = datetime.fromisoformat(registered)
        running = ci.get("runningTasksCount")
        connected = ci.get("agentConnected")
        return cls(
            container_instance_arn=str(ci.get("containerInstanceArn", "")),
            ec2_instance_id=ci.get("ec2InstanceId"),
            attributes=MappingProxyType(attributes),
            agent_connected=connected if isinstance(connected, bool) else None,
            agent_version=(ci.get("versionInfo") or {}).get("agentVersion"),
            registered_at=as_utc(registered) if isinstance(registered, datetime) else None,
            running_tasks_count=running if isinstance(running, int) else None,
            task_groups=frozenset(task_groups),
        )

    def values_of(self, subject: str) -> tuple[str, ...]:
        """The subject's values as text: one for most subjects, any number for ``task:group``."""
        if subject.startswith(ATTRIBUTE_PREFIX):
            name = subject.removeprefix(ATTRIBUTE_PREFIX)
            return (self.attributes[name] or "",) if name in self.attributes else ()
        if subject == TASK_GROUP:
            return tuple(sorted(self.task_groups))
        raw: object = {
            "agentConnected": self.agent_connected,
            "agentVersion": self.agent_version,
            "ec2InstanceId": self.ec2_instance_id,
            "registeredAt": self.registered_at,
            "runningTasksCount": self.running_tasks_count,
        }.get(subject)
        if raw is None:
            return ()
        if isinstance(raw, bool):
            return ("true" if raw else "false",)
        return (raw.isoformat() if isinstance(raw, datetime) else str(raw),)


@dataclass(frozen=True)
class Verdict:
    """Whether an instance satisfies an expression, and why not."""

    matched: bool
    reasons: list[str] = field(default_factory=list)


_ORDER: Mapping[Op, Callable[[Any, Any], bool]] = MappingProxyType(
    {Op.GT: operator.gt, Op.GE: operator.ge, Op.LT: operator.lt, Op.LE: operator.le}
)
_WORDS: Mapping[Op, str] = MappingProxyType(
    {Op.GT: "greater than", Op.GE: "at least", Op.LT: "less than", Op.LE: "at most"}
)


@lru_cache(maxsize=256)
def _pattern(value: str, regex: bool) -> re.Pattern[str]:
    if regex:
        return re.compile(value)
    return re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)


def _key(subject: str, text: str) -> Any:
    """A sort key giving the subject's natural order (dates, counts, versions, numbers)."""
    if subject == "registeredAt":
        return as_utc(datetime.fromisoformat(text))
    if subject == "runningTasksCount":
        return int(text)
    if subject == "agentVersion":
        parts = [int(part) for part in re.findall(r"\d+", text)]
        while parts and parts[-1] == 0:  # 1.14 == 1.14.0
            parts.pop()
        return tuple(parts)
    if re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        return (0, Decimal(text))
    return (1, text)


def _equal(subject: str, actual: str, wanted: str) -> bool:
    if subject in ("registeredAt", "runningTasksCount", "agentVersion"):
        return bool(_key(subject, actual) == _key(subject, wanted))
    return _pattern(wanted, regex=False).fullmatch(actual) is not None


def _holds(expr: Compare, actual: str) -> bool:
    op, wanted = expr.op, expr.value
    if isinstance(wanted, tuple):
        return any(_equal(expr.attribute, actual, w) for w in wanted) == (op is Op.IN)
    if op in (Op.EQ, Op.NE):
        return _equal(expr.attribute, actual, wanted) == (op is Op.EQ)
    if op in REGEX_OPS:
        # Java's String.matches, which ECS follows: the whole value must match.
        return (_pattern(wanted, regex=True).fullmatch(actual) is not None) == (op is Op.MATCHES)
    try:
        return _ORDER[op](_key(expr.attribute, actual), _key(expr.attribute, wanted))
    except (TypeError, ValueError):
        return _ORDER[op](actual, wanted)


def _show(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else f"[{', '.join(values)}]"


def _why_not(expr: Compare, shown: str) -> str:
    subject, op, wanted = expr.attribute, expr.op, expr.value
    if isinstance(wanted, tuple):
        listed = f"[{', '.join(wanted)}]"
        return f"{subject} is {shown}, {'not in' if op is Op.IN else 'which must not be in'} {listed}"
    wild = "*" in wanted
    phrases = {
        Op.EQ: f"not matching {wanted}" if wild else f"not {wanted}",
        Op.NE: f"which must not match {wanted}" if wild else f"which must not be {wanted}",
        Op.MATCHES: f"not matching regex {wanted}",
        Op.NOT_MATCHES: f"matching regex {wanted}, which is excluded",
    }
    return f"{subject} is {shown}, {phrases.get(op) or f'not {_WORDS[op]} {wanted}'}"


def _evaluate(expr: Expr, facts: InstanceFacts) -> tuple[bool, list[str], list[str]]:
    """(matched, why it fails, why it holds): a ``not`` turns one into the other."""
    if isinstance(expr, Compare | Exists):
        values = facts.values_of(expr.attribute)
        unset = f"{expr.attribute} is not set"
        if expr.attribute == TASK_GROUP:
            unset = "task:group is empty: no task with a group runs here"
        if isinstance(expr, Exists):
            is_set = f"{expr.attribute} is set" + (f" to {_show(values)}" if any(values) else "")
            holds = bool(values) != expr.negated
            return holds, [] if holds else [is_set if values else unset], [is_set if values else unset]
        if not values:  # ECS matches no comparison, negative ones included, on a missing subject
            return False, [unset], []
        shown = _show(values)
        # task:group holds several values: the comparison holds when it holds for any of them.
        if any(_holds(expr, value) for value in values):
            return True, [], [f"{expr.attribute} is {shown}"]
        return False, [_why_not(expr, shown)], [f"{expr.attribute} is {shown}"]
    if isinstance(expr, Not):
        matched, why_not, why = _evaluate(expr.operand, facts)
        return not matched, [f"expected {to_text(expr)}, but {'; '.join(why)}"] if matched else [], why_not
    if isinstance(expr, And | Or):
        results = [_evaluate(operand, facts) for operand in expr.operands]
        matched = all(r[0] for r in results) if isinstance(expr, And) else any(r[0] for r in results)
        why_not = [reason for ok, fails, _ in results if not ok for reason in fails]
        why = [reason for ok, _, holds in results if ok for reason in holds]
        return matched, [] if matched else why_not, why
    assert_never(expr)


def evaluate(expr: Expr, instance: InstanceFacts) -> Verdict:
    """Evaluate an expression against one container instance.

    ``==`` and ``in`` treat ``*`` in values as a wildcard; ``=~`` is a regex that
    must match the whole value; ``runningTasksCount``, ``registeredAt`` and
    ``agentVersion`` compare as numbers, dates (UTC when no offset is given) and
    versions. ``task:group`` holds when any task group on the instance satisfies
    the comparison, so use ``not (task:group == X)`` for anti-affinity.
    """
    matched, why_not, _ = _evaluate(expr, instance)
    return Verdict(matched=matched, reasons=[] if matched else why_not)
