"""Service deployments and rollback: a LINEAR deployment followed through its stages (closed by
reconcile when ECS sends no event after the bake), then ``ecspilot rollback`` of the active one,
and a redelivered push held.

moto implements no service deployments API (ListServiceDeployments, DescribeServiceDeployments,
StopServiceDeployment): an :class:`OperationStubber` on the handlers' own ECS client answers
those calls with what ECS would say (botocore validates each request and answer against the API
model); every other call goes to moto's server. Because the stub lives in this process, the
rollback verb runs here too (the CLI's own function, on the demo's runtime), not in a subprocess.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from ecspilot.aws.service_state import held_records
from ecspilot.domain.service_deployments import stage_text
from ecspilot.interfaces import runtime
from ecspilot.interfaces.cli_rollback import run_rollback
from ecspilot.interfaces.present import say
from ecspilot.interfaces.status import history_rows
from ecspilot.reconcile.runbook import reconcile
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.demo.tracking import ecs_event, track
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION, fake_digest, push_event
from ecspilot_dev.service_deployments import (
    OperationStubber,
    brief,
    deployment_arn,
    described,
    revision_arn,
    strategy_configuration,
)

ROLLBACK_CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [{"name": "shop", "cluster": "retail", "containers": {"app": {"repository": "shop"}}}],
    "jobs": [],
    "daemons": [],
}
CONF = strategy_configuration("LINEAR", bake_minutes=30, step_percent=20.0)
OPEN = ["PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"]


class LinearEcs:
    """What ECS says about shop's service deployments, queued on the stub step by step."""

    def __init__(self, stub: OperationStubber) -> None:
        self.stub = stub

    def arn(self, deployment_id: str) -> str:
        return deployment_arn(
            REGION, ACCOUNT, "retail", "shop", f"sd-{deployment_id.rsplit('/', 1)[-1][-8:]}"
        )

    def target(self, deployment_id: str) -> str:
        return revision_arn(REGION, ACCOUNT, "retail", "shop", deployment_id)

    def listed(self, deployment_id: str, status: str, statuses: list[str] | None = None) -> None:
        params: dict[str, Any] = {"cluster": "retail", "service": "shop", "maxResults": 20}
        if statuses:
            params["status"] = statuses
        row = brief(self.arn(deployment_id), status, self.target(deployment_id), datetime.now(UTC))
        self.stub.add_response("list_service_deployments", {"serviceDeployments": [row]}, params)

    def says(
        self, deployment_id: str, status: str, stage: str, since: datetime, weight: float | None = None
    ) -> None:
        answer = described(
            self.arn(deployment_id),
            status,
            stage,
            self.target(deployment_id),
            CONF,
            created_at=since - timedelta(minutes=5),
            updated_at=since,
            weight=weight,
            reason="rolled back on request" if status.startswith("ROLLBACK") else "",
        )
        self.stub.add_response(
            "describe_service_deployments",
            {"serviceDeployments": [answer]},
            {"serviceDeploymentArns": [self.arn(deployment_id)]},
        )


def _record(tag: str) -> dict[str, Any]:
    rows = runtime.current().history.deployments("retail", "shop")
    return next(r for r in rows if r.get("image_tag") == tag)


def _stage(demo: Demo, tag: str, status: str, stage: str) -> None:
    record = _record(tag)
    told = stage_text(record, datetime.now(UTC))
    _, rows = history_rows(runtime.current().config, runtime.current().history, "shop")
    demo.note(
        f"record of {tag}: {record['status']}, stage '{told}' (ecspilot history shows '{rows[0]['stage']}')"
    )
    demo.check(record["status"] == status, f"{tag}'s record is {status}, got {record['status']}")
    demo.check(told == stage, f"stage '{stage}', got '{told}'")


def _setup(demo: Demo) -> None:
    demo.step("A cluster 'retail' and a service 'shop' with the LINEAR strategy (20% steps, 30 min bake)")
    sb = demo.sandbox
    sb.cluster("retail", instances_per_zone=1, zones=("us-east-1a",))
    sb.repository("shop")
    sb.service("retail", "shop", sb.task_definition("shop", {"app": sb.image("shop", "v0")}))
    demo.clients.ecs.update_service(cluster="retail", service="shop", deploymentConfiguration=CONF)  # type: ignore[arg-type]
    svc = demo.clients.ecs.describe_services(cluster="retail", services=["shop"])["services"][0]
    strategy = svc["deploymentConfiguration"].get("strategy")
    demo.note(f"retail/shop deploymentConfiguration.strategy = {strategy}")
    demo.check(strategy == "LINEAR", f"strategy LINEAR, got {strategy}")


def _linear_through_its_stages(demo: Demo, ecs: LinearEcs) -> None:
    demo.step("Push shop:v1: deployed; ECS shifts traffic 20% at a time, ecspilot follows the stages")
    invoke("deploy_on_push", demo.sandbox.push("shop", "v1"))
    v1 = _record("v1")["deployment_id"]
    now = datetime.now(UTC)
    ecs.listed(v1, "IN_PROGRESS")
    ecs.says(v1, "IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", now, weight=40.0)
    track(demo, ecs_event("ecs_deployment_in_progress", v1, "shop", "retail"), "status unchanged")
    _stage(demo, "v1", "IN_PROGRESS", "linear step 2 of 5 (40%)")

    demo.step("ECS says SERVICE_DEPLOYMENT_COMPLETED while the deployment bakes: not COMPLETED yet")
    ecs.says(v1, "IN_PROGRESS", "BAKE_TIME", now - timedelta(minutes=12))
    track(demo, ecs_event("ecs_deployment_completed", v1, "shop", "retail"), "status unchanged")
    _stage(demo, "v1", "IN_PROGRESS", "baking, 12 of 30 min")

    demo.step(
        "The bake passes, ECS says SUCCESSFUL and sends no further event: reconcile's dry run shows the move"
    )
    ecs.says(v1, "SUCCESSFUL", "CLEAN_UP", now + timedelta(minutes=19))
    demo.recorder.reset()
    planned = [a for a in reconcile(runtime.current(), dry_run=True).actions if a.kind == "deployment"]
    writes = demo.recorder.writes()
    demo.note(f"plan: {[f'{a.target}: {a.detail}' for a in planned]}; AWS write calls: {writes or 'none'}")
    demo.check(
        [a.detail.split(" (")[0] for a in planned] == ["would-move IN_PROGRESS -> COMPLETED"], "would-move"
    )
    demo.check(writes == [] and _record("v1")["status"] == "IN_PROGRESS", "nothing written, v1 still open")

    demo.step("The next reconcile run closes it: COMPLETED (promotion may take it), from what ECS says")
    ecs.says(v1, "SUCCESSFUL", "CLEAN_UP", now + timedelta(minutes=19))
    done = [a for a in invoke("reconcile", {})["actions"] if a["kind"] == "deployment"]
    demo.note(f"reconcile: {[a['detail'] for a in done]}")
    demo.check(_record("v1")["status"] == "COMPLETED", f"v1 COMPLETED, got {_record('v1')['status']}")


def _rollback_of_the_active_deployment(demo: Demo, ecs: LinearEcs) -> None:
    demo.step("Push shop:v2: a LINEAR deployment starts; its first step shows errors")
    invoke("deploy_on_push", demo.sandbox.push("shop", "v2"))
    v2 = _record("v2")["deployment_id"]
    ecs.listed(v2, "IN_PROGRESS")
    ecs.says(v2, "IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", datetime.now(UTC), weight=20.0)
    track(demo, ecs_event("ecs_deployment_in_progress", v2, "shop", "retail"), "status unchanged")
    _stage(demo, "v2", "IN_PROGRESS", "linear step 1 of 5 (20%)")

    demo.step("ecspilot rollback shop --dry-run: what it would do, and no write call")
    ecs.listed(v2, "IN_PROGRESS", OPEN)
    demo.recorder.reset()
    say("$ ecspilot rollback shop --dry-run")
    code = _verb(["shop", "--dry-run"])
    demo.ran_in_process("rollback")
    writes = demo.recorder.writes()
    demo.note(f"exit {code}; AWS write calls: {writes or 'none'}")
    demo.check(code == 0 and writes == [], f"exit 0 and no write call, got {code}, {writes}")

    demo.step("ecspilot rollback shop: StopServiceDeployment with ROLLBACK, and v2's digest held")
    ecs.listed(v2, "IN_PROGRESS", OPEN)
    ecs.stub.add_response(
        "stop_service_deployment",
        {"serviceDeploymentArn": ecs.arn(v2)},
        {"serviceDeploymentArn": ecs.arn(v2), "stopType": "ROLLBACK"},
    )
    demo.recorder.reset()
    say("$ ecspilot rollback shop --reason 'errors at 20%'")
    code = _verb(["shop", "--reason", "errors at 20%"])
    demo.ran_in_process("rollback")
    stops = demo.recorder.params("StopServiceDeployment")
    demo.note(f"exit {code}; StopServiceDeployment {[p['stopType'] for p in stops]}")
    demo.check(code == 0 and [p["stopType"] for p in stops] == ["ROLLBACK"], "one stop, with ROLLBACK")
    state = runtime.current().history.get_many([{"pk": "SERVICE#retail#shop", "sk": "STATE"}])
    held = [r["image_digest"] for r in held_records(next(iter(state.values()), {}))]
    demo.check(held == [fake_digest("shop:v2")], f"v2's digest held, got {held}")

    demo.step("ECS rolls back (ROLLBACK_SUCCESSFUL): the tracker marks v2 ROLLED_BACK")
    previous = _record("v1")["to_task_definition"]
    demo.clients.ecs.update_service(cluster="retail", service="shop", taskDefinition=previous)  # what ECS did
    ecs.says(v2, "ROLLBACK_SUCCESSFUL", "CLEAN_UP", datetime.now(UTC))
    track(demo, ecs_event("ecs_deployment_failed", v2, "shop", "retail"), "IN_PROGRESS -> ROLLED_BACK")


def _redelivered_push_held(demo: Demo) -> None:
    demo.step("EventBridge delivers v2's push again: held, v1 keeps running")
    again = invoke("deploy_on_push", push_event("shop", "v2", fake_digest("shop:v2")))
    outcome = [s["outcome"] for s in again["services"]]
    demo.note(f"shop: {outcome[0] if outcome else '-'}: {again['services'][0]['reason'] if outcome else ''}")
    running = demo.clients.ecs.describe_services(cluster="retail", services=["shop"])["services"][0]
    demo.check(outcome == ["held"], f"held, got {outcome}")
    demo.check(running["taskDefinition"] == _record("v1")["to_task_definition"], "v1's revision still runs")


def _verb(argv: list[str]) -> int:
    """``ecspilot rollback ARGV`` through the verb's own function, on the demo's runtime."""
    args = argparse.Namespace(service=argv[0], dry_run="--dry-run" in argv, reason=None, output="table")
    if "--reason" in argv:
        args.reason = argv[argv.index("--reason") + 1]
    return run_rollback(runtime.current(), args)


def chapter_rollback(demo: Demo) -> None:
    """A LINEAR deployment's stages, `ecspilot rollback` of the active one, its push held."""
    say("\n=== Service deployments: a LINEAR deployment's stages, and ecspilot rollback ===")
    _setup(demo)
    with OperationStubber(demo.clients.ecs) as stub:
        ecs = LinearEcs(stub)
        _linear_through_its_stages(demo, ecs)
        _rollback_of_the_active_deployment(demo, ecs)
        _redelivered_push_held(demo)
        demo.check(stub.pending == 0, "every answer ECS was to give was asked for")
