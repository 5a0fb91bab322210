"""The demo's shared state: the config it starts from, the sandbox, the narration."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.interfaces.present import say
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox

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


def run_cli(argv: Sequence[str]) -> int:
    """``ecspilot ARGV`` as a user would run it: its own process, this process's environment (the
    local AWS, the config, the table). The demo never imports the CLI: it shows the CLI."""
    sys.stdout.flush()
    return subprocess.run([sys.executable, "-m", "ecspilot", *argv], check=False).returncode


class Demo:
    """Shared state of the chapters: the sandbox, a call recorder, the narration."""

    def __init__(self) -> None:
        import boto3  # noqa: PLC0415

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
