"""The CLI's validate and plan --event verbs: exit codes, output, and no AWS change on a dry run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecspilot.interfaces.cli import main
from ecspilot_dev.sandbox import Sandbox

CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [{"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}}],
}


def write(tmp_path: Path, doc: Any, name: str = "ecspilot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


def test_validate_accepts_the_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "config/ecspilot.yaml", "validate"]) == 0
    assert "valid (2 service(s), 0 job(s), 0 daemon(s))" in capsys.readouterr().out


def test_validate_reports_every_problem_with_its_path_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "version": 1,
        "services": [
            {"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web", "tags": ["v 1"]}}}
        ],
        "jobs": [{"name": "r", "cluster": "prod", "task_definition": "r", "schedule": "cron(0 3 * * *)"}],
    }
    assert main(["--config", str(write(tmp_path, bad)), "validate"]) == 2
    err = capsys.readouterr().err
    assert "services[0].containers.app.tags: 'v 1' is not a tag glob" in err
    assert "jobs[0].schedule: cron needs 6 fields" in err


def test_plan_event_shows_what_a_push_would_do_and_changes_nothing(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a service on web:v0 and an image pushed whose event we have as a file
    sandbox.cluster("prod")
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
    event = write(tmp_path, json.dumps(sandbox.push("web", "v1")), "event.json")
    # WHEN ecspilot plan --event runs (its own session, here on the same moto)
    code = main(["--config", str(write(tmp_path, CONFIG)), "plan", "--event", str(event)])
    # THEN it prints the would-deploy row and registers nothing
    assert code == 0
    out = capsys.readouterr().out
    assert "dry run of deploy_on_push: push web:v1" in out
    assert "would-deploy" in out
    registered = sandbox.clients.ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"]
    assert len(registered) == 1


def test_plan_with_an_unreadable_event_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["--config", str(write(tmp_path, CONFIG)), "plan", "--event", str(tmp_path / "nope.json")]) == 2
    )
    assert "cannot read event" in capsys.readouterr().err


def test_validate_of_a_config_that_is_not_utf8_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ecspilot.yaml"
    path.write_bytes(b"version: 1\n# r\xe9sum\xe9 in latin-1\n")
    assert main(["--config", str(path), "validate"]) == 2
    assert "not UTF-8" in capsys.readouterr().err
