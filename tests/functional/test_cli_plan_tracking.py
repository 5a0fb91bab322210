"""``ecspilot plan --event`` with ECS events: the moves track_deployments would make on the real
records (deploy_on_push and run_job wrote them), and none made: no write call, records unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecspilot.interfaces.cli import main
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox
from tests.functional.test_history_and_status_cli import _ecs_deployment_ids, filled  # noqa: F401
from tests.job_runs import ends, fire

ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"


@pytest.fixture
def session(recorder: CallRecorder) -> boto3.Session:
    session = boto3.Session(region_name=REGION)
    recorder.attach(session)
    return session


def plan(path: Path, event: dict[str, Any], session: boto3.Session, *extra: str) -> int:
    """``ecspilot plan --output json --event`` of ``event`` written to ``path``."""
    path.write_text(json.dumps(event), encoding="utf-8")
    return main(["plan", "--output", "json", "--event", str(path), *extra], session=session)


def test_a_deployment_completing_would_move_its_record_and_nothing_is_written(
    filled: Runtime,  # noqa: F811
    sandbox: Sandbox,
    session: boto3.Session,
    recorder: CallRecorder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a push deployed v3 (its record IN_PROGRESS)
    invoke("deploy_on_push", sandbox.push("web", "v3"))
    v3 = filled.history.deployments("prod", "web")[0]
    event = load_event("ecs_deployment_completed", {"deploymentId": v3["deployment_id"]}, resources=[ARN])
    capsys.readouterr()
    recorder.reset()
    # WHEN plan --event gets the COMPLETED event
    code = plan(tmp_path / "e.json", event, session, "--detailed-exitcode")
    # THEN the tracker would move it IN_PROGRESS -> COMPLETED (exit 3: a change), and did not
    assert code == 3
    [move] = json.loads(capsys.readouterr().out)["moves"]
    assert (move["from"], move["to"], move["change"]) == ("IN_PROGRESS", "COMPLETED", "would-move")
    assert recorder.writes() == []
    assert filled.history.deployment(v3["deployment_id"])["status"] == "IN_PROGRESS"


def test_an_event_for_a_record_already_final_would_change_nothing(
    filled: Runtime,  # noqa: F811
    session: boto3.Session,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1 = filled.history.deployments("prod", "web")[-1]
    event = load_event("ecs_deployment_completed", {"deploymentId": v1["deployment_id"]}, resources=[ARN])
    capsys.readouterr()
    code = plan(tmp_path / "e.json", event, session, "--detailed-exitcode")
    assert code == 0
    [move] = json.loads(capsys.readouterr().out)["moves"]
    assert (move["from"], move["to"], move["change"]) == ("COMPLETED", "COMPLETED", "unchanged")


@pytest.mark.parametrize("output", ["table", "json"])
def test_a_job_task_stopping_would_close_its_run_as_failed_and_nothing_is_written(
    filled: Runtime,  # noqa: F811
    session: boto3.Session,
    recorder: CallRecorder,
    tmp_path: Path,
    output: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a third night's run, started by run_job, its task stopped with exit 1
    task = fire(filled.clients, "nightly-report", "2026-11-27T02:00:00Z")
    event = ends(filled.clients, task, "ecs_task_stopped_failed")
    (tmp_path / "e.json").write_text(json.dumps(event), encoding="utf-8")
    capsys.readouterr()
    recorder.reset()
    # WHEN plan --event gets its STOPPED event
    assert main(["plan", "--output", output, "--event", str(tmp_path / "e.json")], session=session) == 0
    out = capsys.readouterr().out
    # THEN the run would be closed FAILED, and its record is still open
    if output == "json":
        [move] = json.loads(out)["moves"]
        assert (move["to"], move["change"]) == ("FAILED", "would-move")
    else:
        assert "dry run of track_deployments: task stopped: report exited 1" in out
        assert "would-move" in out
    assert recorder.writes() == []
    [run] = filled.history.run_by_task(task["taskArn"])
    assert run["status"] in ("PENDING", "RUNNING")
