"""The tracker's pure decisions, table-tested: no AWS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecspilot.domain.events import EcsContainerState
from ecspilot.tracking.decisions import (
    DEPLOYMENT_MOVES,
    duration_seconds,
    parse_service_arn,
    rollback_target,
    run_outcome,
)


def containers(**exit_codes: int | None) -> list[EcsContainerState]:
    return [
        EcsContainerState.model_validate({"name": n.replace("_", "-"), "exitCode": c})
        for n, c in exit_codes.items()
    ]


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        ("IN_PROGRESS", "COMPLETED", True),
        ("IN_PROGRESS", "FAILED", True),
        ("IN_PROGRESS", "ROLLED_BACK", True),
        ("FAILED", "ROLLED_BACK", True),
        ("COMPLETED", "FAILED", False),
        ("COMPLETED", "IN_PROGRESS", False),
        ("COMPLETED", "ROLLED_BACK", False),
        ("ROLLED_BACK", "FAILED", False),
        ("FAILED", "COMPLETED", False),
        ("FAILED", "IN_PROGRESS", False),
    ],
)
def test_a_deployment_record_only_moves_forward(current: str, new: str, allowed: bool) -> None:
    # the table the tracker's conditional UpdateItem enforces: the statuses a record may hold
    assert (current in DEPLOYMENT_MOVES[new]) is allowed


def test_terminal_deployment_states_are_final() -> None:
    # nothing moves a COMPLETED or ROLLED_BACK record, and only a rollback moves a FAILED one
    holders = {current for allowed in DEPLOYMENT_MOVES.values() for current in allowed}
    assert holders == {"IN_PROGRESS", "FAILED"}
    assert [new for new, allowed in DEPLOYMENT_MOVES.items() if "FAILED" in allowed] == ["ROLLED_BACK"]


@pytest.mark.parametrize(
    ("exits", "stop_code", "essential", "status"),
    [
        ({"report": 0, "log_router": 137}, "EssentialContainerExited", {"report"}, "SUCCEEDED"),
        ({"report": 0, "log_router": 137}, "EssentialContainerExited", None, "FAILED"),
        ({"report": 1, "log_router": 0}, "EssentialContainerExited", {"report"}, "FAILED"),
        ({"report": None}, "TaskFailedToStart", {"report"}, "FAILED"),
        ({"report": 143}, "UserInitiated", {"report"}, "STOPPED"),
        ({"report": 0}, "SpotInterruption", {"report"}, "SUCCEEDED"),
        ({"report": 137}, "SpotInterruption", {"report"}, "FAILED"),
    ],
)
def test_a_runs_outcome_is_judged_on_its_essential_containers(
    exits: dict[str, int | None], stop_code: str, essential: set[str] | None, status: str
) -> None:
    assert run_outcome(containers(**exits), stop_code, "why", essential)[0] == status


def test_a_failed_runs_reason_names_the_container_and_its_exit_code() -> None:
    status, reason = run_outcome(
        containers(report=2), "EssentialContainerExited", "Essential container in task exited", {"report"}
    )
    assert (status, reason) == ("FAILED", "report exited 2 (Essential container in task exited)")


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:ecs:us-east-1:123456789012:service/prod/web", ("prod", "web")),
        ("arn:aws:ecs:us-east-1:123456789012:service/web", ("default", "web")),
    ],
)
def test_a_service_arn_gives_cluster_and_service(arn: str, expected: tuple[str, str]) -> None:
    assert parse_service_arn(arn) == expected


@pytest.mark.parametrize(
    ("reason", "target"),
    [
        (
            "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/6405940160831029548.",
            "ecs-svc/6405940160831029548",
        ),
        ("ECS deployment ecs-svc/123 in progress.", None),
        ("", None),
    ],
)
def test_the_rollback_target_comes_from_the_reason(reason: str, target: str | None) -> None:
    assert rollback_target(reason) == target


def test_durations_are_whole_seconds_and_unknown_when_a_bound_is_missing() -> None:
    end = datetime(2026, 11, 25, 8, 34, 17, tzinfo=UTC)
    assert duration_seconds("2026-11-25T08:30:05.400Z", end) == 252
    assert duration_seconds(None, end) is None
    assert duration_seconds("", end) is None
    assert duration_seconds("not a time", end) is None
