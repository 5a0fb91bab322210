"""Daemons everywhere: DAEMON services created, repaired, updated, and conflicts left alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say, table
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.local import invoke


def _reconcile_and_show(
    demo: Demo, expect: dict[str, str], writes: list[str], event: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Invoke the reconcile handler as Lambda would, narrate its actions and AWS calls, and check
    the daemon changes (target -> change) and the write calls are the ones the step tells."""
    demo.recorder.reset()
    result: dict[str, Any] = invoke("reconcile", event or {})
    table(result["actions"], ["target", "change", "detail"])
    done = demo.recorder.writes()
    calls = ", ".join(f"{op} x{done.count(op)}" for op in dict.fromkeys(done))
    demo.note(f"AWS write calls: {calls or 'none'}")
    changes = {a["target"]: a["change"] for a in result["actions"] if a["kind"] == "daemon"}
    demo.check(changes == expect, f"daemon changes {expect}, got {changes}")
    demo.check(sorted(done) == sorted(writes), f"write calls {writes}, got {done}")
    return result


FLUENT_BIT = "public.ecr.aws/aws-observability/aws-for-fluent-bit"


def _clusters(demo: Demo) -> None:
    demo.step("Create clusters 'analytics' and 'batch', register task definition fluent-bit:1")
    for name in ("analytics", "batch"):
        demo.sandbox.cluster(name)
    clusters = demo.clients.ecs.describe_clusters(clusters=["analytics", "batch"])["clusters"]
    demo.check([c["status"] for c in clusters] == ["ACTIVE", "ACTIVE"], "both clusters exist")
    revision = demo.sandbox.task_definition("fluent-bit", {"fluent-bit": f"{FLUENT_BIT}:2.34"})
    demo.check(revision.endswith("fluent-bit:1"), f"fluent-bit:1 registered, got {revision}")


def _created_as_daemons(demo: Demo, both: dict[str, str]) -> None:
    demo.step("Reconcile (rate schedule, stack deploy or drift event): the agent is created on both")
    _reconcile_and_show(demo, both, ["CreateService"] * 2)
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
    demo.check(created["schedulingStrategy"] == "DAEMON" and not refused, "DAEMON, no desiredCount/strategy")


def chapter_daemons_everywhere(demo: Demo) -> None:
    """Reconcile keeps a DAEMON service on every configured cluster."""
    from dataclasses import replace  # noqa: PLC0415

    from ecspilot.domain.config import parse_config  # noqa: PLC0415
    from ecspilot_dev.local import load_event  # noqa: PLC0415

    sb = demo.sandbox
    say("\n=== Daemons everywhere: one log agent per host, on every cluster, kept in place ===")
    _clusters(demo)
    daemon = {
        "name": "log-agent",
        "clusters": ["analytics", "batch"],
        "task_definition": "fluent-bit",
        "placement_constraints": ["attribute:ecs.os-type == linux"],
    }

    def use_daemons(*daemons: dict[str, Any]) -> None:
        current = runtime.current()
        data = {**current.config.model_dump(exclude_none=True), "daemons": list(daemons)}
        config = parse_config(data)
        runtime.reset(replace(current, config=config))
        # the config file too: the CLI (`ecspilot plan`) reads it, as a user's would
        path = Path(os.environ["ECSPILOT_CONFIG"])
        path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)), encoding="utf-8")

    use_daemons(daemon)
    demo.note(
        "config: daemons: [{name: log-agent, clusters: [analytics, batch], task_definition: fluent-bit}]"
    )

    demo.step("`ecspilot plan`: the dry run shows what reconcile would do, and changes nothing")
    both = {"analytics/log-agent": "create", "batch/log-agent": "create"}
    demo.plan(both)  # the real `ecspilot plan`, as a user runs it
    services = demo.clients.ecs.list_services(cluster="batch")["serviceArns"]
    demo.check(services == [], f"a dry run creates nothing, got {services}")

    _created_as_daemons(demo, both)

    in_sync = {"analytics/log-agent": "in-sync", "batch/log-agent": "in-sync"}
    demo.step("Reconcile again: everything is in sync, so not one write call")
    _reconcile_and_show(demo, in_sync, [])

    demo.step("Someone deletes batch/log-agent by hand; CloudTrail's DeleteService event runs reconcile")
    demo.clients.ecs.delete_service(cluster="batch", service="log-agent", force=True)
    deleted = load_event(
        "cloudtrail_delete_service", {"requestParameters": {"cluster": "batch", "service": "log-agent"}}
    )
    _reconcile_and_show(demo, {**in_sync, "batch/log-agent": "create"}, ["CreateService"], deleted)

    demo.step("Register fluent-bit:2: the family's latest ACTIVE revision moves, both agents update")
    sb.task_definition("fluent-bit", {"fluent-bit": f"{FLUENT_BIT}:2.35"})
    updated = {"analytics/log-agent": "update", "batch/log-agent": "update"}
    _reconcile_and_show(demo, updated, ["UpdateService"] * 2)

    demo.step("Cluster 'legacy' already runs a hand-made 'log-agent'; the daemon now targets every cluster")
    sb.cluster("legacy")
    handmade = sb.task_definition("legacy-logs", {"agent": f"{FLUENT_BIT}:1.9"})
    sb.service("legacy", "log-agent", handmade, desired=1)
    use_daemons({**daemon, "clusters": "*"})
    demo.note('config: clusters: "*"; CloudTrail\'s CreateCluster event runs reconcile')
    created_cluster = load_event(
        "cloudtrail_create_cluster", {"requestParameters": {"clusterName": "legacy"}}
    )
    _reconcile_and_show(demo, {**in_sync, "legacy/log-agent": "conflict"}, [], created_cluster)
    legacy = demo.clients.ecs.describe_services(cluster="legacy", services=["log-agent"])["services"][0]
    demo.check(legacy["taskDefinition"].endswith("/legacy-logs:1"), "legacy/log-agent left on legacy-logs:1")
    demo.note(
        "legacy/log-agent is reported as a conflict and left alone: ecspilot never changes what it did not create"
    )
