"""Pause hooks: the tracker answers a deployment paused at a PAUSE hook from the service's gates,
and ``approve`` / ``reject`` answer the ones that wait for a person.

moto implements neither ContinueServiceDeployment nor DescribeServiceDeployments /
DescribeServiceRevisions: an ECS client wrapped in botocore's Stubber answers them (every request
is validated against the real API model) and fails the test on any call it was not told to
expect, so "Continue is called once" is checked by the Stubber's queue. DynamoDB, SNS, SQS,
CloudWatch and ECR (the scan findings) are moto's. Faults are injected with ``tests.faults``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ecspilot.domain.hook_events import EcsHookStateChangeEvent
from ecspilot.errors import HookError, NothingPausedError
from ecspilot.interfaces import runtime
from ecspilot.tracking.hooks import HookTracker, approve_paused
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION
from ecspilot_dev.service_deployments import OperationStubber
from tests.faults import Faults
from tests.hook_world import DIGEST, HOOK, PREFIX, TRACK, World, hook_event, world_of
from tests.races import race
from tests.scans import scanned


@pytest.fixture
def world(moto: None, faults: Faults, recorder: CallRecorder) -> Iterator[World]:
    with world_of(faults, recorder) as w:
        yield w


# --- the gates decide by themselves ------------------------------------------------------------


def test_a_clean_image_and_quiet_alarms_continue_the_paused_deployment_by_themselves(world: World) -> None:
    # GIVEN a service gated on its image scan and on an alarm quiet for 10 minutes; the image is
    # clean and the alarm has not moved for 11 minutes (the tracker's clock is 11 minutes on)
    rt = world.use(
        {"image_scan": {"max_severity": "HIGH"}, "alarms": {"names": ["web-5xx"], "quiet_minutes": 10}}
    )
    scanned(world.clients.ecr, "web", DIGEST, {"HIGH": 3, "MEDIUM": 1})
    world.expect_images()
    world.expect_answer("CONTINUE")
    tracker = HookTracker(
        rt.config, rt.clients, rt.history, world.topic, now=lambda: datetime.now(UTC) + timedelta(minutes=11)
    )
    # WHEN the deployment pauses at its hook
    event = EcsHookStateChangeEvent.model_validate(hook_event())
    out = tracker.hook_event(event)
    # THEN ecspilot continued it (the Stubber saw exactly one CONTINUE), and the hook is recorded
    assert out["action"] == "CONTINUE"
    item = world.hook_item()
    assert item["status"] == "CONTINUE"
    assert item["decided_by"] == "gates"
    assert world.notifications() == []  # nothing to tell anyone


def test_a_critical_finding_rolls_the_paused_deployment_back_and_says_why(world: World) -> None:
    # GIVEN max_severity HIGH and an enhanced scan with 2 CRITICAL findings
    world.use({"image_scan": {"max_severity": "HIGH"}})
    scanned(world.clients.ecr, "web", DIGEST, {"CRITICAL": 2, "HIGH": 5}, enhanced=True)
    world.expect_images()
    world.expect_answer("ROLLBACK")
    # WHEN the hook event arrives through the real handler
    out = invoke(TRACK, hook_event())
    # THEN ROLLBACK, with the reason, recorded and notified
    assert out["action"] == "ROLLBACK"
    assert "2 CRITICAL" in out["reasons"][0]
    assert world.hook_item()["status"] == "ROLLBACK"
    [message] = world.notifications()
    assert "rolled back" in message["Subject"]
    assert "2 CRITICAL" in message["Message"]


def test_an_alarm_in_alarm_now_rolls_the_paused_deployment_back(world: World) -> None:
    world.use({"alarms": {"names": ["web-5xx"], "quiet_minutes": 5}})
    world.clients.cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx")
    world.expect_answer("ROLLBACK")
    out = invoke(TRACK, hook_event())
    assert out["action"] == "ROLLBACK"
    assert out["reasons"] == ["alarm web-5xx is in ALARM"]


# --- the gates cannot decide: a person does ---------------------------------------------------------


def test_approval_true_waits_notifies_and_approve_continues_the_waiting_hook(world: World) -> None:
    # GIVEN a service whose gates pass but which asks for approval
    rt = world.use({"image_scan": {"max_severity": "HIGH"}, "approval": True})
    scanned(world.clients.ecr, "web", DIGEST, {"LOW": 1})
    world.expect_images()
    # WHEN the deployment pauses
    out = invoke(TRACK, hook_event())
    # THEN nothing is answered yet (no Continue queued in the Stubber), the hook waits, and
    # whoever subscribed is told how to answer
    assert out["action"] == "WAIT"
    assert world.hook_item()["status"] == "WAITING"
    [message] = world.notifications()
    assert "ecspilot approve web-live" in message["Message"]
    # WHEN someone approves
    world.expect_answer("CONTINUE")
    answered = approve_paused(rt.config, rt.clients, rt.history, "web-live")
    # THEN the waiting hook is continued, once, and nothing waits any more
    assert answered is not None
    assert answered["action"] == "CONTINUE"
    assert answered["hook_id"] == HOOK
    assert world.hook_item()["decided_by"] == "approve"
    assert approve_paused(rt.config, rt.clients, rt.history, "web-live") is None


def test_reject_rolls_the_waiting_hook_back(world: World) -> None:
    rt = world.use({"approval": True})
    invoke(TRACK, hook_event())
    world.expect_answer("ROLLBACK")
    answered = approve_paused(rt.config, rt.clients, rt.history, "web-live", "ROLLBACK")
    assert answered is not None
    assert world.hook_item()["status"] == "ROLLBACK"
    assert world.hook_item()["decided_by"] == "reject"


def test_alarms_not_quiet_long_enough_wait_for_a_person_instead_of_guessing(world: World) -> None:
    # GIVEN an alarm that changed state within the 10 minutes (moto's alarm was just created)
    world.use({"alarms": {"names": ["web-5xx"], "quiet_minutes": 10}})
    out = invoke(TRACK, hook_event())
    assert out["action"] == "WAIT"
    assert any("web-5xx" in r for r in out["reasons"])
    assert world.hook_item()["status"] == "WAITING"


def test_a_scan_not_complete_waits_and_a_scan_that_cannot_be_read_never_passes(
    world: World, faults: Faults
) -> None:
    world.use({"image_scan": {"max_severity": "HIGH"}})
    scanned(world.clients.ecr, "web", DIGEST, status="IN_PROGRESS")
    world.expect_images()
    out = invoke(TRACK, hook_event("hook-1"))
    assert out["action"] == "WAIT"
    assert out["reasons"] == [f"scan not complete: web@{DIGEST[:19]} is being scanned"]
    # AND a scan read throttled beyond retries: not passed, a person decides
    faults.fail("DescribeImageScanFindings", "error", service="ecr")
    world.expect_images()
    out = invoke(TRACK, hook_event("hook-2"))
    assert out["action"] == "WAIT"
    assert out["reasons"][0].startswith("image scan unreadable")


def test_a_service_without_gates_waits_for_approval_and_an_unknown_service_is_ignored(world: World) -> None:
    world.use(None)
    assert invoke(TRACK, hook_event())["action"] == "WAIT"
    other = hook_event("hook-x")
    other["detail"]["serviceDeploymentArn"] = f"{PREFIX}:service-deployment/prod/api/abc"
    assert "not in the config" in invoke(TRACK, other)["ignored"]
    assert "needs no answer" in invoke(TRACK, hook_event("hook-y", "HOOK_SUCCEEDED"))["ignored"]


def test_approve_with_nothing_waiting_returns_none_and_an_unknown_service_is_an_error(world: World) -> None:
    rt = world.use({"approval": True})
    assert approve_paused(rt.config, rt.clients, rt.history, "web-live") is None
    with pytest.raises(NothingPausedError):
        approve_paused(rt.config, rt.clients, rt.history, "nope")


# --- once per hook: duplicates, retries, races ----------------------------------------------------


def test_a_redelivered_hook_event_does_not_answer_the_hook_twice(world: World) -> None:
    # GIVEN a hook the gates answered (one CONTINUE in the Stubber's queue)
    world.use({"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}})
    world.expect_answer("CONTINUE")
    assert invoke(TRACK, hook_event())["action"] == "CONTINUE"
    # WHEN EventBridge delivers the same event again
    out = invoke(TRACK, hook_event())
    # THEN it is ignored: a second ContinueServiceDeployment would fail the Stubber
    assert out["ignored"] == f"hook {HOOK} is already CONTINUE"


def test_racing_deliveries_of_one_hook_event_answer_it_once(world: World) -> None:
    world.use({"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}})
    world.expect_answer("CONTINUE")
    results = race(lambda: invoke(TRACK, hook_event()), lambda: invoke(TRACK, hook_event()))
    assert not [r for r in results if isinstance(r, Exception)]
    assert sorted("action" in r for r in results) == [False, True]


def test_a_continue_throttled_past_retries_fails_the_invocation_and_the_retry_answers_it(
    world: World, faults: Faults
) -> None:
    # GIVEN ContinueServiceDeployment throttled beyond botocore's retries, once
    # (the Stubber holds one answer: the fault answers first, so the answer is left for the retry)
    world.use({"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}})
    world.expect_answer("CONTINUE")
    rule = faults.fail("ContinueServiceDeployment", "error", times=1)
    # WHEN the hook event arrives: the invocation fails (EventBridge retries it, then the DLQ)
    with pytest.raises(HookError, match="ThrottlingException"):
        invoke(TRACK, hook_event())
    assert rule.fired == 1
    assert world.hook_item()["status"] == "RETRY"
    # THEN the retry answers it, once
    assert invoke(TRACK, hook_event())["action"] == "CONTINUE"
    assert world.hook_item()["status"] == "CONTINUE"


def test_a_failed_approve_leaves_the_hook_waiting_for_the_next_one(world: World, faults: Faults) -> None:
    rt = world.use({"approval": True})
    invoke(TRACK, hook_event())
    world.expect_answer("CONTINUE")
    faults.fail("ContinueServiceDeployment", "network", times=1)
    with pytest.raises(HookError, match="Could not connect"):
        approve_paused(rt.config, rt.clients, rt.history, "web-live")
    assert world.hook_item()["status"] == "WAITING"
    assert approve_paused(rt.config, rt.clients, rt.history, "web-live") is not None


def test_two_people_approving_at_once_continue_the_hook_once(world: World) -> None:
    rt = world.use({"approval": True})
    invoke(TRACK, hook_event())
    world.expect_answer("CONTINUE")
    results = race(
        lambda: approve_paused(rt.config, rt.clients, rt.history, "web-live"),
        lambda: approve_paused(rt.config, rt.clients, rt.history, "web-live"),
    )
    assert not [r for r in results if isinstance(r, Exception)]
    assert sorted(r is None for r in results) == [False, True]
    assert world.hook_item()["status"] == "CONTINUE"


def test_a_hook_record_write_failing_before_the_answer_fails_the_invocation_without_answering(
    world: World, faults: Faults
) -> None:
    # GIVEN the state table refusing the claim (throttled beyond retries)
    world.use({"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}})
    faults.fail("UpdateItem", "error", service="dynamodb", times=1)
    # WHEN the hook event arrives THEN the invocation fails and nothing was answered (the
    # Stubber has no answer queued: a Continue would fail the test differently)
    with pytest.raises(HookError):
        invoke(TRACK, hook_event())
    world.expect_answer("CONTINUE")
    assert invoke(TRACK, hook_event())["action"] == "CONTINUE"


def test_the_template_rule_delivers_paused_and_ended_hook_events_of_this_account_only(world: World) -> None:
    # GIVEN the tracker's HookStateChange rule exactly as template.yaml writes it, delivering to a queue
    from tests.template import event_patterns, resolve_pseudo  # noqa: PLC0415

    pattern = resolve_pseudo(event_patterns("TrackDeploymentsFunction")["HookStateChange"], ACCOUNT, REGION)
    events, sqs = world.clients.get("events"), world.clients.sqs
    inbox = sqs.create_queue(QueueName="hook-rule")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="hook-state-change", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="hook-state-change", Targets=[{"Id": "inbox", "Arn": arn}])
    # WHEN ECS puts a paused hook's event, its end's, and an in-progress one on the default bus
    for name in ("HOOK_AWAITING_ACTION", "HOOK_SUCCEEDED", "HOOK_IN_PROGRESS"):
        event = hook_event(name=name)
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Resources": event["resources"],
            "Detail": json.dumps(event["detail"]),
        }
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    # THEN the paused one and its end reach the tracker (the record follows ECS), not the progress
    delivered = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    names = sorted(json.loads(m["Body"])["detail"]["eventName"] for m in delivered)
    assert names == ["HOOK_AWAITING_ACTION", "HOOK_SUCCEEDED"]


def test_a_hook_held_by_an_invocation_that_died_is_taken_again_once_its_hold_expires(world: World) -> None:
    # GIVEN an invocation that claimed the hook at t=1000 and died (a Lambda timeout: no RETRY mark)
    from ecspilot.aws.hook_state import HOLD_SECONDS, HookRecords, hook_key  # noqa: PLC0415

    rt = world.use(None)
    key = hook_key("prod", "web", HOOK)
    clock = [1000.0]
    records = HookRecords(rt.history, clock=lambda: clock[0])
    assert records.claim(key, {"hook_id": HOOK}) == {}
    # WHEN the retry comes while the hold lasts THEN it stays out (the holder may still answer)
    clock[0] += HOLD_SECONDS - 1
    assert records.claim(key, {"hook_id": HOOK}) is None
    # AND once the hold has expired THEN the retry takes the hook
    clock[0] += 2
    assert records.claim(key, {"hook_id": HOOK}) is not None
    assert world.hook_item()["status"] == "EVALUATING"


# --- ecspilot plan --event: what the tracker would answer, read-only -----------------------------


@pytest.mark.parametrize(
    ("findings", "action", "change"),
    [({"LOW": 1}, "CONTINUE", "would-answer"), ({"CRITICAL": 1}, "ROLLBACK", "would-answer")],
)
def test_plan_event_previews_the_answer_to_a_paused_deployment_and_writes_nothing(
    world: World, findings: dict[str, int], action: str, change: str
) -> None:
    from ecspilot.interfaces.cli_plan import plan_event  # noqa: PLC0415

    # GIVEN a service gated on its image scan
    rt = world.use({"image_scan": {"max_severity": "HIGH"}})
    scanned(world.clients.ecr, "web", DIGEST, findings)
    world.expect_images()  # the reads the gates need; no ContinueServiceDeployment is queued
    world.recorder.reset()
    # WHEN the hook event is planned
    data, changed = plan_event(rt, hook_event(), "json")
    # THEN the answer the tracker would give is shown, a change, with nothing written or answered
    assert data["function"] == "track_deployments"
    assert data["moves"] == [
        {"record": f"hook {HOOK} of prod/web", "from": "(new)", "to": action, "change": change}
    ]
    assert changed is True
    assert world.recorder.writes() == []
    assert "DescribeImageScanFindings" in world.recorder.ops()
    assert world.hook_item() == {}


def test_plan_event_of_a_hook_already_answered_is_unchanged(world: World) -> None:
    from ecspilot.interfaces.cli_plan import plan_event  # noqa: PLC0415

    rt = world.use({"image_scan": {"max_severity": "HIGH"}})
    scanned(world.clients.ecr, "web", DIGEST, {"LOW": 1})
    world.expect_images()
    world.expect_answer("CONTINUE")
    HookTracker(rt.config, rt.clients, rt.history, world.topic).hook_event(
        EcsHookStateChangeEvent.model_validate(hook_event())
    )
    data, changed = plan_event(rt, hook_event(), "json")
    assert data["moves"][0]["change"] == "unchanged"
    assert data["moves"][0]["to"] == "CONTINUE"
    assert changed is False


# --- the signature gate (issue 27) ---------------------------------------------------------------

PROFILE = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/release"


def signed(world: World, *statuses: dict[str, str]) -> OperationStubber:
    """DescribeImageSigningStatus of the paused image (moto lacks it: a Stubber for that one
    operation of the runtime's ECR client, validated against botocore's model)."""
    stub = OperationStubber(runtime.current().clients.ecr, ("DescribeImageSigningStatus",))
    stub.add_response(
        "describe_image_signing_status",
        {"signingStatuses": list(statuses)},
        {"repositoryName": "web", "imageId": {"imageDigest": DIGEST}},
    )
    return stub


@pytest.mark.parametrize(
    ("statuses", "action", "reason"),
    [
        ([{"signingProfileArn": PROFILE, "status": "COMPLETE"}], "CONTINUE", "every gate passed"),
        ([{"signingProfileArn": PROFILE, "status": "IN_PROGRESS"}], None, "IN_PROGRESS"),
        (
            [{"signingProfileArn": PROFILE, "status": "FAILED", "failureReason": "key revoked"}],
            "ROLLBACK",
            "key revoked",
        ),
        ([], "ROLLBACK", "no signing status"),
    ],
)
def test_the_signature_gate_at_a_pause_hook(
    statuses: list[dict[str, str]], action: str | None, reason: str, world: World
) -> None:
    world.use({"signature": {"profiles": [PROFILE]}})
    world.expect_images()
    if action:
        world.expect_answer(action)
    with signed(world, *statuses) as stub:
        out = invoke(TRACK, hook_event())
        stub.assert_no_pending_responses()
    assert out["action"] == (action or "WAIT")
    assert any(reason in r for r in out["reasons"]), out["reasons"]
