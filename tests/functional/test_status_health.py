"""``ecspilot status`` shows service health: moto's ECS and ELBv2 (VPC, subnets, an ALB, a target
group with a health check on / every 30 s expecting 200), the tracker's stop records written by the
real track_deployments handler, the CLI's own entry point."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecspilot.interfaces.cli import main
from ecspilot.interfaces.status_health import health_row, service_health
from ecspilot_dev.health_events import DRAINED, ELB_FAILED, service_task_stopped
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import Sandbox
from tests.conftest import TABLE, MakeRuntime
from tests.faults import Faults
from tests.moto_state import target_health

CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [
        {"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}},
        {"name": "worker", "cluster": "prod", "containers": {"app": {"repository": "web"}}},
    ],
}
TARGETS = ["10.0.1.10", "10.0.1.11", "10.0.2.12"]


def load_balanced(sandbox: Sandbox, interval: int = 30, start_period: int = 0) -> str:
    """An ALB in two subnets and target group ``web`` (HTTP /, ``interval``, matcher 200) with three
    registered targets; service prod/web behind it, prod/worker behind none. Returns the group's ARN."""
    ec2, elbv2 = sandbox.clients.get("ec2"), sandbox.clients.elbv2
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in ((1, "us-east-1a"), (2, "us-east-1b"))
    ]
    elbv2.create_load_balancer(Name="web", Subnets=subnets)
    group = elbv2.create_target_group(
        Name="web",
        Protocol="HTTP",
        Port=8080,
        VpcId=vpc,
        TargetType="ip",
        HealthCheckPath="/",
        HealthCheckIntervalSeconds=interval,
        Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": t, "Port": 8080} for t in TARGETS])
    sandbox.cluster("prod")
    health = (
        {"healthCheck": {"command": ["CMD-SHELL", "true"], "startPeriod": start_period}}
        if start_period
        else {}
    )
    td = sandbox.clients.ecs.register_task_definition(
        family="web",
        containerDefinitions=[
            {
                "name": "app",
                "image": sandbox.image("web"),
                "memory": 256,
                "portMappings": [{"containerPort": 8080}],
                **health,
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    lb = [{"targetGroupArn": group, "containerName": "app", "containerPort": 8080}]
    sandbox.service("prod", "web", td, desired=3, loadBalancers=lb)
    sandbox.service("prod", "worker", td, desired=1)
    return group


@pytest.fixture
def cli(make_runtime: MakeRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_runtime(CONFIG)
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)


def replacements(count: int, drained: int = 0) -> None:
    """``count`` of web's tasks replaced after failing the ELB health checks in the last hour (and
    ``drained`` drained by a deployment), tracked by the real handler."""
    now = datetime.now(UTC)
    for n in range(count):
        invoke("track_deployments", service_task_stopped(ELB_FAILED, n, now - timedelta(minutes=50 - n)))
    for n in range(drained):
        invoke("track_deployments", service_task_stopped(DRAINED, 100 + n, now - timedelta(minutes=5)))
    # one replacement two hours ago is not in the last hour
    invoke("track_deployments", service_task_stopped(ELB_FAILED, 999, now - timedelta(hours=2)))


@pytest.mark.usefixtures("cli")
def test_status_of_one_service_shows_target_health_from_describe_target_health_and_its_health_check(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN web behind a target group whose third target fails the health check (the load
    # balancer's verdict: moto calls every target healthy, tests.moto_state says otherwise)
    load_balanced(sandbox)
    replacements(3, drained=2)
    capsys.readouterr()
    # WHEN a person asks for web's status
    with target_health({TARGETS[2]: ("unhealthy", "Target.ResponseCodeMismatch")}):
        assert main(["status", "web"]) == 0
    out = capsys.readouterr().out.splitlines()
    # THEN tasks, targets with the unhealthy one's reason code, the health check, its note, and
    # the replacements of the last hour (drained tasks and older ones not counted)
    assert out[0] == "service prod/web (web)"
    assert "  tasks:          0 running / 3 desired / 3 pending" in out
    assert "  target group:   web" in out
    assert "    targets:      2 healthy, 1 unhealthy, 0 draining" in out
    assert "    not healthy:  1 x Target.ResponseCodeMismatch" in out
    assert "    health check: HTTP / every 30s, expects 200, healthy after 5, unhealthy after 2" in out
    assert any("healthCheckGracePeriodSeconds is 0 behind a load balancer" in line for line in out)
    assert any(
        line.startswith("  replaced (1h):  3, most often: Task failed ELB health checks") for line in out
    )


@pytest.mark.usefixtures("cli")
def test_status_lists_every_services_health_and_json_carries_it(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    load_balanced(sandbox, interval=120)
    with target_health({TARGETS[0]: ("draining", "Target.DeregistrationInProgress")}):
        assert main(["status"]) == 0
        text = capsys.readouterr().out
        assert main(["status", "--output", "json"]) == 0
    # THEN the health table has one line per service: web's targets, worker behind no load balancer
    health = text.split("\nhealth\n", 1)[1].split("\njobs\n", 1)[0].splitlines()
    assert health[0].split() == ["SERVICE", "TASKS", "TARGETS", "REPLACED", "1H", "NOTE"]
    web = next(line for line in health if line.startswith("prod/web"))
    assert "2 healthy, 1 draining (Target.DeregistrationInProgress)" in web
    assert "interval 120s is long" in web
    worker = next(line for line in health if line.startswith("prod/worker"))
    assert "no load balancer" in worker
    # AND the JSON output has the same, as data
    data = json.loads(capsys.readouterr().out)
    by_service = {h["service"]: h for h in data["health"]}
    [group] = by_service["web"]["target_groups"]
    assert (group["healthy"], group["draining"], group["reasons"]) == (
        2,
        1,
        {"Target.DeregistrationInProgress": 1},
    )
    assert group["check"]["matcher"] == "200"
    assert by_service["worker"]["target_groups"] == []


@pytest.mark.usefixtures("cli")
def test_a_grace_period_shorter_than_the_containers_start_period_is_noted(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    load_balanced(sandbox, start_period=90)
    assert main(["status", "web", "--output", "json"]) == 0
    [group] = json.loads(capsys.readouterr().out)["target_groups"]
    assert any("shorter than the container's start period 90s" in n for n in group["notes"])


@pytest.mark.usefixtures("cli")
def test_status_of_something_that_is_not_a_configured_service_is_bad_input(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    load_balanced(sandbox)
    assert main(["status", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_status_whose_load_balancer_reads_are_denied_still_shows_the_rest_and_names_the_denied_call(
    sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN credentials without elasticloadbalancing:DescribeTargetGroups
    load_balanced(sandbox)
    rt = make_runtime(CONFIG)
    denied = faults.fail("DescribeTargetGroups", "error", code="AccessDenied")
    # WHEN status reads the services' health with the clients it is given
    rows = {h.service: h for h in service_health(rt.config, rt.clients, rt.history, datetime.now(UTC))}
    # THEN the tasks are still shown, and web's row names the denied call and AWS's error
    assert denied.fired == 1
    assert (rows["web"].desired, rows["worker"].desired) == (3, 1)
    assert "DescribeTargetGroups failed" in rows["web"].problem
    assert "AccessDenied" in rows["web"].problem
    assert health_row(rows["web"])["note"] == rows["web"].problem
    assert rows["worker"].problem == ""
