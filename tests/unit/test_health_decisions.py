"""Service health's pure decisions: which stops are replacements, when replacements are a loop,
what the messages say, and the ``crash_loop`` key."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.domain.config import CrashLoopConfig, crash_loop_policy, parse_config
from ecspilot.domain.events import EcsContainerState
from ecspilot.errors import ConfigError
from ecspilot.tracking.health_decisions import (
    LoopView,
    classify_stop,
    deployment_of,
    loop_transition,
    most_common_reason,
    running_digests,
    service_of_group,
)
from ecspilot.tracking.health_messages import crash_loop_message, stops_quote
from ecspilot.tracking.messages import deployment_message

ELB = "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1)"


def c(name: str = "app", exit_code: int | None = None, reason: str = "") -> EcsContainerState:
    return EcsContainerState(name=name, exitCode=exit_code, reason=reason)


@pytest.mark.parametrize(
    ("stop_code", "reason", "containers", "essential", "kind", "replacement"),
    [
        # a deployment's drain and a scale-in read the same: not replacements
        (
            "ServiceSchedulerInitiated",
            "Scaling activity initiated by (deployment ecs-svc/1)",
            [c(exit_code=0)],
            None,
            "drained",
            False,
        ),
        (
            "ServiceSchedulerInitiated",
            "Scaling activity initiated by (deployment ecs-svc/1)",
            [c(exit_code=137)],
            None,
            "drained",
            False,
        ),
        ("UserInitiated", "Task stopped by user", [c(exit_code=143)], None, "stopped-by-user", False),
        (
            "SpotInterruption",
            "Your Spot Task was interrupted.",
            [c(exit_code=143)],
            None,
            "infrastructure",
            False,
        ),
        ("TerminationNotice", "", [], None, "infrastructure", False),
        # health checks: the scheduler replaced the task
        ("ServiceSchedulerInitiated", ELB, [c(exit_code=143)], None, "elb-health-check", True),
        (
            "ServiceSchedulerInitiated",
            "Task failed container health checks",
            [c(exit_code=143)],
            None,
            "container-health-check",
            True,
        ),
        # out of memory: the reason, or exit 137 of an essential container
        (
            "EssentialContainerExited",
            "Essential container in task exited",
            [c(exit_code=137, reason="OutOfMemoryError: Container killed due to memory usage")],
            None,
            "out-of-memory",
            True,
        ),
        (
            "EssentialContainerExited",
            "Essential container in task exited",
            [c(exit_code=137)],
            None,
            "out-of-memory",
            True,
        ),
        # a sidecar SIGKILLed after the essential container exited 1 is no OOM
        (
            "EssentialContainerExited",
            "Essential container in task exited",
            [c(exit_code=1), c("log-router", 137)],
            {"app"},
            "exited",
            True,
        ),
        (
            "EssentialContainerExited",
            "Essential container in task exited",
            [c(exit_code=0)],
            None,
            "exited",
            True,
        ),
        (
            "TaskFailedToStart",
            "CannotPullContainerError: pull image manifest has been retried",
            [c(reason="CannotPullContainerError")],
            None,
            "failed-to-start",
            True,
        ),
        (
            "TaskFailedToStart",
            "",
            [c(reason="ResourceInitializationError: unable to pull secrets")],
            None,
            "failed-to-start",
            True,
        ),
        # unknown codes: a failing container is a failure, nothing failing is not
        ("", "", [c(exit_code=2)], None, "other-failure", True),
        ("ServiceSchedulerInitiated", "something new", [c(exit_code=0)], None, "scheduler", False),
    ],
)
def test_a_stopped_service_task_is_judged_a_replacement_only_when_the_service_failed(
    stop_code: str,
    reason: str,
    containers: list[EcsContainerState],
    essential: set[str] | None,
    kind: str,
    replacement: bool,
) -> None:
    verdict = classify_stop(stop_code, reason, containers, essential)
    assert (verdict.kind, verdict.replacement) == (kind, replacement)


def test_a_verdicts_reason_names_the_culprit_container() -> None:
    exited = classify_stop(
        "EssentialContainerExited",
        "Essential container in task exited",
        [c(exit_code=1), c("log-router", 137)],
        {"app"},
    )
    assert exited.reason == "Essential container in task exited (container app exited 1)"
    oom = classify_stop("EssentialContainerExited", "Essential container in task exited", [c(exit_code=137)])
    assert oom.reason == "container app exited 137 (SIGKILL: out of memory?)"
    assert classify_stop("ServiceSchedulerInitiated", ELB, []).reason == ELB


POLICY = CrashLoopConfig(replacements=5, minutes=10)
AT = "2026-11-26T03:10:00.000Z"


@pytest.mark.parametrize(
    ("state", "count", "expected"),
    [
        (None, 4, None),
        (None, 5, "start"),
        (LoopView(False, "2026-11-26T02:00:00.000Z"), 6, "start"),
        (LoopView(True, "2026-11-26T03:05:00.000Z"), 7, None),  # still looping: no second notification
        (LoopView(True, "2026-11-26T03:05:00.000Z"), 4, "end"),  # the window fell below N
        (LoopView(False, "2026-11-26T03:05:00.000Z"), 1, None),
        # an event older than what last moved the state never moves it (late or redelivered)
        (LoopView(True, "2026-11-26T03:20:00.000Z"), 1, None),
        (LoopView(False, "2026-11-26T03:20:00.000Z"), 9, None),
    ],
)
def test_the_crash_loop_starts_at_n_in_the_window_and_ends_below_it(
    state: LoopView | None, count: int, expected: str | None
) -> None:
    assert loop_transition(state, AT, count, POLICY) == expected


def test_the_most_common_reason_wins_and_a_tie_goes_to_the_newest() -> None:
    stops: list[dict[str, Any]] = [{"reason": "a"}, {"reason": "b"}, {"reason": "a"}, {"reason": "b"}]
    assert most_common_reason(stops) == ("b", 2)
    assert most_common_reason([*stops, {"reason": "a"}]) == ("a", 3)
    assert most_common_reason([]) == ("", 0)


def test_groups_deployments_and_digests_are_read_from_the_event_fields() -> None:
    assert service_of_group("service:web") == "web"
    assert service_of_group("family:report") is None
    assert service_of_group("service:") is None
    assert deployment_of("ecs-svc/123") == "ecs-svc/123"
    assert deployment_of("ecspilot/nightly") == ""
    assert running_digests([{"image_digests": {"app": "sha256:a"}}, {"image_digests": {}}]) == {
        "app": "sha256:a"
    }


def stop(reason: str = ELB, kind: str = "elb-health-check", at: str = AT) -> dict[str, Any]:
    return {
        "reason": reason,
        "kind": kind,
        "stopped_at": at,
        "image_digests": {"app": "sha256:abc"},
        "task_definition": "arn:aws:ecs:us-east-1:1:task-definition/web:7",
    }


def test_the_crash_loop_message_names_service_count_window_reason_image_and_a_fix() -> None:
    stops = [stop(), stop(), stop("Essential container in task exited (container app exited 1)", "exited")]
    subject, body = crash_loop_message("prod", "web", stops, 10, "us-east-1")
    assert subject == "ecspilot: prod/web is crash-looping (3 tasks replaced in 10 min)"
    assert "replaced:     3 tasks in 10 minutes" in body
    assert f"reason:       {ELB} (2 of 3)" in body
    assert "image:        app=sha256:abc" in body
    assert "task def:     web:7" in body
    assert "What to fix:  the load balancer's health check fails" in body


@pytest.mark.parametrize(
    ("kind", "fix"),
    [
        ("elb-health-check", "health check path"),
        ("container-health-check", "startPeriod"),
        ("out-of-memory", "memory"),
        ("failed-to-start", "execution role"),
        ("exited", "logs"),
    ],
)
def test_a_failed_deployments_message_quotes_its_replaced_tasks_and_what_to_fix(kind: str, fix: str) -> None:
    record = {
        "cluster": "prod",
        "service": "web",
        "deployment_id": "ecs-svc/1",
        "reason": "ECS deployment circuit breaker: tasks failed to start.",
    }
    stops = [
        stop(f"reason {kind}", kind),
        stop("Scaling activity initiated by (deployment ecs-svc/2)", "drained"),
    ]
    _, body = deployment_message(record, "FAILED", "us-east-1", stops)
    assert f"  1 x reason {kind}" in body
    assert "Scaling activity" not in body
    assert fix in body.split("What to fix: ", 1)[1]
    # without recorded causes, the message says where to look, as before
    _, plain = deployment_message(record, "FAILED", "us-east-1")
    assert "What to do: look at the stopped tasks' reasons" in plain
    assert stops_quote([stop("x", "drained")]) == []


def base(**service: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "services": [
            {"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}, **service}
        ],
    }


@pytest.mark.parametrize(
    ("setting", "policy"),
    [
        ({}, CrashLoopConfig(replacements=5, minutes=10)),
        ({"crash_loop": True}, CrashLoopConfig(replacements=5, minutes=10)),
        ({"crash_loop": False}, None),
        ({"crash_loop": {"replacements": 3}}, CrashLoopConfig(replacements=3, minutes=10)),
        ({"crash_loop": {"replacements": 8, "minutes": 30}}, CrashLoopConfig(replacements=8, minutes=30)),
    ],
)
def test_the_crash_loop_key_sets_the_policy_and_false_turns_it_off(
    setting: dict[str, Any], policy: CrashLoopConfig | None
) -> None:
    [svc] = parse_config(base(**setting)).services
    assert crash_loop_policy(svc.crash_loop) == policy


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ({"replacements": 1}, "services[0].crash_loop"),
        ({"minutes": 0}, "services[0].crash_loop"),
        ({"count": 5}, "services[0].crash_loop"),
        ("yes", "services[0].crash_loop"),
    ],
)
def test_a_bad_crash_loop_setting_is_a_config_error_naming_the_key(setting: Any, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(base(crash_loop=setting))
    assert any(path.startswith(where) for path, _ in caught.value.problems), caught.value.problems
