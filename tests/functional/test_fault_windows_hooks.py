"""Pause hooks answered once (issue 23): ContinueServiceDeployment is sent with a single attempt;
after an error ECS's status of the hook (DescribeServiceDeployments, ``lifecycleHookDetails``) is
read before answering again; an answer ECS already took ends the hook ANSWERED; a failed final
write never lets a later delivery answer again.

moto lacks the hook APIs: ContinueServiceDeployment goes to the single-attempt ECS client, where
``tests.faults`` answers a 500 (a reply lost after ECS may have applied it: every attempt
counted by ``rule.fired``, botocore would retry it) or an
:class:`OperationStubber` answers it; DescribeServiceDeployments is stubbed on the ECS client.
Everything else (DynamoDB, CloudWatch) is moto's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ecspilot.aws.clients import Clients
from ecspilot.aws.dynamo import deserialize
from ecspilot.domain.config import parse_config
from ecspilot.errors import HookError
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, create_state_table
from ecspilot_dev.service_deployments import OperationStubber
from tests.conftest import TABLE
from tests.faults import Faults

TRACK = "track_deployments"
DEPLOYMENT = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/prod/web/r9i43YFjvgF_xlg7m2eJ1r"
HOOK = "ecs-pause-e7tK9G_WRJqNF_EOMjztDXfKenlJuEUVjsNStf4WLKw"


class World:
    def __init__(self, session: boto3.Session) -> None:
        self.clients = Clients(session=session, region=REGION)
        create_state_table(self.clients, TABLE)
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
        service = {
            "name": "web-live",
            "cluster": "prod",
            "service": "web",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "gates": {"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}},
        }
        self.rt = Runtime.build(
            settings=Settings(table_name=TABLE, region=REGION, account_id=ACCOUNT, max_workers=1),
            config=parse_config({"version": 1, "services": [service]}),
            clients=self.clients,
        )
        runtime.reset(self.rt)
        self.reads = OperationStubber(self.clients.ecs, ["DescribeServiceDeployments"])
        self._answers: OperationStubber | None = None

    @property
    def answers(self) -> OperationStubber:
        """The stubbed answers of ContinueServiceDeployment (made on first use: without it the
        call goes on to ``tests.faults``, which answers it a 500)."""
        if self._answers is None:
            self._answers = OperationStubber(
                self.clients.single_attempt("ecs"), ["ContinueServiceDeployment"]
            )
            self._answers.activate()
        return self._answers

    def hook_status(self, status: str) -> None:
        """Queue ECS's answer to DescribeServiceDeployments: the hook in ``status``."""
        self.reads.add_response(
            "describe_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": DEPLOYMENT,
                        "status": "IN_PROGRESS",
                        "lifecycleStage": "POST_SCALE_UP",
                        "lifecycleHookDetails": [{"hookId": HOOK, "targetType": "PAUSE", "status": status}],
                    }
                ],
                "failures": [],
            },
            {"serviceDeploymentArns": [DEPLOYMENT]},
        )

    def answer_ok(self) -> None:
        self.answers.add_response(
            "continue_service_deployment",
            {"serviceDeploymentArn": DEPLOYMENT},
            {"serviceDeploymentArn": DEPLOYMENT, "hookId": HOOK, "action": "CONTINUE"},
        )

    def hook_item(self) -> dict[str, Any]:
        item = self.clients.dynamodb.get_item(
            TableName=TABLE, Key={"pk": {"S": "SERVICE#prod#web"}, "sk": {"S": f"HOOK#{HOOK}"}}
        ).get("Item")
        return deserialize(item) if item else {}

    def expire_hold(self) -> None:
        """The holder's time is up (its 45 s hold passed)."""
        self.clients.dynamodb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "SERVICE#prod#web"}, "sk": {"S": f"HOOK#{HOOK}"}},
            UpdateExpression="SET #u = :past",
            ExpressionAttributeNames={"#u": "until"},
            ExpressionAttributeValues={":past": {"N": "1"}},
        )


@pytest.fixture
def world(moto: None, faults: Faults, recorder: CallRecorder) -> Iterator[World]:
    session = boto3.Session(region_name=REGION)
    faults.attach(session)
    recorder.attach(session)
    w = World(session)
    with w.reads:
        yield w
        assert w.reads.pending == 0
    if w._answers is not None:
        w._answers.deactivate()
        assert w._answers.pending == 0


def hook_event() -> dict[str, Any]:
    event = load_event("ecs_hook_awaiting_action", {"hookId": HOOK, "eventName": "HOOK_AWAITING_ACTION"})
    event["id"] = f"hook-{HOOK}"
    return event


def test_a_continue_whose_reply_is_lost_is_sent_once_and_ends_the_hook_answered(
    world: World, faults: Faults
) -> None:
    # GIVEN ContinueServiceDeployment's reply lost (a 500 after ECS applied it) on every attempt,
    # and ECS then reporting the hook no longer awaiting an answer
    lost = faults.fail("ContinueServiceDeployment", "throttle", code="InternalFailure", status=500)
    world.hook_status("SUCCEEDED")
    # WHEN the hook event arrives
    out = invoke(TRACK, hook_event())
    # THEN the answer was sent once (no botocore retry), the invocation succeeds (no EventBridge
    # retry, nothing to the DLQ) and the hook is ANSWERED
    assert lost.fired == 1
    assert out["status"] == "ANSWERED"
    assert world.hook_item()["status"] == "ANSWERED"
    # AND a redelivery answers nothing
    assert "ignored" in invoke(TRACK, hook_event())
    assert lost.fired == 1


def test_a_lost_reply_ecs_did_not_apply_fails_for_a_retry_that_reads_the_status_first(
    world: World, faults: Faults
) -> None:
    # GIVEN a lost reply, and ECS saying the hook still awaits an answer
    lost = faults.fail("ContinueServiceDeployment", "throttle", code="InternalFailure", status=500, times=1)
    world.hook_status("AWAITING_ACTION")
    with pytest.raises(HookError):
        invoke(TRACK, hook_event())
    assert lost.fired == 1
    assert world.hook_item()["status"] == "RETRY"
    # WHEN EventBridge retries: the status is read again before answering
    world.hook_status("AWAITING_ACTION")
    world.answer_ok()
    assert invoke(TRACK, hook_event())["status"] == "CONTINUE"
    assert world.hook_item()["status"] == "CONTINUE"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("InvalidParameterException", "The hook has already been completed."),
        ("ClientException", "Lifecycle hook already answered"),
    ],
)
def test_an_answer_refused_as_already_given_ends_the_hook_answered(
    world: World, code: str, message: str
) -> None:
    world.answers.add_client_error(
        "continue_service_deployment", service_error_code=code, service_message=message, http_status_code=400
    )
    out = invoke(TRACK, hook_event())
    assert out["status"] == "ANSWERED"
    assert world.hook_item()["status"] == "ANSWERED"


def test_a_failed_final_write_never_lets_a_later_delivery_answer_again(world: World, faults: Faults) -> None:
    # GIVEN the answer taken by ECS, then every attempt at the hook's final write failing
    world.answer_ok()
    counted = faults.fail("ContinueServiceDeployment", "delay", seconds=0.0)
    final = faults.fail(
        "UpdateItem", service="dynamodb", code="InternalServerError", when=lambda p: ":s0" in str(p)
    )
    with faults.active(final):
        invoke(TRACK, hook_event())
    assert world.hook_item()["status"] == "EVALUATING"
    # WHEN the event is delivered again once the hold has expired (46 s later)
    world.expire_hold()
    world.hook_status("SUCCEEDED")
    out = invoke(TRACK, hook_event())
    # THEN ECS's status is read first: the hook is ANSWERED, never answered a second time
    assert counted.fired == 1
    assert out["status"] == "ANSWERED"
    assert world.hook_item()["status"] == "ANSWERED"
