"""The chat answer path: a button's payload through the real ``chat_answer`` handler, answered by
the CLI verbs' own core. ECS's ContinueServiceDeployment and deployment reads go to botocore's
Stubber (moto lacks them; the Stubber validates every request against the API model and fails on
any call it was not told to expect, so "answered once" is checked by its queue); DynamoDB, SNS,
ECR and CloudWatch are moto's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecspilot.domain.chat import parse_answer
from ecspilot.errors import ChatAnswerError
from ecspilot.interfaces import runtime
from ecspilot.interfaces.chat_answer import answer_from_chat
from ecspilot.interfaces.runtime import Runtime
from ecspilot.tracking.hooks import approve_paused
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION, fake_digest
from tests.chat import ChatTopic
from tests.conftest import TABLE
from tests.faults import Faults
from tests.hook_world import DEPLOYMENT, HOOK, World, hook_event
from tests.races import race
from tests.scans import scanned

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecspilot-chat-slack"
APPROVE = {"action": "approve", "service": "prod/web", "hook": HOOK}
REJECT = {"action": "reject", "service": "web-live", "hook": HOOK}


@pytest.fixture
def world(moto: None, faults: Faults, recorder: CallRecorder) -> Iterator[World]:
    session = boto3.Session(region_name=REGION)
    faults.attach(session)
    recorder.attach(session)
    with Stubber(session.client("ecs")) as stub:
        yield World(session, stub, recorder)
        stub.assert_no_pending_responses()


def waiting(world: World) -> Runtime:
    """web-live's deployment paused at its hook, waiting for a person; chat answers as ROLE."""
    rt = world.use({"image_scan": {"max_severity": "HIGH"}, "approval": True})
    scanned(world.clients.ecr, "web", fake_digest("web:v2"), {"LOW": 1})
    world.expect_images()
    assert invoke("track_deployments", hook_event())["action"] == "WAIT"
    rt = dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, chat_role_arns=(ROLE,)))
    runtime.reset(rt)
    return rt


def claim_item(world: World, service: str = "web-live", subject: str = HOOK) -> dict[str, Any]:
    from ecspilot.aws.dynamo import deserialize  # noqa: PLC0415

    item = world.clients.dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": f"CHAT#{service}"}, "sk": {"S": f"ANSWER#{subject}"}}
    ).get("Item")
    return deserialize(item) if item else {}


# --- answered once -------------------------------------------------------------------------------


def test_approve_from_chat_continues_the_hook_once_and_records_chat_and_the_role(world: World) -> None:
    # GIVEN a hook waiting for a person
    waiting(world)
    world.expect_answer("CONTINUE")
    # WHEN Approve is pressed (the payload names the service as the notification does)
    out = invoke("chat_answer", APPROVE)
    # THEN ContinueServiceDeployment CONTINUE, once (the Stubber's queue), and one line for the chat
    assert out["outcome"] == "answered"
    assert out["answer"].startswith("continued web-live: the deployment paused at")
    assert "\n" not in out["answer"]
    hook = world.hook_item()
    assert hook["status"] == "CONTINUE"
    assert hook["decided_by"] == f"approve from chat (chat role {ROLE})"
    # AND the audit record says chat and the role
    audit = claim_item(world)
    assert (audit["status"], audit["origin"], audit["action"], audit["by"]) == (
        "ANSWERED",
        "chat",
        "approve",
        f"chat role {ROLE}",
    )
    # WHEN it is pressed again THEN nothing more is sent: already answered, with the first answer
    again = invoke("chat_answer", APPROVE)
    assert again["outcome"] == "already-answered"
    assert again["answer"] == f"already answered: {out['answer']}"


def test_two_people_pressing_approve_and_reject_on_real_threads_answer_once(
    world: World, recorder: CallRecorder
) -> None:
    waiting(world)
    # one answer queued, whichever it is (still validated against the API model): a second
    # ContinueServiceDeployment would find none and fail its press
    world.stub.add_response("continue_service_deployment", {"serviceDeploymentArn": DEPLOYMENT})
    recorder.reset()
    presses = [APPROVE, REJECT, APPROVE, REJECT]
    results = race(*[lambda p=p: invoke("chat_answer", p) for p in presses])
    outcomes = sorted(r["outcome"] for r in results)
    assert outcomes == ["already-answered", "already-answered", "already-answered", "answered"], results
    [winner] = [r for r in results if r["outcome"] == "answered"]
    action = "CONTINUE" if winner["answer"].startswith("continued") else "ROLLBACK"
    [sent] = recorder.params("ContinueServiceDeployment")
    assert (sent["hookId"], sent["action"]) == (HOOK, action)
    assert world.hook_item()["status"] == action


def test_a_lost_reply_of_the_claim_still_answers_once(world: World, faults: Faults) -> None:
    # GIVEN the claim's UpdateItem applied but its reply lost (botocore sends it again: the
    # condition now fails, and the token shows the press it was its own claim)
    waiting(world)
    world.expect_answer("CONTINUE")
    lost = faults.fail(
        "UpdateItem",
        "lost-reply",
        times=1,
        when=lambda p: str(p.get("Key", {}).get("pk", {})).find("CHAT#") >= 0,
    )
    out = invoke("chat_answer", APPROVE)
    assert lost.fired == 1
    assert out["outcome"] == "answered"
    assert invoke("chat_answer", APPROVE)["outcome"] == "already-answered"


def test_a_failed_continue_answers_nothing_and_a_second_press_answers(world: World) -> None:
    waiting(world)
    world.stub.add_client_error("continue_service_deployment", "ThrottlingException", http_status_code=400)
    out = invoke("chat_answer", APPROVE)
    assert out["outcome"] == "failed"
    assert "press again" in out["answer"]
    assert world.hook_item()["status"] == "WAITING"
    assert claim_item(world)["status"] == "OPEN"
    world.expect_answer("CONTINUE")
    assert invoke("chat_answer", APPROVE)["outcome"] == "answered"


# --- refused --------------------------------------------------------------------------------------


def test_a_hook_answered_from_the_cli_first_is_refused_in_chat(world: World) -> None:
    rt = waiting(world)
    world.expect_answer("ROLLBACK")
    assert approve_paused(rt.config, rt.clients, rt.history, "web-live", "ROLLBACK") is not None
    out = invoke("chat_answer", APPROVE)
    assert out == {"outcome": "refused", "answer": f"web-live: hook {HOOK} no longer waits for an answer"}
    assert claim_item(world)["status"] == "OPEN"  # refused: nothing recorded as answered


def test_another_hook_than_the_waiting_one_is_refused(world: World) -> None:
    waiting(world)
    out = invoke("chat_answer", {**APPROVE, "hook": "ecs-pause-another"})
    assert out["outcome"] == "refused"
    assert world.hook_item()["status"] == "WAITING"


def test_unfreeze_of_a_freeze_that_is_not_active_is_refused_and_lifts_nothing(
    world: World, recorder: CallRecorder
) -> None:
    waiting(world)
    recorder.reset()
    out = invoke("chat_answer", {"action": "unfreeze", "service": "web-live", "freeze": "f-1"})
    assert out["outcome"] == "refused"
    assert out["answer"] == "freeze f-1 is no longer active: nothing to lift"
    # only the press's own claim moved (taken, then let go): no freeze item was written
    assert [p["Key"]["pk"]["S"] for p in recorder.params("UpdateItem")] == ["CHAT#FREEZE", "CHAT#FREEZE"]
    assert recorder.writes() == ["UpdateItem", "UpdateItem"]


HOSTILE: list[tuple[Any, str]] = [
    ({}, "action must be one of"),
    ({"action": "deploy", "service": "web", "hook": "h"}, "action must be one of"),
    ({"action": "approve", "hook": "h"}, "service is missing"),
    ({"action": "approve", "service": "web-live"}, "needs the hook or release"),
    ({"action": "approve", "service": ["web"], "hook": "h"}, "service must be a string"),
    ({"action": "approve", "service": "web-live", "hook": "h", "release": "r"}, "not hook, release"),
    ({"action": "rollback", "service": "web-live", "hook": "h"}, "answers a release"),
    ({"action": "approve", "service": "web-live", "hook": "h; rm -rf"}, "not a valid value"),
    ({"action": "approve", "service": "web-live", "hook": "h", "role": "admin"}, "unknown field"),
    ({"action": "approve", "service": "nope", "hook": "h"}, "is not a configured service"),
    ({"action": "approve", "service": "web-live", "digest": "sha256:" + "A" * 64}, "not an image digest"),
    ({"action": "approve", "service": "web-live", "digest": "latest"}, "not an image digest"),
    ({"action": "rollback", "service": "web-live", "digest": "sha256:" + "a" * 64}, "answers a release"),
    ({"action": "unfreeze", "service": "web-live", "digest": "sha256:" + "a" * 64}, "answers a freeze"),
    ({"action": "unfreeze", "service": "web-live", "freeze": "f 1"}, "not a valid value"),
    ("not json", "not JSON"),
    ([1, 2], "must be a JSON object"),
    (None, "must be a JSON object"),
]


@pytest.mark.parametrize(("payload", "why"), HOSTILE)
def test_a_malformed_press_is_refused_with_its_reason_and_touches_nothing(
    payload: Any, why: str, world: World, recorder: CallRecorder
) -> None:
    waiting(world)
    recorder.reset()
    out = invoke("chat_answer", payload)
    assert out["outcome"] == "invalid"
    assert why in out["answer"]
    assert recorder.writes() == []
    with pytest.raises(ChatAnswerError):
        answer_from_chat(payload, runtime.current())


def test_a_valid_press_parses_into_its_answer() -> None:
    press = parse_answer('{"action": "rollback", "service": "prod/web", "release": "ecs-svc/1"}')
    assert (press.action, press.service, press.subject) == ("rollback", "prod/web", "ecs-svc/1")
    assert parse_answer({**APPROVE, "release": ""}).subject == HOOK  # an empty variable is absent


def test_an_answered_press_is_told_in_the_notifications_thread(world: World) -> None:
    chat = ChatTopic(world.clients, world.topic)
    waiting(world)
    world.expect_answer("CONTINUE")
    invoke("chat_answer", APPROVE)
    [paused, answered] = chat.received()
    assert answered.card["metadata"]["threadId"] == paused.card["metadata"]["threadId"]
    assert answered.context["status"] == "ANSWERED"
    assert answered.email.startswith("continued web-live")
    assert DEPLOYMENT.rsplit("/", 1)[-1] in answered.card["metadata"]["threadId"]


# --- rollback and promotions, through the same core as `ecspilot rollback` and `approve` ---------


@pytest.fixture
def web_prod(sandbox: Any) -> Any:
    sandbox.cluster("prod", instances_per_zone=1, zones=("us-east-1a",))
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
    return sandbox


def test_rollback_from_chat_rolls_a_failed_deployment_back_once_and_refuses_a_stale_one(
    web_prod: Any, make_runtime: Any
) -> None:
    from ecspilot_dev.service_deployments import OperationStubber  # noqa: PLC0415
    from tests.functional.test_rollback import CONFIG, completed, expect_open, running  # noqa: PLC0415
    from tests.functional.test_track_deployments import deployment_event  # noqa: PLC0415

    rt = make_runtime(CONFIG, chat_role_arns=(ROLE,))
    with OperationStubber(rt.clients.ecs) as stub:
        v1 = completed(web_prod, rt, "v1")
        invoke("deploy_on_push", web_prod.push("web", "v2"))
        v2 = next(r for r in rt.history.deployments("prod", "web") if r["image_tag"] == "v2")
        invoke("track_deployments", deployment_event("ecs_deployment_failed", v2["deployment_id"]))
        # a press naming an older deployment than the newest is refused (nothing read from ECS)
        stale = invoke(
            "chat_answer", {"action": "rollback", "service": "prod/web", "release": v1["deployment_id"]}
        )
        assert stale["outcome"] == "refused"
        # WHEN Rollback is pressed on v2's failure notification
        expect_open(stub)
        press = {"action": "rollback", "service": "prod/web", "release": v2["deployment_id"]}
        out = invoke("chat_answer", press)
        # THEN v1 runs again, the rollback record says chat and the role; a second press is told
        assert out["outcome"] == "answered", out
        assert running(rt) == v1["to_task_definition"]
        rolled = next(r for r in rt.history.deployments("prod", "web") if r["trigger"] == "rollback")
        assert rolled["rollback_reason"] == f"rollback from chat (chat role {ROLE})"
        assert invoke("chat_answer", press)["outcome"] == "already-answered"
        assert stub.pending == 0


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_release_awaiting_approval_is_approved_or_rejected_from_chat_once(
    action: str, sandbox: Any, make_runtime: Any
) -> None:
    from tests.promotion_world import World as PromotionWorld  # noqa: PLC0415
    from tests.promotion_world import config  # noqa: PLC0415

    world = PromotionWorld(sandbox, make_runtime, config(bake=0, approval=True), chat_role_arns=(ROLE,))
    v1 = world.release("v1")
    press = {"action": action, "service": "web-prod", "release": v1["deployment_id"]}
    out = invoke("chat_answer", press)
    assert out["outcome"] == "answered", out
    promoted = world.images()["app"].endswith(v1["image_digest"])
    assert promoted == (action == "approve")
    # a second press of either button is already answered; a rejected release stays unpromoted
    other = {**press, "action": "reject" if action == "approve" else "approve"}
    assert invoke("chat_answer", other)["outcome"] == "already-answered"
    assert world.images()["app"].endswith(v1["image_digest"]) == promoted


def test_a_release_that_no_longer_waits_is_refused(sandbox: Any, make_runtime: Any) -> None:
    from tests.promotion_world import World as PromotionWorld  # noqa: PLC0415
    from tests.promotion_world import config  # noqa: PLC0415

    world = PromotionWorld(sandbox, make_runtime, config(bake=0, approval=True), chat_role_arns=(ROLE,))
    v1 = world.release("v1")
    world.release("v2")  # v2 now waits: v1's button is stale
    out = invoke("chat_answer", {"action": "approve", "service": "web-prod", "release": v1["deployment_id"]})
    assert out["outcome"] == "refused"
    assert "no longer waits" in out["answer"]


def test_a_press_held_by_a_live_invocation_waits_and_one_whose_holder_died_is_taken_over(
    world: World,
) -> None:
    import time  # noqa: PLC0415

    from ecspilot.aws.chat_claims import ChatAnswers  # noqa: PLC0415

    rt = waiting(world)
    # GIVEN a press being answered right now by another invocation
    live = ChatAnswers(rt.history).claim("web-live", HOOK, "reject", "chat role other")
    assert live.won
    out = invoke("chat_answer", APPROVE)
    assert out == {
        "outcome": "already-answered",
        "answer": "already being answered: reject by chat role other",
    }
    # GIVEN instead its holder died (a timeout) long ago: its claim has expired
    world.clients.dynamodb.delete_item(
        TableName=TABLE, Key={"pk": {"S": "CHAT#web-live"}, "sk": {"S": f"ANSWER#{HOOK}"}}
    )
    dead = ChatAnswers(rt.history, clock=lambda: time.time() - 3600).claim("web-live", HOOK, "reject", "x")
    assert dead.won
    world.expect_answer("CONTINUE")
    assert invoke("chat_answer", APPROVE)["outcome"] == "answered"


def test_an_answer_whose_record_write_fails_still_tells_the_chat_and_is_never_sent_twice(
    world: World, faults: Faults
) -> None:
    # GIVEN the write that records the answer fails (throttled past retries) after ECS took it
    waiting(world)
    world.expect_answer("CONTINUE")
    faults.fail(
        "UpdateItem",
        "error",
        times=1,
        when=lambda p: (
            "CHAT#" in str(p.get("Key", {})) and ":token" in p.get("ExpressionAttributeValues", {})
        ),
    )
    out = invoke("chat_answer", APPROVE)
    # THEN the chat is told it was answered, and a later press finds the hook answered
    assert out["outcome"] == "answered"
    assert world.hook_item()["status"] == "CONTINUE"
    assert invoke("chat_answer", APPROVE)["outcome"] == "already-answered"
