"""``ecspilot demo`` checks itself: every chapter plays in a world of its own, and a step whose
outcome differs from its narration (or a step that narrates without checking) fails the demo.
``make test`` runs the demo through these tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ecspilot_dev import demo
from ecspilot_dev.demo import CHAPTERS, JOBS, Chapter, Demo
from ecspilot_dev.local import REPO_ROOT, invoke, load_event

NIGHTLY_FIRING = "2026-11-25T02:00:00Z"


def test_the_demo_exits_0_when_every_narrated_outcome_happened() -> None:
    # WHEN a user runs the demo, as `make demo` does (its own process, its own local AWS)
    done = subprocess.run(
        [sys.executable, "-m", "ecspilot", "demo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # THEN it completes: every step's checks held
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("Demo complete.")
    assert "demo failed" not in done.stdout
    # AND the jobs chapter's firings are its own (they used to be the tracking chapter's: duplicate)
    assert f"firing {NIGHTLY_FIRING}: started" in done.stdout
    assert "firing 2026-11-26T02:00:00Z: skipped" in done.stdout
    # AND every chapter was narrated
    assert done.stdout.count("\n=== ") == len(CHAPTERS)


def test_every_chapter_stands_alone_whatever_ran_before_it(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the chapters run in the reverse order (nothing a later chapter leaves can leak back)
    code = demo.run(chapters=list(reversed(CHAPTERS)))
    # THEN every narrated outcome still holds
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert out.rstrip().endswith("Demo complete.")


def _replay_the_first_night(d: Demo) -> None:
    """A chapter that fires nightly-report's first night again in the jobs chapter's world and
    narrates it as a fresh start: what the jobs chapter did when the tracking chapter's firings
    were left in the state table."""
    d.step("Scheduler fires nightly-report: it starts a task")
    result = invoke("run_job", load_event("scheduler_run_job", scheduled_time=NIGHTLY_FIRING))
    d.check(result["outcome"] == "started", f"started, got {result['outcome']}")


def test_a_step_whose_outcome_differs_from_its_narration_fails_the_demo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a chapter that continues the jobs chapter and tells a firing it already used as new
    shared = Chapter("shared-firings", _replay_the_first_night, after=JOBS)
    # WHEN the demo runs it
    code = demo.run(chapters=[shared])
    # THEN the demo fails (exit 1) and says which check of which step did not hold
    out = capsys.readouterr().out
    assert code == 1
    assert "demo failed: check failed: started, got duplicate" in out
    assert "(step: Scheduler fires nightly-report: it starts a task)" in out
    assert "Demo complete." not in out


def test_the_same_firing_in_a_world_of_its_own_is_told_rightly(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the same kind of step, for a night nobody fired, once last night's tasks exited: the
    # failure above comes from the firing already used, not from the step
    def fresh(d: Demo) -> None:
        d.step("Scheduler fires nightly-report for a night nobody fired: it starts a task")
        event = load_event("scheduler_run_job", scheduled_time="2026-12-01T02:00:00Z")
        for task in d.clients.ecs.list_tasks(cluster="batch")["taskArns"]:
            d.clients.ecs.stop_task(cluster="batch", task=task, reason="test: exited")
        result = invoke("run_job", event)
        d.check(result["outcome"] == "started", f"started, got {result['outcome']}")

    # WHEN the demo runs it
    code = demo.run(chapters=[Chapter("fresh-firing", fresh, after=JOBS)])
    # THEN it completes
    out = capsys.readouterr().out
    assert code == 0, out[-2000:]


def test_a_step_that_narrates_without_checking_fails_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a chapter whose step tells something and checks nothing
    def unchecked(d: Demo) -> None:
        d.step("Something wonderful happens")
        d.note("trust me")

    # WHEN the demo runs it
    code = demo.run(chapters=[Chapter("unchecked", unchecked)])
    # THEN the demo fails and names the step
    out = capsys.readouterr().out
    assert code == 1
    assert "demo failed: step not checked: Something wonderful happens" in out


def test_a_step_narrated_as_a_command_must_show_that_commands_real_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a step narrated as `ecspilot plan` that prints a look-alike table instead of running plan
    def look_alike(d: Demo) -> None:
        d.step("ecspilot plan: the dry run shows nothing to do")
        d.note("TARGET  CHANGE  DETAIL")
        d.check(True, "looks like plan")

    # WHEN the demo runs it
    code = demo.run(chapters=[Chapter("look-alike", look_alike)])
    # THEN the demo fails, naming the command it narrated without running
    out = capsys.readouterr().out
    assert code == 1
    assert "demo failed: step narrated as `ecspilot plan` without running it" in out

    # AND the same step running the real plan (header, rows, summary) passes
    def real(d: Demo) -> None:
        d.step("ecspilot plan: the dry run shows nothing to do")
        d.plan({})

    assert demo.run(chapters=[Chapter("real-plan", real)]) == 0, capsys.readouterr().out[-2000:]
