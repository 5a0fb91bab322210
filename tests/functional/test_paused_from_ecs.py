"""ECS is the source of truth for paused deployments: ``approve`` / ``reject`` and reconcile find
a service's paused hook through ListServiceDeployments (IN_PROGRESS) and DescribeServiceDeployments
(``lifecycleHookDetails`` AWAITING_ACTION) whether or not its event was recorded, and a recorded
hook follows what ECS says (answered from the console, timed out).

ECS is a Stubber (every request and response validated against the API model; a call not queued
fails the test); DynamoDB, SNS, SQS and CloudWatch are moto's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecspilot.reconcile.runbook import reconcile
from ecspilot.tracking.handler import reconcile_deployments
from ecspilot.tracking.hooks import approve_paused
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.service_deployments import expect_hooks
from tests.faults import Faults
from tests.hook_world import DEPLOYMENT, HOOK, REVISION, TRACK, World, hook_event, world_of

PART = [("deployments", reconcile_deployments)]
QUIET = {"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}}


@pytest.fixture
def world(moto: None, faults: Faults, recorder: CallRecorder) -> Iterator[World]:
    with world_of(faults, recorder) as w:
        yield w


def paused(world: World, status: str = "AWAITING_ACTION", **kw: object) -> None:
    expect_hooks(world.stub, DEPLOYMENT, REVISION, [(HOOK, status)], **kw)  # type: ignore[arg-type]


# --- approve / reject ------------------------------------------------------------------------------


def test_approve_answers_a_paused_hook_whose_event_was_lost(world: World) -> None:
    # GIVEN ECS shows web paused at a hook AWAITING_ACTION, and ecspilot recorded nothing
    rt = world.use({"approval": True})
    paused(world)
    world.expect_answer("CONTINUE")
    # WHEN someone approves
    answered = approve_paused(rt.config, rt.clients, rt.history, "web-live")
    # THEN ECS's hook is continued (the Stubber saw it), and recorded with ECS's timeout action
    assert answered is not None
    assert (answered["hook_id"], answered["action"]) == (HOOK, "CONTINUE")
    assert answered["lifecycle_stage"] == "POST_TEST_TRAFFIC_SHIFT"
    item = world.hook_item()
    assert (item["status"], item["decided_by"], item["timeout_action"]) == ("CONTINUE", "approve", "ROLLBACK")


def test_reject_rolls_back_a_hook_ecs_shows_paused_while_the_record_waits(world: World) -> None:
    rt = world.use({"approval": True})
    invoke(TRACK, hook_event())  # recorded WAITING by its event
    assert world.hook_item()["status"] == "WAITING"
    paused(world)
    world.expect_answer("ROLLBACK")
    answered = approve_paused(rt.config, rt.clients, rt.history, "web-live", "ROLLBACK")
    assert answered is not None
    assert world.hook_item()["status"] == "ROLLBACK"


def test_a_hook_answered_from_the_console_is_not_answered_again_and_its_record_follows_ecs(
    world: World,
) -> None:
    # GIVEN a hook recorded WAITING, then continued from the console: ECS shows no paused hook
    # any more (the deployment went on) and the hook SUCCEEDED
    rt = world.use({"approval": True})
    invoke(TRACK, hook_event())
    expect_hooks(world.stub, DEPLOYMENT, REVISION, [], in_progress=False)
    expect_hooks(world.stub, DEPLOYMENT, REVISION, [(HOOK, "SUCCEEDED")], in_progress=False, listed=False)
    # WHEN someone approves
    answered = approve_paused(rt.config, rt.clients, rt.history, "web-live")
    # THEN nothing awaits (no ContinueServiceDeployment: the Stubber has none queued) and the
    # record says CONTINUE, decided outside ecspilot
    assert answered is None
    item = world.hook_item()
    assert (item["status"], item["decided_by"]) == ("CONTINUE", "outside ecspilot")


def test_approve_with_nothing_paused_in_ecs_answers_nothing(world: World) -> None:
    rt = world.use({"approval": True})
    expect_hooks(world.stub, DEPLOYMENT, REVISION, [], in_progress=False)
    assert approve_paused(rt.config, rt.clients, rt.history, "web-live") is None
    assert world.hook_item() == {}


def test_approve_falls_back_on_the_records_when_ecs_cannot_be_read(world: World, faults: Faults) -> None:
    rt = world.use({"approval": True})
    invoke(TRACK, hook_event())
    faults.fail("ListServiceDeployments", "error", code="AccessDeniedException")
    world.expect_answer("CONTINUE")
    answered = approve_paused(rt.config, rt.clients, rt.history, "web-live")
    assert answered is not None
    assert world.hook_item()["status"] == "CONTINUE"


# --- reconcile: a lost hook event costs at most one period -----------------------------------------


def test_reconcile_answers_a_paused_hook_whose_event_never_arrived(world: World) -> None:
    # GIVEN a gated service whose gates pass, paused in ECS, no event recorded
    rt = world.use(QUIET)
    paused(world)
    world.expect_answer("CONTINUE")
    # WHEN reconcile runs its deployments part
    result = reconcile(rt, parts_to_run=PART)
    # THEN the hook is answered by the gates and recorded
    [action] = result.actions
    assert (action.kind, action.change, action.applied) == ("hook", "update", True)
    assert "answered CONTINUE" in action.detail
    item = world.hook_item()
    assert (item["status"], item["decided_by"]) == ("CONTINUE", "gates")
    assert world.notifications() == []


def test_reconcile_records_a_lost_hook_waiting_and_notifies_once(world: World) -> None:
    rt = world.use({"approval": True, **QUIET})
    paused(world)
    first = reconcile(rt, parts_to_run=PART)
    assert "waits for a person" in first.actions[0].detail
    assert world.hook_item()["status"] == "WAITING"
    [message] = world.notifications()
    assert "ecspilot approve web-live" in message["Message"]
    assert "Unanswered, ECS takes its timeout action: ROLLBACK" in message["Message"]
    # AND the next reconcile sees it waiting: nothing answered, nobody notified again
    paused(world)
    again = reconcile(rt, parts_to_run=PART)
    assert [(a.change, a.applied) for a in again.actions] == [("in-sync", False)]
    assert "waits for approve / reject" in again.actions[0].detail
    assert world.notifications() == []


def test_reconcile_dry_run_says_would_answer_and_writes_nothing(world: World) -> None:
    rt = world.use(QUIET)
    paused(world)
    world.recorder.reset()
    result = reconcile(rt, dry_run=True, parts_to_run=PART)
    [action] = result.actions
    assert (action.change, action.applied) == ("update", False)
    assert action.detail.endswith("would-answer CONTINUE")
    assert world.recorder.writes() == []
    assert world.hook_item() == {}


def test_reconcile_moves_a_waiting_record_whose_hook_timed_out_to_the_timeout_action(world: World) -> None:
    rt = world.use({"approval": True, **QUIET})
    invoke(TRACK, hook_event())
    expect_hooks(world.stub, DEPLOYMENT, REVISION, [], in_progress=False)
    expect_hooks(world.stub, DEPLOYMENT, REVISION, [(HOOK, "TIMED_OUT")], in_progress=False, listed=False)
    result = reconcile(rt, parts_to_run=PART)
    assert [a.detail for a in result.actions] == [f"moved hook {HOOK} WAITING -> ROLLBACK (timeout, per ECS)"]
    assert (world.hook_item()["status"], world.hook_item()["decided_by"]) == ("ROLLBACK", "timeout")


def test_reconcile_and_the_late_event_answer_the_hook_once(world: World) -> None:
    # the late event first, then reconcile: the claim lets one of them answer
    rt = world.use(QUIET)
    world.expect_answer("CONTINUE")
    assert invoke(TRACK, hook_event())["action"] == "CONTINUE"
    paused(world)  # ECS has not moved on yet
    result = reconcile(rt, parts_to_run=PART)
    assert [(a.change, a.detail) for a in result.actions] == [
        ("in-sync", f"hook {HOOK} at POST_TEST_TRAFFIC_SHIFT is CONTINUE")
    ]


# --- ECS's own events of the hook's end: the record follows ----------------------------------------


def test_a_hook_continued_from_the_console_is_followed_from_its_succeeded_event(world: World) -> None:
    from ecspilot.interfaces.cli_plan import plan_event  # noqa: PLC0415

    # GIVEN a hook recorded WAITING for a person
    rt = world.use({"approval": True})
    invoke(TRACK, hook_event())
    # WHEN someone continues it from the console and ECS sends HOOK_SUCCEEDED
    ended = hook_event(name="HOOK_SUCCEEDED")
    data, changed = plan_event(rt, ended, "json")
    out = invoke(TRACK, ended)
    # THEN plan said the record would move, and it did: CONTINUE, decided outside ecspilot
    assert (data["moves"][0]["from"], data["moves"][0]["to"], changed) == ("WAITING", "CONTINUE", True)
    assert out["followed"] == "CONTINUE"
    item = world.hook_item()
    assert (item["status"], item["decided_by"]) == ("CONTINUE", "outside ecspilot")
    # AND a redelivery, or approve afterwards, answers nothing (no ContinueServiceDeployment queued)
    assert "needs no answer" in invoke(TRACK, ended)["ignored"]
    expect_hooks(world.stub, DEPLOYMENT, REVISION, [], in_progress=False)
    assert approve_paused(rt.config, rt.clients, rt.history, "web-live") is None


def test_a_timed_out_hook_takes_the_timeout_action_ecs_gave(world: World) -> None:
    # GIVEN a hook found from ECS by reconcile (its timeout action ROLLBACK read from ECS), waiting
    rt = world.use({"approval": True, **QUIET})
    paused(world)
    reconcile(rt, parts_to_run=PART)
    world.notifications()
    # WHEN ECS times it out
    invoke(TRACK, hook_event(name="HOOK_TIMED_OUT"))
    # THEN the record says what ECS did
    item = world.hook_item()
    assert (item["status"], item["decided_by"]) == ("ROLLBACK", "timeout")


# --- hook sequences, as table rows ------------------------------------------------------------------

# a step: (what, ECS shows the hook AWAITING_ACTION (None: not asked), ContinueServiceDeployment due)
HookStep = tuple[str, bool | None, bool]
HOOK_ROWS = [
    pytest.param(QUIET, [("AWAITING", None, True)], "CONTINUE", "gates", 0, id="event-gates-continue"),
    pytest.param(
        QUIET, [("AWAITING", None, True), ("AWAITING", None, False)], "CONTINUE", "gates", 0, id="event-twice"
    ),
    pytest.param(
        QUIET, [("reconcile", True, True)], "CONTINUE", "gates", 0, id="event-lost-reconcile-answers"
    ),
    pytest.param(
        {"approval": True, **QUIET},
        [("reconcile", True, False), ("reconcile", True, False), ("approve", True, True)],
        "CONTINUE",
        "approve",
        1,
        id="event-lost-waits-notified-once-then-approved",
    ),
    pytest.param(
        {"approval": True},
        [("AWAITING", None, False), ("SUCCEEDED", None, False), ("approve", False, False)],
        "CONTINUE",
        "outside ecspilot",
        1,
        id="answered-from-the-console",
    ),
    pytest.param(
        {"approval": True},
        [("AWAITING", None, False), ("FAILED", None, False), ("FAILED", None, False)],
        "ROLLBACK",
        "outside ecspilot",
        1,
        id="rolled-back-from-the-console-event-twice",
    ),
]


@pytest.mark.parametrize(("gates", "steps", "status", "decided_by", "notified"), HOOK_ROWS)
def test_a_hook_sequence(
    world: World, gates: dict[str, object], steps: list[HookStep], status: str, decided_by: str, notified: int
) -> None:
    rt = world.use(gates)
    for what, awaiting, answers in steps:
        if awaiting is not None:
            paused(world) if awaiting else expect_hooks(
                world.stub, DEPLOYMENT, REVISION, [], in_progress=False
            )
        if answers:
            world.expect_answer("CONTINUE")
        if what == "reconcile":
            reconcile(rt, parts_to_run=PART)
        elif what == "approve":
            approve_paused(rt.config, rt.clients, rt.history, "web-live")
        else:
            invoke(TRACK, hook_event(name="HOOK_AWAITING_ACTION" if what == "AWAITING" else f"HOOK_{what}"))
    # THEN the record ends where ECS did, told once at most; every queued ECS answer was used
    item = world.hook_item()
    assert (item["status"], item["decided_by"]) == (status, decided_by)
    assert len(world.notifications()) == notified
