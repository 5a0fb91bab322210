"""Placement: presets, validation of custom placement in ECS's shapes, instance checks."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.domain.placement import (
    InstanceCheck,
    Placement,
    check_instances,
    constraints_from_strings,
    resolve_placement,
)
from ecspilot.errors import PlacementError

AZ_SPREAD = {"type": "spread", "field": "attribute:ecs.availability-zone"}


def make_container_instance(
    ec2_instance_id: str = "i-0aaa", *, instance_type: str = "t3.small", running: int = 0
) -> dict[str, Any]:
    """One item of ``describe_container_instances`` (only what placement looks at)."""
    return {
        "containerInstanceArn": f"arn:aws:ecs:us-east-1:123456789012:container-instance/prod/{ec2_instance_id}",
        "ec2InstanceId": ec2_instance_id,
        "attributes": [
            {"name": "ecs.instance-type", "value": instance_type},
            {"name": "ecs.os-type", "value": "linux"},
        ],
        "agentConnected": True,
        "runningTasksCount": running,
    }


def member_of(expression: str) -> dict[str, str]:
    return {"type": "memberOf", "expression": expression}


PRESETS = [
    (
        "az-balanced-spread",
        {"placementStrategy": [AZ_SPREAD, {"type": "spread", "field": "instanceId"}]},
    ),
    (
        "az-balanced-binpack",
        {"placementStrategy": [AZ_SPREAD, {"type": "binpack", "field": "memory"}]},
    ),
    ("binpack", {"placementStrategy": [{"type": "binpack", "field": "memory"}]}),
    ("one-task-per-host", {"placementConstraints": [{"type": "distinctInstance"}]}),
]


@pytest.mark.parametrize(("preset", "kwargs"), PRESETS)
def test_presets_are_the_ecs_console_templates(preset: str, kwargs: dict[str, Any]) -> None:
    assert resolve_placement(preset).as_kwargs() == kwargs


def test_no_placement_adds_no_arguments() -> None:
    assert resolve_placement(None) == Placement()
    assert resolve_placement(None, fargate=True, daemon=True).as_kwargs() == {}


def test_a_preset_handed_out_can_be_changed_without_changing_the_preset() -> None:
    # GIVEN a caller that edits what it received
    resolve_placement("binpack").strategy[0]["field"] = "cpu"
    resolve_placement("binpack").as_kwargs()["placementStrategy"][0]["field"] = "cpu"
    # THEN the preset is intact
    assert resolve_placement("binpack").strategy == ({"type": "binpack", "field": "memory"},)


VALID_CUSTOM: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {}),
    ({"strategy": None, "constraints": None}, {}),
    (
        {"strategy": [{"type": "spread", "field": "host"}, {"type": "random"}]},
        {"placementStrategy": [{"type": "spread", "field": "host"}, {"type": "random"}]},
    ),
    (
        {"strategy": [{"type": "binpack", "field": "cpu"}], "constraints": [{"type": "distinctInstance"}]},
        {
            "placementStrategy": [{"type": "binpack", "field": "cpu"}],
            "placementConstraints": [{"type": "distinctInstance"}],
        },
    ),
    (
        {"strategy": [{"type": "spread", "field": "attribute:stack"}]},
        {"placementStrategy": [{"type": "spread", "field": "attribute:stack"}]},
    ),
    (
        {"constraints": [member_of("attribute:ecs.instance-type =~ t2.*"), member_of("task:group == db")]},
        {
            "placementConstraints": [
                member_of("attribute:ecs.instance-type =~ t2.*"),
                member_of("task:group == db"),
            ]
        },
    ),
    ({"strategy": [{"type": "random", "field": None}]}, {"placementStrategy": [{"type": "random"}]}),
    ({"strategy": [AZ_SPREAD] * 5}, {"placementStrategy": [AZ_SPREAD] * 5}),
    (
        {"constraints": [{"type": "distinctInstance"}] * 10},
        {"placementConstraints": [{"type": "distinctInstance"}] * 10},
    ),
]


@pytest.mark.parametrize(("spec", "kwargs"), VALID_CUSTOM)
def test_custom_placement_passes_through_in_ecs_shapes(spec: dict[str, Any], kwargs: dict[str, Any]) -> None:
    assert resolve_placement(spec).as_kwargs() == kwargs


INVALID: list[tuple[Any, str]] = [
    (
        "spread-everywhere",
        "unknown placement preset 'spread-everywhere'; valid presets: "
        "az-balanced-spread, az-balanced-binpack, binpack, one-task-per-host",
    ),
    (42, "placement must be a preset name or a mapping, not int"),
    ({"strategies": []}, "placement: unknown key(s) strategies; allowed: strategy, constraints"),
    ({"strategy": {"type": "random"}}, "strategy must be a list, not dict"),
    ({"strategy": "random"}, "strategy must be a list, not str"),
    ({"strategy": ["random"]}, "strategy[0] must be a mapping, not str"),
    (
        {"strategy": [{"type": "pack"}]},
        "strategy[0]: type must be one of spread, binpack, random, not 'pack'",
    ),
    ({"strategy": [{"type": "binpack"}]}, "strategy[0]: binpack field must be cpu or memory, not None"),
    ({"strategy": [{"type": "binpack", "field": "MEMORY"}]}, "binpack field must be cpu or memory"),
    (
        {"strategy": [{"type": "spread"}]},
        "strategy[0]: spread field must be instanceId, host or attribute:NAME",
    ),
    (
        {"strategy": [AZ_SPREAD, {"type": "spread", "field": "availability-zone"}]},
        "strategy[1]: spread field must be instanceId, host or attribute:NAME, not 'availability-zone'",
    ),
    (
        {"strategy": [{"type": "spread", "field": "attribute:"}]},
        "strategy[0]: spread field 'attribute:': missing attribute name",
    ),
    ({"strategy": [{"type": "random", "field": "cpu"}]}, "strategy[0]: a random strategy takes no field"),
    ({"strategy": [{"type": "random", "weight": 1}]}, "strategy[0]: unknown key(s) weight"),
    ({"strategy": [AZ_SPREAD] * 6}, "at most 5 strategies, got 6"),
    ({"constraints": [{"type": "distinctInstance"}] * 11}, "at most 10 constraints, got 11"),
    ({"constraints": [{"type": "memberOf"}]}, "constraints[0]: memberOf needs an expression"),
    ({"constraints": [member_of("  ")]}, "constraints[0]: memberOf needs an expression"),
    (
        {"constraints": [{"type": "distinctInstance"}, member_of("attribute:ecs.instance-type = t2.small")]},
        "constraints[1]: invalid memberOf expression: unknown operator '=' after attribute:ecs.instance-type "
        "at column 29: attribute:ecs.instance-type = t2.small",
    ),
    (
        {"constraints": [{"type": "distinctInstance", "expression": "task:group == x"}]},
        "constraints[0]: distinctInstance takes no expression",
    ),
    (
        {"constraints": [{"type": "memberof", "expression": "task:group == x"}]},
        "constraints[0]: type must be one of memberOf, distinctInstance, not 'memberof'",
    ),
]


@pytest.mark.parametrize(("placement", "message"), INVALID)
def test_invalid_placement_says_what_is_wrong(placement: Any, message: str) -> None:
    with pytest.raises(PlacementError) as caught:
        resolve_placement(placement)
    assert message in str(caught.value)


def test_an_invalid_member_of_expression_keeps_the_parse_error_as_its_cause() -> None:
    with pytest.raises(PlacementError) as caught:
        resolve_placement({"constraints": [member_of("attribute:a == x)")]})
    assert caught.value.__cause__ is not None
    assert getattr(caught.value.__cause__, "column", None) == 17


@pytest.mark.parametrize(
    "placement",
    [
        "az-balanced-spread",
        "one-task-per-host",
        {"constraints": [member_of("attribute:ecs.os-type == linux")]},
        {"strategy": [{"type": "random"}]},
    ],
)
def test_any_placement_on_fargate_is_refused(placement: Any) -> None:
    with pytest.raises(PlacementError, match="placement is not supported on FARGATE"):
        resolve_placement(placement, fargate=True)


def test_empty_custom_placement_on_fargate_is_harmless() -> None:
    assert resolve_placement({"strategy": [], "constraints": []}, fargate=True) == Placement()


@pytest.mark.parametrize(
    ("placement", "allowed"),
    [
        ("az-balanced-spread", False),
        ("az-balanced-binpack", False),
        ("binpack", False),
        ({"strategy": [{"type": "random"}]}, False),
        ("one-task-per-host", True),
        ({"constraints": [member_of("attribute:ecs.os-type == linux")]}, True),
    ],
)
def test_daemon_services_take_constraints_but_no_strategy(placement: Any, allowed: bool) -> None:
    if allowed:
        assert not resolve_placement(placement, daemon=True).strategy
    else:
        with pytest.raises(PlacementError, match="DAEMON services take placement constraints only"):
            resolve_placement(placement, daemon=True)


# --- daemons' placement_constraints -------------------------------------------------------------


def test_constraint_strings_become_member_of_constraints() -> None:
    assert constraints_from_strings(["attribute:ecs.os-type == linux", "attribute:gpu !exists"]) == (
        member_of("attribute:ecs.os-type == linux"),
        member_of("attribute:gpu !exists"),
    )
    assert constraints_from_strings([]) == ()


@pytest.mark.parametrize(
    ("exprs", "message"),
    [
        (
            ["attribute:ecs.os-type == linux", "attribute:ecs.os-type linux"],
            "placement_constraints[1]: invalid memberOf expression: unknown operator 'linux' "
            "after attribute:ecs.os-type at column 23",
        ),
        ([""], "placement_constraints[0]: memberOf needs an expression"),
        (["attribute:a exists"] * 11, "at most 10 placement constraints, got 11"),
        ("attribute:a exists", "must be a list of expressions, not one string"),
    ],
)
def test_invalid_constraint_strings_name_the_item_and_column(exprs: Any, message: str) -> None:
    with pytest.raises(PlacementError) as caught:
        constraints_from_strings(exprs)
    assert message in str(caught.value)


# --- ecspilot placement check -------------------------------------------------------------------


def test_each_instance_is_checked_against_every_member_of_constraint() -> None:
    # GIVEN a T2-only constraint, a linux constraint, and instances of two types
    t2, t3 = make_container_instance("i-0t2", instance_type="t2.micro"), make_container_instance("i-0t3")
    constraints = [
        member_of("attribute:ecs.instance-type =~ t2.*"),
        member_of("attribute:ecs.os-type == linux"),
    ]
    # WHEN they are checked
    checks = check_instances(constraints, [t2, t3])
    # THEN the T2 instance matches, and the T3 one says which constraint rules it out
    assert checks == [
        InstanceCheck(t2["containerInstanceArn"], "i-0t2", True),
        InstanceCheck(
            t3["containerInstanceArn"],
            "i-0t3",
            False,
            (
                "memberOf attribute:ecs.instance-type =~ t2.*: "
                "attribute:ecs.instance-type is t3.small, not matching regex t2.*",
            ),
        ),
    ]


@pytest.mark.parametrize("key", ["arn", "ec2"])
def test_task_groups_are_looked_up_by_instance_arn_or_ec2_id(key: str) -> None:
    # GIVEN an anti-affinity constraint and an instance already hosting the database
    instance = make_container_instance("i-0db", running=1)
    ident = instance["containerInstanceArn"] if key == "arn" else "i-0db"
    # WHEN checked with the task groups running on it
    [check] = check_instances(
        [member_of("not(task:group == service:db)")], [instance], {ident: ["service:db"]}
    )
    # THEN it is ruled out, with the reason
    assert not check.matched
    assert check.reasons == (
        "memberOf not(task:group == service:db): "
        "expected not (task:group == service:db), but task:group is service:db",
    )


@pytest.mark.parametrize(
    ("running", "note"),
    [
        (0, "distinctInstance: satisfied, no task runs here"),
        (2, "distinctInstance: decided when ECS places tasks"),
    ],
)
def test_distinct_instance_is_noted_not_decided(running: int, note: str) -> None:
    [check] = check_instances([{"type": "distinctInstance"}], [make_container_instance(running=running)])
    assert check.matched
    assert check.reasons == ()
    assert check.notes[0].startswith(note)


def test_without_constraints_every_instance_qualifies() -> None:
    checks = check_instances([], [make_container_instance("i-01"), make_container_instance("i-02")])
    assert [(c.ec2_instance_id, c.matched, c.notes) for c in checks] == [
        ("i-01", True, ()),
        ("i-02", True, ()),
    ]


def test_checking_with_an_invalid_constraint_fails_like_validation() -> None:
    with pytest.raises(PlacementError, match=r"constraints\[0\]: invalid memberOf expression"):
        check_instances([member_of("attribute:a ==")], [make_container_instance()])
