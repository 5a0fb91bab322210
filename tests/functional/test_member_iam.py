"""IAM across accounts, checked: the member account's deployer role (member/template.yaml) allows
exactly the calls ecspilot makes in that account when it promotes a release there.

The real handlers run against moto with two accounts: ecspilot's (123456789012, us-east-1) and a
member (222222222222, eu-west-1) reached through ``sts:AssumeRole`` (moto maps the credentials to
that account). Every request is recorded by moto's own recorder, which sees the request's
credentials: the member account's calls are those signed with the assumed-role keys for its region.
Each maps to the IAM actions it needs (tests/functional/test_iam.py's ``needed``: tags given at
registration need ``ecs:TagResource``, roles in a task definition ``iam:PassRole`` to ECS tasks).
The test fails on a call the role lacks and on a grant nothing calls, as test_iam.py does for the
main template's functions.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest

from ecspilot.aws.clients import Clients
from ecspilot_dev.local import invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, fake_digest
from tests.conftest import TABLE, MakeRuntime
from tests.functional.test_iam import needed
from tests.moto_state import set_image_pushed_at
from tests.template import _key
from tests.unit.test_member_template import member

TARGET, TARGET_REGION = "222222222222", "eu-west-1"
ROLE = f"arn:aws:iam::{TARGET}:role/ecspilot-deployer"
TASK_ROLES = {
    "taskRoleArn": f"arn:aws:iam::{TARGET}:role/ecs-web-task",
    "executionRoleArn": f"arn:aws:iam::{TARGET}:role/ecs-web-exec",
}
Call = tuple[str, str, dict[str, Any]]


class Recording:
    """moto's own recorder (it sees every request's credentials), on while inside :meth:`during`:
    the calls signed with assumed-role keys for the member account's region, as
    (IAM service prefix, operation, parameters)."""

    def __init__(self, path: Path) -> None:
        from moto.moto_api import recorder  # noqa: PLC0415

        self.recorder = recorder
        self.calls: list[Call] = []
        recorder._location = str(path)  # moto's recorder writes where it was told at import time

    @contextlib.contextmanager
    def during(self) -> Iterator[None]:
        self.recorder.reset_recording()
        self.recorder.start_recording()
        try:
            yield
        finally:
            self.recorder.stop_recording()
            self.calls += member_calls(self.recorder.download_recording())


@pytest.fixture
def recording(moto: None, tmp_path: Path) -> Iterator[Recording]:
    from moto.moto_api import recorder  # noqa: PLC0415

    saved = recorder._location
    try:
        yield Recording(tmp_path / "moto-recording.jsonl")
    finally:
        recorder.stop_recording()
        recorder._location = saved


SCOPE = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")
IAM_PREFIX = {"monitoring": "cloudwatch"}  # credential scope -> IAM's service prefix


def member_calls(recording: str) -> list[Call]:
    out: list[Call] = []
    for line in recording.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        scope = SCOPE.search(headers.get("authorization", ""))
        if scope is None:
            continue
        key, region, service = scope.groups()
        if region != TARGET_REGION or not key.startswith("ASIA"):
            continue  # ecspilot's own account (the environment's keys, its region)
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode()
        service = IAM_PREFIX.get(service, service)
        target = headers.get("x-amz-target")
        if target:  # JSON protocols (ECS): the operation in the header, the parameters in the body
            out.append((service, target.rsplit(".", 1)[-1], json.loads(body or "{}")))
        else:  # query protocol (CloudWatch): Action=... in the form
            form = {k: v[0] for k, v in parse_qs(body).items()}
            out.append((service, form.pop("Action", "?"), form))
    return out


def member_sandbox(clients: Clients) -> Sandbox:
    """The member account as its administrator builds it (assumed-role keys too: build it
    outside :meth:`Recording.during`)."""
    creds = clients.get("sts").assume_role(RoleArn=ROLE, RoleSessionName="setup")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=TARGET_REGION,
    )
    return Sandbox(Clients(session=session, region=TARGET_REGION), account=TARGET, region=TARGET_REGION)


def member_event(sample: str, deployment_id: str, cluster: str, service: str) -> dict[str, Any]:
    """An ECS deployment event of the member account, as its forward rule delivers it."""
    return load_event(
        sample,
        {"deploymentId": deployment_id, "updatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        account=TARGET,
        region=TARGET_REGION,
        resources=[f"arn:aws:ecs:{TARGET_REGION}:{TARGET}:service/{cluster}/{service}"],
    )


def own_event(sample: str, deployment_id: str, cluster: str, service: str) -> dict[str, Any]:
    return load_event(
        sample,
        {"deploymentId": deployment_id, "updatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        resources=[f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}"],
    )


def primary(sb: Sandbox, cluster: str, service: str) -> str:
    [svc] = sb.clients.ecs.describe_services(cluster=cluster, services=[service])["services"]
    return str(next(d["id"] for d in svc["deployments"] if d["status"] == "PRIMARY"))


def runs(sb: Sandbox, cluster: str, service: str) -> str:
    [svc] = sb.clients.ecs.describe_services(cluster=cluster, services=[service])["services"]
    td = sb.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def source_world(sandbox: Sandbox, repository: str, cluster: str) -> str:
    sandbox.repository(repository)
    sandbox.push(repository, "v0")
    set_image_pushed_at(repository, fake_digest(f"{repository}:v0"), seconds_ago=60)
    v0 = f"{sandbox.registry}/{repository}@{fake_digest(f'{repository}:v0')}"
    sandbox.cluster(cluster)
    sandbox.service(cluster, repository, sandbox.task_definition(f"{repository}-{cluster}", {"app": v0}))
    return v0


def deployed(result: dict[str, Any], name: str) -> str:
    [svc] = [s for s in result["services"] if s["name"] == name]
    assert svc["outcome"] == "deployed", svc
    return str(svc["deployment_id"])


# --- scenarios -------------------------------------------------------------------------------------


def promotion_into_the_member(recording: Recording, sandbox: Sandbox, make_runtime: MakeRuntime) -> None:
    """staging here -> prod in the member account: promoted on the COMPLETED event (bake 0), the
    forwarded event closes it, reconcile finds it in sync, and again after a new release."""
    v0 = source_world(sandbox, "web", "staging")
    member = member_sandbox(sandbox.clients)
    member.cluster("prod")
    td = member.task_definition("web", {"app": v0}, **TASK_ROLES, tags=[{"key": "team", "value": "web"}])
    member.service("prod", "web", td)
    make_runtime(
        {
            "version": 1,
            "accounts": {"prod": {"role_arn": ROLE, "region": TARGET_REGION}},
            "services": [
                {"name": "web-staging", "cluster": "staging", "service": "web", "containers": app("web")},
                {
                    "name": "web-prod",
                    "account": "prod",
                    "cluster": "prod",
                    "service": "web",
                    "promote": {"from": "web-staging", "bake_minutes": 0},
                },
            ],
        }
    )
    with recording.during():
        staging = deployed(invoke("deploy_on_push", sandbox.push("web", "v1")), "web-staging")
        invoke("track_deployments", own_event("ecs_deployment_completed", staging, "staging", "web"))
        assert runs(member, "prod", "web") == f"{sandbox.registry}/web@{fake_digest('web:v1')}"
        prod = primary(member, "prod", "web")
        invoke("track_deployments", member_event("ecs_deployment_completed", prod, "prod", "web"))
        result = invoke("reconcile", {})
    assert [a["change"] for a in result["actions"] if a["kind"] == "promotion"] == ["in-sync"]


def source_stage_in_the_member(recording: Recording, sandbox: Sandbox, make_runtime: MakeRuntime) -> None:
    """dev here -> qa in the member account -> live here, gated on qa's alarm, which lives in the
    member account: read there (its state, and its history once it changed state in the bake)."""
    v0 = source_world(sandbox, "api", "dev")
    sandbox.cluster("live")
    sandbox.service("live", "api", sandbox.task_definition("api-live", {"app": v0}))
    member = member_sandbox(sandbox.clients)
    member.cluster("qa")
    member.service("qa", "api", member.task_definition("api", {"app": v0}, **TASK_ROLES))
    cloudwatch = member.clients.get("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="qa-5xx",
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="qa-5xx", StateValue="ALARM", StateReason="test: firing")
    make_runtime(
        {
            "version": 1,
            "accounts": {"qa": {"role_arn": ROLE, "region": TARGET_REGION}},
            "services": [
                {"name": "api-dev", "cluster": "dev", "service": "api", "containers": app("api")},
                {
                    "name": "api-qa",
                    "account": "qa",
                    "cluster": "qa",
                    "service": "api",
                    "promote": {"from": "api-dev", "bake_minutes": 0},
                },
                {
                    "name": "api-live",
                    "cluster": "live",
                    "service": "api",
                    "promote": {"from": "api-qa", "bake_minutes": 0, "alarms": ["qa-5xx"]},
                },
            ],
        },
        table=False,
        table_name=TABLE,
    )
    with recording.during():
        dev = deployed(invoke("deploy_on_push", sandbox.push("api", "v1")), "api-dev")
        invoke("track_deployments", own_event("ecs_deployment_completed", dev, "dev", "api"))
        qa = primary(member, "qa", "api")
        # qa COMPLETED while its alarm fires: blocked (the alarm's state, read in the member account)
        invoke("track_deployments", member_event("ecs_deployment_completed", qa, "qa", "api"))
    time.sleep(1.1)  # the alarm's change comes after qa's completion (stamped to the second)
    cloudwatch.set_alarm_state(AlarmName="qa-5xx", StateValue="OK", StateReason="test: quiet")
    with recording.during():
        # the alarm changed state during the bake: its history is read there (moto has none: blocked)
        result = invoke("reconcile", {})
    changes = {a["target"]: a["change"] for a in result["actions"] if a["kind"] == "promotion"}
    assert changes == {"api-qa": "in-sync", "api-live": "conflict"}, result["actions"]
    assert runs(sandbox, "live", "api") == v0


def app(repository: str) -> dict[str, Any]:
    return {"app": {"repository": repository, "tags": ["v*"]}}


SCENARIOS = [promotion_into_the_member, source_stage_in_the_member]


def member_grants() -> dict[str, str]:
    """What the member stack grants the deployer role (with SourceStageAlarms enabled), in the
    keys tests/template.py gives grants, with their Sids."""
    resources = member({"SourceStageAlarms": "enabled"})
    statements = [
        *(
            s
            for p in resources["DeployerRole"]["Properties"]["Policies"]
            for s in p["PolicyDocument"]["Statement"]
        ),
        *resources["SourceStageAlarmsPolicy"]["Properties"]["PolicyDocument"]["Statement"],
    ]
    grants = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            grants[_key(action, statement)] = statement.get("Sid", "")
    return grants


def test_the_deployer_role_grants_exactly_what_ecspilot_calls_in_the_member_account(
    recording: Recording, sandbox: Sandbox, make_runtime: MakeRuntime, frozen_tasks: None
) -> None:
    # GIVEN every scenario that reaches the member account, run through the real handlers
    for scenario in SCENARIOS:
        scenario(recording, sandbox, make_runtime)
    called: dict[str, str] = {}
    for service, operation, params in recording.calls:
        for action in needed(service, operation, params):
            called.setdefault(action, f"{service}.{operation}")
    assert called, "no call reached the member account"
    # WHEN compared with what member/template.yaml grants the deployer role
    granted = member_grants()
    missing = sorted(set(called) - set(granted))
    unused = sorted(set(granted) - set(called))
    # THEN nothing is missing and nothing is granted for nothing
    problems = [
        f"ecspilot calls {a} (via {called[a]}) in the member account; the role lacks it" for a in missing
    ]
    problems += [f"the role is granted {a} (Sid {granted[a]}) but nothing calls it" for a in unused]
    assert not problems, "\n" + "\n".join(problems)
