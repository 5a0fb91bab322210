"""What the insights need on the records, written by the real handlers against moto: the push
time on the deployer's record, the delivery metrics when the tracker closes it, a crash loop's
start on the deployment whose tasks looped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot_dev.health_events import ELB_FAILED, service_task_stopped
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.functional.test_track_deployments import (  # noqa: F401
    PUSH,
    TRACK,
    _ecs_deployment_ids,
    config,
    deployment_event,
    emitted,
    metric_values,
    world,
)
from tests.moto_state import set_image_pushed_at


def later(iso: str, seconds: float) -> str:
    at = datetime.fromisoformat(iso.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return at.isoformat().replace("+00:00", "Z")


def test_the_deployer_records_ecrs_push_time_and_the_tracker_emits_the_lead_time(
    world: Sandbox,  # noqa: F811
    make_runtime: MakeRuntime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN web:v1 pushed to ECR ten minutes ago (moto's imagePushedAt, backdated)
    rt = make_runtime(config())
    event = world.push("web", "v1")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=600)
    pushed = rt.clients.ecr.describe_images(repositoryName="web", imageIds=[{"imageTag": "v1"}])[
        "imageDetails"
    ][0]["imagePushedAt"]
    # WHEN deploy_on_push deploys it
    invoke(PUSH, event)
    [record] = rt.history.deployments("prod", "web")
    # THEN the record carries ECR's push time
    assert record["image_pushed_at"] == pushed.astimezone(UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    capsys.readouterr()
    # WHEN ECS reports it COMPLETED 30 s after it started
    done = later(record["started_at"], 30)
    invoke(TRACK, deployment_event("ecs_deployment_completed", record["deployment_id"], at=done))
    # THEN the tracker emits the change and its lead time (push -> completed)
    blobs = emitted(capsys.readouterr().out)
    expected = (datetime.fromisoformat(done.replace("Z", "+00:00")) - pushed).total_seconds()
    [lead] = metric_values(blobs, "LeadTime")
    assert lead == pytest.approx(expected, abs=0.01)
    assert metric_values(blobs, "ChangesCompleted") == [1.0]
    assert metric_values(blobs, "ChangesClosed") == [1.0]
    assert metric_values(blobs, "ChangesFailed") == []


def test_a_failed_deployment_counts_a_failed_change_once_even_when_then_rolled_back(
    world: Sandbox,  # noqa: F811
    make_runtime: MakeRuntime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rt = make_runtime(config())
    invoke(PUSH, world.push("web", "v1"))
    [record] = rt.history.deployments("prod", "web")
    capsys.readouterr()
    invoke(TRACK, deployment_event("ecs_deployment_failed", record["deployment_id"]))
    invoke(
        TRACK,
        deployment_event(
            "ecs_deployment_rolled_back",
            "ecs-svc/1111111111111111111",
            reason=f"ECS deployment circuit breaker: rolling back to deploymentId {'ecs-svc/2222222222222222222'}.",
        ),
    )
    assert (rt.history.deployment(record["deployment_id"]) or {})["status"] == "ROLLED_BACK"
    blobs = emitted(capsys.readouterr().out)
    assert metric_values(blobs, "ChangesFailed") == [1.0]
    assert metric_values(blobs, "ChangesClosed") == [1.0]
    assert metric_values(blobs, "LeadTime") == []


def test_a_crash_loop_marks_its_start_on_the_deployment_whose_tasks_looped_once(
    world: Sandbox,  # noqa: F811
    make_runtime: MakeRuntime,
) -> None:
    # GIVEN a COMPLETED deployment of web
    rt = make_runtime(config())
    invoke(PUSH, world.push("web", "v1"))
    [record] = rt.history.deployments("prod", "web")
    invoke(TRACK, deployment_event("ecs_deployment_completed", record["deployment_id"]))
    td = record["to_task_definition"]
    t0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

    def stop(n: int, minutes: float) -> dict[str, Any]:
        return service_task_stopped(
            ELB_FAILED,
            n,
            t0 + timedelta(minutes=minutes),
            task_definition=td,
            started_by=record["deployment_id"],
        )

    # WHEN five of its tasks are replaced a minute apart (a crash loop), and later a second loop
    results = [invoke(TRACK, stop(n, n)) for n in range(5)]
    assert results[-1]["crash_loop"] == "start"
    assert [invoke(TRACK, stop(n, 60 + 15 * n))["crash_loop"] for n in range(5, 7)] == ["end", None]
    again = [invoke(TRACK, stop(n, 200 + n))["crash_loop"] for n in range(10, 15)]
    assert again[-1] == "start"
    # THEN the record names the first loop's start (its first replacement), kept by the second
    assert (rt.history.deployment(record["deployment_id"]) or {})[
        "crash_loop_at"
    ] == "2026-11-26T03:00:00.000Z"
