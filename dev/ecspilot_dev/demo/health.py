"""Service health: ECS heals a failing task silently; ecspilot says when healing became a loop."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.health_events import DRAINED, ELB_FAILED, service_task_stopped
from ecspilot_dev.local import invoke

HEALTH_CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "crash_loop": {"replacements": 5, "minutes": 10},
        }
    ],
    "jobs": [],
    "daemons": [],
}


def _load_balanced_service(demo: Demo) -> tuple[str, str, list[str]]:
    """A VPC, two subnets, an ALB, target group web (HTTP / every 30 s, matcher 200), service
    prod/web behind it on two container instances, both registered as targets."""
    sb, ec2, elbv2 = demo.sandbox, demo.clients.get("ec2"), demo.clients.elbv2
    demo.step("A service behind a load balancer: target group web checks / every 30 s, expects 200")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in ((1, "us-east-1a"), (2, "us-east-1b"))
    ]
    elbv2.create_load_balancer(Name="web", Subnets=subnets)
    group = elbv2.create_target_group(
        Name="web",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,
        HealthCheckPath="/",
        HealthCheckIntervalSeconds=30,
        Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]["TargetGroupArn"]
    sb.cluster("prod", instances_per_zone=1, zones=("us-east-1a", "us-east-1b"))
    instances = [r["Instances"][0]["InstanceId"] for r in ec2.describe_instances()["Reservations"]]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": i, "Port": 80} for i in instances])
    sb.repository("web")
    td = sb.task_definition("web", {"app": sb.image("web", "v1")})
    lb = [{"targetGroupArn": group, "containerName": "app", "containerPort": 80}]
    sb.service("prod", "web", td, desired=2, loadBalancers=lb)
    health = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    states = [f"{d['Target']['Id']} {d['TargetHealth']['State']}" for d in health]
    demo.note(f"targets: {', '.join(states)}")
    demo.check([d["TargetHealth"]["State"] for d in health] == ["healthy", "healthy"], "two healthy targets")
    return td, group, instances


def _notifications(demo: Demo) -> str:
    clients = demo.clients
    demo.step("Notifications on: an SNS topic, an SQS queue subscribed to read what a person gets")
    topic = clients.sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    inbox = clients.sqs.create_queue(QueueName="ecspilot-inbox")["QueueUrl"]
    inbox_arn = clients.sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    clients.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    os.environ["ECSPILOT_NOTIFY_TOPIC_ARN"] = topic
    runtime.reset(runtime.Runtime.build(clients=clients))
    demo.check(runtime.current().settings.notify_topic_arn == topic, "the tracker publishes to the topic")
    return str(inbox)


def _read(demo: Demo, inbox: str) -> list[dict[str, Any]]:
    messages = demo.clients.sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        demo.clients.sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def _track(demo: Demo, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = invoke("track_deployments", event)
    loop = f", crash loop: {result['crash_loop']}" if result.get("crash_loop") else ""
    window = result.get("replacements_in_window")
    counted = f" ({window} in the window{loop})" if window is not None else ""
    demo.note(f"task {event['detail']['taskArn'][-6:]} {result['kind']:<17}{counted}")
    return result


def chapter_health(demo: Demo) -> None:
    """Replaced tasks recorded, one notification per crash loop, target health in ``status``."""
    say("\n=== Service health: ECS heals silently; when is healing a crash loop, and why? ===")
    td, group, instances = _load_balanced_service(demo)
    failed_checks = {"stoppedReason": f"Task failed ELB health checks in (target-group {group})"}
    inbox = _notifications(demo)
    now = datetime.now(UTC)
    demo.step("A deployment drains web's three old tasks: recorded, not replacements")
    drained = [
        _track(demo, service_task_stopped(DRAINED, n, now - timedelta(minutes=9), task_definition=td))
        for n in range(3)
    ]
    demo.check(not any(r["replacement"] for r in drained), "drained tasks are not replacements")
    demo.step(
        "The new tasks fail the health check: ECS replaces five within five minutes (its events, sent by the demo)"
    )
    failing = [
        _track(
            demo,
            service_task_stopped(
                ELB_FAILED, 10 + n, now - timedelta(minutes=6 - n), task_definition=td, **failed_checks
            ),
        )
        for n in range(5)
    ]
    demo.check([r["replacements_in_window"] for r in failing] == [1, 2, 3, 4, 5], "five in the window")
    demo.check(failing[-1]["crash_loop"] == "start", "the fifth starts a crash loop")
    demo.step("The notification a person gets: one per loop, with the reason and the image")
    [note] = _read(demo, inbox)
    demo.note(note["Subject"])
    for line in note["Message"].splitlines():
        demo.note(f"  {line}")
    demo.check(
        f"Task failed ELB health checks in (target-group {group})" in note["Message"], "it names the reason"
    )
    demo.check("sha256:" in note["Message"], "it names the image digest")
    demo.step("ECS keeps replacing: the same loop, so no second notification")
    more = [
        _track(
            demo,
            service_task_stopped(
                ELB_FAILED, 20 + n, now - timedelta(minutes=1 - n * 0.5), task_definition=td
            ),
        )
        for n in range(2)
    ]
    demo.check([r["crash_loop"] for r in more] == [None, None], "the loop goes on")
    demo.check(_read(demo, inbox) == [], "no second notification")
    demo.step("One instance stops: moto reports its target unused (it sets no 'unhealthy'; real ELB would)")
    demo.clients.get("ec2").stop_instances(InstanceIds=[instances[1]])
    health = demo.clients.elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    stopped = next(d["TargetHealth"] for d in health if d["Target"]["Id"] == instances[1])
    demo.note(f"{instances[1]}: {stopped['State']} ({stopped.get('Reason', '')})")
    demo.check(stopped["State"] != "healthy", "the stopped instance's target is not healthy")
    demo.step("$ ecspilot status web")
    code, out = demo.cli(["status", "web"])
    demo.check(code == 0, f"exit code 0, got {code}")
    shows = [
        "targets:      1 healthy, 0 unhealthy, 0 draining, 1 other",
        "not healthy:  1 x Target.InvalidState",
        "health check: HTTP / every 30s, expects 200",
        "replaced (1h):  7, most often: Task failed ELB health checks",
        "crash loop:     yes",
    ]
    demo.check(all(s in out for s in shows), f"the output shows {shows}")
