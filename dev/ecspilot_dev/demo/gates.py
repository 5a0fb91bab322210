"""Gates: a LINEAR deployment paused at a pause hook, its gates evaluated and the deployment
continued by ecspilot; the same hook event again changes nothing; a CRITICAL image refused before
anything is registered; a hook that waits for a person, as the chat shows it, approved by a
press of its Approve button (README "Chat").

moto implements neither ECS's service deployment APIs nor ContinueServiceDeployment: the ECS side
of the paused deployment is answered by botocore's Stubber on a real ECS client (it validates
every request against the API model, and refuses any call it was not told to expect), as the
tests do; everything else (ECS services, ECR and its scan findings, CloudWatch, DynamoDB) is the
local AWS. The hook event is the one ECS would send, from ``events/``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.local import invoke, load_event, moto_api
from ecspilot_dev.sandbox import ACCOUNT, REGION

GATES_CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "gates": {
                "image_scan": {"max_severity": "HIGH"},
                "alarms": {"names": ["web-5xx"], "quiet_minutes": 10},
            },
        }
    ],
    "jobs": [],
    "daemons": [],
}
PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
DEPLOYMENT = f"{PREFIX}:service-deployment/prod/web/LiNeArDeMo0000000001"
REVISION = f"{PREFIX}:service-revision/prod/web/2"
HOOK = "ecs-pause-DeMoPoStScAlEuP00000000000000000000000000000"
WAITING_DEPLOYMENT = f"{PREFIX}:service-deployment/prod/web/LiNeArDeMo0000000002"
WAITING_HOOK = "ecs-pause-DeMoWaItInG0000000000000000000000000000000"
CHAT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecspilot-chat-channel"
CHAT_ANSWER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-ChatAnswerFunction"


def scan_reports(demo: Demo, tag: str, digest: str, counts: dict[str, int]) -> None:
    """ECR scans ``web:TAG`` and finds ``counts`` (set through moto's API, as an enhanced scan)."""
    demo.clients.ecr.start_image_scan(repositoryName="web", imageId={"imageDigest": digest})
    result = {
        "registryId": ACCOUNT,
        "repositoryName": "web",
        "imageId": {"imageDigest": digest},
        "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
        "imageScanFindings": {"enhancedFindings": [], "findingSeverityCounts": counts},
    }
    moto_api(
        os.environ["AWS_ENDPOINT_URL"],
        "static/ecr/scan-finding-results",
        {"results": [result], "region": REGION},
    )
    found = ", ".join(f"{n} {s}" for s, n in counts.items()) or "nothing"
    demo.note(f"ECR's scan of web:{tag}: {found}")


def paused_ecs(demo: Demo, digest: str, deployment: str = "", hook: str = HOOK) -> Any:
    """The ECS side of the paused deployment: a Stubber on a real ECS client answers what ECS
    would (the deployment's images, then one CONTINUE), installed in the handlers' runtime."""
    deployment = deployment or DEPLOYMENT
    import boto3  # noqa: PLC0415
    from botocore.stub import Stubber  # noqa: PLC0415

    from ecspilot.aws.clients import Clients  # noqa: PLC0415
    from ecspilot_dev.service_deployments import expect_paused_images  # noqa: PLC0415

    ecs = boto3.Session().client("ecs")
    stub = Stubber(ecs)
    expect_paused_images(stub, deployment, REVISION, [("app", digest, f"web@{digest}")])
    stub.add_response(
        "continue_service_deployment",
        {"serviceDeploymentArn": deployment},
        {"serviceDeploymentArn": deployment, "hookId": hook, "action": "CONTINUE"},
    )
    stub.activate()
    return stub, Clients(session=boto3.Session(), overrides={"ecs": ecs})


def chapter_gates(demo: Demo) -> None:
    """A paused deployment answered by its gates; a CRITICAL image refused."""
    from ecspilot.domain.hook_events import EcsHookStateChangeEvent  # noqa: PLC0415
    from ecspilot.tracking.hooks import HookTracker  # noqa: PLC0415

    say("\n=== Gates: a paused LINEAR deployment continued by its gates; a CRITICAL image refused ===")
    sb = demo.sandbox
    sb.cluster("prod", instances_per_zone=1, zones=("us-east-1a",))
    sb.repository("web")
    sb.service("prod", "web", sb.task_definition("web", {"app": sb.image("web", "v1")}))
    demo.clients.cloudwatch.put_metric_alarm(
        AlarmName="web-5xx",
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
    )
    demo.note(
        "config: web gates: {image_scan: {max_severity: HIGH}, alarms: {names: [web-5xx], quiet_minutes: 10}}"
    )
    demo.note("ECS side: web's deploymentConfiguration has strategy LINEAR and a PAUSE hook at POST_SCALE_UP")

    demo.step("Push web:v2; ECR's scan finds 1 LOW: the image scan gate passes and web rolls")
    event = sb.push("web", "v2")
    digest = event["detail"]["image-digest"]
    scan_reports(demo, "v2", digest, {"LOW": 1})
    demo.push_and_deploy("v2", "deployed", event=event, services=1)

    demo.step("ECS pauses the LINEAR deployment after scaling up; the demo sends its ECS Hook State Change")
    stub, clients = paused_ecs(demo, digest)
    rt = runtime.current()
    runtime.reset(replace(rt, clients=clients))
    hook = load_event("ecs_hook_awaiting_action", {"hookId": HOOK, "serviceDeploymentArn": DEPLOYMENT})
    # moto keeps no alarm history: the tracker's clock runs 11 minutes on, past the alarm's creation,
    # so "quiet for 10 minutes" is decided on the alarm's state alone (OK since before the window)
    later = HookTracker(rt.config, clients, rt.history, now=lambda: datetime.now(UTC) + timedelta(minutes=11))
    answered = later.hook_event(EcsHookStateChangeEvent.model_validate(hook))
    for reason in answered["reasons"]:
        demo.note(f"gate: {reason}")
    demo.note(f"ContinueServiceDeployment {answered['action']} (hook {HOOK[:18]}...)")
    demo.check(
        answered["action"] == "CONTINUE", f"the gates continue the deployment, got {answered['action']}"
    )

    demo.step("EventBridge delivers the same hook event again: the hook is answered once, never twice")
    again: dict[str, Any] = invoke("track_deployments", hook)
    demo.note(again.get("ignored", str(again)))
    stub.assert_no_pending_responses()  # exactly the calls ECS expected: one CONTINUE
    demo.check("already CONTINUE" in again.get("ignored", ""), "the redelivered event is ignored")
    stub.deactivate()
    runtime.reset(rt)

    demo.step("Push web:v3; ECR's scan finds 2 CRITICAL: refused before anything is registered")
    event = sb.push("web", "v3")
    scan_reports(demo, "v3", event["detail"]["image-digest"], {"CRITICAL": 2, "HIGH": 1})
    result = demo.push_and_deploy("v3", "refused", event=event, services=1)
    demo.check(demo.recorder.count("RegisterTaskDefinition") == 0, "no task definition registered")
    demo.check(demo.recorder.count("UpdateService") == 0, "no service updated")
    demo.check("2 CRITICAL" in result["services"][0]["reason"], "the reason names the findings")
    running = demo.service_images("prod", ["web"])[0]["app image"]
    demo.note(f"web still runs {running}")
    demo.check(digest[7:19] in running or digest in running, "web still runs v2")
    answered_in_chat(demo, digest)


def answered_in_chat(demo: Demo, digest: str) -> None:
    """A hook waiting for a person: the custom notification the chat renders, its buttons (from
    template.yaml's custom actions), and a press of Approve through the chat_answer handler."""
    from ecspilot.domain.config import parse_config  # noqa: PLC0415
    from ecspilot_dev.chat import ChatInbox, buttons, load_template  # noqa: PLC0415

    demo.step("web now asks for approval (gates.approval: true); its next deployment pauses and waits")
    inbox = ChatInbox()
    topic = demo.clients.sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    demo.clients.sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=inbox.url)
    stub, clients = paused_ecs(demo, digest, deployment=WAITING_DEPLOYMENT, hook=WAITING_HOOK)
    rt = runtime.current()
    settings = replace(rt.settings, notify_topic_arn=topic, chat_role_arns=(CHAT_ROLE,))
    web = {**GATES_CONFIG["services"][0], "gates": {"image_scan": {"max_severity": "HIGH"}, "approval": True}}
    config = parse_config({**GATES_CONFIG, "services": [web]})
    runtime.reset(replace(rt, clients=clients, settings=settings, config=config))
    try:
        event = {"hookId": WAITING_HOOK, "serviceDeploymentArn": WAITING_DEPLOYMENT}
        waited = invoke("track_deployments", load_event("ecs_hook_awaiting_action", event))
        demo.check(waited.get("action") == "WAIT", f"the hook waits for a person, got {waited}")
        demo.check(len(inbox.cards) == 1, "the chat channel got one custom notification")
        card = inbox.cards[0]
        say("    the chat shows:")
        say(f"    | *{card['content']['title']}*")
        for line in card["content"]["description"].splitlines():
            say(f"    | {line}".rstrip())
        shown = buttons(load_template(), card, CHAT_ANSWER_ARN)
        say(f"    | [{'] ['.join(b.text for b in shown)}]")
        demo.check(sorted(b.text for b in shown) == ["Approve", "Reject"], "Approve and Reject are attached")

        demo.step("Someone presses Approve: the button invokes chat_answer with the hook it answers")
        approve = next(b for b in shown if b.text == "Approve")
        demo.note(f"the button runs: {approve.command}")
        out = invoke("chat_answer", approve.payload)
        demo.note(f"the chat shows: {out['answer']}")
        demo.check(out["outcome"] == "answered", "ContinueServiceDeployment CONTINUE, from chat")
        again = invoke("chat_answer", approve.payload)
        demo.note(f"a second click: {again['answer'][:90]}...")
        demo.check(again["outcome"] == "already-answered", "a second click answers nothing more")
        stub.assert_no_pending_responses()  # exactly one CONTINUE for the waiting hook
    finally:
        stub.deactivate()
        runtime.reset(rt)
        inbox.close()
