"""Pushes that outlive one invocation: paced plans, continuations through SQS, the stale guard.

The real ``deploy_on_push`` handler runs against moto with a Lambda context whose remaining time
the test sets (a simulated timeout: the invocation is told it has almost no time left). What does
not fit goes to the continuation queue (moto's SQS); the test delivers those messages to the same
handler as the event source mapping would. Calls are counted at botocore's ``provide-client-params``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import LocalContext, load_handler
from ecspilot_dev.sandbox import Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.moto_state import set_image_pushed_at

PUSH = "deploy_on_push"
SERVICES = [f"api-{i}" for i in range(8)]  # each on its own task definition family: 8 registrations
BURST = 3  # RegisterTaskDefinition's burst in these tests; its refill (2/s) is what cannot fit
RATES = f"RegisterTaskDefinition={BURST}/2,UpdateService=50/5"


@dataclass
class Context(LocalContext):
    """A Lambda context whose remaining time the test chooses."""

    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def config() -> dict[str, Any]:
    return {
        "version": 1,
        "services": [
            {"name": n, "cluster": "apis", "containers": {"app": {"repository": "api", "tags": ["v*"]}}}
            for n in SERVICES
        ],
    }


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("apis")
    sandbox.repository("api")
    for name in SERVICES:
        sandbox.service("apis", name, sandbox.task_definition(name, {"app": sandbox.image("api", "v0")}))
    return sandbox


@pytest.fixture
def rt(world: Sandbox, make_runtime: MakeRuntime) -> Runtime:
    queue_url = world.clients.sqs.create_queue(QueueName="ecspilot-deploy-continuations")["QueueUrl"]
    return make_runtime(config(), continuation_queue_url=queue_url, ecs_rates=RATES, time_margin_seconds=20)


def deploy(event: dict[str, Any], seconds_left: float) -> dict[str, Any]:
    """Invoke deploy_on_push with ``seconds_left`` beyond the 20 s margin."""
    return load_handler(PUSH)(event, Context(remaining_ms=int((20 + seconds_left) * 1000)))  # type: ignore[no-any-return]


def queued(rt: Runtime) -> list[dict[str, Any]]:
    """Receive the continuation queue's messages as the SQS event source would deliver them."""
    url = rt.settings.continuation_queue_url or ""
    got = rt.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    arn = rt.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
        }
        for m in got.get("Messages", [])
    ]


def consume(rt: Runtime, records: list[dict[str, Any]], seconds_left: float = 600) -> dict[str, Any]:
    """Deliver ``records`` to the handler; delete those it did not report failed (as Lambda does)."""
    out = deploy({"Records": records}, seconds_left)
    failed = {f["itemIdentifier"] for f in out["batchItemFailures"]}
    for r in records:
        if r["messageId"] not in failed:
            rt.clients.sqs.delete_message(
                QueueUrl=rt.settings.continuation_queue_url or "", ReceiptHandle=r["receiptHandle"]
            )
    return out


def running(rt: Runtime, service: str) -> str:
    svc = rt.clients.ecs.describe_services(cluster="apis", services=[service])["services"][0]
    td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"]).rsplit("@", 1)[-1]


def revisions(rt: Runtime, family: str) -> int:
    return len(rt.clients.ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"])


def records(rt: Runtime) -> list[dict[str, Any]]:
    items = rt.clients.dynamodb.scan(TableName=rt.settings.table_name or "")["Items"]
    return [i for i in items if i.get("type", {}).get("S") == "deployment"]


def outcomes(result: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["outcome"] for s in result["services"]}


def test_a_push_that_cannot_finish_in_time_continues_and_completes_without_a_duplicate_call(
    world: Sandbox, rt: Runtime, recorder: Any
) -> None:
    # GIVEN a push to 8 services on 8 task definitions, and an invocation with almost no time left:
    # only RegisterTaskDefinition's burst (3) fits, the refill (1/s) does not
    push = world.push("api", "v1")
    # WHEN deploy_on_push runs with 0.3 s beyond its margin (the 4th token comes at 0.5 s)
    first = deploy(push, seconds_left=0.3)
    # THEN it deployed at most the burst (on a loaded machine the 0.3 s may not even hold the
    # whole burst: what it cannot send in time continues too), sent the rest on, and did not fail
    # or wait for tokens
    deployed = list(outcomes(first).values()).count("deployed")
    assert deployed <= BURST
    assert list(outcomes(first).values()).count("continued") == len(SERVICES) - deployed
    assert first["continued_in"] == push["id"]
    first_calls = recorder.count("RegisterTaskDefinition")
    first_updates = recorder.count("UpdateService")
    assert first_updates >= deployed
    assert deployed <= first_calls <= BURST
    # (a call counted here may never have been sent: on a loaded machine the limiter refuses it once
    # the 0.3 s are gone; what counts is which families got their revision)
    registered_first = sum(revisions(rt, s) == 2 for s in SERVICES)
    assert deployed <= registered_first <= first_calls
    # WHEN the continuation is delivered with time enough
    messages = queued(rt)
    assert len(messages) == 1
    out = consume(rt, messages)
    # THEN the rollout completed: every service on v1, one new revision per family, no duplicate call:
    # the continuation registered exactly the families the first invocation had not (a revision
    # registered then is found and reused), and updated exactly the services it had not
    assert out == {"batchItemFailures": []}
    assert {running(rt, s) for s in SERVICES} == {fake_digest("api:v1")}
    assert {revisions(rt, s) for s in SERVICES} == {2}
    assert recorder.count("RegisterTaskDefinition") - first_calls == len(SERVICES) - registered_first
    assert recorder.count("UpdateService") - first_updates == len(SERVICES) - deployed
    assert queued(rt) == []
    # AND the records show one logical rollout: 8 deployments, every one with the push's rollout id
    rows = records(rt)
    assert len(rows) == len(SERVICES)
    assert {r["rollout_id"]["S"] for r in rows} == {push["id"]}


def test_a_redelivered_continuation_changes_nothing(world: Sandbox, rt: Runtime, recorder: Any) -> None:
    # GIVEN a rollout continued once and completed
    deploy(world.push("api", "v1"), seconds_left=0.3)
    message = queued(rt)
    consume(rt, message)
    calls = (recorder.count("RegisterTaskDefinition"), recorder.count("UpdateService"))
    before = records(rt)
    # WHEN SQS delivers the same continuation again (at-least-once)
    out = consume(rt, message)
    # THEN no registration, no update, no new record: every service is unchanged
    assert out == {"batchItemFailures": []}
    assert (recorder.count("RegisterTaskDefinition"), recorder.count("UpdateService")) == calls
    assert len(records(rt)) == len(before)
    assert {revisions(rt, s) for s in SERVICES} == {2}


def test_a_newer_push_supersedes_an_older_continuation(world: Sandbox, rt: Runtime, recorder: Any) -> None:
    # GIVEN v1 (pushed a minute ago) half rolled out, its continuation waiting in the queue
    older = world.push("api", "v1")
    newer = world.push("api", "v2")
    set_image_pushed_at("api", fake_digest("api:v1"), seconds_ago=60)
    deploy(older, seconds_left=0.3)
    continuation = queued(rt)
    assert len(continuation) == 1
    # AND v2 pushed meanwhile and rolled to every service in one invocation
    assert set(outcomes(deploy(newer, seconds_left=600)).values()) == {"deployed"}
    calls = (recorder.count("RegisterTaskDefinition"), recorder.count("UpdateService"))
    # WHEN v1's continuation arrives
    out = consume(rt, continuation)
    # THEN it moves nothing back: every service stays on v2, no call changed ECS
    assert out == {"batchItemFailures": []}
    assert {running(rt, s) for s in SERVICES} == {fake_digest("api:v2")}
    assert (recorder.count("RegisterTaskDefinition"), recorder.count("UpdateService")) == calls
    assert queued(rt) == []


def test_a_call_that_would_wait_past_the_deadline_is_not_sent_and_its_service_continues(
    world: Sandbox, rt: Runtime, recorder: Any, faults: Faults
) -> None:
    # GIVEN a plan that fits (3 services, within the burst) but one registration held up 0.5 s
    # (a slow network) in an invocation with 0.2 s left beyond its margin
    cfg = config()
    cfg["services"] = cfg["services"][:BURST]
    slow = faults.fail("RegisterTaskDefinition", "delay", seconds=0.5, when=lambda p: p["family"] == "api-0")
    runtime_cfg = rt.config.model_validate(cfg)
    from ecspilot.interfaces import runtime as process  # noqa: PLC0415

    process.reset(Runtime(rt.settings, runtime_cfg, rt.clients, rt.history))
    # WHEN the push runs
    result = deploy(world.push("api", "v1"), seconds_left=0.2)
    # THEN the late registration was refused by the limiter (never sent: no revision), and the
    # updates, whose tokens would come after the deadline too, were not sent: nothing failed,
    # every service continues
    assert slow.fired == 1
    assert set(outcomes(result).values()) == {"continued"}
    assert revisions(rt, "api-0") == 1
    assert {running(rt, f"api-{i}") for i in range(BURST)} == {world.image("api", "v0")}
    # AND the continuation finishes them, reusing the revisions already registered (no duplicate)
    assert consume(rt, queued(rt)) == {"batchItemFailures": []}
    assert {running(rt, f"api-{i}") for i in range(BURST)} == {fake_digest("api:v1")}
    assert {revisions(rt, f"api-{i}") for i in range(BURST)} == {2}


def test_a_malformed_continuation_is_reported_failed_so_it_ends_in_the_dlq(rt: Runtime) -> None:
    url = rt.settings.continuation_queue_url or ""
    arn = rt.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    record = {"messageId": "m-1", "body": "{not json", "eventSource": "aws:sqs", "eventSourceARN": arn}
    out = deploy({"Records": [record]}, 600)
    assert out["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    assert out["refused"][0]["reason"].startswith("not a deploy continuation")
