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


def _reconcile_and_show(demo: Demo, event: dict[str, Any] | None = None) -> dict[str, Any]:
    """Invoke the reconcile handler as Lambda would and narrate its actions and AWS calls."""
    demo.recorder.reset()
    result: dict[str, Any] = invoke("reconcile", event or {})
    table(result["actions"], ["target", "change", "detail"])
    writes = demo.recorder.writes()
    calls = ", ".join(f"{op} x{writes.count(op)}" for op in dict.fromkeys(writes))
    demo.note(f"AWS write calls: {calls or 'none'}")
    return result


def chapter_daemons_everywhere(demo: Demo) -> None:
    """Reconcile keeps a DAEMON service on every configured cluster."""
    from dataclasses import replace  # noqa: PLC0415

    from ecspilot.config import parse_config  # noqa: PLC0415
    from ecspilot.local import load_event  # noqa: PLC0415
    from ecspilot.reconcile import reconcile  # noqa: PLC0415

    sb = demo.sandbox
    say("\n=== Daemons everywhere: one log agent per host, on every cluster, kept in place ===")
    demo.step("Create clusters 'analytics' and 'batch', register task definition fluent-bit:1")
    for name in ("analytics", "batch"):
        sb.cluster(name)
    fluent_bit = "public.ecr.aws/aws-observability/aws-for-fluent-bit"
    sb.task_definition("fluent-bit", {"fluent-bit": f"{fluent_bit}:2.34"})
    daemon = {
        "name": "log-agent",
        "clusters": ["analytics", "batch"],
        "task_definition": "fluent-bit",
        "placement_constraints": ["attribute:ecs.os-type == linux"],
    }

    def use_daemons(*daemons: dict[str, Any]) -> None:
        current = runtime.current()
        config = parse_config({**current.config.model_dump(exclude_none=True), "daemons": list(daemons)})
        runtime.reset(replace(current, config=config))

    use_daemons(daemon)
    demo.note(
        "config: daemons: [{name: log-agent, clusters: [analytics, batch], task_definition: fluent-bit}]"
    )

    demo.step("`ecspilot plan`: the dry run shows what reconcile would do, and changes nothing")
    planned = reconcile(runtime.current(), dry_run=True)
    table([a.__dict__ for a in planned.actions], ["target", "change", "detail"])

    demo.step("Reconcile (rate schedule, stack deploy or drift event): the agent is created on both")
    _reconcile_and_show(demo)
    svc = demo.clients.ecs.describe_services(cluster="batch", services=["log-agent"], include=["TAGS"])
    created = svc["services"][0]
    tags = ", ".join(
        f"{t['key']}={t['value']}" for t in created.get("tags", []) if "placement" not in t["key"]
    )
    demo.note(f"batch/log-agent: schedulingStrategy {created['schedulingStrategy']}, tags {tags}")
    sent = demo.recorder.params("CreateService")
    refused = [k for p in sent for k in ("desiredCount", "placementStrategy") if k in p]
    demo.note(
        f"{len(sent)} CreateService call(s), desiredCount/placementStrategy sent: {refused or 'never'}"
        " (ECS refuses both for DAEMON)"
    )

    demo.step("Reconcile again: everything is in sync, so not one write call")
    _reconcile_and_show(demo)

    demo.step("Someone deletes batch/log-agent by hand; CloudTrail's DeleteService event runs reconcile")
    demo.clients.ecs.delete_service(cluster="batch", service="log-agent", force=True)
    deleted = load_event(
        "cloudtrail_delete_service", {"requestParameters": {"cluster": "batch", "service": "log-agent"}}
    )
    _reconcile_and_show(demo, deleted)

    demo.step("Register fluent-bit:2: the family's latest ACTIVE revision moves, both agents update")
    sb.task_definition("fluent-bit", {"fluent-bit": f"{fluent_bit}:2.35"})
    _reconcile_and_show(demo)

    demo.step("Cluster 'legacy' already runs a hand-made 'log-agent'; the daemon now targets every cluster")
    sb.cluster("legacy")
    handmade = sb.task_definition("legacy-logs", {"agent": f"{fluent_bit}:1.9"})
    sb.service("legacy", "log-agent", handmade, desired=1)
    use_daemons({**daemon, "clusters": "*"})
    demo.note('config: clusters: "*"; CloudTrail\'s CreateCluster event runs reconcile')
    _reconcile_and_show(
        demo, load_event("cloudtrail_create_cluster", {"requestParameters": {"clusterName": "legacy"}})
    )
    demo.note(
        "legacy/log-agent is reported as a conflict and left alone: ecspilot never changes what it did not create"
    )


CHAPTERS: list[Callable[[Demo], None]] = [chapter_deploy_on_push]
CHAPTERS.append(chapter_daemons_everywhere)


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
