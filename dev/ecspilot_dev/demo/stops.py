"""Stopping the robot (issue 25): a Friday-evening push deferred to Monday's opening, an incident
freeze from a flapping alarm, and the kill switch from the command line.

The handlers run with an injected clock (``Runtime.clock``: Friday 17:55 in Rome, then Monday);
the reopen timer is the one-time EventBridge Scheduler schedule deploy_on_push sets, which the demo
fires by invoking reconcile with its input, as Scheduler would at its time. The kill switch is
``ecspilot freeze --all`` in its own process, and the functions see it in their next invocation.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION, fake_digest

STOPS_CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "window": "office-hours",
        }
    ],
    "windows": {
        "office-hours": {
            "days": ["MON", "TUE", "WED", "THU"],
            "start": "09:00",
            "end": "16:30",
            "timezone": "Europe/Rome",
        }
    },
    "incidents": {"alarms": ["prod-5xx"], "services": ["*"], "quiet_minutes": 5},
    "jobs": [],
    "daemons": [],
}
FRIDAY_EVENING = datetime(2026, 12, 11, 16, 55, tzinfo=UTC)  # 17:55 in Rome
MONDAY = datetime(2026, 12, 14, 8, 0, 5, tzinfo=UTC)  # 09:00:05 in Rome: the timer fires
GROUP = "ecspilot"


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _runtime_at(clock: _Clock) -> None:
    """The handlers' runtime, with timers configured and the demo's clock."""
    rt = runtime.current()
    settings = dataclasses.replace(
        rt.settings,
        reconcile_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-reconcile",
        scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/ecspilot-PromotionTimerRole",
        schedule_group=GROUP,
    )
    runtime.reset(dataclasses.replace(rt, settings=settings, clock=clock))


def _running(demo: Demo) -> str:
    """web's app image, in full (``...web@sha256:...`` once ecspilot deployed it)."""
    ecs = demo.clients.ecs
    arn = ecs.describe_services(cluster="prod", services=["web"])["services"][0]["taskDefinition"]
    td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return str(next(c["image"] for c in td["containerDefinitions"] if c["name"] == "app"))


def _push(demo: Demo, tag: str, expect: str) -> dict[str, Any]:
    time.sleep(1.05)  # ECR's push times have one-second resolution in moto: catch-up orders by them
    result: dict[str, Any] = invoke("deploy_on_push", demo.sandbox.push("web", tag))
    svc: dict[str, Any] = result["services"][0]
    until = f" (deploys at {svc['until']})" if svc.get("until") else ""
    demo.note(f"web {svc['outcome']}: {svc['reason'] or svc['to_task_definition'].rsplit('/', 1)[-1]}{until}")
    demo.check(svc["outcome"] == expect, f"web {expect}, got {svc['outcome']}")
    return svc


def _alarm(name: str, state: str, at: datetime) -> dict[str, Any]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "version": "0",
        "id": f"demo-{name}-{state}-{int(at.timestamp())}",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"],
        "detail": {"alarmName": name, "state": {"value": state, "reason": "demo", "timestamp": stamp}},
    }


def chapter_stops(demo: Demo) -> None:
    say("\n=== Stopping ecspilot: windows, an incident freeze, the kill switch ===")
    demo.step("A service 'web' that automation may change only in office-hours (Mon-Thu 09:00-16:30 Rome)")
    sb = demo.sandbox
    sb.cluster("prod", instances_per_zone=1, zones=("us-east-1a",))
    sb.repository("web")
    sb.service("prod", "web", sb.task_definition("web", {"app": sb.image("web", "v0")}))
    demo.clients.scheduler.create_schedule_group(Name=GROUP)
    clock = _Clock(FRIDAY_EVENING)
    _runtime_at(clock)
    demo.note(f"web runs {_running(demo).rsplit('/', 1)[-1][:30]}")
    demo.check(_running(demo).endswith("web:v0"), "web runs web:v0")

    demo.step("Friday 17:55 in Rome: web:v1 is pushed. ecspilot defers it to Monday's opening")
    svc = _push(demo, "v1", "deferred")
    demo.check(svc["reason"] == "outside office-hours, opens Mon 09:00 Europe/Rome", "the window's reason")
    [timer] = demo.clients.scheduler.list_schedules(GroupName=GROUP)["Schedules"]
    got = demo.clients.scheduler.get_schedule(Name=timer["Name"], GroupName=GROUP)
    demo.note(
        f"one-time timer {timer['Name']}: {got['ScheduleExpression']} -> reconcile {got['Target']['Input']}"
    )
    demo.check(got["ScheduleExpression"] == "at(2026-12-14T08:00:05)", "a timer at Monday 09:00:05 Rome")
    demo.check(_running(demo).endswith("web:v0"), "web still runs web:v0: nothing registered or updated")

    demo.step("Monday 09:00:05: the timer fires; reconcile's catch-up deploys the newest image")
    clock.now = MONDAY
    out = invoke("reconcile", json.loads(got["Target"]["Input"]))
    [action] = [a for a in out["actions"] if a["kind"] == "catch-up"]
    demo.note(f"catch-up {action['target']}: {action['change']} ({action['detail']})")
    demo.check(action["change"] == "update", f"web updated, got {action['change']}")
    demo.check(_running(demo).endswith(fake_digest("web:v1")), "web runs v1 pinned by digest")

    _incident(demo, clock)
    _kill_switch(demo)


def _incident(demo: Demo, clock: _Clock) -> None:
    demo.step("Monday 10:00: the alarm prod-5xx goes ALARM, OK, ALARM. One incident freeze")
    start = MONDAY + timedelta(hours=1)
    moves = []
    for minute, state in enumerate(["ALARM", "OK", "ALARM"]):
        clock.now = start + timedelta(minutes=minute)
        moves.append(invoke("reconcile", _alarm("prod-5xx", state, clock.now))["transition"])
    demo.note(f"incident freeze moves: {moves}")
    demo.check(moves == ["started", "none", "none"], f"started once, got {moves}")
    svc = _push(demo, "v2", "deferred")
    demo.check(svc["reason"] == "incident: prod-5xx in ALARM", "the incident's reason")

    demo.step("prod-5xx is OK again; 5 quiet minutes later reconcile lifts the freeze and deploys v2")
    clock.now = start + timedelta(minutes=3)
    invoke("reconcile", _alarm("prod-5xx", "OK", clock.now))
    clock.now = start + timedelta(minutes=9)
    invoke("reconcile", {"trigger": "schedule"})
    demo.note(f"web runs {_running(demo).rsplit('/', 1)[-1][:30]}")
    demo.check(_running(demo).endswith(fake_digest("web:v2")), "web runs v2")


def _kill_switch(demo: Demo) -> None:
    demo.step("The kill switch: `ecspilot freeze --all` from another process; the next push is deferred")
    runtime.reset(dataclasses.replace(runtime.current(), clock=lambda: datetime.now(UTC)))  # the CLI's time
    # (office-hours would defer too outside its hours: the window is dropped for this part)
    code, _ = demo.cli(["freeze", "--all", "--reason", "stop everything, incident 4711"])
    demo.check(code == 0, f"freeze exits 0, got {code}")
    rt = runtime.current()
    unwindowed = rt.config.model_copy(
        update={"services": [s.model_copy(update={"window": None}) for s in rt.config.services]}
    )
    runtime.reset(dataclasses.replace(rt, config=unwindowed))
    svc = _push(demo, "v3", "deferred")
    demo.check(
        svc["reason"].startswith("frozen by arn:aws:sts::")
        and svc["reason"].endswith(": stop everything, incident 4711"),
        "who and why",
    )
    code, out = demo.cli(["freezes"])
    demo.check(code == 0 and "stop everything" in out, "ecspilot freezes lists it")

    demo.step("`ecspilot unfreeze --all`, then reconcile: web catches up with v3")
    code, _ = demo.cli(["unfreeze", "--all"])
    demo.check(code == 0, f"unfreeze exits 0, got {code}")
    invoke("reconcile", {"trigger": "reopen"})
    demo.note(f"web runs {_running(demo).rsplit('/', 1)[-1][:30]}")
    demo.check(_running(demo).endswith(fake_digest("web:v3")), "web runs v3")
