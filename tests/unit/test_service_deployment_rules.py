"""The pure parts of service deployments and rollback: the status mapping, the stage text, the
link from a deployment id to its service deployment, and what ``ecspilot rollback`` chooses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot.aws.service_deployments import ServiceDeploymentBrief, link, parse_service_deployment
from ecspilot.deploy.rollback_rules import choose, digests_to_hold, previous_completed
from ecspilot.domain.service_deployments import (
    is_tracked,
    linear_step,
    reconciled_status,
    record_status,
    stage_text,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web"


@pytest.mark.parametrize(
    ("ecs_status", "expected"),
    [
        ("PENDING", "IN_PROGRESS"),
        ("IN_PROGRESS", "IN_PROGRESS"),
        ("STOP_REQUESTED", "IN_PROGRESS"),
        ("ROLLBACK_REQUESTED", "IN_PROGRESS"),
        ("ROLLBACK_IN_PROGRESS", "IN_PROGRESS"),
        ("SUCCESSFUL", "COMPLETED"),
        ("STOPPED", "FAILED"),
        ("ROLLBACK_SUCCESSFUL", "ROLLED_BACK"),
        ("ROLLBACK_FAILED", "FAILED"),
        ("SOMETHING_NEW", "IN_PROGRESS"),  # never close a record on a status not understood
    ],
)
def test_each_ecs_status_maps_onto_one_record_status(ecs_status: str, expected: str) -> None:
    assert record_status(ecs_status) == expected


@pytest.mark.parametrize(
    ("event_status", "ecs_status", "expected"),
    [
        ("COMPLETED", "IN_PROGRESS", "IN_PROGRESS"),  # the event came during the bake: still baking
        ("COMPLETED", "SUCCESSFUL", "COMPLETED"),
        ("FAILED", "ROLLBACK_IN_PROGRESS", "IN_PROGRESS"),
        ("FAILED", "ROLLBACK_SUCCESSFUL", "ROLLED_BACK"),
        ("IN_PROGRESS", "SUCCESSFUL", "COMPLETED"),  # a late event: the service deployment is over
        ("COMPLETED", None, "COMPLETED"),  # not read (a ROLLING service, a failed read): the event
        ("FAILED", "", "FAILED"),
    ],
)
def test_the_service_deployment_overrides_the_event_when_it_was_read(
    event_status: Any, ecs_status: str | None, expected: str
) -> None:
    assert reconciled_status(event_status, ecs_status) == expected


@pytest.mark.parametrize(
    ("strategy", "tracked"),
    [("BLUE_GREEN", True), ("LINEAR", True), ("CANARY", True), ("ROLLING", False), (None, False)],
)
def test_only_the_built_in_traffic_shifting_strategies_are_tracked_through_service_deployments(
    strategy: str | None, tracked: bool
) -> None:
    assert is_tracked(strategy) is tracked


@pytest.mark.parametrize(
    ("step_percent", "weight", "expected"),
    [
        (20.0, 20.0, (1, 5)),
        (20.0, 60.0, (3, 5)),
        (20.0, 100.0, (5, 5)),
        (20.0, 0.0, (1, 5)),  # the first step is starting
        (30.0, 90.0, (3, 4)),  # 30, 60, 90, 100
        (30.0, 100.0, (4, 4)),
        (10.0, 50.0, (5, 10)),
        (0.0, 50.0, (0, 0)),
    ],
)
def test_the_linear_step_comes_from_the_step_percent_and_the_traffic_shifted(
    step_percent: float, weight: float, expected: tuple[int, int]
) -> None:
    assert linear_step(step_percent, weight) == expected


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {
                "lifecycle_stage": "BAKE_TIME",
                "bake_minutes": 30,
                "stage_started_at": iso(NOW - timedelta(minutes=12)),
            },
            "baking, 12 of 30 min",
        ),
        (
            {
                "lifecycle_stage": "BAKE_TIME",
                "bake_minutes": 30,
                "stage_started_at": iso(NOW - timedelta(hours=2)),
            },
            "baking, 30 of 30 min",
        ),
        ({"lifecycle_stage": "BAKE_TIME"}, "baking"),
        (
            {
                "lifecycle_stage": "PRODUCTION_TRAFFIC_SHIFT",
                "strategy": "LINEAR",
                "step_percent": 20,
                "production_weight": 60,
            },
            "linear step 3 of 5 (60%)",
        ),
        (
            {
                "lifecycle_stage": "PRODUCTION_TRAFFIC_SHIFT",
                "strategy": "CANARY",
                "canary_percent": 10,
                "production_weight": 10,
            },
            "canary 10%",
        ),
        (
            {
                "lifecycle_stage": "PRODUCTION_TRAFFIC_SHIFT",
                "strategy": "CANARY",
                "canary_percent": 10,
                "production_weight": 100,
            },
            "canary done, shifting the rest (100%)",
        ),
        (
            {
                "lifecycle_stage": "PRODUCTION_TRAFFIC_SHIFT",
                "strategy": "BLUE_GREEN",
                "production_weight": 100,
            },
            "production traffic shift (100%)",
        ),
        ({"lifecycle_stage": "TEST_TRAFFIC_SHIFT", "strategy": "BLUE_GREEN"}, "test traffic shift"),
        ({"lifecycle_stage": "CLEAN_UP"}, "cleaning up the old revision"),
        ({"lifecycle_stage": "BAKE_TIME", "ecs_status": "ROLLBACK_IN_PROGRESS"}, "rolling back"),
        ({"ecs_status": "ROLLBACK_REQUESTED"}, "rollback requested"),
        ({"ecs_status": "PENDING"}, "pending"),
        ({}, ""),
        ({"lifecycle_stage": "BAKE_TIME", "status": "COMPLETED"}, ""),  # only an open deployment has a stage
    ],
)
def test_the_stage_of_a_running_deployment_reads_as_a_person_says_it(
    record: dict[str, Any], expected: str
) -> None:
    assert stage_text({"status": "IN_PROGRESS", **record}, NOW) == expected


def brief(ident: str, revision: str, minutes_ago: int, status: str = "SUCCESSFUL") -> ServiceDeploymentBrief:
    return ServiceDeploymentBrief(
        arn=f"arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/{ident}",
        status=status,
        target_revision_arn=f"arn:aws:ecs:us-east-1:123456789012:service-revision/prod/web/{revision}",
        created_at=NOW - timedelta(minutes=minutes_ago),
    )


def test_a_deployment_links_to_the_service_deployment_whose_target_revision_carries_its_number() -> None:
    briefs = [brief("new", "222", 1), brief("old", "111", 60)]
    linked = link(briefs, "ecs-svc/111", NOW)
    assert linked is not None
    assert linked.arn.endswith("/old")


def test_without_a_matching_revision_the_newest_created_before_the_event_is_linked() -> None:
    briefs = [brief("later", "333", -5), brief("running", "222", 10), brief("old", "111", 60)]
    linked = link(briefs, "ecs-svc/999", NOW)
    assert linked is not None
    assert linked.arn.endswith("/running")
    assert link([], "ecs-svc/999", NOW) is None


def test_a_described_service_deployment_keeps_the_fields_the_record_needs() -> None:
    parsed = parse_service_deployment(
        {
            "serviceDeploymentArn": "arn:sd",
            "status": "IN_PROGRESS",
            "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT",
            "deploymentConfiguration": {
                "strategy": "LINEAR",
                "bakeTimeInMinutes": 15,
                "linearConfiguration": {"stepPercent": 25.0},
            },
            "targetServiceRevision": {"arn": "arn:rev", "requestedProductionTrafficWeight": 50.0},
        }
    )
    assert parsed.fields() == {
        "service_deployment_arn": "arn:sd",
        "ecs_status": "IN_PROGRESS",
        "lifecycle_stage": "PRODUCTION_TRAFFIC_SHIFT",
        "strategy": "LINEAR",
        "bake_minutes": 15,
        "step_percent": 25.0,
        "canary_percent": None,
        "production_weight": 50.0,
    }


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([("a", "IN_PROGRESS")], ("stop", "a")),
        ([("a", "PENDING")], ("stop", "a")),
        ([("a", "ROLLBACK_REQUESTED"), ("b", "IN_PROGRESS")], ("rolling-back", "a")),
        ([("b", "IN_PROGRESS"), ("a", "ROLLBACK_IN_PROGRESS")], ("rolling-back", "a")),
        ([("a", "STOP_REQUESTED")], ("rolling-back", "a")),
        ([("a", "SUCCESSFUL")], ("redeploy", "")),
        ([], ("redeploy", "")),
    ],
)
def test_rollback_stops_a_running_deployment_never_a_second_time_and_otherwise_redeploys(
    statuses: list[tuple[str, str]], expected: tuple[str, str]
) -> None:
    assert choose(statuses) == expected


def record(status: str, to: str, digest: str = "") -> dict[str, Any]:
    return {"status": status, "to_task_definition": to, "image_digest": digest}


@pytest.mark.parametrize(
    ("records", "current", "held", "expected"),
    [
        ([record("COMPLETED", "td:3", D3), record("COMPLETED", "td:2", D2)], "td:3", set(), "td:2"),
        ([record("FAILED", "td:3", D3), record("COMPLETED", "td:2", D2)], "td:2", set(), None),
        (
            [
                record("COMPLETED", "td:2", D2),
                record("COMPLETED", "td:3", D3),
                record("COMPLETED", "td:1", D1),
            ],
            "td:2",
            {D3},
            "td:1",  # td:3 was rolled back from before: held, skipped
        ),
        ([record("COMPLETED", "", ""), record("COMPLETED", "td:1", D1)], "td:2", set(), "td:1"),
        ([record("IN_PROGRESS", "td:3", D3)], "td:3", set(), None),
        ([], "td:1", set(), None),
    ],
)
def test_the_previous_completed_revision_is_the_newest_other_than_the_current_and_not_held(
    records: list[dict[str, Any]], current: str, held: set[str], expected: str | None
) -> None:
    found = previous_completed(records, current, held)
    assert (found or {}).get("to_task_definition") == expected


@pytest.mark.parametrize(
    ("current", "target", "containers", "expected"),
    [
        ({"app": f"{REPO}@{D2}"}, {"app": f"{REPO}@{D1}"}, ["app"], [D2]),
        (
            {"app": f"{REPO}@{D2}", "side": f"{REPO}@{D3}"},
            {"app": f"{REPO}@{D1}", "side": f"{REPO}@{D3}"},
            ["app", "side"],
            [D2],
        ),
        ({"app": f"{REPO}@{D2}", "side": f"{REPO}@{D3}"}, None, ["app"], [D2]),
        ({"app": f"{REPO}:v2"}, {"app": f"{REPO}@{D1}"}, ["app"], []),  # a tag, not a digest: nothing to hold
    ],
)
def test_the_digests_held_are_those_rolled_away_from_in_the_followed_containers(
    current: dict[str, str], target: dict[str, str] | None, containers: list[str], expected: list[str]
) -> None:
    assert digests_to_hold(current, target, containers) == expected
