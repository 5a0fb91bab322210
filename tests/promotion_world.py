"""Two accounts in moto for the promotion tests: ecspilot's (staging) and a target account
reached through ``sts:AssumeRole`` (moto maps the role's credentials to its account).

Staging deploys through the real ``deploy_on_push`` handler and completes through the real
``track_deployments`` handler, fed the ``ECS Deployment State Change`` event ECS would send
(moto sends none); promotions run through the real reconcile part and handlers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from ecspilot.aws.clients import Clients
from ecspilot.interfaces.runtime import Runtime
from ecspilot.promotion.handler import reconcile_promotions
from ecspilot.reconcile.runbook import reconcile
from ecspilot_dev.local import invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox
from tests.conftest import MakeRuntime

TARGET_ACCOUNT = "222222222222"
TARGET_REGION = "eu-west-1"
ROLE_ARN = f"arn:aws:iam::{TARGET_ACCOUNT}:role/ecspilot-deployer"
OTHER_ACCOUNT = "333333333333"
OTHER_ROLE_ARN = f"arn:aws:iam::{OTHER_ACCOUNT}:role/ecspilot-deployer"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def config(
    bake: int = 30,
    alarms: tuple[str, ...] = (),
    approval: bool = False,
    more: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "version": 1,
        "accounts": {"prod": {"role_arn": ROLE_ARN, "region": TARGET_REGION}},
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
                "promote": {
                    "from": "web-staging",
                    "bake_minutes": bake,
                    "alarms": list(alarms),
                    "approval": approval,
                },
            },
            *(more or []),
        ],
    }


def assumed_clients(own: Clients, role_arn: str, region: str) -> Clients:
    """Clients of another account, for building the world (the code under test assumes its own)."""
    creds = own.get("sts").assume_role(RoleArn=role_arn, RoleSessionName="test-setup")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )
    return Clients(session=session, region=region)


class World:
    """Staging in ecspilot's account, prod in the target account; see the module docstring."""

    def __init__(
        self, sandbox: Sandbox, make_runtime: MakeRuntime, cfg: dict[str, Any], **settings: Any
    ) -> None:
        self.own = sandbox
        sandbox.cluster("staging")
        sandbox.repository("web")
        sandbox.service(
            "staging", "web", sandbox.task_definition("web-staging", {"app": sandbox.image("web", "v0")})
        )
        self.target = Sandbox(
            assumed_clients(sandbox.clients, ROLE_ARN, TARGET_REGION), TARGET_ACCOUNT, TARGET_REGION
        )
        self.target.cluster("prod")
        prod_td = self.target.task_definition(
            "web-prod", {"app": sandbox.image("web", "v0"), "envoy": "envoy:1"}, cpu="256", memory="512"
        )
        self.target.service("prod", "web", prod_td, desired=3)
        self.rt: Runtime = make_runtime(cfg, **settings)

    def release(
        self, tag: str, completed: datetime | None = None, status: str = "completed"
    ) -> dict[str, Any]:
        """Push ``tag`` to staging through deploy_on_push; then, unless ``status`` is None, the
        ECS event that ends its deployment (``completed``, ``failed``...). Returns the record."""
        invoke("deploy_on_push", self.own.push("web", tag))
        record = next(r for r in self.rt.history.deployments("staging", "web") if r["image_tag"] == tag)
        if status:
            self.ecs_event(status, record["deployment_id"], completed or datetime.now(UTC))
        return next(r for r in self.rt.history.deployments("staging", "web") if r["image_tag"] == tag)

    def backdate(self, record: dict[str, Any], minutes: int) -> dict[str, Any]:
        """Let ``minutes`` pass since the record completed (its ``finished_at`` moved back: the
        state table is ecspilot's own, this is the time a test cannot wait for)."""
        at = iso(datetime.now(UTC) - timedelta(minutes=minutes))
        client, table = self.rt.history.connection() or (None, "")
        assert client is not None
        client.update_item(
            TableName=table,
            Key={"pk": {"S": record["pk"]}, "sk": {"S": record["sk"]}},
            UpdateExpression="SET finished_at = :at",
            ExpressionAttributeValues={":at": {"S": at}},
        )
        return {**record, "finished_at": at}

    def ecs_event(
        self,
        status: str,
        deployment_id: str,
        at: datetime,
        account: str = ACCOUNT,
        region: str = REGION,
        cluster: str = "staging",
    ) -> Any:
        """The ``ECS Deployment State Change`` event ECS sends (forwarded from ``account``)."""
        event = load_event(
            f"ecs_deployment_{status}",
            {"deploymentId": deployment_id, "updatedAt": iso(at)},
            resources=[f"arn:aws:ecs:{region}:{account}:service/{cluster}/web"],
            account=account,
            region=region,
        )
        event["id"] = f"{status}-{deployment_id}"
        return invoke("track_deployments", event)

    def reconcile(self, dry_run: bool = False) -> list[Any]:
        return reconcile(self.rt, dry_run, [("promotion", reconcile_promotions)]).actions

    def alarm(self, name: str, state: str | None = None) -> None:
        """A CloudWatch alarm in ecspilot's (the source's) account; ``state`` sets it at once."""
        cloudwatch = self.own.clients.get("cloudwatch")
        if state is None:
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                MetricName="5xx",
                Namespace="web",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanThreshold",
            )
            return
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")

    def plan(self) -> list[str]:
        """The promotion lines of a dry run: ``target: detail``."""
        return [f"{a.target}: {a.detail}" for a in self.reconcile(dry_run=True)]

    def images(self, sandbox: Sandbox | None = None, cluster: str = "prod") -> dict[str, str]:
        box = sandbox or self.target
        svc = box.clients.ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
        td = box.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        return {c["name"]: c["image"] for c in td["containerDefinitions"]}

    def prod_service(self) -> dict[str, Any]:
        return dict(
            self.target.clients.ecs.describe_services(cluster="prod", services=["web"])["services"][0]
        )
