"""Service task stops forwarded from a member account (issues 13 and 16), against moto with two
accounts: a crash loop of prod/web in 222222222222 / eu-west-1 notifies once under that
service's key, its stops recorded apart from ecspilot's own prod/web; the essential containers are
read in that account; a stop from an account that is not configured stays ignored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot.aws.health_records import HealthRecords
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.health_events import ELB_FAILED, service_task_stopped
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.promotion_world import TARGET_ACCOUNT, TARGET_REGION, World, config

TRACK = "track_deployments"
KEY = f"web@{TARGET_ACCOUNT}:{TARGET_REGION}"
T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def topic(sandbox: Sandbox) -> tuple[str, str]:
    """The notification topic, with an SQS queue subscribed to read what was published."""
    sns, sqs = sandbox.clients.sns, sandbox.clients.sqs
    topic_arn = sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="ecspilot-notify-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url


def inbox(rt: Runtime, queue_url: str) -> list[dict[str, Any]]:
    resp = rt.clients.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in resp.get("Messages", [])]


@pytest.fixture
def world(sandbox: Sandbox, make_runtime: MakeRuntime, topic: tuple[str, str]) -> World:
    """web-staging (own staging/web), web-prod (prod/web in the target account), and ecspilot's
    own prod/web configured as ``web``; notifications on."""
    cfg = config(bake=30)
    cfg["services"].append(
        {"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web", "tags": ["own-*"]}}}
    )
    w = World(sandbox, make_runtime, cfg, notify_topic_arn=topic[0])
    sandbox.cluster("prod")
    sandbox.service("prod", "web", sandbox.task_definition("web-own", {"app": sandbox.image("web", "v0")}))
    return w


def stop(
    world: World, number: int, minutes: float, account: str = TARGET_ACCOUNT, td: str = "", **kw: Any
) -> Any:
    """prod/web's task ``number`` in ``account`` (eu-west-1) failed its ELB health checks
    ``minutes`` after T0: the event as the member account's rule forwards it, to the tracker."""
    td = td or str(world.prod_service()["taskDefinition"])
    event = service_task_stopped(
        ELB_FAILED,
        number,
        T0 + timedelta(minutes=minutes),
        task_definition=td,
        account=account,
        region=TARGET_REGION,
        **kw,
    )
    return invoke(TRACK, event)


def test_a_forwarded_crash_loop_from_the_member_account_notifies_once_under_that_service(
    world: World, topic: tuple[str, str], recorder: CallRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN web-prod in the target account with the default crash_loop (5 in 10 minutes), on a
    # revision registered there only (no process has described it yet)
    td = world.target.task_definition("web-loop", {"app": world.own.image("web", "v0")})
    recorder.reset()
    # WHEN ECS there replaces seven of its tasks a minute apart (forwarded to ecspilot's bus)
    results = [stop(world, n, n, td=td) for n in range(7)]
    # THEN the fifth started a crash loop, under the target's service
    assert [r["crash_loop"] for r in results] == [None, None, None, None, "start", None, None]
    assert {r["service"] for r in results} == {f"prod/{KEY}"}
    # AND exactly one notification, naming the service in its account, and web-prod for status
    [note] = inbox(world.rt, topic[1])
    assert note["Subject"].startswith(f"ecspilot: prod/{KEY} is crash-looping")
    body = note["Message"]
    assert (
        f"ECS service web on cluster prod in account {TARGET_ACCOUNT} {TARGET_REGION} is crash-looping"
        in body
    )
    assert "replaced:     5 tasks in 10 minutes" in body
    assert "Status:       ecspilot status web-prod" in body
    assert f"https://{TARGET_REGION}.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/" in body
    # AND the stops are recorded under the target's key, the same as its deployment records;
    # ecspilot's own prod/web has none and no crash loop
    records = HealthRecords(world.rt.history)
    assert len(records.stops("prod", KEY, "")) == 7
    assert records.stops("prod", "web", "") == []
    assert records.loop_state("prod", "web") is None
    state = records.loop_state("prod", KEY)
    assert state is not None
    assert state.looping
    # AND the essential containers were read, once, in the target account: the revision exists
    # there only, so a read with ecspilot's own clients would have failed and logged the safe side
    assert [p["taskDefinition"] for p in recorder.params("DescribeTaskDefinition")] == [td]
    assert not [r for r in caplog.records if "every container counts as essential" in r.getMessage()]


def test_a_redelivered_forwarded_stop_records_and_counts_nothing_twice(world: World) -> None:
    first = stop(world, 1, 0)
    again = stop(world, 1, 0)
    assert (first["recorded"], again["recorded"]) == (True, False)
    assert len(HealthRecords(world.rt.history).stops("prod", KEY, "")) == 1


def test_a_stop_from_an_account_not_configured_stays_ignored(world: World, recorder: CallRecorder) -> None:
    # GIVEN a third account's prod/web (not in the config's accounts)
    recorder.reset()
    # WHEN its task stop reaches the tracker (a rule edited by hand, a direct invoke)
    result = stop(world, 1, 0, account="444444444444")
    # THEN it is ignored before any AWS call; nothing is recorded
    assert "untrusted origin account 444444444444" in result["ignored"]
    assert recorder.calls == []
    assert HealthRecords(world.rt.history).stops("prod", "web@444444444444:eu-west-1", "") == []


def test_a_member_accounts_stop_of_a_service_configured_only_elsewhere_is_ignored(
    world: World, recorder: CallRecorder
) -> None:
    # GIVEN staging/web is configured in ecspilot's own account only
    recorder.reset()
    # WHEN the target account forwards a stop of its (unconfigured) staging/web
    result = stop(world, 1, 0, cluster="staging")
    # THEN it is ignored: a same-named service of another account is not the configured one
    assert result["ignored"] == f"service staging/web is not configured in {TARGET_ACCOUNT} {TARGET_REGION}"
    assert recorder.writes() == []


def test_an_own_stop_of_prod_web_stays_the_own_services(world: World) -> None:
    # WHEN ecspilot's own prod/web has a task replaced
    td = str(
        world.own.clients.ecs.describe_services(cluster="prod", services=["web"])["services"][0][
            "taskDefinition"
        ]
    )
    result = invoke(TRACK, service_task_stopped(ELB_FAILED, 1, T0, task_definition=td))
    # THEN it is recorded under the own key, not the other account's
    assert result["service"] == "prod/web"
    records = HealthRecords(world.rt.history)
    assert len(records.stops("prod", "web", "")) == 1
    assert records.stops("prod", KEY, "") == []


def test_a_role_that_cannot_be_assumed_judges_every_container_essential_and_still_records(
    world: World, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the target account's role refuses to be assumed
    from ecspilot.aws.accounts import sessions_of  # noqa: PLC0415

    sessions_of(world.rt.clients, None, TRACK)._sessions.clear()  # a cold tracker process
    faults.fail("AssumeRole", service="sts", code="AccessDenied", status=403)
    # WHEN a forwarded stop arrives
    result = stop(world, 1, 0)
    # THEN it is recorded as a replacement all the same, every container counting as essential
    assert (result["recorded"], result["replacement"]) == (True, True)
    [warned] = [r for r in caplog.records if r.getMessage().startswith("cannot read the task definition in")]
    assert "AccessDenied" in str(warned.__dict__.get("error"))
    assert len(HealthRecords(world.rt.history).stops("prod", KEY, "")) == 1


def test_a_stop_whose_cluster_arn_names_another_account_than_the_event_is_ignored(
    world: World, recorder: CallRecorder
) -> None:
    # GIVEN an event from ecspilot's own account whose cluster ARN names the member account's
    # prod (ECS never sends one: a hand-made or edited event trying to borrow the other's service)
    event = service_task_stopped(ELB_FAILED, 1, T0, account=TARGET_ACCOUNT, region=TARGET_REGION)
    event.update(account=world.own.account, region=world.own.region)
    recorder.reset()
    # WHEN it reaches the tracker
    result = invoke(TRACK, event)
    # THEN it is ignored, nothing is recorded under either prod/web
    # (issue 24: the tracker's check of every ECS ARN an event names says so first)
    assert f"arn:aws:ecs:{TARGET_REGION}:{TARGET_ACCOUNT}:" in result["ignored"]
    assert recorder.writes() == []
    records = HealthRecords(world.rt.history)
    assert records.stops("prod", "web", "") == []
    assert records.stops("prod", KEY, "") == []
