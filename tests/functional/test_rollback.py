"""``ecspilot rollback SERVICE`` against moto: the real deploy and track handlers fill the history,
the rollback core and the CLI verb roll back. ECS's service deployments API (which moto lacks) is
answered by an :class:`OperationStubber` on the same ECS client; every other call goes to moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ReadTimeoutError

from ecspilot.aws.service_state import held_records
from ecspilot.deploy.rollback import Rollback
from ecspilot.errors import RollbackError
from ecspilot.interfaces.cli import main
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, fake_digest, push_event
from ecspilot_dev.service_deployments import OperationStubber, brief, deployment_arn, revision_arn
from tests.conftest import TABLE, MakeRuntime
from tests.faults import Faults
from tests.races import race

SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
SD_ARN = deployment_arn(REGION, ACCOUNT, "prod", "web", "Qm81activeRoll")
OPEN = ["PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"]
CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [{"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}}],
}


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod", instances_per_zone=1, zones=("us-east-1a",))
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
    return sandbox


@pytest.fixture
def rt(world: Sandbox, make_runtime: MakeRuntime) -> Runtime:
    return make_runtime(CONFIG)


@pytest.fixture
def stub(rt: Runtime) -> Iterator[OperationStubber]:
    with OperationStubber(rt.clients.ecs) as stubber:
        yield stubber
        assert stubber.pending == 0, "a queued service deployment answer was never asked for"


def completed(world: Sandbox, rt: Runtime, tag: str) -> dict[str, Any]:
    """Push ``tag`` through deploy_on_push and let ECS say the deployment completed."""
    invoke("deploy_on_push", world.push("web", tag))
    record = next(r for r in rt.history.deployments("prod", "web") if r["image_tag"] == tag)
    event = load_event(
        "ecs_deployment_completed", {"deploymentId": record["deployment_id"]}, resources=[SERVICE_ARN]
    )
    event["id"] = f"completed-{tag}"
    invoke("track_deployments", event)
    return rt.history.deployment(record["deployment_id"]) or {}


def expect_open(stub: OperationStubber, status: str | None = None) -> None:
    """ListServiceDeployments of the service's open deployments: none, or one in ``status``."""
    rows = []
    if status:
        target = revision_arn(REGION, ACCOUNT, "prod", "web", "ecs-svc/42")
        rows = [brief(SD_ARN, status, target, datetime.now(UTC) - timedelta(minutes=3))]
    stub.add_response(
        "list_service_deployments",
        {"serviceDeployments": rows},
        {"cluster": "prod", "service": "web", "maxResults": 20, "status": OPEN},
    )


def running(rt: Runtime) -> str:
    return str(
        rt.clients.ecs.describe_services(cluster="prod", services=["web"])["services"][0]["taskDefinition"]
    )


def held(rt: Runtime) -> list[str]:
    state = rt.history.get_many([{"pk": "SERVICE#prod#web", "sk": "STATE"}])
    return [r["image_digest"] for r in held_records(next(iter(state.values()), {}))]


# --- no active service deployment: redeploy the previous COMPLETED revision ---------------------


def test_rollback_redeploys_the_previous_completed_revision_and_holds_the_digest_it_left(
    world: Sandbox, rt: Runtime, stub: OperationStubber, recorder: CallRecorder
) -> None:
    # GIVEN v1 then v2 deployed and COMPLETED
    v1 = completed(world, rt, "v1")
    v2 = completed(world, rt, "v2")
    assert running(rt) == v2["to_task_definition"]
    expect_open(stub)
    recorder.reset()
    # WHEN ecspilot rolls web back
    result = Rollback(rt.clients, rt.history).run(rt.config.services[0], reason="p99 latency")
    # THEN v1's revision runs again, through UpdateService without a desired count
    assert result.action == "redeploy"
    assert running(rt) == v1["to_task_definition"]
    [update] = recorder.params("UpdateService")
    assert update["taskDefinition"] == v1["to_task_definition"]
    assert "desiredCount" not in update
    # AND a rollback record names the move, and v2's digest is held
    record = rt.history.deployment(result.deployment_id) or {}
    assert (record["trigger"], record["status"], record["to_task_definition"]) == (
        "rollback",
        "IN_PROGRESS",
        v1["to_task_definition"],
    )
    assert record["rollback_reason"] == "p99 latency"
    # AND v2's record stays COMPLETED, noting the rollback that replaced it (promotion reads it)
    undone = rt.history.deployment(v2["deployment_id"]) or {}
    assert undone["status"] == "COMPLETED"
    assert undone["rolled_back_by"] == result.deployment_id
    assert held(rt) == [fake_digest("web:v2")]


def test_a_redelivered_push_and_catch_up_do_not_bring_the_rolled_back_digest_back(
    world: Sandbox, rt: Runtime, stub: OperationStubber
) -> None:
    v1 = completed(world, rt, "v1")
    completed(world, rt, "v2")
    expect_open(stub)
    Rollback(rt.clients, rt.history).run(rt.config.services[0])
    # WHEN EventBridge delivers v2's push again, and reconcile's catch-up looks for the newest image
    again = invoke("deploy_on_push", push_event("web", "v2", fake_digest("web:v2"), ACCOUNT, REGION))
    caught = invoke("reconcile", {})
    # THEN v2 is held, and v1 keeps running
    assert [o["outcome"] for o in again["services"]] == ["held"]
    assert not [a for a in caught["actions"] if a.get("change") in ("deployed", "update")], caught["actions"]
    assert running(rt) == v1["to_task_definition"]


def test_with_no_previous_completed_deployment_rollback_is_a_clear_failure(
    world: Sandbox, rt: Runtime, stub: OperationStubber, recorder: CallRecorder
) -> None:
    completed(world, rt, "v1")  # the only COMPLETED revision is the one that runs
    expect_open(stub)
    recorder.reset()
    with pytest.raises(RollbackError, match="no previous COMPLETED deployment"):
        Rollback(rt.clients, rt.history).run(rt.config.services[0])
    assert recorder.writes() == []


def test_an_update_throttled_past_retries_records_no_rollback_and_running_again_finishes_it(
    world: Sandbox, rt: Runtime, stub: OperationStubber, faults: Faults
) -> None:
    v1 = completed(world, rt, "v1")
    v2 = completed(world, rt, "v2")
    expect_open(stub)
    rule = faults.fail("UpdateService", "error", code="ThrottlingException", times=1)
    # WHEN the rollback's UpdateService is throttled beyond botocore's retries
    with pytest.raises(RollbackError, match="not rolled back"):
        Rollback(rt.clients, rt.history).run(rt.config.services[0])
    # THEN v2 still runs and no rollback record claims otherwise
    assert rule.fired == 1
    assert running(rt) == v2["to_task_definition"]
    assert [r["trigger"] for r in rt.history.deployments("prod", "web")] == ["push", "push"]
    # AND the same rollback again goes to the same revision, once
    expect_open(stub)
    again = Rollback(rt.clients, rt.history).run(rt.config.services[0])
    assert again.to_task_definition == v1["to_task_definition"] == running(rt)
    assert [r["trigger"] for r in rt.history.deployments("prod", "web")].count("rollback") == 1


def test_a_rollback_racing_an_older_push_is_not_undone_by_it(
    world: Sandbox, rt: Runtime, stub: OperationStubber, faults: Faults
) -> None:
    # GIVEN v1, v2 COMPLETED, and v3 pushed (after v2) before the rollback is asked for
    v1 = completed(world, rt, "v1")
    completed(world, rt, "v2")
    v3 = world.push("web", "v3")
    expect_open(stub)
    # the push's UpdateService lands after the rollback's (the interleaving that would undo it)
    late = faults.fail(
        "UpdateService",
        "delay",
        seconds=0.5,
        when=lambda p: str(p.get("taskDefinition", "")).endswith("web:4"),  # v3's new revision
    )
    # WHEN the rollback and v3's push race
    results = race(
        lambda: Rollback(rt.clients, rt.history).run(rt.config.services[0]),
        lambda: invoke("deploy_on_push", v3),
    )
    # THEN neither failed, and the service ends on v1: the rollback's claim is newer than v3's image
    assert not [r for r in results if isinstance(r, Exception)], results
    assert running(rt) == v1["to_task_definition"], (late.fired, results[1])
    assert {o["outcome"] for o in results[1]["services"]} <= {"stale", "deployed"}


# --- an active service deployment: StopServiceDeployment with ROLLBACK ------------------------


def test_an_active_deployment_is_stopped_with_rollback_and_its_digest_held(
    world: Sandbox, rt: Runtime, stub: OperationStubber, recorder: CallRecorder
) -> None:
    completed(world, rt, "v1")
    invoke("deploy_on_push", world.push("web", "v2"))  # v2 still deploying (LINEAR, say)
    expect_open(stub, "IN_PROGRESS")
    stub.add_response(
        "stop_service_deployment",
        {"serviceDeploymentArn": SD_ARN},
        {"serviceDeploymentArn": SD_ARN, "stopType": "ROLLBACK"},
    )
    recorder.reset()
    result = Rollback(rt.clients, rt.history).run(rt.config.services[0], reason="bad canary")
    assert (result.action, result.service_deployment_arn) == ("stop", SD_ARN)
    assert recorder.count("UpdateService") == 0  # ECS rolls back itself
    assert held(rt) == [fake_digest("web:v2")]
    v2 = next(r for r in rt.history.deployments("prod", "web") if r["image_tag"] == "v2")
    assert v2["rollback_reason"] == "bad canary"
    assert v2["rollback_requested_at"]


def test_a_stop_throttled_past_retries_fails_clearly_and_records_nothing(
    world: Sandbox, rt: Runtime, stub: OperationStubber, faults: Faults
) -> None:
    completed(world, rt, "v1")
    invoke("deploy_on_push", world.push("web", "v2"))
    expect_open(stub, "IN_PROGRESS")
    rule = faults.fail("StopServiceDeployment", "error", code="ThrottlingException")
    with pytest.raises(RollbackError, match="nothing was changed"):
        Rollback(rt.clients, rt.history).run(rt.config.services[0])
    assert rule.fired == 1
    assert held(rt) == []
    v2 = next(r for r in rt.history.deployments("prod", "web") if r["image_tag"] == "v2")
    assert "rollback_requested_at" not in v2


def test_a_lost_stop_reply_says_so_and_running_again_finishes_without_a_second_stop(
    world: Sandbox, rt: Runtime, stub: OperationStubber, faults: Faults, recorder: CallRecorder
) -> None:
    completed(world, rt, "v1")
    invoke("deploy_on_push", world.push("web", "v2"))
    expect_open(stub, "IN_PROGRESS")
    lost = faults.fail(
        "StopServiceDeployment",
        "exception",
        times=1,
        exception=ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com/"),
    )
    # WHEN the reply of the stop is lost (ECS took it: the deployment is ROLLBACK_REQUESTED now)
    with pytest.raises(RollbackError, match="may have reached ECS"):
        Rollback(rt.clients, rt.history).run(rt.config.services[0])
    assert lost.fired == 1
    assert held(rt) == []
    # AND the person runs the same rollback again
    expect_open(stub, "ROLLBACK_REQUESTED")
    recorder.reset()
    again = Rollback(rt.clients, rt.history).run(rt.config.services[0])
    # THEN it sees the rollback under way: no second stop, and the digest is held now
    assert again.action == "rolling-back"
    assert recorder.count("StopServiceDeployment") == 0
    assert held(rt) == [fake_digest("web:v2")]


# --- the verb -----------------------------------------------------------------------------------


@pytest.fixture
def cli(
    world: Sandbox, rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[StubbedSession, CallRecorder]]:
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    session = StubbedSession(region_name=REGION)
    calls = CallRecorder().attach(session)
    yield session, calls
    assert all(s.pending == 0 for s in session.stubbers)


class StubbedSession(boto3.Session):
    """The CLI's own session: its ECS client answers the service deployments API from ``answers``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.stubbers: list[OperationStubber] = []

    def client(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        made = super().client(*args, **kwargs)
        if made.meta.service_model.service_name == "ecs":
            stubber = OperationStubber(made)
            for method, response, params in self.answers:
                stubber.add_response(method, response, params)
            stubber.activate()
            self.stubbers.append(stubber)
        return made


NONE_OPEN = (
    "list_service_deployments",
    {"serviceDeployments": []},
    {"cluster": "prod", "service": "web", "maxResults": 20, "status": OPEN},
)


def test_the_verb_with_dry_run_says_what_it_would_do_and_calls_no_write_api(
    world: Sandbox, rt: Runtime, cli: tuple[StubbedSession, CallRecorder], capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = completed(world, rt, "v1")
    v2 = completed(world, rt, "v2")
    session, calls = cli
    session.answers.append(NONE_OPEN)
    code = main(["rollback", "web", "--dry-run"], session=session)
    out = capsys.readouterr().out
    assert code == 0
    assert "would redeploy web:2 (from web:3)" in out
    assert "would hold sha256:" in out
    assert calls.writes() == [], calls.writes()
    assert running(rt) == v2["to_task_definition"] != v1["to_task_definition"]


def test_the_verb_rolls_back_and_prints_the_move_as_json(
    world: Sandbox, rt: Runtime, cli: tuple[StubbedSession, CallRecorder], capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = completed(world, rt, "v1")
    completed(world, rt, "v2")
    session, _ = cli
    session.answers.append(NONE_OPEN)
    capsys.readouterr()
    assert main(["rollback", "prod/web", "--reason", "errors", "--output", "json"], session=session) == 0
    import json  # noqa: PLC0415

    printed = json.loads(capsys.readouterr().out)
    assert (printed["action"], printed["to_task_definition"], printed["reason"]) == (
        "redeploy",
        v1["to_task_definition"],
        "errors",
    )
    assert running(rt) == v1["to_task_definition"]


def test_the_verb_with_nothing_to_go_back_to_exits_1_with_one_error_line(
    world: Sandbox, rt: Runtime, cli: tuple[StubbedSession, CallRecorder], capsys: pytest.CaptureFixture[str]
) -> None:
    completed(world, rt, "v1")
    session, _ = cli
    session.answers.append(NONE_OPEN)
    assert main(["rollback", "web"], session=session) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: no previous COMPLETED deployment")


def test_the_verb_on_an_unknown_service_is_bad_input_before_any_aws_call(
    cli: tuple[StubbedSession, CallRecorder], capsys: pytest.CaptureFixture[str]
) -> None:
    session, calls = cli
    assert main(["rollback", "nope"], session=session) == 2
    assert "'nope' is not a configured service" in capsys.readouterr().err
    assert calls.calls == []
