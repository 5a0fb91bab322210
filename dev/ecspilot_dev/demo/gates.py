"""Gates: a LINEAR deployment paused at a pause hook, its gates evaluated and the deployment
continued by ecspilot; the same hook event again changes nothing; a CRITICAL image refused before
anything is registered.

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


def paused_ecs(demo: Demo, digest: str) -> Any:
    """The ECS side of the paused deployment: a Stubber on a real ECS client answers what ECS
    would (the deployment's images, then one CONTINUE), installed in the handlers' runtime."""
    import boto3  # noqa: PLC0415
    from botocore.stub import Stubber  # noqa: PLC0415

    from ecspilot.aws.clients import Clients  # noqa: PLC0415
    from ecspilot_dev.service_deployments import expect_paused_images  # noqa: PLC0415

    ecs = boto3.Session().client("ecs")
    stub = Stubber(ecs)
    expect_paused_images(stub, DEPLOYMENT, REVISION, [("app", digest, f"web@{digest}")])
    stub.add_response(
        "continue_service_deployment",
        {"serviceDeploymentArn": DEPLOYMENT},
        {"serviceDeploymentArn": DEPLOYMENT, "hookId": HOOK, "action": "CONTINUE"},
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
