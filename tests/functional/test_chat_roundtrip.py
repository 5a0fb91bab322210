"""The round trip: a notification's metadata -> the custom actions of template.yaml (their criteria,
variables and command, parsed from the template) -> the payload a button press sends -> the
chat_answer handler -> exactly one ContinueServiceDeployment (botocore's Stubber validates it
against the ECS API model and fails on any call it was not told to expect); a second click
answers "already answered"."""

from __future__ import annotations

import dataclasses

from ecspilot.interfaces import runtime
from ecspilot_dev.chat import buttons
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION, fake_digest
from tests.chat import ChatTopic
from tests.functional.test_chat_answer import ROLE, world  # noqa: F401 - the Stubber world fixture
from tests.hook_world import HOOK, World, hook_event
from tests.scans import scanned
from tests.template import load_template

FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-ChatAnswerFunction-1a2b3c"


def test_approve_on_a_waiting_hook_round_trips_to_one_continue(world: World) -> None:  # noqa: F811
    # GIVEN a deployment paused at a hook waiting for a person, notified to chat
    chat = ChatTopic(world.clients, world.topic)
    rt = world.use({"image_scan": {"max_severity": "HIGH"}, "approval": True})
    scanned(world.clients.ecr, "web", fake_digest("web:v2"), {"LOW": 1})
    world.expect_images()
    invoke("track_deployments", hook_event())
    runtime.reset(dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, chat_role_arns=(ROLE,))))
    [note] = chat.received()
    # WHEN the chat attaches the template's buttons to it
    shown = buttons(load_template(), note.card, FUNCTION)
    # THEN Approve and Reject, each invoking the answer path with the hook it answers
    assert sorted(b.text for b in shown) == ["Approve", "Reject"]
    approve = next(b for b in shown if b.text == "Approve")
    assert approve.command.startswith(f"lambda invoke --function-name {FUNCTION} --payload ")
    assert approve.payload == {"action": "approve", "service": "web-live", "hook": HOOK}
    # WHEN Approve is pressed: exactly one ContinueServiceDeployment CONTINUE (one queued answer)
    world.expect_answer("CONTINUE")
    first = invoke("chat_answer", approve.payload)
    assert first["outcome"] == "answered"
    assert world.hook_item()["status"] == "CONTINUE"
    # AND a second click (or Reject) is already answered: nothing more reaches ECS
    assert invoke("chat_answer", approve.payload)["outcome"] == "already-answered"
    reject = next(b for b in shown if b.text == "Reject")
    assert invoke("chat_answer", reject.payload)["answer"].startswith("already answered")


def test_each_notification_kind_gets_only_its_buttons() -> None:
    from ecspilot.domain.chat import custom_notification  # noqa: PLC0415

    template = load_template()

    def shown(**context: str) -> list[tuple[str, dict[str, str]]]:
        card = custom_notification("t", "d", context)
        return sorted((b.text, b.payload) for b in buttons(template, card, FUNCTION))

    release, digest = "ecs-svc/4242", fake_digest("web:v9")
    assert shown(kind="deployment", status="FAILED", service="prod/web", release=release) == [
        ("Rollback", {"action": "rollback", "service": "prod/web", "release": release})
    ]
    assert shown(kind="deployment", status="ROLLED_BACK", service="prod/web", release=release) == []
    assert shown(kind="crash-loop", service="prod/web", release=digest, digest=digest) == [
        ("Rollback", {"action": "rollback", "service": "prod/web", "release": digest})
    ]
    approval = {"action": "approve", "service": "web-prod", "release": release}
    assert shown(kind="promotion", status="AWAITING_APPROVAL", service="web-prod", release=release) == [
        ("Approve", approval),
        ("Reject", {**approval, "action": "reject"}),
    ]
    assert shown(kind="promotion", status="BLOCKED", service="web-prod", release=release) == []
    assert shown(kind="hook", status="ROLLBACK", service="prod/web", hook=HOOK) == []
    assert shown(kind="image-refused", status="REFUSED", digest=digest) == []
    assert shown(kind="freeze", service="web", freeze="f-1") == [
        ("Unfreeze", {"action": "unfreeze", "service": "web", "freeze": "f-1"})
    ]
