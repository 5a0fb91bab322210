"""The ECS cluster query language: parse, print and evaluate ``memberOf`` expressions.

Grammar, lowest precedence first (``not`` binds tightest, then ``and``, then ``or``)::

    expression := conjunction (("or" | "||") conjunction)*
    conjunction := unary (("and" | "&&") unary)*
    unary      := ("not" | "!") unary | "(" expression ")" | condition
    condition  := subject operator [argument]
    argument   := value | "[" value ("," value)* "]"       (a list for in / !in)
    value      := bare-word | 'single quoted' | "double quoted"

Subjects are ``attribute:NAME``, ``task:group`` and the fields ECS documents
(``agentConnected``, ``agentVersion``, ``ec2InstanceId``, ``registeredAt``,
``runningTasksCount``); each field only takes the operators ECS lists for it.
Operator aliases are folded to one canonical spelling, so ``to_text`` prints a
canonical form and ``parse(to_text(e)) == e``. Checks live in the node classes,
so every AST that can be built can also be printed and parsed back.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NoReturn, TypeAlias, assert_never

from ecspilot.errors import QueryLanguageError

MAX_LENGTH = 2000  # ECS's limit on a constraint expression
ATTRIBUTE_PREFIX = "attribute:"
TASK_GROUP = "task:group"
_MAX_DEPTH = 100  # parentheses and nots; keeps recursion far from Python's limit


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


_EXISTS, _NOT_EXISTS = "exists", "!exists"
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
        _EXISTS: _EXISTS,
        _NOT_EXISTS: _NOT_EXISTS,
        "not_exists": _NOT_EXISTS,
    }
)
_LIST_OPS = frozenset({Op.IN, Op.NOT_IN})
_REGEX_OPS = frozenset({Op.MATCHES, Op.NOT_MATCHES})
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
_KEYWORDS = frozenset({"and", "or", "&&", "||"})  # must be quoted to be used as values
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_./\\-]{1,128}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})?)?")
_VERSION = re.compile(r"\d+(?:\.\d+)*")
_TOKEN = re.compile(r"[^\s()\[\],'\"!=<>~&|]+")
_BARE = re.compile(r"[^\s()\[\],'\"]+")
_WORD_OP = re.compile(r"!?[A-Za-z_]+")
_SYMBOL_OP = re.compile(r"==|!=|>=|<=|=~|!~|>|<")
_OP_CHARS = re.compile(r"[!=<>~]+")


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


def _operator_problem(subject: str, op: Op | str) -> str | None:
    allowed = FIELDS.get(subject)
    if allowed is None or op in allowed:
        return None
    return f"operator {op} is not valid for {subject}; use one of {' '.join(o for o in Op if o in allowed)}"


def _value_problem(subject: str, op: Op, value: str) -> str | None:
    if not value:
        return "empty value"
    if "'" in value and '"' in value:
        return "a value cannot contain both ' and \""
    if op in _REGEX_OPS:
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
        return _as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _as_utc(moment: datetime) -> datetime:
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
        problem = subject_problem(self.attribute) or _operator_problem(self.attribute, self.op)
        if problem is None and (self.op in _LIST_OPS) != isinstance(self.value, tuple):
            problem = f"operator {self.op} takes {'a list' if self.op in _LIST_OPS else 'one value'}"
        if problem is None and self.value == ():
            problem = "empty value list"
        for value in (self.value,) if isinstance(self.value, str) else self.value:
            problem = problem or _value_problem(self.attribute, self.op, value)
        if problem:
            raise ValueError(problem)


@dataclass(frozen=True)
class Exists:
    """``attribute exists`` (or ``attribute !exists`` when ``negated``)."""

    attribute: str
    negated: bool = False

    def __post_init__(self) -> None:
        problem = subject_problem(self.attribute) or _operator_problem(self.attribute, _EXISTS)
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


class _Parser:
    """Recursive descent over the raw text; which token comes next depends on the position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        raise QueryLanguageError(message, self.text, (self.pos if pos is None else pos) + 1)

    def skip_space(self) -> bool:
        """Skip whitespace; True when input remains."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos < len(self.text)

    def found(self) -> str:
        token = _TOKEN.match(self.text, self.pos) or _OP_CHARS.match(self.text, self.pos)
        return token.group() if token else self.text[self.pos]

    def connective(self, word: str, symbol: str) -> bool:
        if not self.skip_space():
            return False
        if self.text.startswith(symbol, self.pos):
            self.pos += len(symbol)
            return True
        token = _TOKEN.match(self.text, self.pos)
        if token and token.group() == word:
            self.pos = token.end()
            return True
        return False

    def expression(self) -> Expr:
        operands = [self.conjunction()]
        while self.connective("or", "||"):
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Expr:
        operands = [self.unary()]
        while self.connective("and", "&&"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Expr:
        if not self.skip_space():
            self.fail("expected a condition, found the end of the expression")
        start = self.pos
        if self.depth >= _MAX_DEPTH:
            self.fail(f"expression nests deeper than {_MAX_DEPTH} levels")
        token = _TOKEN.match(self.text, start)
        char = self.text[start]
        if char in "!(" or (token and token.group() == "not"):
            self.pos = token.end() if token else start + 1
            self.depth += 1
            inner = self.expression() if char == "(" else Not(self.unary())
            self.depth -= 1
            if char == "(":
                if not self.skip_space():
                    self.fail("unbalanced parenthesis: '(' is never closed", start)
                if self.text[self.pos] != ")":
                    self.fail(f"expected ')', 'and' or 'or', found {self.found()!r}")
                self.pos += 1
            return inner
        if token is None:
            self.fail(f"expected a condition, found {self.found()!r}")
        return self.condition(token.group())

    def condition(self, subject: str) -> Expr:
        start = self.pos
        if problem := subject_problem(subject):
            self.fail(problem, start)
        self.pos += len(subject)
        if not self.skip_space():
            self.fail(f"expected an operator after {subject}")
        op_start = self.pos
        spelled = self.operator_token()
        op = OPERATORS.get(spelled)
        if op is None:
            self.fail(f"unknown operator {spelled!r} after {subject}", op_start)
        if problem := _operator_problem(subject, op):
            self.fail(problem, op_start)
        if op in (_EXISTS, _NOT_EXISTS):
            return Exists(subject, negated=op == _NOT_EXISTS)
        op = Op(op)
        values = self.value_list(spelled) if op in _LIST_OPS else [self.scalar(spelled)]
        for value, value_start in values:
            if problem := _value_problem(subject, op, value):
                self.fail(problem, value_start)
        if op in _LIST_OPS:
            return Compare(subject, op, tuple(value for value, _ in values))
        return Compare(subject, op, values[0][0])

    def operator_token(self) -> str:
        word = _WORD_OP.match(self.text, self.pos)
        symbol = _SYMBOL_OP.match(self.text, self.pos)
        run = _OP_CHARS.match(self.text, self.pos)
        if word and (symbol is None or len(word.group()) > len(symbol.group())):
            token = word.group()
        elif symbol and run and run.group() == symbol.group():
            token = symbol.group()  # '<>' or '==!' is one unknown operator, not '<' then a value
        else:
            token = self.found()
        self.pos += len(token)
        return token

    def quoted(self) -> tuple[str, int]:
        start = self.pos
        end = self.text.find(self.text[start], start + 1)
        if end < 0:
            self.fail("unterminated quoted value", start)
        self.pos = end + 1
        return self.text[start + 1 : end], start

    def scalar(self, after: str) -> tuple[str, int]:
        if not self.skip_space():
            self.fail(f"missing value after {after!r}")
        start = self.pos
        if self.text[start] in "'\"":
            return self.quoted()
        # A bare value ends at a space, '&&', '||' or an unmatched ')'; a bare
        # regex may hold balanced parentheses: =~ (t2|t3).*
        depth = 0
        while self.pos < len(self.text) and not self.text[self.pos].isspace():
            char = self.text[self.pos]
            if depth == 0 and (char == ")" or self.text.startswith(("&&", "||"), self.pos)):
                break
            depth += {"(": 1, ")": -1}.get(char, 0)
            self.pos += 1
        value = self.text[start : self.pos]
        if not value or value in _KEYWORDS:
            self.fail(f"missing value after {after!r}", start)
        if depth:
            self.fail("unbalanced parenthesis in value; quote values that contain '('", start)
        return value, start

    def value_list(self, after: str) -> list[tuple[str, int]]:
        if not self.skip_space() or self.text[self.pos] != "[":
            self.fail(f"expected '[' to start the value list after {after!r}")
        start = self.pos
        self.pos += 1
        values: list[tuple[str, int]] = []
        while True:
            if not self.skip_space():
                self.fail("unbalanced bracket: '[' is never closed", start)
            if self.text[self.pos] in "'\"":
                values.append(self.quoted())
            else:
                bare = _BARE.match(self.text, self.pos)
                if bare is None or bare.group() in _KEYWORDS:
                    empty = not values and self.text[self.pos] == "]"
                    self.fail("empty value list" if empty else "missing value in list")
                values.append((bare.group(), self.pos))
                self.pos = bare.end()
            if not self.skip_space():
                self.fail("unbalanced bracket: '[' is never closed", start)
            self.pos += 1
            if self.text[self.pos - 1] == "]":
                return values
            if self.text[self.pos - 1] != ",":
                self.pos -= 1
                self.fail(f"expected ',' or ']' in value list, found {self.found()!r}")


def parse(expression: str) -> Expr:
    """Parse a cluster query language expression into an AST.

    Raises :class:`QueryLanguageError` with the 1-based column of the offending token.
    """
    if len(expression) > MAX_LENGTH:
        raise QueryLanguageError(
            f"expression is longer than {MAX_LENGTH} characters", expression, MAX_LENGTH + 1
        )
    parser = _Parser(expression)
    if not parser.skip_space():
        parser.fail("empty expression", 0)
    expr = parser.expression()
    if parser.skip_space():
        if expression[parser.pos] == ")":
            parser.fail("unbalanced parenthesis: ')' has no matching '('")
        parser.fail(f"unexpected {parser.found()!r}; expected 'and', 'or' or the end")
    return expr


def _quote(value: str) -> str:
    if _BARE.fullmatch(value) and value not in _KEYWORDS and "&&" not in value and "||" not in value:
        return value
    return f'"{value}"' if "'" in value else f"'{value}'"


def to_text(expr: Expr) -> str:
    """Print an AST in canonical form (symbolic operators, minimal quoting)."""
    if isinstance(expr, Compare):
        if isinstance(expr.value, tuple):
            return f"{expr.attribute} {expr.op} [{', '.join(map(_quote, expr.value))}]"
        return f"{expr.attribute} {expr.op} {_quote(expr.value)}"
    if isinstance(expr, Exists):
        return f"{expr.attribute} {_NOT_EXISTS if expr.negated else _EXISTS}"
    if isinstance(expr, Not):
        return f"not ({to_text(expr.operand)})"
    if isinstance(expr, And | Or):
        joiner = " and " if isinstance(expr, And) else " or "
        # Nested groups are always parenthesised: they parse back to the same tree and read clearly.
        return joiner.join(
            f"({to_text(o)})" if isinstance(o, And | Or) else to_text(o) for o in expr.operands
        )
    assert_never(expr)


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
            registered_at=_as_utc(registered) if isinstance(registered, datetime) else None,
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
        return _as_utc(datetime.fromisoformat(text))
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
    if op in _REGEX_OPS:
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
