"""``ecspilot demo``: ecspilot's main flows against a local AWS (moto's server, in-process).

Each chapter builds what it needs through public AWS APIs, invokes the real
handlers with the events AWS would send, and narrates what happened. Nothing
here touches a real account: credentials are fake and every client points at
moto on loopback.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ecspilot import runtime
from ecspilot.errors import EcspilotError
from ecspilot.local import CallRecorder, invoke, local_aws
from ecspilot.present import say, table
from ecspilot.sandbox import Sandbox, create_state_table

TABLE = "ecspilot-demo-state"

DEMO_CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "rollback": True,
        },
        {
            "name": "web-canary",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
        },
    ],
    "jobs": [],
    "daemons": [],
}


class Demo:
    """Shared state of the chapters: the sandbox, a call recorder, the narration."""

    def __init__(self) -> None:
        import boto3  # noqa: PLC0415

        from ecspilot.aws import Clients  # noqa: PLC0415

        self.recorder = CallRecorder()
        session = boto3.Session()
        self.recorder.attach(session)
        self.clients = Clients(session=session)
        self.sandbox = Sandbox(self.clients)
        self.step_no = 0

    def step(self, text: str) -> None:
        self.step_no += 1
        say(f"\n[{self.step_no}] {text}")

    def note(self, text: str) -> None:
        say(f"    {text}")

    def service_images(self, cluster: str, services: list[str]) -> list[dict[str, str]]:
        rows = []
        for svc in self.clients.ecs.describe_services(cluster=cluster, services=services)["services"]:
            td = self.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])[
                "taskDefinition"
            ]
            app = next(c for c in td["containerDefinitions"] if c["name"] == "app")
            rows.append(
                {
                    "service": svc["serviceName"],
                    "task_definition": f"{td['family']}:{td['revision']}",
                    "app image": app["image"].rsplit("/", 1)[-1][:40],
                }
            )
        return rows

    def push_and_deploy(self, tag: str, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = event or self.sandbox.push("web", tag)
        self.recorder.reset()
        result: dict[str, Any] = invoke("deploy_on_push", event)
        for svc in result.get("services", []):
            detail = svc["reason"] or f"-> {svc['to_task_definition'].rsplit('/', 1)[-1]}"
            self.note(f"{svc['service']:<12} {svc['outcome']:<10} {detail}")
        calls = ", ".join(f"{op} x{self.recorder.count(op)}" for op in dict.fromkeys(self.recorder.ops()))
        self.note(f"AWS calls: {calls or 'none'}")
        return result


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
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])

    demo.step("Push web:v1 -> ECR sends 'ECR Image Action'; the deploy_on_push handler runs")
    v1 = sb.push("web", "v1")
    result = demo.push_and_deploy("v1", event=v1)
    demo.note(f"registered {len(result['registered'])} revision(s) for 2 services (shared task definition)")
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])

    demo.step("The same event again (EventBridge delivers at least once): nothing to do")
    demo.push_and_deploy("v1", event=v1)

    demo.step("Push web:v2: both services roll again, one registration")
    time.sleep(1.1)  # ECR stamps imagePushedAt to the second: keep v1 and v2 apart
    demo.push_and_deploy("v2")

    demo.step("web:v1's event arrives late (after v2): the stale-push guard keeps v2")
    demo.push_and_deploy("v1", event=v1)

    demo.step("Push web:latest: no configured tag pattern (v*) matches, nothing happens")
    demo.push_and_deploy("latest")
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


def chapter_catch_up(demo: Demo) -> None:
    """A push whose event never arrives is caught up by reconcile."""
    from ecspilot.reconcile import reconcile  # noqa: PLC0415

    say("\n=== Catch-up: ECR events are best effort; reconcile deploys a missed push ===")
    demo.step("Push web:v3 while the push handler is down: the event is dropped, nothing rolls")
    time.sleep(1.1)  # keep imagePushedAt (one-second resolution) apart from v2
    demo.sandbox.push("web", "v3")
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])

    demo.step("ecspilot plan: the dry run shows the catch-up it would do")
    rt = runtime.current()
    plan = [a for a in reconcile(rt, dry_run=True).actions if a.kind == "catch-up"]
    table([a.__dict__ for a in plan], ["kind", "target", "change", "detail"])

    demo.step("Reconcile (the 15-minute schedule) applies it, through the same deploy core as a push")
    demo.recorder.reset()
    invoke("reconcile", {})
    demo.note(f"writes: {', '.join(demo.recorder.writes()) or 'none'}")
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])

    demo.step("Reconcile again: everything is on the newest image, so no write call")
    demo.recorder.reset()
    result = invoke("reconcile", {})
    demo.note(f"summary: {result['summary']}; writes: {', '.join(demo.recorder.writes()) or 'none'}")


CHAPTERS: list[Callable[[Demo], None]] = [chapter_deploy_on_push, chapter_catch_up]


def run(verbose: bool = False) -> int:
    """Run every chapter against a fresh local AWS; return an exit code."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO" if verbose else "WARNING"
    with local_aws() as endpoint, tempfile.TemporaryDirectory() as tmp:
        say(f"local AWS: moto server at {endpoint} (fake credentials; nothing leaves this machine)")
        config_path = Path(tmp) / "ecspilot.yaml"
        config_path.write_text(yaml.safe_dump(DEMO_CONFIG, sort_keys=False), encoding="utf-8")
        os.environ["ECSPILOT_CONFIG"] = str(config_path)
        os.environ["ECSPILOT_TABLE"] = TABLE
        demo = Demo()
        create_state_table(demo.clients, TABLE)
        # the handlers build their runtime from the environment, as in Lambda; only the
        # clients are shared with the demo so that it can count the handlers' AWS calls
        runtime.reset(runtime.Runtime.build(clients=demo.clients))
        try:
            for chapter in CHAPTERS:
                chapter(demo)
        except EcspilotError as exc:
            say(f"\ndemo failed: {exc}")
            return 1
    say("\nDemo complete.")
    return 0
