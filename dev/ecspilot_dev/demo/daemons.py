"""Daemons everywhere: DAEMON services created, repaired, updated, and conflicts left alone."""

from __future__ import annotations

from typing import Any

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say, table
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.local import invoke


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

    from ecspilot.domain.config import parse_config  # noqa: PLC0415
    from ecspilot.reconcile.runbook import reconcile  # noqa: PLC0415
    from ecspilot_dev.local import load_event  # noqa: PLC0415

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
