"""``ecspilot approve`` / ``reject`` through ``main()``: the waiting hook is recorded by the real
tracker; ContinueServiceDeployment is answered by a Stubber (moto lacks it) on the ECS client of
the CLI's own session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from ecspilot.interfaces.cli import main
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import REGION
from tests.conftest import TABLE
from tests.faults import Faults
from tests.hook_world import HOOK, World, hook_event

TRACK = "track_deployments"


class StubbedSession(boto3.Session):
    """A real session whose ECS client is the test's stubbed one (the CLI makes its clients from it)."""

    def __init__(self, ecs: Any) -> None:
        super().__init__(region_name=REGION)
        self._ecs = ecs

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self._ecs if service_name == "ecs" else super().client(service_name, *args, **kwargs)


@pytest.fixture
def cli(
    moto: None, faults: Faults, recorder: CallRecorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[World, StubbedSession]]:
    session = boto3.Session(region_name=REGION)
    ecs = session.client("ecs")
    with Stubber(ecs) as stub:
        world = World(session, stub, recorder)
        world.use({"approval": True})
        config = {
            "version": 1,
            "services": [
                {
                    "name": "web-live",
                    "cluster": "prod",
                    "service": "web",
                    "containers": {"app": {"repository": "web"}},
                    "gates": {"approval": True},
                }
            ],
        }
        path = tmp_path / "ecspilot.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
        monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
        yield world, StubbedSession(ecs)
        stub.assert_no_pending_responses()


def test_approve_continues_the_waiting_hook_and_says_so(
    cli: tuple[World, StubbedSession], capsys: pytest.CaptureFixture[str]
) -> None:
    world, session = cli
    invoke(TRACK, hook_event())
    world.expect_answer("CONTINUE")
    capsys.readouterr()
    assert main(["approve", "web-live"], session=session) == 0
    assert "continued web-live" in capsys.readouterr().out
    assert world.hook_item(HOOK)["decided_by"] == "approve"


def test_reject_rolls_back_and_answers_json(
    cli: tuple[World, StubbedSession], capsys: pytest.CaptureFixture[str]
) -> None:
    world, session = cli
    invoke(TRACK, hook_event())
    world.expect_answer("ROLLBACK")
    capsys.readouterr()
    assert main(["reject", "web-live", "--output", "json"], session=session) == 0
    assert '"action": "ROLLBACK"' in capsys.readouterr().out


def test_nothing_waiting_is_one_error_line_and_exit_1_an_unknown_service_exit_2(
    cli: tuple[World, StubbedSession], capsys: pytest.CaptureFixture[str]
) -> None:
    _, session = cli
    assert main(["approve", "web-live"], session=session) == 1
    assert capsys.readouterr().err == "error: no paused deployment of web-live awaits an answer\n"
    assert main(["reject", "nope"], session=session) == 2
    assert "no service named nope" in capsys.readouterr().err
