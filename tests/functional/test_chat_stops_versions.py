"""Freezes (issue 25) and release policies (issue 27) in chat (issue 26): their notifications are
published through moto's SNS to an https (chat) and an email subscription and validated against
the JSON Schema (tests/chat.py); the buttons template.yaml attaches are parsed from it; a press
runs the real ``chat_answer`` handler down to the same core as ``ecspilot unfreeze`` and
``ecspilot approve --digest``: the freeze lifted exactly once, the version deployed exactly once.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot.aws.dynamo import deserialize
from ecspilot.aws.freezes import FreezeStore
from ecspilot.domain.chat import custom_notification
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.chat import Button, buttons
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, fake_digest
from ecspilot_dev.service_deployments import OperationStubber
from tests.chat import ChatTopic, Received
from tests.conftest import TABLE, MakeRuntime
from tests.faults import Faults
from tests.functional.test_signature_gate import config as signed_config
from tests.functional.test_signature_gate import signing, status
from tests.functional.test_stops import INCIDENTS, MOTO_ARN, Clock, alarm_event, outcomes, running
from tests.functional.test_stops import config as stops_config
from tests.functional.test_stops import service as stops_service
from tests.races import race
from tests.template import load_template

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecspilot-chat-slack"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-ChatAnswerFunction-1a2b3c"
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Rome: office-hours open
FRIDAY_EVENING = datetime(2026, 12, 11, 16, 55, tzinfo=UTC)


@pytest.fixture
def prod(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod")
    sandbox.repository("web")
    sandbox.clients.scheduler.create_schedule_group(Name="ecspilot")
    return sandbox


def started(
    prod: Sandbox, make_runtime: MakeRuntime, cfg: dict[str, Any], clock: Clock
) -> tuple[Runtime, ChatTopic]:
    """Services on web:v0 (or v1.2.3 for semver ones), chat and email subscribed, chat answers as ROLE."""
    for svc in cfg["services"]:
        tag = "v1.2.3" if svc["containers"]["app"].get("order") == "semver" else "v0"
        prod.service("prod", svc["name"], prod.task_definition(svc["name"], {"app": prod.image("web", tag)}))
    chat = ChatTopic(prod.clients)
    rt = make_runtime(cfg, notify_topic_arn=chat.arn, chat_role_arns=(ROLE,))
    rt = dataclasses.replace(rt, clock=clock)
    runtime.reset(rt)
    return rt, chat


def shown(note: Received) -> dict[str, Button]:
    return {b.text: b for b in buttons(load_template(), note.card, FUNCTION)}


def freeze_item(name: str) -> dict[str, Any]:
    item = runtime.current().clients.dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": "FREEZE"}, "sk": {"S": f"FREEZE#{name}"}}
    )["Item"]
    return deserialize(item)


def freeze_writes(recorder: CallRecorder) -> list[dict[str, Any]]:
    return [p for p in recorder.params("UpdateItem") if p["Key"]["pk"]["S"] == "FREEZE"]


# --- freezes ------------------------------------------------------------------------------------


def test_unfreeze_round_trips_from_the_deferral_notice_to_the_freeze_lifted_once(
    prod: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN web frozen from the CLI (audited as moto's caller), chat and email subscribed
    clock = Clock(T0)
    rt, chat = started(prod, make_runtime, stops_config(stops_service("web")), clock)
    frozen = FreezeStore(rt.history).add(["web"], "incident 42", MOTO_ARN, T0, None)
    # WHEN web:v1 is pushed: deferred by the freeze, notified once for web and this digest
    assert outcomes(invoke("deploy_on_push", prod.push("web", "v1")))["web"][0] == "deferred"
    [note] = chat.received()
    # THEN the notice is a freeze notice naming the freeze, in its own thread
    assert note.context == {
        "kind": "freeze",
        "status": "DEFERRED",
        "service": "web",
        "digest": fake_digest("web:v1"),
        "freeze": frozen.name,
    }
    assert note.card["metadata"]["threadId"] == f"ecspilot/web/{frozen.name}"
    assert "incident 42" in note.email
    # AND the template attaches Unfreeze only, with the freeze id chat_answer expects
    assert list(shown(note)) == ["Unfreeze"]
    payload = shown(note)["Unfreeze"].payload
    assert payload == {"action": "unfreeze", "service": "web", "freeze": frozen.name}
    # WHEN it is pressed, then pressed again
    recorder.reset()
    first = invoke("chat_answer", payload)
    again = invoke("chat_answer", payload)
    # THEN the freeze was lifted exactly once, audited from chat with the role
    assert first["outcome"] == "answered"
    assert first["answer"].startswith(f"lifted {frozen.name} (web): frozen by {MOTO_ARN} : incident 42")
    assert f"(unfreeze from chat (chat role {ROLE}))" in first["answer"]
    assert again["outcome"] == "already-answered"
    assert again["answer"].startswith(f"already answered: lifted {frozen.name}")
    assert len(freeze_writes(recorder)) == 1
    item = freeze_item(frozen.name)
    assert (item["end"], item["lifted_by"]) == ("2026-12-07T10:00:00Z", f"chat (chat role {ROLE})")
    assert FreezeStore(rt.history).read(None)[0].active(T0) is False
    # AND the answer is told in the freeze's thread; the next push deploys
    told = chat.received()[-1]
    assert (told.context["kind"], told.context["status"], told.context["freeze"]) == (
        "unfreeze",
        "ANSWERED",
        frozen.name,
    )
    assert told.card["metadata"]["threadId"] == f"ecspilot/web/{frozen.name}"
    assert shown(told) == {}
    clock.now = T0 + timedelta(minutes=1)
    assert outcomes(invoke("deploy_on_push", prod.push("web", "v2")))["web"][0] == "deployed"


def test_two_presses_at_once_and_a_cli_unfreeze_first_lift_nothing_twice(
    prod: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt, _ = started(prod, make_runtime, stops_config(stops_service("web"), stops_service("api")), Clock(T0))
    store = FreezeStore(rt.history)
    kill = store.add(["*"], "kill switch", MOTO_ARN, T0, None)
    other = store.add(["api"], "db migration", MOTO_ARN, T0, None)
    # WHEN two people press Unfreeze on the kill switch at once (from web's and api's notices)
    recorder.reset()
    presses = [{"action": "unfreeze", "service": s, "freeze": kill.name} for s in ("web", "api")]
    got = race(*[lambda p=p: invoke("chat_answer", p) for p in presses])
    # THEN one lifts it (every service it held), the other reads "already answered"
    assert sorted(g["outcome"] for g in got) == ["already-answered", "answered"]
    assert len(freeze_writes(recorder)) == 1
    # WHEN the CLI lifted the other freeze before the press: refused, nothing written
    store.lift(["api"], T0)
    recorder.reset()
    late = invoke("chat_answer", {"action": "unfreeze", "service": "api", "freeze": other.name})
    assert (late["outcome"], late["answer"]) == (
        "refused",
        f"freeze {other.name} is no longer active: nothing to lift",
    )
    assert freeze_writes(recorder) == []


def test_a_window_deferral_is_no_freeze_and_gets_no_button(prod: Sandbox, make_runtime: MakeRuntime) -> None:
    _, chat = started(
        prod, make_runtime, stops_config(stops_service("web", window="office-hours")), Clock(FRIDAY_EVENING)
    )
    assert outcomes(invoke("deploy_on_push", prod.push("web", "v1")))["web"][0] == "deferred"
    [note] = chat.received()
    assert note.context == {
        "kind": "deferred",
        "status": "DEFERRED",
        "service": "web",
        "digest": fake_digest("web:v1"),
    }
    assert shown(note) == {}
    assert "outside office-hours, opens Mon 09:00 Europe/Rome" in note.email


def test_the_incident_freeze_start_and_end_render_as_one_freeze_and_unfreeze_is_refused_with_why(
    prod: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    clock = Clock(T0)
    cfg = stops_config(stops_service("web"), incidents={**INCIDENTS, "quiet_minutes": 0})
    _, chat = started(prod, make_runtime, cfg, clock)
    # WHEN prod-5xx goes ALARM: the freeze starts
    assert invoke("reconcile", alarm_event("prod-5xx", "ALARM", T0))["transition"] == "started"
    [start] = chat.received()
    assert start.context == {"kind": "freeze", "status": "STARTED", "service": "web*", "freeze": "incident"}
    assert "incident: prod-5xx in ALARM" in start.email
    # THEN its Unfreeze reaches the answer path, which refuses it: the alarms own that freeze
    payload = shown(start)["Unfreeze"].payload
    assert payload == {"action": "unfreeze", "service": "web*", "freeze": "incident"}
    recorder.reset()
    out = invoke("chat_answer", payload)
    assert out == {
        "outcome": "refused",
        "answer": "the incident freeze lifts by itself when every alarm (prod-5xx, prod-p99-latency) is OK",
    }
    assert freeze_writes(recorder) == []
    assert recorder.count("PutItem") == 0
    # WHEN the alarm is OK again: the end notice threads with the start
    clock.now = T0 + timedelta(minutes=2)
    invoke("reconcile", alarm_event("prod-5xx", "OK", clock.now))
    end = chat.received()[-1]
    assert (end.context["kind"], end.context["status"], end.context["freeze"]) == (
        "freeze",
        "ENDED",
        "incident",
    )
    assert end.card["metadata"]["threadId"] == start.card["metadata"]["threadId"] == "ecspilot/web*/incident"


def test_a_config_freeze_is_refused_from_chat(prod: Sandbox, make_runtime: MakeRuntime) -> None:
    freezes = [
        {
            "name": "black-friday",
            "start": "2026-12-01T00:00:00Z",
            "end": "2026-12-31T00:00:00Z",
            "reason": "peak",
        }
    ]
    _, chat = started(prod, make_runtime, stops_config(stops_service("web"), freezes=freezes), Clock(T0))
    invoke("deploy_on_push", prod.push("web", "v1"))
    [note] = chat.received()
    assert (note.context["kind"], note.context["freeze"]) == ("freeze", "black-friday")
    out = invoke("chat_answer", shown(note)["Unfreeze"].payload)
    assert out["outcome"] == "refused"
    assert "black-friday is a freeze of the config" in out["answer"]


# --- versions (issue 27) ----------------------------------------------------------------------


def semver(**app: Any) -> dict[str, Any]:
    source = {"repository": "web", "tags": ["v*"], "order": "semver", **app}
    return {"version": 1, "services": [{"name": "web", "cluster": "prod", "containers": {"app": source}}]}


def test_approve_of_a_version_round_trips_to_exactly_one_deployment_of_that_digest(
    prod: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN web on v1.2.3 allowing minor jumps; v2.0.0 pushed waits for approval
    rt, chat = started(prod, make_runtime, semver(allow="minor"), Clock(T0))
    digest = fake_digest("web:v2.0.0")
    assert (
        invoke("deploy_on_push", prod.push("web", "v2.0.0"))["services"][0]["outcome"] == "awaiting approval"
    )
    [note] = chat.received()
    assert note.context == {
        "kind": "release-awaiting-approval",
        "status": "AWAITING",
        "service": "web",
        "digest": digest,
        "repository": "web",
    }
    assert note.card["content"]["nextSteps"]
    assert f"ecspilot approve web --digest {digest}" in note.email
    # THEN Approve and Reject, each answering the digest
    assert sorted(shown(note)) == ["Approve", "Reject"]
    approve = shown(note)["Approve"].payload
    assert approve == {"action": "approve", "service": "web", "digest": digest}
    # WHEN Approve is pressed twice, and Reject after
    recorder.reset()
    first = invoke("chat_answer", approve)
    again = invoke("chat_answer", approve)
    rejected = invoke("chat_answer", shown(note)["Reject"].payload)
    # THEN exactly one deployment of that digest
    assert first["outcome"] == "answered"
    assert first["answer"].startswith("approved web v2.0.0 (")
    assert f"(approve from chat (chat role {ROLE}))" in first["answer"]
    assert again["outcome"] == rejected["outcome"] == "already-answered"
    assert recorder.count("UpdateService") == 1
    assert recorder.count("RegisterTaskDefinition") == 1
    assert running(rt, "web") == digest
    [record, *_] = rt.history.deployments("prod", "web")
    assert (record["image_tag"], record["image_digest"]) == ("v2.0.0", digest)
    told = chat.received()[-1]
    assert (told.context["kind"], told.context["status"], told.context["digest"]) == (
        "version",
        "ANSWERED",
        digest,
    )


def test_reject_of_a_version_from_chat_refuses_it_and_a_version_not_waiting_is_refused(
    prod: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    _rt, chat = started(prod, make_runtime, semver(allow="minor"), Clock(T0))
    invoke("deploy_on_push", prod.push("web", "v2.0.0"))
    [note] = chat.received()
    recorder.reset()
    out = invoke("chat_answer", shown(note)["Reject"].payload)
    assert out["outcome"] == "answered"
    assert out["answer"].startswith("rejected web v2.0.0")
    assert recorder.count("UpdateService") == 0
    stranger = fake_digest("web:v9.9.9")
    refused = invoke("chat_answer", {"action": "approve", "service": "web", "digest": stranger})
    assert refused == {
        "outcome": "refused",
        "answer": f"web: no version of web with {stranger} awaits approval",
    }
    bad = invoke("chat_answer", {"action": "approve", "service": "web", "digest": "sha256:abc"})
    assert bad["outcome"] == "invalid"


def test_an_unsigned_image_refused_renders_threaded_by_its_digest(
    prod: Sandbox, make_runtime: MakeRuntime
) -> None:
    _, chat = started(prod, make_runtime, signed_config(), Clock(T0))
    digest = fake_digest("web:v1")
    with OperationStubber(runtime.current().clients.ecr, ("DescribeImageSigningStatus",)) as stub:
        event = prod.push("web", "v1")
        signing(stub, digest, status("FAILED", failureReason="KMS key disabled"))
        invoke("deploy_on_push", event)
    [note] = chat.received()
    assert (note.context["kind"], note.context["status"], note.context["digest"]) == (
        "image-refused",
        "REFUSED",
        digest,
    )
    assert note.card["metadata"]["threadId"] == f"ecspilot/{digest}"
    assert shown(note) == {}
    assert "not signed" in note.email


def test_each_new_notification_kind_gets_only_its_buttons() -> None:
    template = load_template()
    digest = fake_digest("web:v9")

    def texts(**context: str) -> list[str]:
        return sorted(b.text for b in buttons(template, custom_notification("t", "d", context), FUNCTION))

    assert texts(kind="release-awaiting-approval", status="AWAITING", service="web", digest=digest) == [
        "Approve",
        "Reject",
    ]
    assert texts(kind="release-awaiting-approval", status="ANSWERED", service="web", digest=digest) == []
    assert texts(kind="freeze", status="DEFERRED", service="web", freeze="f-1", digest=digest) == ["Unfreeze"]
    assert texts(kind="deferred", status="DEFERRED", service="web", digest=digest) == []


def test_a_lost_reply_of_the_lift_still_answers_lifted(
    prod: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder, faults: Faults
) -> None:
    # GIVEN the freeze's UpdateItem applied but its reply lost (botocore sends it again: its
    # condition fails, and the item shows this press lifted it)
    rt, _ = started(prod, make_runtime, stops_config(stops_service("web")), Clock(T0))
    frozen = FreezeStore(rt.history).add(["web"], "incident 42", MOTO_ARN, T0, None)
    lost = faults.fail("UpdateItem", "lost-reply", times=1, when=lambda p: p["Key"]["pk"]["S"] == "FREEZE")
    out = invoke("chat_answer", {"action": "unfreeze", "service": "web", "freeze": frozen.name})
    assert lost.fired == 1
    assert out["outcome"] == "answered"
    assert freeze_item(frozen.name)["lifted_by"] == f"chat (chat role {ROLE})"
    assert invoke("chat_answer", {"action": "unfreeze", "service": "web", "freeze": frozen.name})[
        "outcome"
    ] == ("already-answered")


def test_a_version_approved_from_chat_during_a_freeze_deploys_as_from_the_cli(
    prod: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN v2.0.0 awaiting approval, then web frozen
    rt, chat = started(prod, make_runtime, semver(allow="minor"), Clock(T0))
    digest = fake_digest("web:v2.0.0")
    invoke("deploy_on_push", prod.push("web", "v2.0.0"))
    [note] = chat.received()
    FreezeStore(rt.history).add(["web"], "incident 42", MOTO_ARN, T0, None)
    # WHEN Approve is pressed: a person decided (README "Never blocked"): deployed, once
    recorder.reset()
    assert invoke("chat_answer", shown(note)["Approve"].payload)["outcome"] == "answered"
    assert running(rt, "web") == digest
    assert recorder.count("UpdateService") == 1


def test_a_conflict_renders_with_approve_and_reject_by_digest(
    prod: Sandbox, make_runtime: MakeRuntime
) -> None:
    _, chat = started(prod, make_runtime, semver(), Clock(T0))
    assert invoke("deploy_on_push", prod.push("web", "v1.3.0"))["services"][0]["outcome"] == "deployed"
    other = fake_digest("web:v1.3.0 rebuilt")
    assert invoke("deploy_on_push", prod.push("web", "v1.3.0", other))["services"][0]["outcome"] == "conflict"
    [note] = chat.received()
    assert (note.context["kind"], note.context["status"], note.context["digest"]) == (
        "release-awaiting-approval",
        "AWAITING",
        other,
    )
    assert "prod/web: conflict: " in note.email
    assert shown(note)["Reject"].payload == {"action": "reject", "service": "web", "digest": other}
