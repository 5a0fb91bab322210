"""The cluster query language: parsing, errors with columns, canonical printing, evaluation."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ecspilot.domain import cql
from ecspilot.domain.cql import And, Compare, Exists, Not, Op, Or
from ecspilot.errors import QueryLanguageError


def make_container_instance(
    *,
    instance_type: str = "t3.small",
    zone: str = "us-east-1a",
    attributes: dict[str, str | None] | None = None,
    agent_connected: bool = True,
    agent_version: str = "1.14.4",
    registered_at: datetime = datetime(2018, 1, 1, tzinfo=UTC),
    running: int = 0,
    ec2_instance_id: str = "i-0123456789abcdef0",
) -> dict[str, Any]:
    """One item of ``describe_container_instances``, as boto3 returns it."""
    attrs: dict[str, str | None] = {
        "ecs.instance-type": instance_type,
        "ecs.availability-zone": zone,
        "ecs.os-type": "linux",
        "ecs.capability.execution-role-awslogs": None,
        **(attributes or {}),
    }
    return {
        "containerInstanceArn": f"arn:aws:ecs:us-east-1:123456789012:container-instance/prod/{ec2_instance_id}",
        "ec2InstanceId": ec2_instance_id,
        "attributes": [{"name": k} if v is None else {"name": k, "value": v} for k, v in attrs.items()],
        "agentConnected": agent_connected,
        "versionInfo": {"agentVersion": agent_version, "agentHash": "abc", "dockerVersion": "20.10"},
        "registeredAt": registered_at,
        "runningTasksCount": running,
        "pendingTasksCount": 0,
        "status": "ACTIVE",
    }


def facts(task_groups: tuple[str, ...] = (), **instance: Any) -> cql.InstanceFacts:
    return cql.InstanceFacts.from_container_instance(make_container_instance(**instance), task_groups)


# The examples of the ECS developer guide ("Create expressions to define container
# instances", "Amazon ECS task placement constraints").
DOC_EXAMPLES = [
    ("attribute:ecs.instance-type == t2.small", Compare("attribute:ecs.instance-type", Op.EQ, "t2.small")),
    (
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
        Compare("attribute:ecs.availability-zone", Op.IN, ("us-east-1a", "us-east-1b")),
    ),
    (
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
        And(
            (
                Compare("attribute:ecs.instance-type", Op.MATCHES, "g2.*"),
                Compare("attribute:ecs.availability-zone", Op.NE, "us-east-1d"),
            )
        ),
    ),
    ("task:group == service:production", Compare("task:group", Op.EQ, "service:production")),
    ("not(task:group == database)", Not(Compare("task:group", Op.EQ, "database"))),
    ("runningTasksCount == 1", Compare("runningTasksCount", Op.EQ, "1")),
    ("agentVersion < 1.14.5", Compare("agentVersion", Op.LT, "1.14.5")),
    ("registeredAt < 2018-02-13", Compare("registeredAt", Op.LT, "2018-02-13")),
    (
        "ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
        Compare("ec2InstanceId", Op.IN, ("i-abcd1234", "i-wxyx7890")),
    ),
    ("attribute:ecs.instance-type =~ t2.*", Compare("attribute:ecs.instance-type", Op.MATCHES, "t2.*")),
    ("task:group == databases", Compare("task:group", Op.EQ, "databases")),
    (
        "attribute:ecs.instance-type == g2.2xlarge",
        Compare("attribute:ecs.instance-type", Op.EQ, "g2.2xlarge"),
    ),
    ("attribute:stack == prod", Compare("attribute:stack", Op.EQ, "prod")),
    ("attribute:stack != prod", Compare("attribute:stack", Op.NE, "prod")),
    (
        "attribute:ecs.instance-type in [t2.small, t2.medium]",
        Compare("attribute:ecs.instance-type", Op.IN, ("t2.small", "t2.medium")),
    ),
    (
        "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a",
        And(
            (
                Compare("attribute:ecs.instance-type", Op.MATCHES, "t2.*"),
                Compare("attribute:ecs.availability-zone", Op.EQ, "us-east-1a"),
            )
        ),
    ),
    ("attribute:ecs.os-type == linux", Compare("attribute:ecs.os-type", Op.EQ, "linux")),
    (
        "registeredAt >= 2018-06-18T22:28:28+00:00",
        Compare("registeredAt", Op.GE, "2018-06-18T22:28:28+00:00"),
    ),
    ("registeredAt >= 2018-06-18T22:28:28Z", Compare("registeredAt", Op.GE, "2018-06-18T22:28:28Z")),
    ("registeredAt >= 2018-06-18T22:28:28", Compare("registeredAt", Op.GE, "2018-06-18T22:28:28")),
]


@pytest.mark.parametrize(("text", "expected"), DOC_EXAMPLES, ids=[t for t, _ in DOC_EXAMPLES])
def test_the_documented_examples_parse_to_the_expected_tree(text: str, expected: cql.Expr) -> None:
    # WHEN an example from the ECS docs is parsed THEN the tree is the expected one, and prints back
    assert cql.parse(text) == expected
    assert cql.parse(cql.to_text(expected)) == expected


ALIASES = [
    ("attribute:a equals x", "attribute:a == x"),
    ("attribute:a not_equals x", "attribute:a != x"),
    ("attribute:a greater_than 1", "attribute:a > 1"),
    ("attribute:a greater_than_equal 1", "attribute:a >= 1"),
    ("attribute:a less_than 1", "attribute:a < 1"),
    ("attribute:a less_than_equal 1", "attribute:a <= 1"),
    ("attribute:a not_in [x]", "attribute:a !in [x]"),
    ("attribute:a matches x.*", "attribute:a =~ x.*"),
    ("attribute:a not_matches x.*", "attribute:a !~ x.*"),
    ("attribute:a not_exists", "attribute:a !exists"),
    ("attribute:a exists && attribute:b exists", "attribute:a exists and attribute:b exists"),
    ("attribute:a exists || attribute:b exists", "attribute:a exists or attribute:b exists"),
    ("!attribute:a exists", "not (attribute:a exists)"),
    ("attribute:a==x&&attribute:b!=y", "attribute:a == x and attribute:b != y"),
    ("attribute:a in[x,y]", "attribute:a in [x, y]"),
    ('attribute:a == "two words"', "attribute:a == 'two words'"),
    ("attribute:a == 'plain'", "attribute:a == plain"),
    ("  ( attribute:a exists )  ", "attribute:a exists"),
]


@pytest.mark.parametrize(("text", "canonical"), ALIASES)
def test_aliases_and_spacing_print_in_canonical_form(text: str, canonical: str) -> None:
    assert cql.to_text(cql.parse(text)) == canonical


PRECEDENCE = [
    # not binds tighter than and, which binds tighter than or
    ("attribute:a exists or attribute:b exists and attribute:c exists", "A or (B and C)"),
    ("(attribute:a exists or attribute:b exists) and attribute:c exists", "(A or B) and C"),
    ("not attribute:a exists and attribute:b exists", "not (A) and B"),
    ("not (attribute:a exists and attribute:b exists)", "not (A and B)"),
    ("attribute:a exists and attribute:b exists and attribute:c exists", "A and B and C"),
    ("(attribute:a exists and attribute:b exists) and attribute:c exists", "(A and B) and C"),
    ("not not attribute:a exists", "not (not (A))"),
]


@pytest.mark.parametrize(("text", "shape"), PRECEDENCE)
def test_boolean_operators_follow_the_usual_precedence(text: str, shape: str) -> None:
    printed = cql.to_text(cql.parse(text))
    for letter in "abc":
        printed = printed.replace(f"attribute:{letter} exists", letter.upper())
    assert printed == shape


INVALID = [
    ("", 1, "empty expression"),
    ("   ", 1, "empty expression"),
    ("attribute:ecs.instance-type", 28, "expected an operator"),
    ("attribute:ecs.instance-type ==", 31, "missing value after '=='"),
    ("attribute:ecs.instance-type == )", 32, "missing value"),
    ("attribute:ecs.instance-type = t2.small", 29, "unknown operator '='"),
    ("attribute:ecs.instance-type equal t2.small", 29, "unknown operator 'equal'"),
    ("attribute:a <> 1", 13, "unknown operator '<>'"),
    ("attribute:a == and", 16, "missing value"),
    ("attribute:a == x)", 17, "')' has no matching '('"),
    ("(attribute:a == x", 1, "'(' is never closed"),
    ("((attribute:a == x) or attribute:b exists", 1, "'(' is never closed"),
    ("(attribute:a == x y)", 19, "expected ')'"),
    ("attribute:a == x attribute:b == y", 18, "unexpected 'attribute:b'"),
    ("attribute:a exists y", 20, "unexpected 'y'"),
    ("attribute:a == x and", 21, "expected a condition"),
    ("attribute:a == x or )", 21, "expected a condition"),
    ("not", 4, "expected a condition"),
    ("instanceType == t2.small", 1, "unknown subject 'instanceType'"),
    ("attribute:a == x and Attribute:b == y", 22, "unknown subject"),
    ("attribute: == x", 1, "missing attribute name"),
    ("attribute:a in x", 16, "expected '['"),
    ("attribute:a in [x, y", 16, "'[' is never closed"),
    ("attribute:a in []", 17, "empty value list"),
    ("attribute:a in [x,]", 19, "missing value in list"),
    ("attribute:a in [x y]", 19, "expected ',' or ']'"),
    ("runningTasksCount in [1, 2]", 19, "not valid for runningTasksCount"),
    ("agentVersion exists", 14, "not valid for agentVersion"),
    ("ec2InstanceId > i-1", 15, "not valid for ec2InstanceId"),
    ("runningTasksCount == one", 22, "whole number"),
    ("registeredAt < yesterday", 16, "invalid date"),
    ("registeredAt < 2018-13-01", 16, "invalid date"),
    ("agentVersion < latest", 16, "version"),
    ("agentConnected == yes", 19, "true or false"),
    ("attribute:a =~ '('", 16, "invalid regular expression"),
    ("attribute:a == 'unterminated", 16, "unterminated quoted value"),
    ("attribute:a == x(y", 16, "unbalanced parenthesis in value"),
    ("attribute:a == ''", 16, "empty value"),
    ("attribute:a == x and attribute:b in [y, '']", 41, "empty value"),
    ("attribute:a == " + "x" * 2000, 2001, "longer than 2000"),
    ("(" * 150 + "attribute:a exists" + ")" * 150, 101, "nests deeper"),
]


@pytest.mark.parametrize(("text", "column", "message"), INVALID)
def test_invalid_expressions_name_the_offending_column(text: str, column: int, message: str) -> None:
    # WHEN an invalid expression is parsed
    with pytest.raises(QueryLanguageError) as caught:
        cql.parse(text)
    # THEN the error says what is wrong and where
    assert message in caught.value.message
    assert caught.value.column == column
    assert caught.value.expression == text


def test_the_error_text_points_at_the_column() -> None:
    with pytest.raises(QueryLanguageError) as caught:
        cql.parse("attribute:a = 1")
    assert str(caught.value).splitlines() == [
        "unknown operator '=' after attribute:a at column 13",
        "  attribute:a = 1",
        "              ^",
    ]


@pytest.mark.parametrize(
    "build",
    [
        lambda: Compare("instanceType", Op.EQ, "x"),
        lambda: Compare("attribute:a", Op.IN, "x"),
        lambda: Compare("attribute:a", Op.EQ, ("x",)),
        lambda: Compare("attribute:a", Op.IN, ()),
        lambda: Compare("attribute:a", Op.EQ, ""),
        lambda: Compare("attribute:a", Op.EQ, 'it\'s "quoted"'),
        lambda: Compare("runningTasksCount", Op.MATCHES, "1"),
        lambda: Exists("registeredAt"),
        lambda: And((Exists("attribute:a"),)),
        lambda: Or(()),
    ],
)
def test_nodes_that_could_not_be_printed_and_parsed_back_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()


def test_compare_accepts_an_operator_spelled_as_text() -> None:
    assert Compare("attribute:a", "==", "x") == Compare("attribute:a", Op.EQ, "x")  # type: ignore[arg-type]


def test_values_that_need_it_are_quoted() -> None:
    expr = Compare("attribute:a", Op.IN, ("two words", "it's", "and", "(x)", "a,b", "[x]", "t2.*"))
    assert cql.to_text(expr) == """attribute:a in ['two words', "it's", 'and', '(x)', 'a,b', '[x]', t2.*]"""
    assert cql.parse(cql.to_text(expr)) == expr


def test_a_bare_regex_may_hold_balanced_parentheses() -> None:
    assert cql.parse("(attribute:a =~ (t2|t3).*)") == Compare("attribute:a", Op.MATCHES, "(t2|t3).*")


# --- evaluation ---------------------------------------------------------------------------------

EVALUATIONS: list[tuple[str, dict[str, Any], bool, list[str] | None]] = [
    ("attribute:ecs.instance-type == t2.small", {"instance_type": "t2.small"}, True, []),
    (
        "attribute:ecs.instance-type == t2.small",
        {},
        False,
        ["attribute:ecs.instance-type is t3.small, not t2.small"],
    ),
    ("attribute:ecs.instance-type == t2.*", {"instance_type": "t2.micro"}, True, []),
    (
        "attribute:ecs.instance-type == t2.*",
        {"instance_type": "t3.small"},
        False,
        ["attribute:ecs.instance-type is t3.small, not matching t2.*"],
    ),
    ("attribute:ecs.instance-type != t2.*", {"instance_type": "t3.small"}, True, []),
    (
        "attribute:ecs.instance-type != t3.small",
        {},
        False,
        ["attribute:ecs.instance-type is t3.small, which must not be t3.small"],
    ),
    ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", {"zone": "us-east-1b"}, True, []),
    (
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
        {"zone": "us-east-1c"},
        False,
        ["attribute:ecs.availability-zone is us-east-1c, not in [us-east-1a, us-east-1b]"],
    ),
    ("attribute:ecs.instance-type in [m5.*, t3.*]", {}, True, []),
    (
        "attribute:ecs.availability-zone !in [us-east-1a]",
        {},
        False,
        ["attribute:ecs.availability-zone is us-east-1a, which must not be in [us-east-1a]"],
    ),
    ("attribute:ecs.instance-type =~ g2.*", {"instance_type": "g2.2xlarge"}, True, []),
    # =~ must match the whole value, like Java's String.matches
    (
        "attribute:ecs.instance-type =~ t3",
        {},
        False,
        ["attribute:ecs.instance-type is t3.small, not matching regex t3"],
    ),
    (
        "attribute:ecs.instance-type !~ t3\\..*",
        {},
        False,
        ["attribute:ecs.instance-type is t3.small, matching regex t3\\..*, which is excluded"],
    ),
    # a missing attribute satisfies no comparison, negative ones included
    ("attribute:stack != prod", {}, False, ["attribute:stack is not set"]),
    ("attribute:stack != prod", {"attributes": {"stack": "dev"}}, True, []),
    ("attribute:stack exists", {"attributes": {"stack": "dev"}}, True, []),
    ("attribute:stack exists", {}, False, ["attribute:stack is not set"]),
    ("attribute:stack !exists", {}, True, []),
    ("attribute:stack !exists", {"attributes": {"stack": "dev"}}, False, ["attribute:stack is set to dev"]),
    ("attribute:ecs.capability.execution-role-awslogs exists", {}, True, []),
    ("attribute:memory-gib > 8", {"attributes": {"memory-gib": "16"}}, True, []),  # numbers, not text
    ("runningTasksCount == 1", {"running": 1}, True, []),
    ("runningTasksCount == 1", {"running": 3}, False, ["runningTasksCount is 3, not 1"]),
    ("runningTasksCount > 9", {"running": 10}, True, []),
    ("runningTasksCount <= 0", {"running": 2}, False, ["runningTasksCount is 2, not at most 0"]),
    ("agentVersion < 1.14.5", {"agent_version": "1.14.4"}, True, []),
    ("agentVersion < 1.14.5", {"agent_version": "1.9.0"}, True, []),  # versions, not text
    ("agentVersion > 1.14.9", {"agent_version": "1.14.10"}, True, []),
    ("agentVersion == 1.14", {"agent_version": "1.14.0"}, True, []),
    (
        "agentVersion >= 1.70.0",
        {"agent_version": "1.68.2"},
        False,
        ["agentVersion is 1.68.2, not at least 1.70.0"],
    ),
    ("registeredAt < 2018-02-13", {"registered_at": datetime(2018, 2, 12, 23, 59, tzinfo=UTC)}, True, []),
    ("registeredAt < 2018-02-13", {"registered_at": datetime(2018, 2, 13, tzinfo=UTC)}, False, None),
    (
        "registeredAt >= 2018-06-18T22:28:28Z",
        {"registered_at": datetime(2018, 6, 18, 22, 28, 28, tzinfo=UTC)},
        True,
        [],
    ),
    (
        "registeredAt > 2018-06-18T22:28:28+02:00",
        {"registered_at": datetime(2018, 6, 18, 21, tzinfo=UTC)},
        True,
        [],
    ),
    (
        "registeredAt > 2018-06-18T22:28:28",
        {"registered_at": datetime(2018, 6, 18, 21, tzinfo=UTC)},
        False,
        None,
    ),
    ("agentConnected == true", {}, True, []),
    ("agentConnected == true", {"agent_connected": False}, False, ["agentConnected is false, not true"]),
    ("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", {"ec2_instance_id": "i-wxyx7890"}, True, []),
    ("ec2InstanceId =~ i-0.*", {}, True, []),
    (
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
        {"zone": "us-east-1d"},
        False,
        [
            "attribute:ecs.instance-type is t3.small, not matching regex g2.*",
            "attribute:ecs.availability-zone is us-east-1d, which must not be us-east-1d",
        ],
    ),
    ("attribute:ecs.instance-type == t2.* or attribute:ecs.instance-type == t3.*", {}, True, []),
    (
        "attribute:ecs.instance-type == m5.* or attribute:ecs.os-type == windows",
        {},
        False,
        [
            "attribute:ecs.instance-type is t3.small, not matching m5.*",
            "attribute:ecs.os-type is linux, not windows",
        ],
    ),
    (
        "not (attribute:ecs.os-type == linux)",
        {},
        False,
        ["expected not (attribute:ecs.os-type == linux), but attribute:ecs.os-type is linux"],
    ),
    ("not (attribute:ecs.os-type == windows)", {}, True, []),
]


@pytest.mark.parametrize(
    ("text", "instance", "matched", "reasons"), EVALUATIONS, ids=[e[0] for e in EVALUATIONS]
)
def test_evaluation_matches_and_explains(
    text: str, instance: dict[str, Any], matched: bool, reasons: list[str] | None
) -> None:
    # GIVEN a container instance WHEN the expression is evaluated against it
    verdict = cql.evaluate(cql.parse(text), facts(**instance))
    # THEN it matches or not, and says which comparisons failed
    assert verdict.matched is matched
    if reasons is not None:
        assert verdict.reasons == reasons
    assert bool(verdict.reasons) is not matched


TASK_GROUPS: list[tuple[str, tuple[str, ...], bool, list[str]]] = [
    ("task:group == service:production", ("service:production",), True, []),
    ("task:group == service:production", ("family:batch", "service:production"), True, []),
    (
        "task:group == databases",
        (),
        False,
        ["task:group is empty: no task with a group runs here"],
    ),
    ("not(task:group == database)", (), True, []),
    (
        "not(task:group == database)",
        ("database",),
        False,
        ["expected not (task:group == database), but task:group is database"],
    ),
    ("task:group exists", ("web",), True, []),
    ("task:group !exists", (), True, []),
    ("task:group in [service:*]", ("family:batch", "service:web"), True, []),
    (
        "task:group == database",
        ("web", "worker"),
        False,
        ["task:group is [web, worker], not database"],
    ),
]


@pytest.mark.parametrize(("text", "groups", "matched", "reasons"), TASK_GROUPS)
def test_task_group_holds_when_any_task_group_on_the_instance_satisfies_it(
    text: str, groups: tuple[str, ...], matched: bool, reasons: list[str]
) -> None:
    verdict = cql.evaluate(cql.parse(text), facts(task_groups=groups))
    assert (verdict.matched, verdict.reasons) == (matched, reasons)


def test_facts_are_read_from_the_describe_container_instances_shape() -> None:
    # GIVEN a describe_container_instances item (registeredAt as boto3 returns it, or as ISO text)
    item = make_container_instance(running=2, attributes={"stack": "prod"})
    item["registeredAt"] = "2018-06-18T22:28:28"
    # WHEN facts are built
    got = cql.InstanceFacts.from_container_instance(item, ["service:web"])
    # THEN every subject can be looked up
    assert got.ec2_instance_id == "i-0123456789abcdef0"
    assert got.container_instance_arn.endswith("/i-0123456789abcdef0")
    assert got.values_of("attribute:stack") == ("prod",)
    assert got.values_of("attribute:ecs.capability.execution-role-awslogs") == ("",)
    assert got.values_of("attribute:missing") == ()
    assert got.values_of("agentConnected") == ("true",)
    assert got.values_of("agentVersion") == ("1.14.4",)
    assert got.values_of("registeredAt") == ("2018-06-18T22:28:28+00:00",)
    assert got.values_of("runningTasksCount") == ("2",)
    assert got.values_of("task:group") == ("service:web",)


def test_facts_tolerate_a_sparse_item() -> None:
    got = cql.InstanceFacts.from_container_instance({"containerInstanceArn": "arn:ci"})
    assert got.values_of("ec2InstanceId") == ()
    verdict = cql.evaluate(cql.parse("runningTasksCount == 0"), got)
    assert verdict.reasons == ["runningTasksCount is not set"]


# --- properties ---------------------------------------------------------------------------------

ATTRIBUTE_NAMES = st.from_regex(r"[A-Za-z0-9_./\\-]{1,16}", fullmatch=True)
TRICKY_VALUES = [
    "and",
    "or",
    "&&",
    "||",
    "not",
    "t2.*",
    "two words",
    "(x)",
    "[y]",
    "a,b",
    "it's",
    '"q"',
    "==",
    "!in",
]
FREE_VALUES = st.one_of(
    st.sampled_from(TRICKY_VALUES),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=10).filter(
        lambda v: not ("'" in v and '"' in v)
    ),
)
REGEX_VALUES = st.one_of(
    st.sampled_from(["g2.*", "(t2|t3)\\..*", "i-[0-9a-f]+", "[a-z]+", "a b"]),
    st.text(min_size=1, max_size=8).map(re.escape).filter(lambda v: not ("'" in v and '"' in v)),
)
DATES = st.tuples(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.sampled_from(["date", "naive", "Z", "offset"]),
).map(
    lambda pair: {
        "date": pair[0].date().isoformat(),
        "naive": pair[0].isoformat(),
        "Z": pair[0].isoformat() + "Z",
        "offset": pair[0].isoformat() + "-05:30",
    }[pair[1]]
)
FIELD_VALUES: dict[str, st.SearchStrategy[str]] = {
    "agentConnected": st.sampled_from(["true", "false"]),
    "agentVersion": st.lists(st.integers(0, 99), min_size=1, max_size=4).map(lambda p: ".".join(map(str, p))),
    "ec2InstanceId": FREE_VALUES,
    "registeredAt": DATES,
    "runningTasksCount": st.integers(0, 10_000).map(str),
}
SUBJECTS = st.one_of(
    st.sampled_from([*cql.FIELDS, cql.TASK_GROUP]),
    ATTRIBUTE_NAMES.map(lambda name: cql.ATTRIBUTE_PREFIX + name),
)


@st.composite
def conditions(draw: st.DrawFn) -> cql.Expr:
    subject = draw(SUBJECTS)
    allowed = cql.FIELDS.get(subject)
    if allowed is None and draw(st.booleans()):
        return Exists(subject, negated=draw(st.booleans()))
    op = draw(st.sampled_from(sorted(allowed or Op)))
    values = REGEX_VALUES if op in (Op.MATCHES, Op.NOT_MATCHES) else FIELD_VALUES.get(subject, FREE_VALUES)
    if op in (Op.IN, Op.NOT_IN):
        return Compare(subject, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))
    return Compare(subject, op, draw(values))


EXPRESSIONS = st.recursive(
    conditions(),
    lambda children: st.one_of(
        st.builds(Not, children),
        st.lists(children, min_size=2, max_size=3).map(lambda ops: And(tuple(ops))),
        st.lists(children, min_size=2, max_size=3).map(lambda ops: Or(tuple(ops))),
    ),
    max_leaves=8,
)


def depth(expr: cql.Expr) -> int:
    if isinstance(expr, Not):
        return 2 + depth(expr.operand)
    if isinstance(expr, And | Or):
        return 1 + max(depth(o) for o in expr.operands)
    return 0


@given(EXPRESSIONS)
def test_printing_then_parsing_gives_back_the_same_tree(expr: cql.Expr) -> None:
    assume(depth(expr) < 90)
    assert cql.parse(cql.to_text(expr)) == expr


@given(EXPRESSIONS)
def test_evaluation_never_fails_on_a_valid_tree(expr: cql.Expr) -> None:
    verdict = cql.evaluate(expr, facts(task_groups=("service:web",), attributes={"stack": "prod"}))
    assert bool(verdict.reasons) is not verdict.matched


TOKENS = [
    "attribute:a", "task:group", "runningTasksCount", "registeredAt", "==", "!=", "in", "!in", "=~",
    "exists", "!exists", "and", "or", "not", "!", "&&", "||", "(", ")", "[", "]", ",", "x", "'q'", "1",
    "2018-02-13", "t2.*", "=", "<>", "'",
]  # fmt: skip


@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join)))
def test_any_text_either_parses_to_a_fixed_point_or_fails_with_a_column(text: str) -> None:
    result = parse_or_error(text)
    if isinstance(result, QueryLanguageError):
        assert 1 <= result.column <= len(text) + 1
    else:
        assert cql.parse(cql.to_text(result)) == result


def parse_or_error(text: str) -> cql.Expr | QueryLanguageError:
    try:
        return cql.parse(text)
    except QueryLanguageError as exc:
        return exc


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("syntax", ["Op", "Compare", "Exists", "And", "Or", "Not", "FIELDS", "subject_problem"]),
        ("parser", ["parse"]),
        ("printer", ["to_text"]),
        ("evaluator", ["InstanceFacts", "Verdict", "evaluate"]),
    ],
)
def test_the_package_re_exports_each_part_under_its_old_import_path(module: str, names: list[str]) -> None:
    # GIVEN the split modules WHEN importing from ecspilot.domain.cql, as every caller does
    part = importlib.import_module(f"ecspilot.domain.cql.{module}")
    # THEN the names are the very objects the part defines, and the package lists them
    for name in names:
        assert getattr(cql, name) is getattr(part, name)
        assert name in cql.__all__
