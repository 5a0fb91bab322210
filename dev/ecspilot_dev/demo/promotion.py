"""Promotion across accounts: staging proves a release, prod (another account) gets exactly that digest.

Two accounts on the local AWS: ecspilot's (123456789012, us-east-1) runs staging; a member
account (222222222222, eu-west-1) runs prod, reached the way ecspilot reaches it in AWS, with
``sts:AssumeRole`` credentials (moto maps them to that account). The bake is ``bake_minutes: 0``
in this chapter, said as such: the release is due as soon as staging's deployment COMPLETED and
its gates pass (a real config bakes, 30 minutes by default, and ``plan`` says ``waiting (bake
ends at ...)``); time is never faked. ECS sends no events on moto: the chapter delivers the
events ECS would send (the member account's through its forward rule, with their own account and
region) to the tracker, as EventBridge would.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from ecspilot.interfaces.present import say, table
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.demo.tracking import ecs_event
from ecspilot_dev.health_events import ELB_FAILED, service_task_stopped
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import Sandbox, fake_digest

MEMBER, MEMBER_REGION = "222222222222", "eu-west-1"
ROLE = f"arn:aws:iam::{MEMBER}:role/ecspilot-deployer"
ALARM = "staging-5xx"
TASK_ROLE = f"arn:aws:iam::{MEMBER}:role/ecs-web-task"

PROMOTION_CONFIG: dict[str, Any] = {
    "version": 1,
    "accounts": {"prod": {"role_arn": ROLE, "region": MEMBER_REGION}},
    "services": [
        {
            "name": "web-staging",
            "cluster": "staging",
            "service": "web",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
        },
        {
            "name": "web-prod",
            "account": "prod",
            "cluster": "prod",
            "service": "web",
            "promote": {"from": "web-staging", "bake_minutes": 0, "alarms": [ALARM]},
        },
    ],
    "jobs": [],
    "daemons": [],
}


def member_sandbox() -> Sandbox:
    """The member account, through assumed-role credentials (as ecspilot reaches it)."""
    sts = boto3.client("sts")
    creds = sts.assume_role(RoleArn=ROLE, RoleSessionName="demo-setup")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=MEMBER_REGION,
    )
    from ecspilot.aws.clients import Clients  # noqa: PLC0415

    return Sandbox(Clients(session=session, region=MEMBER_REGION), account=MEMBER, region=MEMBER_REGION)


def app_image(sb: Sandbox, cluster: str) -> str:
    """The image the ``web`` service's app container runs in ``sb``'s account."""
    ecs = sb.clients.ecs
    [svc] = ecs.describe_services(cluster=cluster, services=["web"])["services"]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(next(c["image"] for c in td["containerDefinitions"] if c["name"] == "app"))


def short(image: str) -> str:
    """``ACCOUNT.dkr.ecr.REGION.amazonaws.com/web@sha256:abcdef...`` -> ``ACCOUNT/web@sha256:abcdef``."""
    registry, _, rest = image.partition("/")
    return f"{registry.split('.')[0]}.../{rest[:24]}"


def plan_word(demo: Demo, expect: str) -> str:
    """``ecspilot plan`` as a user runs it; the promotion line of web-prod, checked to contain ``expect``."""
    code, out = demo.cli(["plan"])
    line = next((ln for ln in out.splitlines() if "web-prod" in ln), "")
    demo.check(code == 0, f"plan exits 0, got {code}")
    demo.check(expect in line, f"plan shows web-prod {expect!r}, got {line!r}")
    return line


def staging_rolls(demo: Demo, tag: str) -> dict[str, Any]:
    """Push web:TAG; deploy_on_push rolls web-staging and never touches web-prod."""
    result: dict[str, Any] = invoke("deploy_on_push", demo.sandbox.push("web", tag))
    outcomes = {s["name"]: s["outcome"] for s in result["services"]}
    demo.note(f"deploy_on_push: {outcomes}")
    demo.check(outcomes == {"web-staging": "deployed"}, f"only web-staging deployed, got {outcomes}")
    return result


def completed(demo: Demo, deployment_id: str, **top: Any) -> dict[str, Any]:
    """ECS's COMPLETED event for staging's deployment, through the tracker."""
    result: dict[str, Any] = invoke(
        "track_deployments", ecs_event("ecs_deployment_completed", deployment_id, "web", cluster="staging")
    )
    told = moves(result)
    demo.note(f"track_deployments: staging's record {', '.join(told)}")
    for promotion in result.get("promotions") or []:
        demo.note(f"  then the promotion of {promotion.get('target')}: {promotion.get('promotion')}")
    demo.check(told == ["IN_PROGRESS -> COMPLETED"], f"staging's record COMPLETED, got {told}")
    return result


@contextlib.contextmanager
def quiet_local_aws() -> Iterator[None]:
    """moto implements no DescribeAlarmHistory: its server logs a traceback for each such request
    (the alarm gate gets an error and blocks, saying so); keep it off the narration."""
    server_log = logging.getLogger("werkzeug")
    level = server_log.level
    server_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        server_log.setLevel(level)


def moves(result: dict[str, Any]) -> list[str]:
    """The tracker's answer: which records moved, ``FROM -> TO``."""
    moved = result.get("moved") or []
    return [f"{m['from']} -> {m['to']}" for m in ([moved] if isinstance(moved, dict) else moved)]


def _two_accounts(demo: Demo) -> tuple[Sandbox, str]:
    """Staging here, prod in the member account, both on web:v0; the staging alarm, quiet."""
    sb = demo.sandbox
    demo.step(
        f"Two accounts: staging here ({sb.account}, {sb.region}), prod in {MEMBER} ({MEMBER_REGION}) "
        "through sts:AssumeRole; both run web:v0 from the source registry"
    )
    sb.repository("web")
    sb.push("web", "v0")
    v0 = f"{sb.registry}/web@{fake_digest('web:v0')}"
    sb.cluster("staging")
    sb.service("staging", "web", sb.task_definition("web", {"app": v0}))
    member = member_sandbox()
    member.cluster("prod")
    prod_td = member.task_definition("web", {"app": v0}, taskRoleArn=TASK_ROLE)
    member.service("prod", "web", prod_td, desired=6)
    cw = demo.clients.get("cloudwatch")
    cw.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="demo: quiet")
    demo.note(f"config: web-prod promotes from web-staging, bake_minutes 0 (this demo), alarms [{ALARM}]")
    own_clusters = demo.clients.ecs.list_clusters()["clusterArns"]
    member_clusters = member.clients.ecs.list_clusters()["clusterArns"]
    demo.check(all(":cluster/staging" in c for c in own_clusters), f"only staging here: {own_clusters}")
    demo.check(
        member_clusters == [f"arn:aws:ecs:{MEMBER_REGION}:{MEMBER}:cluster/prod"],
        f"prod lives in the member account: {member_clusters}",
    )
    demo.check(app_image(member, "prod") == v0, "prod runs v0")
    return member, v0


def _blocked_by_an_alarm(demo: Demo, member: Sandbox, v0: str) -> None:
    """v2 rolls in staging, its alarm fires, its COMPLETED event finds the promotion blocked."""
    sb, cw = demo.sandbox, demo.clients.get("cloudwatch")
    demo.step("Push web:v2: staging rolls; a push never touches the promoted web-prod")
    time.sleep(1.1)  # ECR stamps imagePushedAt to the second: keep v0 and v2 apart
    v2_run = staging_rolls(demo, "v2")
    demo.check(app_image(sb, "staging") == f"{sb.registry}/web@{fake_digest('web:v2')}", "staging runs v2")
    demo.check(app_image(member, "prod") == v0, "prod still runs v0")

    demo.step(f"v2 misbehaves in staging: alarm {ALARM} fires (moto set_alarm_state) while it rolls out")
    cw.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="demo: 5xx above 10 per minute")
    state = cw.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0]["StateValue"]
    demo.note(f"{ALARM}: {state}")
    demo.check(state == "ALARM", f"{ALARM} in ALARM, got {state}")

    demo.step("ECS: staging's v2 deployment COMPLETED; the tracker evaluates the promotion: blocked")
    [staging_v2] = [s for s in v2_run["services"] if s["name"] == "web-staging"]
    completed(demo, staging_v2["deployment_id"])
    demo.check(app_image(member, "prod") == v0, "prod still runs v0: the alarm blocks v2")

    demo.step("ecspilot plan: the promotion is blocked by the alarm")
    plan_word(demo, f"blocked (alarm {ALARM} in ALARM")

    demo.step(
        "The alarm goes back to OK: v2 stays blocked, its alarm changed state during its bake (AWS would "
        "show the alarm's history; moto has none, so the gate cannot rule it out, and blocks)"
    )
    cw.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="demo: recovered")
    with quiet_local_aws():
        plan_word(demo, f"blocked (alarm {ALARM} changed state")
    demo.check(app_image(member, "prod") == v0, "prod still runs v0")


def _promoted(demo: Demo, member: Sandbox) -> tuple[str, dict[str, Any]]:
    """v3 rolls in staging and completes: the tracker promotes it into the member account."""
    sb = demo.sandbox
    demo.step(
        "A fixed release, web:v3: staging rolls, COMPLETED, the gates pass: promoted into the member account"
    )
    time.sleep(1.1)  # the alarm's last change (to OK) comes before v3's bake starts
    v3_run = staging_rolls(demo, "v3")
    v3 = f"{sb.registry}/web@{fake_digest('web:v3')}"
    [staging_v3] = [s for s in v3_run["services"] if s["name"] == "web-staging"]
    completed(demo, staging_v3["deployment_id"])
    [svc] = member.clients.ecs.describe_services(cluster="prod", services=["web"])["services"]
    rows = [
        {"account": sb.account, "service": "staging/web", "app image": short(app_image(sb, "staging"))},
        {"account": MEMBER, "service": "prod/web", "app image": short(app_image(member, "prod"))},
    ]
    table(rows, ["account", "service", "app image"])
    running = app_image(member, "prod")
    demo.check(running == v3, f"prod runs v3's digest in the source registry, got {running}")
    demo.check(svc["desiredCount"] == 6, f"desiredCount untouched (6), got {svc['desiredCount']}")
    td = member.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    demo.check(
        td.get("taskRoleArn") == TASK_ROLE, "prod's own task definition was cloned (its task role kept)"
    )
    return str(staging_v3["deployment_id"]), dict(svc)


def _tracked_there(demo: Demo, svc: dict[str, Any], source_deployment: str) -> None:
    """The member account's deployment event, forwarded to ecspilot's bus, closes the record."""
    demo.step("ECS in the member account: prod's deployment COMPLETED; the forwarded event closes its record")
    deployment = next(d["id"] for d in svc["deployments"] if d["status"] == "PRIMARY")
    event = ecs_event("ecs_deployment_completed", deployment, "web", cluster="prod")
    event.update(account=MEMBER, region=MEMBER_REGION)
    event["resources"] = [f"arn:aws:ecs:{MEMBER_REGION}:{MEMBER}:service/prod/web"]
    told = moves(invoke("track_deployments", event))
    demo.note(f"track_deployments (event from {MEMBER}, {MEMBER_REGION}): {', '.join(told)}")
    demo.check(told == ["IN_PROGRESS -> COMPLETED"], f"prod's record COMPLETED, got {told}")
    ignored: dict[str, Any] = invoke("track_deployments", dict(event, account="333333333333"))
    demo.note(f"the same event from 333333333333 (no configured account): {ignored.get('ignored')}")
    demo.check("untrusted origin" in str(ignored.get("ignored")), f"ignored, got {ignored}")

    demo.step("ecspilot plan: in sync; ecspilot history web-prod: the promotion with its source deployment")
    plan_word(demo, "in-sync")
    code, out = demo.cli(["history", "web-prod"])
    demo.check(code == 0 and source_deployment in out, "history names staging's v3 deployment")


def _status_there(demo: Demo, member: Sandbox) -> None:
    """The member account's service task stops, forwarded: a crash loop there is ecspilot's to see;
    ``ecspilot status web-prod`` reads prod/web in the member account, through its role."""
    demo.step(
        "ECS in the member account replaces prod's tasks (failed ELB health checks); the forwarded "
        "stops make a crash loop of web-prod, recorded under its own key"
    )
    [svc] = member.clients.ecs.describe_services(cluster="prod", services=["web"])["services"]
    now = datetime.now(UTC)
    loops = []
    for n in range(5):
        at = now - timedelta(minutes=5 - n)
        event = service_task_stopped(
            ELB_FAILED, n, at, task_definition=svc["taskDefinition"], account=MEMBER, region=MEMBER_REGION
        )
        loops.append(invoke("track_deployments", event).get("crash_loop"))
    began = [n for n, loop in enumerate(loops, 1) if loop == "start"]
    demo.note(
        f"track_deployments, 5 forwarded stops: the crash loop begins at stop {began[0] if began else '-'}"
        " (stops 1-4: replacements, no crash loop yet)"
    )
    demo.check(loops == [None, None, None, None, "start"], f"the fifth starts one crash loop, got {loops}")

    demo.step("ecspilot status web-prod: prod/web as the member account describes it, its replacements")
    code, out = demo.cli(["status", "web-prod"])
    demo.check(code == 0, f"status exits 0, got {code}")
    demo.check(f"in account prod ({MEMBER} {MEMBER_REGION})" in out, "status names the member account")
    demo.check(f"/ {svc['desiredCount']} desired" in out, "the desired count is the member account's")
    demo.check("replaced (1h):  5" in out, "the 5 forwarded replacements are counted")


def chapter_promotion(demo: Demo) -> None:
    """push -> staging -> COMPLETED -> gates (an alarm blocks) -> a new release -> prod in another account."""
    say("\n=== Promotion: staging proves a release, prod in another account gets exactly that digest ===")
    member, v0 = _two_accounts(demo)
    _blocked_by_an_alarm(demo, member, v0)
    source_deployment, svc = _promoted(demo, member)
    _tracked_there(demo, svc, source_deployment)
    _status_there(demo, member)
