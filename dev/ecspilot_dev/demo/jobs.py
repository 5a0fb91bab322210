"""Jobs: schedules, concurrency policies, jobs that follow pushes, the placement checker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say, table
from ecspilot_dev.demo.base import EMPTY_CONFIG, TABLE, Demo
from ecspilot_dev.local import invoke

JOBS_DEMO: list[dict[str, Any]] = [
    {
        "name": "nightly-report",
        "cluster": "batch",
        "task_definition": "report",
        "launch_type": "EC2",
        "placement": "az-balanced-spread",
        "schedule": "cron(0 3 * * ? *)",
        "timezone": "Europe/Rome",
        "concurrency": "forbid",
        "overrides": {"containers": {"report": {"command": ["report", "--daily"]}}},
    },
    {
        "name": "cache-warmer",
        "cluster": "batch",
        "task_definition": "report",
        "launch_type": "EC2",
        "count": 2,
        "concurrency": "replace",
    },
    {
        "name": "ssd-indexer",
        "cluster": "batch",
        "task_definition": "report",
        "launch_type": "EC2",
        "placement": {
            "constraints": [
                {
                    "type": "memberOf",
                    "expression": "attribute:storage == ssd and attribute:ecs.availability-zone != us-east-1c",
                }
            ]
        },
    },
]
JOBS_CONFIG: dict[str, Any] = {**EMPTY_CONFIG, "jobs": JOBS_DEMO}


def chapter_jobs(demo: Demo) -> None:
    """Scheduled and on-demand jobs: schedules, concurrency policies, the run history."""
    say("\n=== Jobs: scheduled and on-demand runs, concurrency policies, placement checks ===")
    _batch_and_jobs(demo)
    _schedules(demo)
    _firings(demo)
    _replace(demo)
    _run_history(demo)


def _batch_and_jobs(demo: Demo) -> None:
    sb = demo.sandbox
    demo.step(
        "Cluster 'batch' (2 instances per AZ, 3 AZs), task definition 'report', schedule group 'ecspilot'"
    )
    sb.cluster("batch", instances_per_zone=2)
    sb.task_definition("report", {"report": sb.image("report", "v1")})
    demo.clients.scheduler.create_schedule_group(Name="ecspilot")  # template.yaml creates it when deployed
    os.environ.update(
        {
            "ECSPILOT_SCHEDULE_GROUP": "ecspilot",
            "ECSPILOT_RUN_JOB_ARN": "arn:aws:lambda:us-east-1:123456789012:function:ecspilot-RunJob",
            "ECSPILOT_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/ecspilot-Scheduler",
        }
    )
    Path(os.environ["ECSPILOT_CONFIG"]).write_text(
        yaml.safe_dump(JOBS_CONFIG, sort_keys=False), encoding="utf-8"
    )
    runtime.reset(runtime.Runtime.build(clients=demo.clients))
    demo.note("jobs: nightly-report (cron 03:00 Europe/Rome, forbid), cache-warmer (count 2, replace),")
    demo.note("      ssd-indexer (memberOf constraint on a custom attribute)")
    instances = demo.clients.ecs.list_container_instances(cluster="batch")["containerInstanceArns"]
    demo.check(len(instances) == 6, f"6 container instances, got {len(instances)}")
    jobs = [j.name for j in runtime.current().config.jobs]
    demo.check(jobs == ["nightly-report", "cache-warmer", "ssd-indexer"], f"three jobs, got {jobs}")


def _schedules(demo: Demo) -> None:
    from ecspilot.reconcile.runbook import reconcile  # noqa: PLC0415

    demo.step(
        "Reconcile: the scheduled job gets its EventBridge Scheduler schedule (a second run changes nothing)"
    )
    for attempt, change, writes in (("first", "create", ["CreateSchedule"]), ("second", "in-sync", [])):
        demo.recorder.reset()
        result = reconcile(runtime.current())
        for a in result.actions:
            if a.kind == "schedule":
                demo.note(f"{attempt} run: {a.target:<24} {a.change:<8} {a.detail}")
        written = [op for op in demo.recorder.writes() if "Schedule" in op]
        demo.note(f"{attempt} run: scheduler writes: {written or 'none'}")
        changes = [a.change for a in result.actions if a.kind == "schedule"]
        demo.check(changes == [change], f"{attempt} run: {change}, got {changes}")
        demo.check(written == writes, f"{attempt} run: scheduler writes {writes}, got {written}")
    got = demo.clients.scheduler.get_schedule(Name="nightly-report", GroupName="ecspilot")
    demo.note(
        f"schedule: {got['ScheduleExpression']} {got['ScheduleExpressionTimezone']} -> {got['Target']['Input']}"
    )
    demo.check(
        (got["ScheduleExpression"], got["ScheduleExpressionTimezone"])
        == ("cron(0 3 * * ? *)", "Europe/Rome"),
        "the schedule says cron(0 3 * * ? *) in Europe/Rome",
    )


def _firings(demo: Demo) -> None:
    from ecspilot_dev.local import load_event  # noqa: PLC0415

    def fire(scheduled_time: str, expect: str, run_tasks: int) -> dict[str, Any]:
        event = load_event("scheduler_run_job", scheduled_time=scheduled_time)
        demo.recorder.reset()
        result: dict[str, Any] = invoke("run_job", event)
        tasks = ", ".join(a.rsplit("/", 1)[-1][:8] for a in result["task_arns"]) or "-"
        demo.note(
            f"firing {scheduled_time}: {result['outcome']:<9} tasks: {tasks}  RunTask x{demo.recorder.count('RunTask')}"
        )
        if result["reason"]:
            demo.note(f"  {result['reason']}")
        demo.check(result["outcome"] == expect, f"firing {scheduled_time}: {expect}, got {result['outcome']}")
        demo.check(demo.recorder.count("RunTask") == run_tasks, f"RunTask x{run_tasks}")
        return result

    demo.step("Scheduler fires nightly-report (run_job gets {job, scheduled_time}, as Scheduler sends it)")
    first_night = fire("2026-11-25T02:00:00Z", "started", 1)
    demo.check(len(first_night["task_arns"]) == 1, "one task started")
    demo.step("The same firing retried (at-least-once delivery): the claim and clientToken start nothing")
    again = fire("2026-11-25T02:00:00Z", "duplicate", 0)
    demo.check(again["task_arns"] == first_night["task_arns"], "the retry answers with the same task")
    demo.step("The next night's firing while last night's task still runs: concurrency forbid skips it")
    fire("2026-11-26T02:00:00Z", "skipped", 0)


def _replace(demo: Demo) -> None:
    demo.step("cache-warmer (replace), run twice by hand: the second run stops the first run's tasks")
    job = runtime.current().config.job("cache-warmer")
    assert job is not None
    from ecspilot.jobs.runbook import run_job  # noqa: PLC0415

    first = run_job(job, runtime.current().clients, runtime.current().history, "manual")
    demo.note(f"run 1: started {', '.join(a.rsplit('/', 1)[-1][:8] for a in first.task_arns)}")
    second = run_job(job, runtime.current().clients, runtime.current().history, "manual")
    demo.note(
        f"run 2: stopped {', '.join(a.rsplit('/', 1)[-1][:8] for a in second.stopped)}; "
        f"started {', '.join(a.rsplit('/', 1)[-1][:8] for a in second.task_arns)}"
    )
    stopped = demo.clients.ecs.describe_tasks(cluster="batch", tasks=second.stopped[:1])["tasks"][0]
    demo.note(f"stopped reason: {stopped.get('stoppedReason')}")
    demo.check(len(first.task_arns) == 2, f"run 1 started 2 tasks, got {first.task_arns}")
    demo.check(sorted(second.stopped) == sorted(first.task_arns), "run 2 stopped exactly run 1's tasks")
    demo.check(len(second.task_arns) == 2 and not set(second.task_arns) & set(first.task_arns), "2 new tasks")
    demo.check("replace" in str(stopped.get("stoppedReason")), "the stop reason names the replace policy")


def _run_history(demo: Demo) -> None:
    demo.step("Run history: one record per task in the state table (the tracker closes them on STOPPED)")
    history = [
        {
            "job": r["job"],
            "trigger": r["trigger"],
            "task": r["task_arn"].rsplit("/", 1)[-1][:8],
            "status": r["status"],
            "scheduled_time": r.get("scheduled_time", ""),
        }
        for name in ("nightly-report", "cache-warmer")
        for r in _runs(demo, name)
    ]
    table(history, ["job", "trigger", "task", "status", "scheduled_time"])
    told = sorted((r["job"], r["trigger"]) for r in history)
    expected = sorted([("nightly-report", "schedule")] + [("cache-warmer", "manual")] * 4)
    demo.check(told == expected, f"one scheduled run and four manual task records, got {told}")


def _revision_rows(demo: Demo, arns: list[str]) -> list[dict[str, str]]:
    rows = []
    for arn in arns:
        td = demo.clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        image = next(c["image"] for c in td["containerDefinitions"] if c["name"] == "report")
        rows.append(
            {
                "task_definition": f"{td['family']}:{td['revision']}",
                "report image": image.rsplit("/", 1)[-1][:40],
            }
        )
    return rows


def chapter_jobs_follow_pushes(demo: Demo) -> None:
    """A job that declares ``containers:`` gets a new revision on a matching push; its next run uses it."""
    from ecspilot.jobs.tasks import live_tasks  # noqa: PLC0415
    from ecspilot_dev.local import load_event  # noqa: PLC0415

    sb, ecs = demo.sandbox, demo.clients.ecs
    say("\n=== Jobs follow pushes: the next run uses the newest image, a pinned job stays put ===")
    sb.repository("report")
    latest = ecs.describe_task_definition(taskDefinition="report")["taskDefinition"]
    pinned = f"report:{latest['revision']}"
    demo.step(
        f"Config: nightly-report follows ECR repository 'report' (v*); report-replay is pinned to {pinned}"
    )
    jobs = [
        {**j, "containers": {"report": {"repository": "report", "tags": ["v*"]}}}
        if j["name"] == "nightly-report"
        else j
        for j in JOBS_DEMO
    ]
    jobs.append(
        {"name": "report-replay", "cluster": "batch", "task_definition": pinned, "launch_type": "EC2"}
    )
    config = {**EMPTY_CONFIG, "jobs": jobs}
    Path(os.environ["ECSPILOT_CONFIG"]).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    runtime.reset(runtime.Runtime.build(clients=demo.clients))
    demo.note(
        "nightly-report: containers: {report: {repository: report, tags: [v*]}}, task_definition: report"
    )
    demo.note(f"report-replay:  task_definition: {pinned} (a pinned revision: pushes never change it)")
    rows = _revision_rows(demo, [latest["taskDefinitionArn"]])
    table(rows, ["task_definition", "report image"])
    demo.check(rows == [{"task_definition": pinned, "report image": "report:v1"}], f"{pinned} runs report:v1")

    followed = _push_registers_a_revision(demo, latest["taskDefinitionArn"])

    demo.step(
        "Last night's nightly-report task exits; Scheduler fires the next night: it runs the new revision"
    )
    job = runtime.current().config.job("nightly-report")
    assert job is not None
    for task in live_tasks(job, demo.clients):
        ecs.stop_task(cluster="batch", task=task["taskArn"], reason="demo: the container exited")
    demo.recorder.reset()
    run: dict[str, Any] = invoke(
        "run_job", load_event("scheduler_run_job", scheduled_time="2026-11-27T02:00:00Z")
    )
    [params] = demo.recorder.params("RunTask")
    asked = str(params["taskDefinition"]).rsplit("/", 1)[-1]
    demo.note(f"firing 2026-11-27T02:00:00Z: {run['outcome']}; RunTask taskDefinition {asked}")
    _show_tasks(demo, run["task_arns"])
    demo.check(run["outcome"] == "started", f"the firing started, got {run['outcome']}")
    newest = followed.rsplit("/", 1)[-1]
    demo.check(asked == newest, f"RunTask asked for {newest}, got {asked}")

    demo.step(f"report-replay (pinned to {pinned}) run by hand: exactly that revision, image unchanged")
    run = invoke("run_job", {"job": "report-replay"})
    rows = _show_tasks(demo, run["task_arns"])
    told = [(r["task_definition"], r["report image"]) for r in rows]
    demo.check(told == [(pinned, "report:v1")], f"one task on {pinned} with report:v1, got {told}")


def _push_registers_a_revision(demo: Demo, latest: str) -> str:
    """Push report:v2; return the revision deploy_on_push registered for nightly-report."""
    demo.step("Push report:v2 -> deploy_on_push registers a new revision of the family, pinned by digest")
    sb = demo.sandbox
    pushed = sb.push("report", "v2")
    demo.note(f"report:v2 is {pushed['detail']['image-digest'][:19]}...; ECR sends 'ECR Image Action'")
    demo.recorder.reset()
    result: dict[str, Any] = invoke("deploy_on_push", pushed)
    for j in result["jobs"]:
        demo.note(f"job {j['job']:<15} {j['outcome']:<10} -> {j['to_task_definition'].rsplit('/', 1)[-1]}")
    demo.note(f"writes: {', '.join(demo.recorder.writes()) or 'none'} (no service to update)")
    demo.note("cache-warmer and ssd-indexer name the family 'report' too: their next runs use it as well")
    told = [(j["job"], j["outcome"]) for j in result["jobs"]]
    demo.check(told == [("nightly-report", "registered")], f"nightly-report registered, got {told}")
    demo.check(demo.recorder.writes() == ["RegisterTaskDefinition"], "one write: RegisterTaskDefinition")
    [followed] = result["jobs"]
    rows = _revision_rows(demo, [latest, followed["to_task_definition"]])
    table(rows, ["task_definition", "report image"])
    digest = pushed["detail"]["image-digest"]
    demo.check(rows[1]["report image"] == f"report@{digest}"[:40], "the new revision is pinned by digest")

    return str(followed["to_task_definition"])


def _show_tasks(demo: Demo, arns: list[str]) -> list[dict[str, str]]:
    tasks = demo.clients.ecs.describe_tasks(cluster="batch", tasks=arns)["tasks"]
    rows = []
    for task in tasks:
        [row] = _revision_rows(demo, [task["taskDefinitionArn"]])
        rows.append({"task": task["taskArn"].rsplit("/", 1)[-1][:8], "status": task["lastStatus"], **row})
    table(rows, ["task", "status", "task_definition", "report image"])
    return rows


def chapter_placement_check(demo: Demo) -> None:
    """`ecspilot placement check`: which instances a job's constraints select, and why not the others."""
    say("\n=== Placement check: which container instances a job's constraints select ===")
    demo.step("Tag two instances storage=ssd (ecs.put_attributes); `ecspilot placement check ssd-indexer`")
    arns = demo.clients.ecs.list_container_instances(cluster="batch")["containerInstanceArns"]
    described = demo.clients.ecs.describe_container_instances(cluster="batch", containerInstances=arns)
    by_zone: dict[str, list[str]] = {}
    for ci in described["containerInstances"]:
        zone = next(a["value"] for a in ci["attributes"] if a["name"] == "ecs.availability-zone")
        by_zone.setdefault(zone, []).append(ci["containerInstanceArn"])
    for arn in (by_zone["us-east-1a"][0], by_zone["us-east-1c"][0]):
        demo.clients.ecs.put_attributes(
            cluster="batch", attributes=[{"name": "storage", "value": "ssd", "targetId": arn}]
        )
    code, out = demo.cli(["placement", "check", "ssd-indexer"])
    demo.check(code == 0, f"exit code 0, got {code}")
    # the us-east-1c instance is excluded by the zone clause: one of the two tagged ones matches
    demo.check("1 of 6 container instance(s) satisfy the constraints" in out, "1 of 6 instances match")
    demo.step("`ecspilot run ssd-indexer --dry-run`: the same core path, nothing started")
    before = demo.clients.ecs.list_tasks(cluster="batch")["taskArns"]
    code, out = demo.cli(["run", "ssd-indexer", "--dry-run"])
    demo.check(code == 0, f"exit code 0, got {code}")
    demo.check("would-run" in out, "the dry run says it would run")
    after = demo.clients.ecs.list_tasks(cluster="batch")["taskArns"]
    demo.check(after == before, "no task started")


def _runs(demo: Demo, job: str) -> list[dict[str, Any]]:
    from ecspilot.aws.dynamo import deserialize  # noqa: PLC0415

    resp = demo.clients.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{job}"}, ":run": {"S": "RUN#"}},
    )
    return [deserialize(i) for i in resp["Items"]]
