"""deploy_on_push against moto: the real handler, events from events/, real boto3 clients."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.domain.taskdef import READ_ONLY_FIELDS
from ecspilot.errors import DeployFailuresError, EventError
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.moto_state import set_image_pushed_at

PUSH = "deploy_on_push"


def web_config(*services: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "services": list(services)}


def web_service(name: str, cluster: str = "prod", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cluster": cluster,
        "containers": {"app": {"repository": "web", "tags": ["v*"]}},
        **extra,
    }


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod")
    sandbox.repository("web")
    return sandbox


def current_td(rt: Runtime, cluster: str, service: str) -> dict[str, Any]:
    svc = rt.clients.ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    return dict(
        rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    )


def test_push_pins_the_image_by_digest_and_rolls_the_service(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN a service running web:v0 and the config mapping its app container to web v*
    td = world.task_definition("web", {"app": world.image("web", "v0"), "sidecar": "busybox:1"})
    world.service("prod", "web", td)
    rt = make_runtime(web_config(web_service("web")))
    # WHEN web:v1 is pushed
    event = world.push("web", "v1")
    result = invoke(PUSH, event)
    # THEN the service runs a new revision whose app image is pinned by digest; the sidecar is untouched
    new = current_td(rt, "prod", "web")
    images = {c["name"]: c["image"] for c in new["containerDefinitions"]}
    assert images == {"app": f"{world.registry}/web@{fake_digest('web:v1')}", "sidecar": "busybox:1"}
    assert new["revision"] == 2
    assert [s["outcome"] for s in result["services"]] == ["deployed"]
    assert result["registered"] == [new["taskDefinitionArn"]]


def test_the_clone_keeps_every_other_field_of_the_revision(world: Sandbox, make_runtime: MakeRuntime) -> None:
    # GIVEN a task definition using roles, sizes, awsvpc, volumes, secrets, logs, placement, platform and tags
    td = world.task_definition(
        "web",
        {"app": world.image("web", "v0")},
        taskRoleArn="arn:aws:iam::123456789012:role/web-task",
        executionRoleArn="arn:aws:iam::123456789012:role/web-exec",
        networkMode="awsvpc",
        cpu="512",
        memory="1024",
        requiresCompatibilities=["EC2", "FARGATE"],
        volumes=[{"name": "data", "host": {"sourcePath": "/data"}}],
        placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        tags=[{"key": "team", "value": "payments"}],
    )
    base = world.clients.ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]
    containers = [dict(c) for c in base["containerDefinitions"]]
    containers[0]["secrets"] = [
        {"name": "DB", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/db"}
    ]
    containers[0]["logConfiguration"] = {"logDriver": "awslogs", "options": {"awslogs-group": "/web"}}
    keep = {k: v for k, v in base.items() if k not in READ_ONLY_FIELDS}
    td = world.clients.ecs.register_task_definition(
        **{**keep, "containerDefinitions": containers, "tags": [{"key": "team", "value": "payments"}]}
    )["taskDefinition"]["taskDefinitionArn"]
    world.service("prod", "web", td)
    rt = make_runtime(web_config(web_service("web")))
    before = rt.clients.ecs.describe_task_definition(taskDefinition=td, include=["TAGS"])
    # WHEN an image is pushed
    invoke(PUSH, world.push("web", "v1"))
    # THEN the new revision equals the old one but for the app image (and the read-only fields)
    svc = rt.clients.ecs.describe_services(cluster="prod", services=["web"])["services"][0]
    after = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"], include=["TAGS"])
    volatile = {"taskDefinitionArn", "revision", "registeredAt", "registeredBy"}
    old = {k: v for k, v in before["taskDefinition"].items() if k not in volatile}
    new = {k: v for k, v in after["taskDefinition"].items() if k not in volatile}
    assert new["containerDefinitions"][0].pop("image") == f"{world.registry}/web@{fake_digest('web:v1')}"
    old["containerDefinitions"][0].pop("image")
    assert new == old
    assert after["tags"] == before["tags"] == [{"key": "team", "value": "payments"}]


def test_a_duplicate_event_registers_nothing(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    world.service("prod", "web", td)
    rt = make_runtime(web_config(web_service("web")))
    event = world.push("web", "v1")
    invoke(PUSH, event)
    recorder.reset()
    # WHEN the same event arrives again (EventBridge delivers at least once)
    result = invoke(PUSH, event)
    # THEN nothing is registered or updated
    assert [s["outcome"] for s in result["services"]] == ["unchanged"]
    assert recorder.writes() == []
    arns = rt.clients.ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"]
    assert len(arns) == 2


def test_a_stale_push_does_not_move_a_service_back(world: Sandbox, make_runtime: MakeRuntime) -> None:
    # GIVEN v1 then v2 pushed, and the service already on v2
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    world.service("prod", "web", td)
    rt = make_runtime(web_config(web_service("web")))
    old_event = world.push("web", "v1")
    new_event = world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    invoke(PUSH, new_event)
    # WHEN v1's event arrives late
    result = invoke(PUSH, old_event)
    # THEN the service stays on v2
    assert [s["outcome"] for s in result["services"]] == ["stale"]
    image = current_td(rt, "prod", "web")["containerDefinitions"][0]["image"]
    assert image.endswith(fake_digest("web:v2"))


def test_a_shared_task_definition_is_registered_once(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    for name in ("web-a", "web-b", "web-c"):
        world.service("prod", name, td)
    rt = make_runtime(web_config(*(web_service(n) for n in ("web-a", "web-b", "web-c"))))
    result = invoke(PUSH, world.push("web", "v1"))
    assert recorder.count("RegisterTaskDefinition") == 1
    assert recorder.count("UpdateService") == 3
    assert recorder.count("DescribeServices") == 1
    assert recorder.count("DescribeTaskDefinition") == 1
    assert {current_td(rt, "prod", n)["taskDefinitionArn"] for n in ("web-a", "web-b", "web-c")} == set(
        result["registered"]
    )


def test_services_are_described_ten_per_call(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    names = [f"web-{i:02d}" for i in range(23)]
    for name in names:
        world.service("prod", name, td)
    make_runtime(web_config(*(web_service(n) for n in names)))
    invoke(PUSH, world.push("web", "v1"))
    assert [len(p["services"]) for p in recorder.params("DescribeServices")] == [10, 10, 3]
    assert recorder.count("UpdateService") == 23
    assert recorder.count("RegisterTaskDefinition") == 1


def test_a_missing_service_fails_the_invocation_but_the_others_roll(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    world.service("prod", "web", td)
    rt = make_runtime(web_config(web_service("web"), web_service("ghost")))
    with pytest.raises(DeployFailuresError) as caught:
        invoke(PUSH, world.push("web", "v1"))
    assert [(f.context["service"], "MISSING" in str(f)) for f in caught.value.failures] == [("ghost", True)]
    assert current_td(rt, "prod", "web")["revision"] == 2


def test_update_never_sends_desired_count_and_rollback_turns_on_the_circuit_breaker(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    world.service("prod", "web", td)
    world.service("prod", "api", td)
    make_runtime(web_config(web_service("web", rollback=True), web_service("api")))
    invoke(PUSH, world.push("web", "v1"))
    updates = {p["service"]: p for p in recorder.params("UpdateService")}
    assert all("desiredCount" not in p for p in updates.values())
    assert updates["web"]["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    assert "deploymentConfiguration" not in updates["api"]


def test_each_deployment_is_recorded_in_progress(world: Sandbox, make_runtime: MakeRuntime) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    world.service("prod", "web", td)
    rt = make_runtime(web_config(web_service("web")))
    invoke(PUSH, world.push("web", "v1"))
    [record] = rt.history.deployments("prod", "web")
    assert record["status"] == "IN_PROGRESS"
    assert record["image_digest"] == fake_digest("web:v1")
    assert record["image_tag"] == "v1"
    assert record["from_task_definition"] == td
    assert record["to_task_definition"].endswith("task-definition/web:2")
    assert record["deployment_id"]
    assert record["expires_at"] > 0


def test_a_tag_outside_the_patterns_changes_nothing(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    world.service("prod", "web", td)
    make_runtime(web_config(web_service("web")))
    event = world.push("web", "latest")
    recorder.reset()
    result = invoke(PUSH, event)
    assert result["services"] == []
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("event_file", "reason"),
    [
        ("ecr_delete", "action DELETE is not a push"),
        ("ecr_push_failure", "push result is FAILURE"),
        ("ecr_push_untagged", "untagged image"),
    ],
)
def test_deletes_failures_and_untagged_pushes_are_ignored(
    event_file: str, reason: str, world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    make_runtime(web_config(web_service("web")))
    result = invoke(PUSH, load_event(event_file))
    assert result["ignored"].startswith(reason)
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"detail": {"result": "SUCCESS", "repository-name": "web", "action-type": "PUSH"}},
            "detail.image-digest",
        ),
        ({"account": "not-an-account"}, "account"),
        ({"detail-type": "ECS Task State Change"}, "detail-type"),
        ({"time": "yesterday"}, "time"),
    ],
)
def test_a_malformed_event_gets_a_typed_error_naming_the_field(
    change: dict[str, Any], field: str, make_runtime: MakeRuntime
) -> None:
    make_runtime(web_config(web_service("web")), table=False)
    with pytest.raises(EventError) as caught:
        invoke(PUSH, {**load_event("ecr_push"), **change})
    assert caught.value.context["field"] == field
    assert field in str(caught.value)


def test_the_malformed_sample_event_names_the_missing_digest(make_runtime: MakeRuntime) -> None:
    make_runtime(web_config(web_service("web")), table=False)
    with pytest.raises(EventError, match=r"detail\.image-digest: Field required"):
        invoke(PUSH, load_event("ecr_push_malformed"))


def test_a_dry_run_plans_without_changing_anything(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    from ecspilot.deploy.handler import handle_push_event  # noqa: PLC0415

    td = world.task_definition("web", {"app": world.image("web", "v0")})
    world.service("prod", "web", td)
    rt = make_runtime(web_config(web_service("web")))
    event = world.push("web", "v1")
    recorder.reset()
    result = handle_push_event(event, rt, dry_run=True)
    assert [s["outcome"] for s in result["services"]] == ["would-deploy"]
    assert recorder.writes() == []
