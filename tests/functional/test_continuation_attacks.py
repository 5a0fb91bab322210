"""Forged deploy continuations (issue 24): an attacker with ``lambda:InvokeFunction`` on
deploy_on_push, or ``sqs:SendMessage`` on its queue, finds nothing to act on.

A real rollout runs first: two own services (``staging/web``, ``staging/api``) and ``web-prod`` in
a member account (222222222222, eu-west-1); UpdateService is paced at one call then one per 10 s,
so one own service is deployed and the other is sent on as a continuation, which the first
invocation recorded. Each test then forges that genuine message one field at a time and
delivers it to the real handler; the services must stay where they are, with no ECS write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ecspilot.interfaces import runtime as process
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.functional.test_account_push import FOLLOW, config
from tests.promotion_world import World

PUSH = "deploy_on_push"
WRITES = ("RegisterTaskDefinition", "UpdateService", "AssumeRole", "TransactWriteItems")


class Genuine:
    """The genuine rollout: its continuation message and its queue."""

    def __init__(self, sandbox: Sandbox, make_runtime: MakeRuntime) -> None:
        self.sandbox = sandbox
        url = sandbox.clients.sqs.create_queue(QueueName="ecspilot-deploy-continuations")["QueueUrl"]
        api = {"name": "api-staging", "cluster": "staging", "service": "api", "containers": FOLLOW}
        settings = {
            "continuation_queue_url": url,
            "ecs_rates": "UpdateService=1/0.1",
            "time_margin_seconds": 299,
        }
        self.world = World(sandbox, make_runtime, config(api), **settings)
        sandbox.service(
            "staging", "api", sandbox.task_definition("api-staging", {"app": sandbox.image("web", "v0")})
        )
        self.url = url
        self.arn = sandbox.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        out = invoke(PUSH, sandbox.push("web", "v1"))
        continued = [s["name"] for s in out["services"] if s["outcome"] == "continued"]
        assert len(continued) == 1, out
        self.continued = continued[0]
        [message] = sandbox.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        self.body: dict[str, Any] = json.loads(message["Body"])
        # the continuation's invocation with time and tokens enough: a forged part would deploy
        rt = self.world.rt
        self.world.rt = Runtime.build(
            replace(rt.settings, ecs_rates="UpdateService=50/5"), rt.config, rt.clients
        )
        process.reset(self.world.rt)

    def record(self, body: dict[str, Any] | str, source: str | None = None) -> dict[str, Any]:
        return {
            "messageId": "m-forged",
            "receiptHandle": "r",
            "body": body if isinstance(body, str) else json.dumps(body),
            "eventSource": "aws:sqs",
            "eventSourceARN": source or self.arn,
        }

    def forged(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(json.dumps(self.body))
        change(body)
        return body

    def own_images(self) -> dict[str, str]:
        out = {}
        for name in ("web", "api"):
            svc = self.sandbox.clients.ecs.describe_services(cluster="staging", services=[name])["services"][
                0
            ]
            td = self.sandbox.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])
            out[name] = td["taskDefinition"]["containerDefinitions"][0]["image"]
        return out


@pytest.fixture
def genuine(sandbox: Sandbox, make_runtime: MakeRuntime) -> Genuine:
    return Genuine(sandbox, make_runtime)


def set_push(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body["push"][field] = value

    return change


FORGERIES: dict[str, Callable[[dict[str, Any]], None]] = {
    "an image in another account's registry": set_push("account", "999999999999"),
    "an image on another host": set_push("account", "attacker.example/x"),
    "an image in another region": set_push("region", "eu-central-1"),
    "a tag instead of a digest": set_push("digest", "latest"),
    "a digest with a trailing newline": set_push("digest", fake_digest("web:v1") + "\n"),
    "another digest of the repository": set_push("digest", fake_digest("web:evil")),
    "another repository": set_push("repository", "evil"),
    "a tag with terminal escapes": set_push("tag", "v1\x1b[2J"),
    "a member account's service": lambda b: b.update(services=["web-prod"]),
    "an own service the rollout never had": lambda b: b.update(services=["web-staging", "api-staging"]),
    "a rollout that does not exist": lambda b: b.update(rollout_id="4b1c0e7e-0000-0000-0000-000000000000"),
    "a rollout id that is not a string of text": lambda b: b.update(rollout_id="\x00" * 300),
    "a push that is not an object": lambda b: b.update(push=["web"]),
}


def test_forged_continuations_from_the_queue_are_refused_and_move_nothing(
    genuine: Genuine, recorder: CallRecorder
) -> None:
    # (one world for every forgery: a refused part changes nothing, so they cannot disturb each other)
    for forgery, change in FORGERIES.items():
        # GIVEN a genuine continuation, forged in one field, arriving from the continuation queue
        body = genuine.forged(change)
        before = genuine.own_images()
        writes = [recorder.count(op) for op in WRITES]
        # WHEN deploy_on_push takes it
        out = invoke(PUSH, {"Records": [genuine.record(body)]})
        # THEN it is refused, named, and sent to the dead-letter queue; nothing moved
        assert out["batchItemFailures"] == [{"itemIdentifier": "m-forged"}], forgery
        assert [r["itemIdentifier"] for r in out["refused"]] == ["m-forged"], forgery
        assert [recorder.count(op) for op in WRITES] == writes, forgery
        assert genuine.own_images() == before, forgery


def test_the_genuine_continuation_still_deploys(genuine: Genuine) -> None:
    # the control: the same handler takes the unforged message and deploys the continued service
    out = invoke(PUSH, {"Records": [genuine.record(genuine.body)]})
    assert out == {"batchItemFailures": []}
    assert {i.rsplit("@", 1)[-1] for i in genuine.own_images().values()} == {fake_digest("web:v1")}


SOURCES = [
    "arn:aws:sqs:us-east-1:123456789012:somebody-elses-queue",
    "arn:aws:sqs:us-east-1:999999999999:ecspilot-deploy-continuations",
    "",
    None,
]


def test_records_from_another_queue_or_a_direct_invoke_are_ignored(
    genuine: Genuine, recorder: CallRecorder
) -> None:
    for source in SOURCES:
        # GIVEN the genuine message, delivered as if from another queue (or with no source at all)
        record = genuine.record(genuine.body)
        record["eventSourceARN"] = source
        before = genuine.own_images()
        calls = len(recorder.calls)
        # WHEN deploy_on_push takes it
        out = invoke(PUSH, {"Records": [record]})
        # THEN the batch is ignored as untrusted: no AWS call at all (not even a read), nothing moved
        assert "continuation queue" in out["ignored"], source
        assert len(recorder.calls) == calls, source
        assert genuine.own_images() == before, source


def test_hostile_record_shapes_get_an_answer_not_a_crash(genuine: Genuine) -> None:
    for records in (None, "x", [], ["not an object"], [None], {"a": 1}, [{"eventSourceARN": genuine.arn}]):
        out = invoke(PUSH, {"Records": records})
        assert "ignored" in out or out["batchItemFailures"], records


def test_a_forged_future_push_time_claims_nothing(genuine: Genuine) -> None:
    # GIVEN the genuine continuation, its push time forged to the year 2099
    body = genuine.forged(set_push("time", "2099-01-01T00:00:00+00:00"))
    # WHEN deploy_on_push takes it
    assert invoke(PUSH, {"Records": [genuine.record(body)]}) == {"batchItemFailures": []}
    # THEN the service it deployed is claimed at ECR's push time (before now), not the body's, so
    # the next real push is not refused as stale
    service = genuine.continued.split("-")[0]
    state = genuine.world.rt.history.get_many([{"pk": f"SERVICE#staging#{service}", "sk": "STATE"}])
    claimed = [
        float(v["pushed_at"])
        for item in state.values()
        for v in item.values()
        if isinstance(v, dict) and "pushed_at" in v
    ]
    assert claimed
    assert max(claimed) <= datetime.now(UTC).timestamp()
