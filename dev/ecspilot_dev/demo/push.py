"""Image pushes roll services; catch-up deploys what a missed push would have."""

from __future__ import annotations

import time

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say, table
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.local import invoke


def chapter_deploy_on_push(demo: Demo) -> None:
    """Image push -> digest-pinned revision -> rolled services."""
    sb = demo.sandbox
    say("\n=== Image push: services roll to exactly the pushed image, pinned by digest ===")
    demo.step("Create ECR repository 'web' and cluster 'prod' with one container instance per AZ (3 AZs)")
    sb.repository("web")
    sb.cluster("prod", instances_per_zone=1)
    td = sb.task_definition(
        "web",
        {
            "app": sb.image("web", "v0"),
            "log-router": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
        },
        taskRoleArn="arn:aws:iam::123456789012:role/ecs-web-task",
        tags=[{"key": "team", "value": "storefront"}],
    )
    for name in ("web", "web-canary"):
        sb.service("prod", name, td)
    demo.note("services web and web-canary share task definition web:1 (app: web:v0)")
    rows = demo.service_images("prod", ["web", "web-canary"])
    table(rows, ["service", "task_definition", "app image"])
    demo.check([r["app image"] for r in rows] == ["web:v0"] * 2, f"both services on web:v0, got {rows}")

    demo.step("Push web:v1 -> ECR sends 'ECR Image Action'; the deploy_on_push handler runs")
    v1 = sb.push("web", "v1")
    result = demo.push_and_deploy("v1", "deployed", event=v1)
    demo.note(f"registered {len(result['registered'])} revision(s) for 2 services (shared task definition)")
    demo.check(len(result["registered"]) == 1, "one registration for the shared task definition")
    rows = demo.service_images("prod", ["web", "web-canary"])
    table(rows, ["service", "task_definition", "app image"])
    digest = v1["detail"]["image-digest"]
    demo.check(all(r["app image"] == f"web@{digest}"[:40] for r in rows), f"both run v1's digest: {rows}")

    demo.step("The same event again (EventBridge delivers at least once): nothing to do")
    demo.push_and_deploy("v1", "unchanged", event=v1)
    demo.check(demo.recorder.writes() == [], f"no write call, got {demo.recorder.writes()}")

    demo.step("Push web:v2: both services roll again, one registration")
    time.sleep(1.1)  # ECR stamps imagePushedAt to the second: keep v1 and v2 apart
    demo.push_and_deploy("v2", "deployed")
    demo.check(demo.recorder.count("RegisterTaskDefinition") == 1, "one registration")

    demo.step("web:v1's event arrives late (after v2): the stale-push guard keeps v2")
    demo.push_and_deploy("v1", "stale", event=v1)

    demo.step("Push web:latest: no configured tag pattern (v*) matches, nothing happens")
    demo.push_and_deploy("latest", "", services=0)
    demo.check(demo.recorder.ops() == [], f"no AWS call, got {demo.recorder.ops()}")
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])

    demo.step("History: the deployment records in the state table")
    rows = runtime.current().history.deployments("prod", "web")
    table(
        [
            {
                "started": r["started_at"],
                "tag": r["image_tag"],
                "to": r["to_task_definition"].rsplit("/", 1)[-1],
                "status": r["status"],
            }
            for r in rows
        ],
        ["started", "tag", "to", "status"],
    )
    told = [(r["image_tag"], r["status"]) for r in rows]
    demo.check(told == [("v2", "IN_PROGRESS"), ("v1", "IN_PROGRESS")], f"v2 then v1, in progress: {told}")


def chapter_catch_up(demo: Demo) -> None:
    """A push whose event never arrives is caught up by reconcile; a rolled-back digest is held."""
    say("\n=== Catch-up: ECR events are best effort; reconcile deploys a missed push ===")

    def plan(title: str, expect: dict[str, str]) -> None:
        demo.step(title)
        before = demo.service_images("prod", ["web", "web-canary"])
        demo.plan(expect)  # the real `ecspilot plan`, as a user runs it
        demo.check(demo.service_images("prod", ["web", "web-canary"]) == before, "a dry run changes nothing")

    plan(
        "ecspilot plan now: web was rolled back from v3, so catch-up holds it there (no undoing the breaker)",
        {"prod/web": "conflict", "prod/web-canary": "in-sync"},
    )
    demo.step("Push web:v4 while the push handler is down: the event is dropped, nothing rolls")
    time.sleep(1.1)  # keep imagePushedAt (one-second resolution) apart from v3
    before = demo.service_images("prod", ["web", "web-canary"])
    v4 = demo.sandbox.push("web", "v4")["detail"]["image-digest"]
    rows = demo.service_images("prod", ["web", "web-canary"])
    table(rows, ["service", "task_definition", "app image"])
    demo.check(rows == before, "nothing rolled")
    plan(
        "ecspilot plan: the dry run shows the catch-up it would do",
        {"prod/web": "update", "prod/web-canary": "update"},
    )

    demo.step("Reconcile (the 15-minute schedule) applies it, through the same deploy core as a push")
    demo.recorder.reset()
    invoke("reconcile", {})
    demo.note(f"writes: {', '.join(demo.recorder.writes()) or 'none'}")
    rows = demo.service_images("prod", ["web", "web-canary"])
    table(rows, ["service", "task_definition", "app image"])
    demo.check(all(r["app image"] == f"web@{v4}"[:40] for r in rows), f"both run v4's digest: {rows}")
    demo.check(demo.recorder.writes().count("UpdateService") == 2, "two UpdateService calls")

    demo.step("Reconcile again: everything is on the newest image, so no write call")
    demo.recorder.reset()
    result = invoke("reconcile", {})
    demo.note(f"summary: {result['summary']}; writes: {', '.join(demo.recorder.writes()) or 'none'}")
    demo.check(result["summary"] == {"in-sync": 2}, f"both in sync, got {result['summary']}")
    demo.check(demo.recorder.writes() == [], f"no write call, got {demo.recorder.writes()}")
