"""``ecspilot status`` health, pure: target states counted, health checks judged, lines formatted."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.interfaces.status_health import (
    HealthCheck,
    ServiceHealth,
    TargetGroupHealth,
    check_notes,
    count_targets,
    detail_lines,
    health_row,
    start_period,
    targets_cell,
)

SENSIBLE = HealthCheck("HTTP", "/", "traffic-port", 30, 5, 5, 2, "200")


def target(state: str, reason: str | None = None) -> dict[str, Any]:
    health = {"State": state, **({"Reason": reason} if reason else {})}
    return {"Target": {"Id": "10.0.0.1", "Port": 80}, "TargetHealth": health}


def test_targets_are_counted_by_state_with_the_reason_codes_of_those_not_healthy() -> None:
    got = count_targets(
        [
            target("healthy"),
            target("healthy"),
            target("unhealthy", "Target.ResponseCodeMismatch"),
            target("unhealthy", "Target.Timeout"),
            target("unhealthy", "Target.ResponseCodeMismatch"),
            target("draining", "Target.DeregistrationInProgress"),
            target("initial", "Elb.RegistrationInProgress"),
        ]
    )
    assert (got.healthy, got.unhealthy, got.draining, got.other) == (2, 3, 1, 1)
    assert got.reasons == {
        "Target.ResponseCodeMismatch": 2,
        "Target.Timeout": 1,
        "Target.DeregistrationInProgress": 1,
        "Elb.RegistrationInProgress": 1,
    }


@pytest.mark.parametrize(
    ("check", "grace", "start", "expected"),
    [
        (SENSIBLE, 60, 30, []),
        (SENSIBLE, 60, 0, []),
        (HealthCheck("HTTP", "/", "traffic-port", 30, 5, 5, 2, ""), 60, 0, ["no matcher"]),
        (HealthCheck("TCP", "", "traffic-port", 30, 10, 3, 3, ""), 60, 0, []),
        (
            HealthCheck("HTTP", "/", "traffic-port", 120, 5, 5, 3, "200"),
            60,
            0,
            ["interval 120s is long: a broken task serves errors for about 360s"],
        ),
        (
            SENSIBLE,
            20,
            90,
            ["healthCheckGracePeriodSeconds 20 is shorter than the container's start period 90s"],
        ),
        (SENSIBLE, 0, 0, ["healthCheckGracePeriodSeconds is 0 behind a load balancer"]),
        (SENSIBLE, None, 0, ["healthCheckGracePeriodSeconds is 0 behind a load balancer"]),
        (
            HealthCheck("HTTP", "/", "traffic-port", 30, 5, 5, 2, "200", enabled=False),
            60,
            0,
            ["health checks are disabled"],
        ),
    ],
)
def test_a_health_check_far_from_sensible_gets_a_note(
    check: HealthCheck, grace: int | None, start: int, expected: list[str]
) -> None:
    notes = check_notes(check, grace, start)
    assert len(notes) == len(expected), notes
    for note, start_of in zip(notes, expected, strict=True):
        assert note.startswith(start_of)


def test_the_start_period_is_the_longest_container_health_checks() -> None:
    td = {
        "containerDefinitions": [
            {"healthCheck": {"startPeriod": 30}},
            {"healthCheck": {"startPeriod": 90}},
            {},
        ]
    }
    assert start_period(td) == 90
    assert start_period({"containerDefinitions": [{}]}) == 0


def service(**fields: Any) -> ServiceHealth:
    group = TargetGroupHealth(
        "web", "arn", healthy=2, unhealthy=1, reasons={"Target.Timeout": 1}, check=SENSIBLE, notes=["a note"]
    )
    return ServiceHealth(
        "web",
        "prod",
        "web",
        running=2,
        desired=3,
        pending=1,
        grace_period=60,
        target_groups=[group],
        replaced_last_hour=4,
        top_reason="Task failed ELB health checks",
        **fields,
    )


@pytest.mark.parametrize(
    ("health", "row"),
    [
        (
            service(),
            {
                "tasks": "2/3 (+1 pending)",
                "targets": "2 healthy, 1 unhealthy (Target.Timeout)",
                "replaced 1h": "4",
                "note": "a note",
            },
        ),
        (service(crash_loop=True), {"note": "CRASH LOOP: Task failed ELB health checks"}),
        (
            ServiceHealth("w", "prod", "worker", running=1, desired=1),
            {"tasks": "1/1", "targets": "no load balancer", "replaced 1h": "-", "note": ""},
        ),
        (ServiceHealth("w", "prod", "gone", problem="service not found"), {"note": "service not found"}),
    ],
)
def test_the_health_table_row_says_tasks_targets_replacements_and_the_first_note(
    health: ServiceHealth, row: dict[str, str]
) -> None:
    got = health_row(health)
    assert {k: got[k] for k in row} == row


def test_the_detail_lines_show_each_target_group_its_check_and_the_replacements() -> None:
    lines = detail_lines(service(crash_loop=True))
    assert lines[:3] == [
        "service prod/web (web)",
        "  tasks:          2 running / 3 desired / 1 pending",
        "  grace period:   60s",
    ]
    assert "    not healthy:  1 x Target.Timeout" in lines
    assert "    health check: HTTP / every 30s, expects 200, healthy after 5, unhealthy after 2" in lines
    assert "    note:         a note" in lines
    assert "  replaced (1h):  4, most often: Task failed ELB health checks" in lines
    assert lines[-1] == "  crash loop:     yes (notified when it began)"
    assert targets_cell(ServiceHealth("w", "c", "s")) == "no load balancer"
