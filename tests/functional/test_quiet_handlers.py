"""Handlers stay quiet when all is well: no Powertools "No application metrics to publish"
warning on an invocation that publishes none, one debug line for an ignored event."""

from __future__ import annotations

import json
import logging
import warnings

import pytest

from ecspilot.obs import logger
from ecspilot_dev.local import invoke, load_event
from tests.conftest import MakeRuntime

CONFIG = {"version": 1, "services": [], "jobs": []}


@pytest.fixture
def debug_logs() -> object:
    before = logger.log_level
    logger.setLevel("DEBUG")
    yield
    logger.setLevel(before)


def test_an_ignored_running_task_event_warns_nothing_and_logs_one_debug_line(
    make_runtime: MakeRuntime, debug_logs: object, caplog: pytest.LogCaptureFixture
) -> None:
    make_runtime(CONFIG)
    caplog.set_level(logging.DEBUG)
    event = load_event("ecs_task_stopped", {"lastStatus": "RUNNING"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke("track_deployments", event)
    assert result == {"ignored": "task is RUNNING, not STOPPED"}
    assert [str(w.message) for w in caught] == []
    # (the logger's handler writes to the stdout of its creation: its records are read from caplog)
    ignored = [r for r in caplog.records if r.getMessage() == "event ignored"]
    assert [(r.levelname, r.__dict__.get("reason")) for r in ignored] == [
        ("DEBUG", "task is RUNNING, not STOPPED")
    ]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_an_invocation_with_metrics_still_publishes_them(
    make_runtime: MakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    make_runtime(CONFIG)
    # an untagged manifest is ignored and counted (EventsIgnored): the metric is flushed as EMF
    invoke("deploy_on_push", load_event("ecr_push_untagged"))
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["EventsIgnored"] for m in emf] == [[1.0]]


def test_a_reconcile_that_publishes_no_metric_warns_nothing_where_powertools_decorator_would(
    make_runtime: MakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    from ecspilot.obs import metrics  # noqa: PLC0415

    make_runtime(CONFIG)
    # WHEN the reconcile handler runs on an empty config (nothing to count)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        invoke("reconcile", {})
    # THEN no warning and no empty EMF document
    assert [str(w.message) for w in caught] == []
    assert '"_aws"' not in capsys.readouterr().out
    # AND Powertools' own decorator, which the handlers used before, warns on the same emptiness
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics.log_metrics(lambda event, context: {})({}, None)
    assert any("No application metrics to publish" in str(w.message) for w in caught)
