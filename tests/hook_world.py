"""The pause-hook test world: moto for everything but ECS's deployment APIs, which a Stubber
answers (ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions,
ContinueServiceDeployment are not in moto). Used by the pause-hook, published-event and
sequence tests; each test file declares the ``world`` fixture with :func:`world_of`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.stub import Stubber

from ecspilot.aws.clients import Clients
from ecspilot.domain.config import parse_config
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot_dev.local import CallRecorder, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, create_state_table, fake_digest
from ecspilot_dev.service_deployments import expect_paused_images
from tests.conftest import TABLE
from tests.faults import Faults

TRACK = "track_deployments"
PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
DEPLOYMENT = f"{PREFIX}:service-deployment/prod/web/r9i43YFjvgF_xlg7m2eJ1r"
REVISION = f"{PREFIX}:service-revision/prod/web/4980306466373577095"
HOOK = "ecs-pause-e7tK9G_WRJqNF_EOMjztDXfKenlJuEUVjsNStf4WLKw"
DIGEST = fake_digest("web:v2")


class World:
    """moto for everything but ECS's deployment APIs, which a Stubber answers."""

    def __init__(self, session: boto3.Session, stub: Stubber, recorder: CallRecorder) -> None:
        self.clients = Clients(session=session, region=REGION, overrides={"ecs": stub.client})
        self.stub = stub
        self.recorder = recorder
        create_state_table(self.clients, TABLE)
        Sandbox(self.clients).repository("web")
        Sandbox(self.clients).push("web", "v2", DIGEST)
        sqs, sns = self.clients.sqs, self.clients.sns
        self.topic = sns.create_topic(Name="ecspilot-notify")["TopicArn"]
        self.inbox = sqs.create_queue(QueueName="ecspilot-notify-inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=arn)
        self.clients.cloudwatch.put_metric_alarm(
            AlarmName="web-5xx",
            MetricName="5xx",
            Namespace="web",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )

    def use(self, gates: dict[str, Any] | None) -> Runtime:
        service: dict[str, Any] = {
            "name": "web-live",
            "cluster": "prod",
            "service": "web",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
        }
        if gates is not None:
            service["gates"] = gates
        rt = Runtime.build(
            settings=Settings(
                table_name=TABLE,
                region=REGION,
                account_id=ACCOUNT,
                notify_topic_arn=self.topic,
                max_workers=1,
            ),
            config=parse_config({"version": 1, "services": [service]}),
            clients=self.clients,
        )
        runtime.reset(rt)
        return rt

    def expect_images(self, digest: str = DIGEST) -> None:
        image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web@{digest}"
        expect_paused_images(
            self.stub,
            DEPLOYMENT,
            REVISION,
            [("app", digest, image), ("envoy", fake_digest("envoy"), "envoy:v1")],
        )

    def expect_answer(self, action: str, hook: str = HOOK) -> None:
        self.stub.add_response(
            "continue_service_deployment",
            {"serviceDeploymentArn": DEPLOYMENT},
            {"serviceDeploymentArn": DEPLOYMENT, "hookId": hook, "action": action},
        )

    def notifications(self) -> list[dict[str, Any]]:
        resp = self.clients.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in resp.get("Messages", [])]

    def hook_item(self, hook: str = HOOK) -> dict[str, Any]:
        from ecspilot.aws.dynamo import deserialize  # noqa: PLC0415

        item = self.clients.dynamodb.get_item(
            TableName=TABLE, Key={"pk": {"S": "SERVICE#prod#web"}, "sk": {"S": f"HOOK#{hook}"}}
        ).get("Item")
        return deserialize(item) if item else {}


@contextmanager
def world_of(faults: Faults, recorder: CallRecorder) -> Iterator[World]:
    """A :class:`World` (inside moto); at the end, every queued ECS answer must have been asked for."""
    session = boto3.Session(region_name=REGION)
    faults.attach(session)
    recorder.attach(session)
    ecs = session.client("ecs")
    with Stubber(ecs) as stub:
        yield World(session, stub, recorder)
        stub.assert_no_pending_responses()


def hook_event(hook: str = HOOK, name: str = "HOOK_AWAITING_ACTION") -> dict[str, Any]:
    event = load_event("ecs_hook_awaiting_action", {"hookId": hook, "eventName": name})
    event["id"] = f"hook-{hook}-{name}"
    return event
