"""The tracker with ECS service deployments as the source of truth (BLUE_GREEN, LINEAR, CANARY).

Deployments are started by the real deploy_on_push handler against moto; the service's
``deploymentConfiguration.strategy`` is set with UpdateService (moto keeps it there). moto has no
service deployments API: an :class:`OperationStubber` answers ListServiceDeployments and
DescribeServiceDeployments on the runtime's own ECS client (botocore validates each request and
response against the API model), and every other call goes to moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot.domain.service_deployments import stage_text
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.status import history_rows, service_status
from ecspilot.interfaces.tracking_preview import preview
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox
from ecspilot_dev.service_deployments import (
    OperationStubber,
    brief,
    deployment_arn,
    described,
    revision_arn,
    strategy_configuration,
)
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.functional.test_track_deployments import emitted, metric_values

TRACK = "track_deployments"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
SD_ARN = deployment_arn(REGION, ACCOUNT, "prod", "web", "Xk2bq7LINEAR")
CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [{"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}}],
}


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod", instances_per_zone=1, zones=("us-east-1a",))
    sandbox.repository("web")
    td = sandbox.task_definition("web", {"app": sandbox.image("web", "v0")})
    sandbox.service("prod", "web", td)
    return sandbox


@pytest.fixture
def stub(make_runtime: MakeRuntime, world: Sandbox) -> Iterator[tuple[Runtime, OperationStubber]]:
    rt = make_runtime(CONFIG)
    with OperationStubber(rt.clients.ecs) as stubber:
        yield rt, stubber
        assert stubber.pending == 0, "a queued service deployment answer was never asked for"


def use_strategy(rt: Runtime, strategy: str) -> dict[str, Any]:
    conf = strategy_configuration(strategy, bake_minutes=30, step_percent=20.0, canary_percent=10.0)
    rt.clients.ecs.update_service(cluster="prod", service="web", deploymentConfiguration=conf)
    return conf


def deploy(world: Sandbox, rt: Runtime, tag: str = "v1") -> dict[str, Any]:
    invoke("deploy_on_push", world.push("web", tag))
    return next(r for r in rt.history.deployments("prod", "web") if r["image_tag"] == tag)


def event(sample: str, deployment_id: str, at: datetime) -> dict[str, Any]:
    stamp = at.isoformat().replace("+00:00", "Z")
    out = load_event(sample, {"deploymentId": deployment_id, "updatedAt": stamp}, resources=[SERVICE_ARN])
    out["id"] = f"{sample}-{stamp}"
    return out


def expect_list(stub: OperationStubber, deployment_id: str, at: datetime) -> None:
    stub.add_response(
        "list_service_deployments",
        {
            "serviceDeployments": [
                brief(SD_ARN, "IN_PROGRESS", revision_arn(REGION, ACCOUNT, "prod", "web", deployment_id), at),
                brief(
                    deployment_arn(REGION, ACCOUNT, "prod", "web", "older"),
                    "SUCCESSFUL",
                    revision_arn(REGION, ACCOUNT, "prod", "web", "ecs-svc/1"),
                    at - timedelta(days=1),
                ),
            ]
        },
        {"cluster": "prod", "service": "web", "maxResults": 20},
    )


def expect_describe(
    stub: OperationStubber,
    conf: dict[str, Any],
    deployment_id: str,
    status: str,
    stage: str,
    updated_at: datetime,
    weight: float | None = None,
) -> None:
    stub.add_response(
        "describe_service_deployments",
        {
            "serviceDeployments": [
                described(
                    SD_ARN,
                    status,
                    stage,
                    revision_arn(REGION, ACCOUNT, "prod", "web", deployment_id),
                    conf,
                    created_at=updated_at - timedelta(minutes=10),
                    updated_at=updated_at,
                    weight=weight,
                    reason="alarm web-5xx in ALARM" if status.startswith("ROLLBACK") else "",
                )
            ],
            "failures": [],
        },
        {"serviceDeploymentArns": [SD_ARN]},
    )


def test_a_completed_event_during_the_bake_leaves_the_record_in_progress_until_ecs_says_successful(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], capsys: pytest.CaptureFixture[str]
) -> None:
    rt, stubber = stub
    conf = use_strategy(rt, "BLUE_GREEN")
    started = deploy(world, rt)
    dep = started["deployment_id"]
    baking_since = datetime.now(UTC) - timedelta(minutes=12)
    # GIVEN ECS sends SERVICE_DEPLOYMENT_COMPLETED while the service deployment is in BAKE_TIME
    expect_list(stubber, dep, baking_since - timedelta(minutes=5))
    expect_describe(stubber, conf, dep, "IN_PROGRESS", "BAKE_TIME", baking_since)
    capsys.readouterr()
    result = invoke(TRACK, event("ecs_deployment_bluegreen_completed", dep, baking_since))
    # THEN the record stays IN_PROGRESS (promotion never takes it), linked and staged
    record = rt.history.deployment(dep) or {}
    assert record["status"] == "IN_PROGRESS"
    assert result["moved"] == []
    assert metric_values(emitted(capsys.readouterr().out), "DeploymentsSucceeded") == []
    assert (record["service_deployment_arn"], record["ecs_status"], record["lifecycle_stage"]) == (
        SD_ARN,
        "IN_PROGRESS",
        "BAKE_TIME",
    )
    assert record["strategy"] == "BLUE_GREEN"
    assert record["bake_minutes"] == 30
    assert stage_text(record, datetime.now(UTC)) == "baking, 12 of 30 min"
    # WHEN the next event comes once ECS says SUCCESSFUL (the ARN is known now: no listing)
    done = baking_since + timedelta(minutes=31)
    expect_describe(stubber, conf, dep, "SUCCESSFUL", "CLEAN_UP", done)
    invoke(TRACK, event("ecs_deployment_bluegreen_completed", dep, done))
    # THEN the record is COMPLETED
    closed = rt.history.deployment(dep) or {}
    assert closed["status"] == "COMPLETED"
    assert closed["ecs_status"] == "SUCCESSFUL"


def test_a_linear_deployment_records_its_step_as_traffic_shifts(
    world: Sandbox, stub: tuple[Runtime, OperationStubber]
) -> None:
    rt, stubber = stub
    conf = use_strategy(rt, "LINEAR")
    started = deploy(world, rt)
    dep = started["deployment_id"]
    now = datetime.now(UTC)
    expect_list(stubber, dep, now)
    expect_describe(stubber, conf, dep, "IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", now, weight=60.0)
    invoke(TRACK, event("ecs_deployment_linear_in_progress", dep, now))
    record = rt.history.deployment(dep) or {}
    assert record["status"] == "IN_PROGRESS"
    assert stage_text(record, now) == "linear step 3 of 5 (60%)"
    # AND ecspilot status and history show it
    [row] = service_status(rt.config, rt.clients.ecs, rt.history)
    assert row.stage == "linear step 3 of 5 (60%)"
    _, rows = history_rows(rt.config, rt.history, "web")
    assert rows[0]["stage"] == "linear step 3 of 5 (60%)"


def test_a_canary_deployment_shows_its_canary_share(
    world: Sandbox, stub: tuple[Runtime, OperationStubber]
) -> None:
    rt, stubber = stub
    conf = use_strategy(rt, "CANARY")
    dep = deploy(world, rt)["deployment_id"]
    now = datetime.now(UTC)
    expect_list(stubber, dep, now)
    expect_describe(stubber, conf, dep, "IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", now, weight=10.0)
    invoke(TRACK, event("ecs_deployment_canary_in_progress", dep, now))
    assert stage_text(rt.history.deployment(dep) or {}, now) == "canary 10%"


def test_a_blue_green_rollback_is_rolled_back_and_its_digest_held_against_a_redelivered_push(
    world: Sandbox, stub: tuple[Runtime, OperationStubber]
) -> None:
    rt, stubber = stub
    conf = use_strategy(rt, "BLUE_GREEN")
    push = world.push("web", "v1")
    invoke("deploy_on_push", push)
    dep = next(r for r in rt.history.deployments("prod", "web") if r["image_tag"] == "v1")["deployment_id"]
    now = datetime.now(UTC)
    # GIVEN an alarm rolled the deployment back during its bake
    expect_list(stubber, dep, now)
    expect_describe(stubber, conf, dep, "ROLLBACK_SUCCESSFUL", "CLEAN_UP", now)
    result = invoke(TRACK, event("ecs_deployment_bluegreen_failed", dep, now))
    # THEN its record is ROLLED_BACK (not FAILED: ECS went back to the source revision)
    record = rt.history.deployment(dep) or {}
    assert record["status"] == "ROLLED_BACK"
    assert result["moved"] == [{"deployment_id": dep, "from": "IN_PROGRESS", "to": "ROLLED_BACK"}]
    # AND a redelivered push of that image is held, as after a circuit breaker's rollback (ECS went
    # back to v0: moto does not, so the service is put back on its previous revision here)
    rt.clients.ecs.update_service(
        cluster="prod", service="web", taskDefinition=record["from_task_definition"]
    )
    again = invoke("deploy_on_push", push)
    assert [o["outcome"] for o in again["services"]] == ["held"]


@pytest.mark.parametrize(("ecs_status", "expected"), [("STOPPED", "FAILED"), ("ROLLBACK_FAILED", "FAILED")])
def test_a_stopped_or_failed_rollback_deployment_is_failed(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], ecs_status: str, expected: str
) -> None:
    rt, stubber = stub
    conf = use_strategy(rt, "LINEAR")
    dep = deploy(world, rt)["deployment_id"]
    now = datetime.now(UTC)
    expect_list(stubber, dep, now)
    expect_describe(stubber, conf, dep, ecs_status, "CLEAN_UP", now)
    invoke(TRACK, event("ecs_deployment_bluegreen_failed", dep, now))
    record = rt.history.deployment(dep) or {}
    assert (record["status"], record["ecs_status"]) == (expected, ecs_status)


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("ListServiceDeployments", "ThrottlingException"),  # throttled past botocore's retries
        ("DescribeServiceDeployments", "AccessDeniedException"),
        ("DescribeServices", "ThrottlingException"),
    ],
)
def test_a_failed_service_deployment_read_never_loses_the_event(
    world: Sandbox,
    stub: tuple[Runtime, OperationStubber],
    faults: Faults,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    operation: str,
    code: str,
) -> None:
    rt, stubber = stub
    use_strategy(rt, "BLUE_GREEN")
    dep = deploy(world, rt)["deployment_id"]
    now = datetime.now(UTC)
    if operation == "DescribeServiceDeployments":
        expect_list(stubber, dep, now)
    rule = faults.fail(operation, "error", code=code)
    capsys.readouterr()
    # WHEN the event comes and the read fails beyond retries
    invoke(TRACK, event("ecs_deployment_bluegreen_completed", dep, now))
    # THEN the event is recorded as it says (COMPLETED), the failure logged and counted
    assert rule.fired == 1
    assert (rt.history.deployment(dep) or {})["status"] == "COMPLETED"
    out = capsys.readouterr().out
    assert metric_values(emitted(out), "ServiceDeploymentReadErrors") == [1.0]
    assert "service deployment not read: the event is recorded as it says" in caplog.messages


def test_a_rolling_service_is_tracked_from_its_events_without_service_deployment_calls(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], recorder: CallRecorder
) -> None:
    rt, _ = stub
    dep = deploy(world, rt)["deployment_id"]
    recorder.reset()
    invoke(TRACK, event("ecs_deployment_completed", dep, datetime.now(UTC)))
    assert (rt.history.deployment(dep) or {})["status"] == "COMPLETED"
    assert recorder.ops("ecs") == ["DescribeServices"]  # the strategy, nothing more


def test_plan_event_previews_a_baking_completion_as_no_move(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], recorder: CallRecorder
) -> None:
    rt, stubber = stub
    conf = use_strategy(rt, "BLUE_GREEN")
    dep = deploy(world, rt)["deployment_id"]
    now = datetime.now(UTC)
    expect_list(stubber, dep, now)
    expect_describe(stubber, conf, dep, "IN_PROGRESS", "BAKE_TIME", now)
    recorder.reset()
    # WHEN ecspilot plan --event previews the COMPLETED event of a deployment still baking
    previewed = preview(event("ecs_deployment_bluegreen_completed", dep, now), rt)
    # THEN it would not move the record, and it wrote nothing
    assert [m["change"] for m in previewed["moves"]] == ["unchanged"]
    assert recorder.writes() == []
