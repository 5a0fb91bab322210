"""The daemons planner: desired (config) x actual (AWS) -> create, update, in-sync, conflict, error."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.daemons.decisions import (
    DAEMON_TAG,
    MANAGED_TAG,
    PLACEMENT_TAG,
    Decision,
    Desired,
    Observed,
    capacity_provider_arn,
    constraints_fingerprint,
    create_daemon_params,
    create_service_params,
    normalize_constraints,
    plan,
    tag_matches,
    update_daemon_params,
    update_service_params,
)
from ecspilot.domain.config import ClusterTag

ACCOUNT_PREFIX = "arn:aws:ecs:us-east-1:123456789012"
CLUSTER_ARN = f"{ACCOUNT_PREFIX}:cluster/prod"
LINUX = ("memberOf", "attribute:ecs.os-type == linux")
T3 = ("memberOf", "attribute:ecs.instance-type =~ t3.*")


def td(revision: int, family: str = "fluent-bit") -> str:
    return f"{ACCOUNT_PREFIX}:task-definition/{family}:{revision}"


def make_desired(
    revision: int = 2,
    constraints: tuple[tuple[str, str], ...] = (LINUX,),
    providers: tuple[str, ...] | None = None,
) -> Desired:
    return Desired(
        daemon="log-agent",
        cluster="prod",
        cluster_arn=CLUSTER_ARN,
        name="log-agent",
        task_definition=td(revision),
        constraints=constraints,
        capacity_providers=providers,
    )


def ours(daemon: str = "log-agent", **extra: str) -> dict[str, str]:
    return {MANAGED_TAG: "true", DAEMON_TAG: daemon, **extra}


def make_service(
    revision: int = 2,
    *,
    status: str = "ACTIVE",
    tags: dict[str, str] | None = None,
    constraints: tuple[tuple[str, str], ...] | None = (LINUX,),
    scheduling: str = "DAEMON",
    providers: tuple[str, ...] = (),
) -> Observed:
    return Observed(
        arn=f"{ACCOUNT_PREFIX}:service/prod/log-agent",
        status=status,
        tags=ours() if tags is None else tags,
        task_definition=td(revision),
        scheduling_strategy=scheduling,
        constraints=constraints,
        capacity_providers=providers,
    )


CP_A = f"{ACCOUNT_PREFIX}:capacity-provider/mi-a"
CP_B = f"{ACCOUNT_PREFIX}:capacity-provider/mi-b"

PLANS: list[tuple[str, Desired, Observed | None, str, tuple[bool, bool, bool]]] = [
    ("missing service is created", make_desired(), None, "create", (False, False, False)),
    (
        "INACTIVE service (deleted by hand) is created again",
        make_desired(),
        make_service(status="INACTIVE", tags={}),
        "create",
        (False, False, False),
    ),
    ("matching service is in sync", make_desired(), make_service(), "in-sync", (False, False, False)),
    (
        "constraints in another order are in sync",
        make_desired(constraints=(LINUX, T3)),
        make_service(constraints=(T3, LINUX)),
        "in-sync",
        (False, False, False),
    ),
    (
        "new revision of the family is an update",
        make_desired(revision=3),
        make_service(revision=2),
        "update",
        (True, False, False),
    ),
    (
        "pinned older revision is an update too",
        make_desired(revision=1),
        make_service(revision=2),
        "update",
        (True, False, False),
    ),
    (
        "changed constraints are an update",
        make_desired(constraints=(T3,)),
        make_service(constraints=(LINUX,)),
        "update",
        (False, True, False),
    ),
    (
        "constraints removed from the config are an update",
        make_desired(constraints=()),
        make_service(constraints=(LINUX,)),
        "update",
        (False, True, False),
    ),
    (
        "unreadable constraints fall back to the recorded fingerprint: same",
        make_desired(),
        make_service(constraints=None, tags=ours(**{PLACEMENT_TAG: constraints_fingerprint((LINUX,))})),
        "in-sync",
        (False, False, False),
    ),
    (
        "unreadable constraints fall back to the recorded fingerprint: different",
        make_desired(constraints=(T3,)),
        make_service(constraints=None, tags=ours(**{PLACEMENT_TAG: constraints_fingerprint((LINUX,))})),
        "update",
        (False, True, False),
    ),
    (
        "unreadable constraints without a fingerprint are left alone",
        make_desired(),
        make_service(constraints=None),
        "in-sync",
        (False, False, False),
    ),
    (
        "task definition and constraints drift together",
        make_desired(revision=3, constraints=()),
        make_service(revision=2),
        "update",
        (True, True, False),
    ),
    (
        "untagged same-named service is a conflict",
        make_desired(),
        make_service(tags={}),
        "conflict",
        (False,) * 3,
    ),
    (
        "drifted unmanaged service is still only a conflict",
        make_desired(revision=9),
        make_service(tags={"team": "ops"}),
        "conflict",
        (False,) * 3,
    ),
    (
        "another daemon's service is a conflict",
        make_desired(),
        make_service(tags=ours(daemon="metrics")),
        "conflict",
        (False,) * 3,
    ),
    (
        "a managed REPLICA service is a conflict",
        make_desired(),
        make_service(scheduling="REPLICA"),
        "conflict",
        (False,) * 3,
    ),
    (
        "DRAINING service is an error for now",
        make_desired(),
        make_service(status="DRAINING"),
        "error",
        (False,) * 3,
    ),
    (
        "managed daemon with its providers is in sync",
        make_desired(constraints=(), providers=(CP_A, CP_B)),
        make_service(constraints=None, providers=(CP_B, CP_A)),
        "in-sync",
        (False,) * 3,
    ),
    (
        "managed daemon with a provider missing is an update",
        make_desired(constraints=(), providers=(CP_A, CP_B)),
        make_service(constraints=None, providers=(CP_A,)),
        "update",
        (False, False, True),
    ),
]


@pytest.mark.parametrize(
    ("desired", "observed", "change", "drift"),
    [p[1:] for p in PLANS],
    ids=[p[0] for p in PLANS],
)
def test_the_planner_decides_from_desired_and_actual(
    desired: Desired, observed: Observed | None, change: str, drift: tuple[bool, bool, bool]
) -> None:
    decision = plan(desired, observed)
    assert decision.change == change
    assert (decision.task_definition, decision.constraints, decision.capacity_providers) == drift
    assert decision.detail


def test_an_update_names_what_drifted() -> None:
    decision = plan(make_desired(revision=3, constraints=()), make_service(revision=2))
    assert decision.detail == "task definition fluent-bit:2 -> fluent-bit:3; placement constraints"


def test_a_conflict_says_the_service_is_left_alone() -> None:
    decision = plan(make_desired(), make_service(tags={}))
    assert "not created by ecspilot" in decision.detail
    assert decision.detail.endswith("left alone")


@pytest.mark.parametrize("constraints", [(), (LINUX,), (LINUX, T3)])
def test_a_daemon_service_is_created_without_desired_count_or_strategy(
    constraints: tuple[tuple[str, str], ...],
) -> None:
    params = create_service_params(make_desired(constraints=constraints))
    assert "desiredCount" not in params
    assert "placementStrategy" not in params
    assert (params["schedulingStrategy"], params["launchType"]) == ("DAEMON", "EC2")
    assert params.get("placementConstraints", []) == [{"type": t, "expression": e} for t, e in constraints]
    tags = {t["key"]: t["value"] for t in params["tags"]}
    assert tags[MANAGED_TAG] == "true"
    assert tags[DAEMON_TAG] == "log-agent"
    assert tags[PLACEMENT_TAG] == constraints_fingerprint(constraints)


UPDATES: list[tuple[Decision, dict[str, Any]]] = [
    (Decision("update", "", task_definition=True), {"taskDefinition": td(2)}),
    (
        Decision("update", "", constraints=True),
        {"placementConstraints": [{"type": LINUX[0], "expression": LINUX[1]}]},
    ),
    (
        Decision("update", "", task_definition=True, constraints=True),
        {"taskDefinition": td(2), "placementConstraints": [{"type": LINUX[0], "expression": LINUX[1]}]},
    ),
]


@pytest.mark.parametrize(("decision", "extra"), UPDATES)
def test_an_update_sends_only_what_drifted_and_never_a_desired_count(
    decision: Decision, extra: dict[str, Any]
) -> None:
    assert update_service_params(make_desired(), decision) == {
        "cluster": "prod",
        "service": "log-agent",
        **extra,
    }


def test_removing_every_constraint_sends_an_empty_list() -> None:
    params = update_service_params(make_desired(constraints=()), Decision("update", "", constraints=True))
    assert params["placementConstraints"] == []


def test_a_managed_daemon_is_created_on_its_capacity_providers_with_ecspilot_tags() -> None:
    params = create_daemon_params(make_desired(constraints=(), providers=(CP_A,)))
    assert params == {
        "daemonName": "log-agent",
        "clusterArn": CLUSTER_ARN,
        "daemonTaskDefinitionArn": td(2),
        "capacityProviderArns": [CP_A],
        "tags": [{"key": MANAGED_TAG, "value": "true"}, {"key": DAEMON_TAG, "value": "log-agent"}],
    }


def test_a_managed_daemon_update_sends_the_whole_desired_revision() -> None:
    observed = make_service(providers=(CP_A,))
    params = update_daemon_params(make_desired(providers=(CP_A, CP_B)), observed)
    assert params == {
        "daemonArn": observed.arn,
        "daemonTaskDefinitionArn": td(2),
        "capacityProviderArns": [CP_A, CP_B],
    }


@pytest.mark.parametrize(
    ("name", "arn"),
    [("mi-a", CP_A), (CP_B, CP_B)],
)
def test_capacity_provider_names_become_arns_in_the_clusters_account(name: str, arn: str) -> None:
    assert capacity_provider_arn(CLUSTER_ARN, name) == arn


@pytest.mark.parametrize(
    ("tags", "selector", "matches"),
    [
        ({}, None, True),
        ({"ecspilot": "on"}, ClusterTag(key="ecspilot"), True),
        ({}, ClusterTag(key="ecspilot"), False),
        ({"env": "prod"}, ClusterTag(key="env", value="prod"), True),
        ({"env": "dev"}, ClusterTag(key="env", value="prod"), False),
    ],
)
def test_cluster_tag_narrows_the_clusters(
    tags: dict[str, str], selector: ClusterTag | None, matches: bool
) -> None:
    assert tag_matches(tags, selector) is matches


def test_constraints_are_compared_without_order_and_fingerprinted_tag_safely() -> None:
    a = normalize_constraints(
        [{"type": "memberOf", "expression": "b"}, {"type": "memberOf", "expression": "a"}]
    )
    b = normalize_constraints(
        [{"type": "memberOf", "expression": "a"}, {"type": "memberOf", "expression": "b"}]
    )
    assert a == b
    assert constraints_fingerprint(a) == constraints_fingerprint(b)
    assert len(constraints_fingerprint(a)) == 16
    assert constraints_fingerprint(a) != constraints_fingerprint(())
