"""Every kind of notification renders in chat and in email: each is produced by the real flow
(handlers and runbooks against moto; ECS's deployment APIs through botocore's Stubber), published
through moto's SNS to an https subscription (Amazon Q Developer in chat applications) and an
email one (tests/chat.py). The https body is a custom notification valid against
docs/schemas/chat-notification.schema.json whose metadata carries what the buttons need; the
email body is the plain text of before, untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecspilot.domain.chat import custom_notification, sns_message, thread_id
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import REGION, Sandbox, fake_digest
from tests.chat import ChatTopic, validate_card
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.functional.test_service_health import replaced
from tests.functional.test_track_deployments import deployment_event, rollback_event
from tests.hook_world import DEPLOYMENT, HOOK, World, hook_event
from tests.promotion_world import World as PromotionWorld
from tests.promotion_world import config as promotion_config
from tests.scans import scanned

ANSWER = "Answer with: ecspilot approve web-live  or  ecspilot reject web-live"


@pytest.fixture
def hooks(moto: None, faults: Faults, recorder: CallRecorder) -> Iterator[World]:
    session = boto3.Session(region_name=REGION)
    recorder.attach(session)
    with Stubber(session.client("ecs")) as stub:
        yield World(session, stub, recorder)
        stub.assert_no_pending_responses()


@pytest.fixture
def prod(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod", instances_per_zone=1, zones=("us-east-1a",))
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
    return sandbox


def web(**extra: Any) -> dict[str, Any]:
    service = {"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web", "tags": ["v*"]}}}
    return {"version": 1, "services": [service | extra]}


def test_a_hook_waiting_for_a_person_renders_with_what_approve_and_reject_need(hooks: World) -> None:
    # GIVEN a service that asks for approval, and chat and email subscribed
    chat = ChatTopic(hooks.clients, hooks.topic)
    hooks.use({"image_scan": {"max_severity": "HIGH"}, "approval": True})
    scanned(hooks.clients.ecr, "web", fake_digest("web:v2"), {"LOW": 1})
    hooks.expect_images()
    # WHEN the deployment pauses at its hook
    invoke("track_deployments", hook_event())
    # THEN the chat gets a custom notification naming the hook; email the text as before
    [note] = chat.received()
    assert note.context == {
        "kind": "hook",
        "status": "WAITING",
        "service": "web-live",
        "hook": HOOK,
        "deployment": DEPLOYMENT.rsplit("/", 1)[-1],
    }
    assert note.card["content"]["title"] == note.subject == "ecspilot: prod/web deployment paused"
    assert "`ecspilot approve web-live`" in note.card["content"]["description"]
    assert note.card["content"]["nextSteps"]
    assert note.card["metadata"]["threadId"] == f"ecspilot/web-live/{DEPLOYMENT.rsplit('/', 1)[-1]}"
    assert ANSWER in note.email
    assert "`" not in note.email


def test_a_hook_the_gates_rolled_back_renders_as_an_answered_hook(hooks: World) -> None:
    chat = ChatTopic(hooks.clients, hooks.topic)
    hooks.use({"image_scan": {"max_severity": "HIGH"}})
    scanned(hooks.clients.ecr, "web", fake_digest("web:v2"), {"CRITICAL": 2})
    hooks.expect_images()
    hooks.expect_answer("ROLLBACK")
    invoke("track_deployments", hook_event())
    [note] = chat.received()
    assert (note.context["kind"], note.context["status"], note.context["hook"]) == ("hook", "ROLLBACK", HOOK)
    assert "nextSteps" not in note.card["content"]  # nothing left to answer: no buttons' step
    assert "2 CRITICAL" in note.email


def test_a_failed_then_rolled_back_deployment_renders_with_its_release_and_digest(
    prod: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN v1 completed, then v2 deployed; chat and email subscribed
    chat = ChatTopic(prod.clients)
    rt = make_runtime(web(), notify_topic_arn=chat.arn)
    invoke("deploy_on_push", prod.push("web", "v1"))
    [good] = rt.history.deployments("prod", "web")
    invoke("track_deployments", deployment_event("ecs_deployment_completed", good["deployment_id"]))
    invoke("deploy_on_push", prod.push("web", "v2"))
    bad = next(r for r in rt.history.deployments("prod", "web") if r["image_tag"] == "v2")
    # WHEN the circuit breaker fails v2, then rolls back to v1
    invoke("track_deployments", deployment_event("ecs_deployment_failed", bad["deployment_id"]))
    invoke("track_deployments", rollback_event("ecs-svc/3348108895209946212", good["deployment_id"]))
    # THEN each move renders in chat with what Rollback needs, in the deployment's thread
    notes = chat.received()
    assert [n.context["status"] for n in notes] == ["FAILED", "ROLLED_BACK"]
    for note in notes:
        assert note.context | {"status": "-"} == {
            "kind": "deployment",
            "status": "-",
            "service": "prod/web",
            "digest": fake_digest("web:v2"),
            "release": bad["deployment_id"],
            "deployment": bad["deployment_id"],
        }
        assert note.card["metadata"]["threadId"] == f"ecspilot/prod/web/{bad['deployment_id']}"
        assert note.card["content"]["keywords"] == ["deployment", note.context["status"], "prod/web"]
        assert f"web:v2 ({fake_digest('web:v2')})" in note.email
    assert [n.subject for n in notes] == [
        "ecspilot: prod/web deployment failed",
        "ecspilot: prod/web deployment rolled back",
    ]


def test_a_crash_loop_renders_with_the_image_it_loops_on(prod: Sandbox, make_runtime: MakeRuntime) -> None:
    chat = ChatTopic(prod.clients)
    make_runtime({"version": 1, "services": web()["services"]}, notify_topic_arn=chat.arn)
    td = prod.clients.ecs.describe_services(cluster="prod", services=["web"])["services"][0]["taskDefinition"]
    for n in range(5):
        invoke("track_deployments", replaced(td, n, n))
    [note] = chat.received()
    assert (note.context["kind"], note.context["service"]) == ("crash-loop", "web")
    # the Rollback button answers the image(s) the loop runs (the sample event's digest)
    assert note.context["release"] == note.context["digest"]
    assert note.context["digest"].startswith("sha256:")
    assert note.context["digest"] in note.email
    assert note.card["metadata"]["threadId"].startswith("ecspilot/web/loop-")
    assert "is crash-looping" in note.email


@pytest.mark.parametrize("approval", [False, True])
def test_a_promotion_blocked_or_awaiting_approval_renders_with_its_release(
    approval: bool, sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    chat = ChatTopic(sandbox.clients)
    cfg = promotion_config(bake=0, alarms=() if approval else ("staging-5xx",), approval=approval)
    world = PromotionWorld(sandbox, make_runtime, cfg, notify_topic_arn=chat.arn)
    if not approval:
        world.alarm("staging-5xx")
        world.alarm("staging-5xx", "ALARM")
    record = world.release("v1")  # the tracker evaluates at once (bake 0)
    world.reconcile()  # and again: told once per release
    [note] = chat.received()
    status = "AWAITING_APPROVAL" if approval else "BLOCKED"
    assert note.context == {
        "kind": "promotion",
        "status": status,
        "service": "web-prod",
        "digest": record["image_digest"],
        "release": record["deployment_id"],
        "deployment": record["deployment_id"],
    }
    assert bool(note.card["content"].get("nextSteps")) == approval
    assert ("awaits approval" in note.subject) == approval
    assert ("ecspilot approve web-prod" in note.email) == approval


def test_an_image_refused_by_the_scan_gate_renders_threaded_by_its_digest(
    prod: Sandbox, make_runtime: MakeRuntime
) -> None:
    chat = ChatTopic(prod.clients)
    rt = make_runtime(web(gates={"image_scan": {"max_severity": "HIGH"}}), notify_topic_arn=chat.arn)
    digest = fake_digest("web:v2")
    event = prod.push("web", "v2", digest)
    scanned(rt.clients.ecr, "web", digest, {"CRITICAL": 1})
    invoke("deploy_on_push", event)
    [note] = chat.received()
    assert (note.context["kind"], note.context["status"], note.context["digest"]) == (
        "image-refused",
        "REFUSED",
        digest,
    )
    assert note.card["metadata"]["threadId"] == f"ecspilot/{digest}"
    assert "prod/web: " in note.email


def test_a_failed_job_run_renders_threaded_by_its_job(prod: Sandbox, make_runtime: MakeRuntime) -> None:
    from tests.functional.test_track_deployments import config  # noqa: PLC0415
    from tests.job_runs import ends, fire  # noqa: PLC0415

    prod.task_definition("report", {"report": "report:1", "log-router": "fluent-bit:stable"})
    chat = ChatTopic(prod.clients)
    rt = make_runtime(config(), notify_topic_arn=chat.arn)
    task = fire(rt.clients, "nightly-report")
    invoke("track_deployments", ends(rt.clients, task, "ecs_task_stopped_failed"))
    [note] = chat.received()
    assert (note.context["kind"], note.context["status"], note.context["job"]) == (
        "job-run",
        "FAILED",
        "nightly-report",
    )
    assert note.card["metadata"]["threadId"] == "ecspilot/nightly-report"
    assert note.subject == "ecspilot: job nightly-report failed"
    assert "report=1" in note.email


# --- the builder, pure -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "thread"),
    [
        ({"service": "prod/web", "deployment": "ecs-svc/1", "release": "x"}, "ecspilot/prod/web/ecs-svc/1"),
        ({"service": "web-prod", "release": "ecs-svc/9"}, "ecspilot/web-prod/ecs-svc/9"),
        ({"digest": "sha256:ab"}, "ecspilot/sha256:ab"),
        ({}, "ecspilot"),
    ],
)
def test_one_service_deployment_threads_together(context: dict[str, str], thread: str) -> None:
    assert thread_id(context) == thread


def test_the_default_member_is_the_text_exactly_and_empty_context_fields_are_left_out() -> None:
    body = "line one\n\n- a bullet\nService deployment: arn:aws:ecs:us-east-1:1:service-deployment/a/b/c"
    import json  # noqa: PLC0415

    message = json.loads(sns_message("subject", body, {"kind": "hook", "hook": "", "status": "WAITING"}))
    assert message["default"] == body
    card = json.loads(message["https"])
    validate_card(card)
    assert card["metadata"]["additionalContext"] == {"kind": "hook", "status": "WAITING"}
    assert "`arn:aws:ecs:us-east-1:1:service-deployment/a/b/c`" in card["content"]["description"]


def test_the_schema_refuses_what_aws_does_not_document() -> None:
    import jsonschema  # noqa: PLC0415

    card = custom_notification("t", "d", {"kind": "hook"})
    for broken in (
        {**card, "version": "2.0"},
        {**card, "source": "ecspilot"},
        {**card, "content": {"title": "no description"}},
        {**card, "metadata": {**card["metadata"], "additionalContext": {"n": 1}}},
        {**card, "extra": True},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_card(broken)
