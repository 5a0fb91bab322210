"""Which function ``ecspilot plan --event`` dry-runs for an event (pure), and the status page's
timeline bars (pure rendering)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from ecspilot.errors import EventError
from ecspilot.interfaces.cli_plan import event_function
from ecspilot.interfaces.status import JobStatus, ServiceStatus
from ecspilot.interfaces.status_html import COLOURS, render
from ecspilot_dev.local import load_event


@pytest.mark.parametrize(
    ("sample", "function"),
    [
        ("ecr_push", "deploy_on_push"),
        ("ecr_push_untagged", "deploy_on_push"),
        ("ecr_push_failure", "deploy_on_push"),
        ("ecr_delete", "deploy_on_push"),
        ("ecs_deployment_completed", "track_deployments"),
        ("ecs_deployment_rolled_back", "track_deployments"),
        ("ecs_task_stopped", "track_deployments"),
        ("ecs_task_failed_to_start", "track_deployments"),
        ("scheduler_run_job", "run_job"),
        ("sqs_jobs_batch", "run_queued_jobs"),
        ("cloudtrail_delete_service", "reconcile"),
        ("cloudtrail_create_cluster", "reconcile"),
    ],
)
def test_every_sample_event_goes_to_the_function_that_handles_it(sample: str, function: str) -> None:
    assert event_function(load_event(sample)) == function


@pytest.mark.parametrize(
    ("event", "function"),
    [
        ({}, "reconcile"),
        ({"trigger": "schedule"}, "reconcile"),
        ({"RequestType": "Create", "ResponseURL": "https://x"}, "reconcile"),
        ({"job": "nightly-report"}, "run_job"),
        ({"detail-type": "Scheduled Event", "source": "aws.events"}, "reconcile"),
    ],
)
def test_direct_invokes_and_other_triggers_are_recognised(event: dict[str, Any], function: str) -> None:
    assert event_function(event) == function


@pytest.mark.parametrize(
    "event",
    [[], "x", {"hello": "world"}, {"Records": []}, {"Records": [{"eventSource": "aws:s3"}]}],
)
def test_anything_else_is_a_bad_event(event: Any) -> None:
    with pytest.raises(EventError, match="not an event ecspilot handles"):
        event_function(event)


def test_the_timeline_draws_one_bar_per_deployment_coloured_by_outcome_in_time_order() -> None:
    records = [
        {"status": "FAILED", "started_at": "2026-11-25T10:00:00Z", "finished_at": "2026-11-25T10:30:00Z"},
        {"status": "COMPLETED", "started_at": "2026-11-25T08:00:00Z", "finished_at": "2026-11-25T08:10:00Z"},
        {"status": "IN_PROGRESS", "started_at": "2026-11-25T11:00:00Z"},
    ]
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    html = render([ServiceStatus("web", "prod", "web")], [JobStatus("r", "prod")], {"prod/web": records}, now)
    bars = re.findall(
        r'data-status="(\w+)"[^>]*style="left:([\d.]+)%;width:([\d.]+)%;background:(#\w+)"', html
    )
    assert [(s, c) for s, _, _, c in bars] == [
        ("COMPLETED", COLOURS["COMPLETED"]),
        ("FAILED", COLOURS["FAILED"]),
        ("IN_PROGRESS", COLOURS["IN_PROGRESS"]),
    ]
    lefts = [float(left) for _, left, _, _ in bars]
    assert lefts == sorted(lefts)
    assert lefts[0] == 0.0
    # the open deployment runs until now: the last bar ends at the right edge
    assert float(bars[-1][1]) + float(bars[-1][2]) == pytest.approx(97, abs=0.1)


def test_text_in_the_page_is_escaped() -> None:
    row = ServiceStatus("web", "prod", "<script>", problem="<b>bad</b>")
    html = render([row], [], {})
    assert "<script>" not in html
    assert "&lt;b&gt;bad&lt;/b&gt;" in html
