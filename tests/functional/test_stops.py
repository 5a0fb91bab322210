"""Stopping the robot against moto (issue 25): windows, freezes, the incident freeze, the kill
switch. The real handlers run with an injected clock (``Runtime.clock``)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from ecspilot.aws.freezes import FreezeStore
from ecspilot.aws.notify import Notifier
from ecspilot.deploy.rollback import Rollback
from ecspilot.errors import AwsError
from ecspilot.interfaces import runtime
from ecspilot.interfaces.cli import main
from ecspilot.interfaces.runtime import Runtime
from ecspilot.stopping.incidents import IncidentFreeze
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, fake_digest
from ecspilot_dev.service_deployments import OperationStubber
from tests.conftest import TABLE, MakeRuntime
from tests.faults import Faults
from tests.functional.test_rollback import completed, expect_open
from tests.moto_state import set_image_pushed_at
from tests.promotion_world import World as PromotionWorld
from tests.promotion_world import config as promotion_config

FRIDAY_EVENING = datetime(2026, 12, 11, 16, 55, tzinfo=UTC)  # 17:55 in Rome
MONDAY_OPENING = datetime(2026, 12, 14, 8, 0, tzinfo=UTC)  # 09:00 in Rome
MOTO_ARN = f"arn:aws:sts::{ACCOUNT}:user/moto"  # what moto's GetCallerIdentity answers
TIMERS = {
    "reconcile_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-reconcile",
    "scheduler_role_arn": f"arn:aws:iam::{ACCOUNT}:role/ecspilot-timer",
}


def service(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cluster": "prod",
        "containers": {"app": {"repository": "web", "tags": ["v*"]}},
        **extra,
    }


def config(*services: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "services": list(services),
        "windows": {
            "office-hours": {
                "days": ["MON", "TUE", "WED", "THU"],
                "start": "09:00",
                "end": "16:30",
                "timezone": "Europe/Rome",
            }
        },
        **extra,
    }


class Clock:
    """The injected clock: the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class RealClock(Clock):
    """The real time: the CLI's freezes and the functions' reads share it."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))

    def __call__(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod")
    sandbox.repository("web")
    sandbox.clients.scheduler.create_schedule_group(Name="ecspilot")
    return sandbox


def start(
    world: Sandbox, make_runtime: MakeRuntime, cfg: dict[str, Any], clock: Clock, **settings: Any
) -> Runtime:
    """Services on web:v0, the runtime with a topic, the timers and ``clock``."""
    for svc in cfg["services"]:
        world.service(
            "prod", svc["name"], world.task_definition(svc["name"], {"app": world.image("web", "v0")})
        )
    topic = world.clients.sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    rt = make_runtime(cfg, notify_topic_arn=topic, **{**TIMERS, **settings})
    rt = dataclasses.replace(rt, clock=clock)
    runtime.reset(rt)
    return rt


def running(rt: Runtime, name: str) -> str:
    svc = rt.clients.ecs.describe_services(cluster="prod", services=[name])["services"][0]
    td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"]).rsplit("@", 1)[-1]


def published(recorder: CallRecorder) -> list[str]:
    return [p["Subject"] for p in recorder.params("Publish")]


def outcomes(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {s["name"]: (s["outcome"], s["reason"]) for s in result["services"]}


# --- windows ----------------------------------------------------------------------------------


def test_a_friday_evening_push_is_deferred_and_the_timer_deploys_the_newest_image_on_monday(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN web inside office-hours (Mon-Thu 09:00-16:30 Rome), and api with no window
    clock = Clock(FRIDAY_EVENING)
    rt = start(world, make_runtime, config(service("web", window="office-hours"), service("api")), clock)
    recorder.reset()
    # WHEN web:v1 is pushed on Friday at 17:55 Rome, and EventBridge delivers it twice
    push = world.push("web", "v1")
    result = invoke("deploy_on_push", push)
    again = invoke("deploy_on_push", push)
    # THEN web is deferred with the window's reason and when; api (no window) is deployed
    assert outcomes(result) == {
        "web": ("deferred", "outside office-hours, opens Mon 09:00 Europe/Rome"),
        "api": ("deployed", ""),
    }
    assert result["services"][0]["until"] == "2026-12-14T08:00:00Z"
    assert outcomes(again)["web"][0] == "deferred"
    assert running(rt, "web") == world.image("web", "v0")  # nothing registered or updated for web
    assert len(rt.clients.ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"]) == 1
    # AND one notification for web and this digest, however often it is deferred
    assert published(recorder) == ["ecspilot: web deferred"]
    # AND the deferral is in the history
    deferred = rt.clients.dynamodb.get_item(
        TableName=TABLE,
        Key={"pk": {"S": "SERVICE#prod#web"}, "sk": {"S": f"DEFERRED#{fake_digest('web:v1')}"}},
    )["Item"]
    assert deferred["reason"]["S"] == "outside office-hours, opens Mon 09:00 Europe/Rome"
    # AND one one-time timer at the opening, targeting reconcile with the reopen trigger
    scheduler = rt.clients.scheduler
    [summary] = scheduler.list_schedules(GroupName="ecspilot")["Schedules"]
    timer = scheduler.get_schedule(Name=summary["Name"], GroupName="ecspilot")
    assert timer["ScheduleExpression"] == "at(2026-12-14T08:00:05)"
    assert timer["ActionAfterCompletion"] == "DELETE"
    assert json.loads(timer["Target"]["Input"]) == {"trigger": "reopen"}
    assert timer["Target"]["Arn"] == TIMERS["reconcile_arn"]
    # WHEN v2 is pushed on Saturday (deferred too), and the timer fires on Monday at 09:00:05 Rome
    clock.now = FRIDAY_EVENING + timedelta(days=1)
    v2 = world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), 60)  # moto's pushes share a second: order them
    assert outcomes(invoke("deploy_on_push", v2))["web"][0] == "deferred"
    clock.now = MONDAY_OPENING + timedelta(seconds=5)
    out = invoke("reconcile", json.loads(timer["Target"]["Input"]))
    # THEN catch-up deploys web with the newest image, v2 (not the deferred v1)
    assert running(rt, "web") == fake_digest("web:v2")
    assert ("catch-up", "prod/web", "update") in {
        (a["kind"], a["target"], a["change"]) for a in out["actions"]
    }


def test_plan_shows_deferred_with_the_reason_and_when_and_detailed_exitcode_counts_it(
    world: Sandbox,
    make_runtime: MakeRuntime,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN web with a window and a config freeze on everything now (the CLI's own clock: real time)
    now = datetime.now(UTC)
    cfg = config(
        service("web"),
        freezes=[
            {
                "name": "black-friday",
                "start": (now - timedelta(hours=1)).isoformat(),
                "end": (now + timedelta(hours=2)).isoformat(),
                "reason": "peak",
            }
        ],
    )
    rt = start(world, make_runtime, cfg, Clock(now))
    world.push("web", "v1")
    path = tmp_path / "ecspilot.yaml"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    # WHEN ecspilot plan --detailed-exitcode runs
    code = main(
        ["--config", str(path), "--region", REGION, "plan", "--detailed-exitcode", "--output", "json"],
        session=boto3.Session(region_name=REGION),
    )
    data = json.loads(capsys.readouterr().out)
    # THEN the catch-up action is deferred, says why and when, and counts as a change (exit 3)
    [action] = [a for a in data["actions"] if a["kind"] == "catch-up"]
    assert action["change"] == "deferred"
    assert action["detail"].startswith("frozen: black-friday until ")
    assert "; deploys at " in action["detail"]
    assert code == 3
    assert running(rt, "web") == world.image("web", "v0")


# --- CLI freezes ------------------------------------------------------------------------------


def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, cfg: dict[str, Any], *argv: str) -> int:
    path = tmp_path / "ecspilot.yaml"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    return main(["--config", str(path), "--region", REGION, *argv], session=boto3.Session(region_name=REGION))


def test_freeze_for_2h_from_the_cli_stops_the_next_push_until_unfrozen(
    world: Sandbox,
    make_runtime: MakeRuntime,
    recorder: CallRecorder,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN web deployed with v1 (no window)
    cfg = config(service("web"))
    rt = start(world, make_runtime, cfg, RealClock())
    invoke("deploy_on_push", world.push("web", "v1"))
    # WHEN an operator freezes web for 2 hours from the CLI (its own session and runtime)
    capsys.readouterr()
    assert cli(monkeypatch, tmp_path, cfg, "freeze", "web", "--reason", "bad release", "--for", "2h") == 0
    said = capsys.readouterr().out
    assert said.startswith("froze web until ")
    assert said.rstrip().endswith(f"frozen by {MOTO_ARN} : bad release")
    # THEN the stored freeze is audited: who (STS), when, why, until
    [item] = FreezeStore(rt.history).items()
    assert item["by"] == MOTO_ARN
    assert item["reason"] == "bad release"
    at, end = (datetime.fromisoformat(item[k].replace("Z", "+00:00")) for k in ("at", "end"))
    assert end - at == timedelta(hours=2)
    # AND the next push (the function's next invocation) is deferred with who and why
    recorder.reset()
    result = invoke("deploy_on_push", world.push("web", "v2"))
    assert outcomes(result)["web"] == ("deferred", f"frozen by {MOTO_ARN} : bad release")
    assert running(rt, "web") == fake_digest("web:v1")
    assert recorder.count("RegisterTaskDefinition") == 0
    assert recorder.count("Query") == 1  # the one extra read of the invocation
    # AND `ecspilot freezes` lists it with who and why
    capsys.readouterr()
    assert cli(monkeypatch, tmp_path, cfg, "--output", "json", "freezes") == 0
    [listed] = json.loads(capsys.readouterr().out)["freezes"]
    assert (listed["kind"], listed["state"], listed["by"]) == ("cli", "active", MOTO_ARN)
    # WHEN the operator unfreezes web THEN the next push deploys
    assert cli(monkeypatch, tmp_path, cfg, "unfreeze", "web") == 0
    assert outcomes(invoke("deploy_on_push", world.push("web", "v3")))["web"][0] == "deployed"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["freeze", "--reason", "x"], "name the services"),
        (["freeze", "web", "--all", "--reason", "x"], "not both"),
        (["freeze", "nope", "--reason", "x"], "no configured service or daemon matches nope"),
        (["freeze", "--all", "--reason", "x", "--for", "2 hours"], "--for takes a duration"),
        (["freeze", "--all", "--reason", "x", "--until", "2001-01-01T00:00:00Z"], "not in the future"),
        (["freeze", "--all", "--reason", "x", "--until", "monday"], "ISO 8601"),
        (["unfreeze"], "name the services"),
    ],
)
def test_bad_freeze_input_exits_2_and_stores_nothing(
    world: Sandbox,
    make_runtime: MakeRuntime,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    words: str,
) -> None:
    cfg = config(service("web"))
    rt = start(world, make_runtime, cfg, RealClock())
    assert cli(monkeypatch, tmp_path, cfg, *argv) == 2
    assert words in capsys.readouterr().err
    assert FreezeStore(rt.history).items() == []


def test_the_kill_switch_defers_every_service_and_daemon_update_then_unfreeze_all_lifts_it(
    world: Sandbox,
    make_runtime: MakeRuntime,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = config(service("web"), service("api"))
    rt = start(world, make_runtime, cfg, RealClock())
    assert cli(monkeypatch, tmp_path, cfg, "freeze", "--all", "--reason", "stop everything") == 0
    result = invoke("deploy_on_push", world.push("web", "v1"))
    assert {o for o, _ in outcomes(result).values()} == {"deferred"}
    assert result["services"][0]["until"] == ""  # until a person lifts it
    # AND status shows the freeze at the top, in JSON, text and the HTML page
    capsys.readouterr()
    assert cli(monkeypatch, tmp_path, cfg, "--output", "json", "status") == 0
    [frozen] = json.loads(capsys.readouterr().out)["freezes"]
    assert (frozen["kind"], frozen["services"], frozen["reason"]) == (
        "cli",
        "*",
        f"frozen by {MOTO_ARN} : stop everything",
    )
    page = tmp_path / "status.html"
    assert cli(monkeypatch, tmp_path, cfg, "status", "--html", str(page)) == 0
    assert capsys.readouterr().out.startswith("FROZEN: automated changes are deferred")
    assert '<h2 class="frozen">Frozen</h2>' in page.read_text(encoding="utf-8")
    capsys.readouterr()
    assert cli(monkeypatch, tmp_path, cfg, "unfreeze", "web") == 0  # a glob freeze: only --all lifts it
    assert "still frozen by" in capsys.readouterr().out
    assert cli(monkeypatch, tmp_path, cfg, "unfreeze", "--all") == 0
    out = invoke("reconcile", {"trigger": "reopen"})
    assert running(rt, "web") == running(rt, "api") == fake_digest("web:v1")
    assert {a["change"] for a in out["actions"] if a["kind"] == "catch-up"} == {"update"}


# --- a freeze that begins mid-rollout ----------------------------------------------------------


def test_a_freeze_beginning_mid_rollout_stops_the_continuation_and_the_rest_deploys_after(
    world: Sandbox,
    make_runtime: MakeRuntime,
) -> None:
    # GIVEN a config freeze from 10:00 to 11:00, and a rollout whose first part ran at 09:59
    begins, ends = datetime(2026, 12, 7, 10, 0, tzinfo=UTC), datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    names = ["a", "b", "c"]
    cfg = config(
        *[service(n) for n in names],
        freezes=[{"name": "maintenance", "start": begins.isoformat(), "end": ends.isoformat()}],
    )
    clock = Clock(begins - timedelta(minutes=1))
    queue_url = world.clients.sqs.create_queue(QueueName="ecspilot-deploy-continuations")["QueueUrl"]
    queue_arn = world.clients.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    # (UpdateService paced at one call then one per 50 s, 20 s of budget: one service fits, on a
    # loaded machine too)
    paced = {
        "continuation_queue_url": queue_url,
        "ecs_rates": "UpdateService=1/0.02",
        "time_margin_seconds": 280,
    }
    rt = start(world, make_runtime, cfg, clock, **paced)
    first = invoke("deploy_on_push", world.push("web", "v1"))
    # (the first part deployed one service and recorded the rollout (issue 24: a continuation is
    # taken only from its queue and for a rollout ecspilot recorded); its continuation carries the rest)
    continued = sorted(o["name"] for o in first["services"] if o["outcome"] == "continued")
    [deployed] = sorted(set(names) - set(continued))
    assert len(continued) == 2, first
    assert running(rt, deployed) == fake_digest("web:v1")
    [message] = world.clients.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    # (the continuation's invocation has tokens enough: were it not deferred, it would deploy)
    relaxed = Runtime.build(
        dataclasses.replace(rt.settings, ecs_rates="UpdateService=50/5"), rt.config, rt.clients
    )
    rt = dataclasses.replace(relaxed, clock=clock)
    runtime.reset(rt)
    # WHEN the continuation runs at 10:00:30, inside the freeze
    clock.now = begins + timedelta(seconds=30)
    record = {
        "messageId": message["MessageId"],
        "body": message["Body"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
    }
    assert invoke("deploy_on_push", {"Records": [record]}) == {"batchItemFailures": []}
    # THEN the continued services are deferred (not lost: recorded), not deployed
    assert {running(rt, n) for n in continued} == {world.image("web", "v0")}
    keys = [
        {"pk": {"S": f"SERVICE#prod#{n}"}, "sk": {"S": f"DEFERRED#{fake_digest('web:v1')}"}}
        for n in continued
    ]
    got = rt.clients.dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": keys}})["Responses"][TABLE]
    assert len(got) == 2
    # AND the reopen timer fires when the freeze ends, and deploys them
    [summary] = rt.clients.scheduler.list_schedules(GroupName="ecspilot")["Schedules"]
    assert summary["Name"] == "ecspilot-reopen-20261207T1100"
    clock.now = ends + timedelta(seconds=5)
    invoke("reconcile", {"trigger": "reopen"})
    assert {running(rt, n) for n in names} == {fake_digest("web:v1")}


# --- the incident freeze -----------------------------------------------------------------------


def alarm_event(name: str, state: str, at: datetime, account: str = ACCOUNT) -> dict[str, Any]:
    """The sample event (events/cloudwatch_alarm_state_change.json) for ``name`` moving to ``state``."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    sample = load_event("cloudwatch_alarm_state_change")
    detail = {
        **sample["detail"],
        "alarmName": name,
        "state": {**sample["detail"]["state"], "value": state, "timestamp": stamp},
    }
    return {
        **sample,
        "id": f"{name}-{state}-{at.timestamp()}",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{name}"],
        "detail": detail,
    }


INCIDENTS = {"alarms": ["prod-5xx", "prod-p99-latency"], "services": ["web*"]}


def test_a_flapping_alarm_makes_one_freeze_and_two_notifications(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    t0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    clock = Clock(t0)
    rt = start(world, make_runtime, config(service("web"), service("api"), incidents=INCIDENTS), clock)
    recorder.reset()
    # WHEN prod-5xx goes ALARM, OK, ALARM within minutes
    answers = []
    for minute, state in enumerate(["ALARM", "OK", "ALARM"]):
        clock.now = t0 + timedelta(minutes=minute)
        answers.append(invoke("reconcile", alarm_event("prod-5xx", state, clock.now))["transition"])
    # THEN one freeze started, and a push defers web (not api: the incident freezes web* only)
    assert answers == ["started", "none", "none"]
    result = invoke("deploy_on_push", world.push("web", "v1"))
    assert outcomes(result)["web"] == ("deferred", "incident: prod-5xx in ALARM")
    assert outcomes(result)["api"][0] == "deployed"
    # WHEN it goes OK, and the quiet time (5 minutes) passes with the next reconcile run
    clock.now = t0 + timedelta(minutes=3)
    assert invoke("reconcile", alarm_event("prod-5xx", "OK", clock.now))["transition"] == "none"
    v2 = world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), 60)  # moto's pushes share a second: order them
    assert outcomes(invoke("deploy_on_push", v2))["web"][0] == "deferred"
    clock.now = t0 + timedelta(minutes=9)
    invoke("reconcile", {"trigger": "schedule"})
    # THEN the freeze ended, once: two notifications in all (and the deferral's one), web caught up
    incident = [s for s in published(recorder) if "incident" in s]
    assert incident == ["ecspilot: incident freeze started", "ecspilot: incident freeze ended"]
    assert running(rt, "web") == fake_digest("web:v2")
    # AND a late, older ALARM event changes nothing
    assert (
        invoke("reconcile", alarm_event("prod-5xx", "ALARM", t0 + timedelta(minutes=1)))["transition"]
        == "stale"
    )


def test_concurrent_alarm_events_start_and_end_the_freeze_exactly_once(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN incident alarms with no quiet time, and 8 threads delivering state changes at once
    t0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    incidents = {**INCIDENTS, "quiet_minutes": 0}
    rt = start(world, make_runtime, config(service("web"), incidents=incidents), Clock(t0))

    freeze = IncidentFreeze(
        rt.history, rt.config.incidents, Notifier(rt.clients, rt.settings.notify_topic_arn)
    )  # type: ignore[arg-type]
    recorder.reset()

    def race(calls: list[Callable[[], str]]) -> list[str]:
        barrier = threading.Barrier(len(calls))
        got: list[str] = [""] * len(calls)

        def run(i: int) -> None:
            barrier.wait()
            got[i] = calls[i]()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return got

    # WHEN both alarms go ALARM (each delivered 4 times) at once
    starts = race(
        [
            (lambda a=a: freeze.on_state(a, "ALARM", t0 + timedelta(seconds=1), t0))
            for a in ["prod-5xx", "prod-p99-latency"] * 4
        ]
    )
    # THEN exactly one started it
    assert starts.count("started") == 1
    # WHEN both go OK at once (delivered 4 times each)
    ends = race(
        [
            (lambda a=a: freeze.on_state(a, "OK", t0 + timedelta(seconds=2), t0))
            for a in ["prod-5xx", "prod-p99-latency"] * 4
        ]
    )
    # THEN exactly one ended it, and two notifications were sent in all
    assert ends.count("ended") == 1
    assert published(recorder) == ["ecspilot: incident freeze started", "ecspilot: incident freeze ended"]
    assert FreezeStore(rt.history).read(rt.config.incidents) == []


def test_an_alarm_from_an_unknown_account_or_not_listed_changes_nothing(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    t0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    rt = start(world, make_runtime, config(service("web"), incidents=INCIDENTS), Clock(t0))
    assert "ignored" in invoke("reconcile", alarm_event("prod-5xx", "ALARM", t0, account="999999999999"))
    assert "ignored" in invoke("reconcile", alarm_event("someone-elses", "ALARM", t0))
    assert FreezeStore(rt.history).items() == []


def test_rollback_works_during_the_kill_switch(
    world: Sandbox, make_runtime: MakeRuntime, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:

    # GIVEN v1 then v2 deployed and COMPLETED, then everything frozen
    cfg = config(service("web"))
    rt = start(world, make_runtime, cfg, RealClock())
    v1 = completed(world, rt, "v1")
    completed(world, rt, "v2")
    assert cli(monkeypatch, tmp_path, cfg, "freeze", "--all", "--reason", "incident") == 0
    assert outcomes(invoke("deploy_on_push", world.push("web", "v3")))["web"][0] == "deferred"
    # WHEN an operator rolls web back THEN it runs v1's revision again: never blocked
    with OperationStubber(rt.clients.ecs) as stub:
        expect_open(stub)
        result = Rollback(rt.clients, rt.history).run(rt.config.services[0], reason="during the freeze")
    assert result.action == "redeploy"
    svc = rt.clients.ecs.describe_services(cluster="prod", services=["web"])["services"][0]
    assert svc["taskDefinition"] == v1["to_task_definition"]


# --- faults, daemons, promotions -------------------------------------------------------------------


def test_a_failed_freeze_read_fails_the_push_and_nothing_is_deployed_blind(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN a kill switch on, and the state table's Query failing past botocore's retries
    rt = start(world, make_runtime, config(service("web")), RealClock())
    FreezeStore(rt.history).add(
        ["*"], "stop", "arn:aws:iam::111111111111:user/alice", datetime.now(UTC), None
    )
    rule = faults.fail("Query", code="ProvisionedThroughputExceededException", times=20)
    recorder.reset()
    # WHEN web:v1 is pushed THEN the invocation fails (Lambda retries it): nothing registered
    push = world.push("web", "v1")
    with pytest.raises(AwsError, match="reading the freezes failed"):
        invoke("deploy_on_push", push)
    assert rule.fired >= 1
    assert recorder.count("RegisterTaskDefinition") == recorder.count("UpdateService") == 0
    # WHEN the table answers again THEN the retry defers it
    faults.clear()
    assert outcomes(invoke("deploy_on_push", push))["web"][0] == "deferred"


def test_daemon_creates_and_updates_are_deferred_in_a_freeze(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN a daemon to create on prod and web to catch up with v1, under a config freeze
    now = datetime.now(UTC)
    freeze = {
        "name": "quiet",
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "services": ["log-*", "web"],
    }
    world.task_definition("fluent-bit", {"fluent-bit": "public.ecr.aws/fluent-bit:stable"})
    daemon = {"name": "log-agent", "clusters": ["prod"], "task_definition": "fluent-bit"}
    rt = start(world, make_runtime, config(service("web"), daemons=[daemon], freezes=[freeze]), RealClock())
    world.push("web", "v1")
    recorder.reset()
    # WHEN reconcile runs THEN the create is deferred with the reason and when, nothing created
    out = invoke("reconcile", {"trigger": "schedule"})
    assert [a["change"] for a in out["actions"] if a["kind"] == "catch-up"] == ["deferred"]
    reads = [p for p in recorder.params("Query") if p["ExpressionAttributeValues"][":pk"] == {"S": "FREEZE"}]
    assert len(reads) == 1  # one read of the freezes for the whole run, whatever part asks
    [action] = [a for a in out["actions"] if a["target"] == "prod/log-agent"]
    assert action["change"] == "deferred"
    assert action["detail"].startswith("frozen: quiet until ")
    assert "(create); deploys at " in action["detail"]
    assert [a.rsplit("/", 1)[-1] for a in rt.clients.ecs.list_services(cluster="prod")["serviceArns"]] == [
        "web"
    ]
    # WHEN the freeze is over (the clock two hours on) THEN reconcile creates it
    runtime.reset(dataclasses.replace(rt, clock=lambda: datetime.now(UTC) + timedelta(hours=2)))
    out = invoke("reconcile", {"trigger": "schedule"})
    [action] = [a for a in out["actions"] if a["target"] == "prod/log-agent"]
    assert (action["change"], action["applied"]) == ("create", True)


def test_an_automated_promotion_is_deferred_in_a_freeze_and_promoted_after(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN staging -> prod (bake 0), prod frozen for an hour
    now = datetime.now(UTC)
    cfg = promotion_config(bake=0)
    cfg["freezes"] = [
        {
            "name": "prod-freeze",
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
            "services": ["web-prod"],
        }
    ]
    world = PromotionWorld(sandbox, make_runtime, cfg)
    # WHEN staging's deployment of v1 completes (the tracker would promote at once)
    v1 = world.release("v1")
    # THEN prod is not promoted; reconcile's plan says deferred, why and when
    assert world.images()["app"] == sandbox.image("web", "v0")
    [action] = world.reconcile()
    assert action.change == "deferred"
    assert action.detail.startswith("deferred (frozen: prod-freeze until ")
    assert world.images()["app"] == sandbox.image("web", "v0")
    # WHEN the freeze is over THEN reconcile promotes the very digest
    runtime.reset(dataclasses.replace(world.rt, clock=lambda: datetime.now(UTC) + timedelta(hours=2)))
    world.rt = runtime.current()
    [action] = world.reconcile()
    assert (action.change, action.applied) == ("update", True)
    assert world.images()["app"].endswith(v1["image_digest"])
