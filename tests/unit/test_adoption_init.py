"""``ecspilot init``'s decisions (pure): tags, what is left out, rollback, daemons, jobs, order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecspilot.adoption.discover import Discovered, FoundService, FoundTarget
from ecspilot.adoption.init import adopt, infer_tags, left_out_reason
from ecspilot.adoption.render import render
from ecspilot.domain.config import parse_config

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def make_service(
    name: str,
    cluster: str = "prod",
    image: str = f"{REGISTRY}/shop/web:v1",
    td: str = "web:1",
    scheduling: str = "REPLICA",
    **extra: Any,
) -> FoundService:
    svc = {
        "serviceName": name,
        "taskDefinition": f"arn:aws:ecs:us-east-1:123456789012:task-definition/{td}",
        "schedulingStrategy": scheduling,
        **extra,
    }
    return FoundService(cluster, svc, {"containerDefinitions": [{"name": "app", "image": image}]})


def make_target(name: str, source: str = "rule", **ecs: Any) -> FoundTarget:
    target = {
        "Id": "t",
        "Arn": "arn:aws:ecs:us-east-1:123456789012:cluster/batch",
        "EcsParameters": {
            "TaskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/job:4",
            **ecs,
        },
    }
    return FoundTarget(source, name, "rate(1 day)", "UTC", True, target)


@pytest.mark.parametrize(
    ("tag", "digest", "tags", "commented"),
    [
        ("v1.2.3", None, ["v*"], False),
        ("v2", None, ["v*"], False),
        ("v1.2.3-rc.1", None, ["v*"], False),
        ("latest", None, ["*"], True),
        ("1.2.3", None, ["*"], True),
        ("main-4f2a", None, ["*"], True),
        (None, "sha256:" + "a" * 64, ["*"], True),
        (None, None, ["*"], True),
    ],
)
def test_tags_are_inferred_from_the_running_tag(
    tag: str | None, digest: str | None, tags: list[str], commented: bool
) -> None:
    got, comment = infer_tags(tag, digest)
    assert got == tags
    assert (comment is not None) == commented


@pytest.mark.parametrize(
    ("service", "why"),
    [
        ({"deploymentController": {"type": "ECS"}}, None),
        ({}, None),
        ({"deploymentController": {"type": "EXTERNAL"}}, "EXTERNAL deployment controller"),
        ({"deploymentController": {"type": "CODE_DEPLOY"}}, "CODE_DEPLOY deployment controller"),
        ({"resourceManagementType": "ECS"}, "Express Mode"),
        ({"resourceManagementType": "CUSTOMER"}, None),
    ],
)
def test_services_ecspilot_cannot_deploy_are_left_out_with_why(
    service: dict[str, Any], why: str | None
) -> None:
    got = left_out_reason(service)
    assert (got is None) if why is None else (got is not None and why in got)


def test_the_circuit_breaker_makes_rollback_true() -> None:
    breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    adoption = adopt(
        Discovered(
            ["prod"], [make_service("web", deploymentConfiguration=breaker), make_service("api", td="api:1")]
        )
    )
    by_name = {e.data["name"]: e for e in adoption.services}
    assert by_name["web"].data["rollback"] is True
    assert "rollback" not in by_name["api"].data
    assert any("circuit breaker" in c for c in by_name["web"].comments)


def test_daemons_are_grouped_across_clusters_only_when_identical() -> None:
    found = [
        make_service("agent", "a", td="agent:2", scheduling="DAEMON"),
        make_service("agent", "b", td="agent:2", scheduling="DAEMON"),
        make_service("agent", "c", td="agent:3", scheduling="DAEMON"),
    ]
    adoption = adopt(Discovered(["a", "b", "c"], found))
    assert [e.data for e in adoption.daemons] == [
        {"name": "agent", "clusters": ["a", "b"], "task_definition": "agent:2"},
        {"name": "agent-2", "clusters": ["c"], "service": "agent", "task_definition": "agent:3"},
    ]
    parse_config(adoption.as_config())


def test_the_same_service_name_on_two_clusters_gets_two_names() -> None:
    adoption = adopt(Discovered(["a", "b"], [make_service("web", "a"), make_service("web", "b")]))
    assert [(e.data["name"], e.data["service"]) for e in adoption.services] == [
        ("web-a", "web"),
        ("web-b", "web"),
    ]
    parse_config(adoption.as_config())


def test_a_job_carries_the_target_and_is_never_adopted() -> None:
    target = make_target(
        "group/sync",
        source="schedule",
        CapacityProviderStrategy=[{"capacityProvider": "spot-asg", "weight": 2}],
        NetworkConfiguration={"AwsvpcConfiguration": {"Subnets": ["s-1"], "SecurityGroups": ["sg-1"]}},
        PlacementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}],
    )
    target.target["Input"] = json.dumps(
        {
            "containerOverrides": [{"name": "app", "environment": [{"name": "MODE", "value": "full"}]}],
            "cpu": "512",
        }
    )
    (job,) = adopt(Discovered(["batch"], targets=[target])).jobs
    assert job.data["adopt"] is False
    assert job.data["capacity_provider_strategy"] == [
        {"capacity_provider": "spot-asg", "weight": 2, "base": 0}
    ]
    assert job.data["network"] == {"subnets": ["s-1"], "security_groups": ["sg-1"], "assign_public_ip": False}
    assert job.data["overrides"] == {"containers": {"app": {"environment": {"MODE": "full"}}}, "cpu": "512"}
    assert job.data["placement"]["strategy"] == [
        {"type": "spread", "field": "attribute:ecs.availability-zone"}
    ]
    config = parse_config({"version": 1, "jobs": [job.data]})
    assert not config.jobs[0].owns_schedule


def test_the_output_does_not_depend_on_the_order_things_were_read() -> None:
    services = [
        make_service("web"),
        make_service("api", td="api:1"),
        make_service("agent", "b", td="agent:1", scheduling="DAEMON"),
        make_service("agent", "a", td="agent:1", scheduling="DAEMON"),
    ]
    targets = [make_target("b-job"), make_target("a-job")]
    one = render(adopt(Discovered(["a", "b"], services, targets)))
    two = render(adopt(Discovered(["a", "b"], services[::-1], targets[::-1])))
    assert one == two


def test_a_fargate_target_leaves_its_placement_out_with_a_comment() -> None:
    target = make_target("sync", LaunchType="FARGATE", PlacementConstraints=[{"type": "distinctInstance"}])
    (job,) = adopt(Discovered(["batch"], targets=[target])).jobs
    assert "placement" not in job.data
    assert any("placement is left out" in c for c in job.comments)
    parse_config({"version": 1, "jobs": [job.data]})
