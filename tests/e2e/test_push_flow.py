"""Pushes through moto's server: ECR -> deploy_on_push -> ECS, over HTTP."""

from __future__ import annotations

import pytest

from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import fake_digest
from tests.e2e.conftest import World


def test_two_pushes_roll_two_clusters_and_a_replay_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = world.sandbox
    sb.repository("web")
    for cluster in ("blue-cluster", "green-zone"):
        sb.cluster(cluster)
        td = sb.task_definition(f"web-{cluster}", {"app": sb.image("web", "v0")})
        sb.service(cluster, "web", td)
    rt = world.configure(
        {
            "version": 1,
            "services": [
                {
                    "name": f"web-{c}",
                    "cluster": c,
                    "service": "web",
                    "containers": {"app": {"repository": "web"}},
                }
                for c in ("blue-cluster", "green-zone")
            ],
        },
        monkeypatch,
    )
    first = invoke("deploy_on_push", sb.push("web", "v1"))
    assert [s["outcome"] for s in first["services"]] == ["deployed", "deployed"]
    replay_event = sb.push("web", "v2")
    invoke("deploy_on_push", replay_event)
    world.recorder.reset()
    replay = invoke("deploy_on_push", replay_event)
    assert [s["outcome"] for s in replay["services"]] == ["unchanged", "unchanged"]
    assert world.recorder.writes() == []
    for cluster in ("blue-cluster", "green-zone"):
        svc = rt.clients.ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
        td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        assert td["containerDefinitions"][0]["image"] == f"{sb.registry}/web@{fake_digest('web:v2')}"
        assert [r["image_tag"] for r in rt.history.deployments(cluster, "web")] == ["v2", "v1"]
