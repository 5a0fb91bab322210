"""Jobs: schedules, concurrency policies, jobs that follow pushes, the placement checker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say, table
from ecspilot_dev.demo.base import DEMO_CONFIG, TABLE, Demo, run_cli
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


def chapter_jobs(demo: Demo) -> None:
    """Scheduled and on-demand jobs: schedules, concurrency policies, the placement checker."""
    from ecspilot.reconcile.runbook import reconcile  # noqa: PLC0415
    from ecspilot_dev.local import load_event, moto_api  # noqa: PLC0415

    sb = demo.sandbox
    say("\n=== Jobs: scheduled and on-demand runs, concurrency policies, placement checks ===")
    # moto moves a task towards STOPPED on every DescribeTasks; real tasks keep running
    moto_api(
        os.environ["AWS_ENDPOINT_URL"],
        "state-manager/set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
    )
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
    config = {**DEMO_CONFIG, "jobs": [*DEMO_CONFIG.get("jobs", []), *JOBS_DEMO]}
    Path(os.environ["ECSPILOT_CONFIG"]).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    runtime.reset(runtime.Runtime.build(clients=demo.clients))
    demo.note("jobs: nightly-report (cron 03:00 Europe/Rome, forbid), cache-warmer (count 2, replace),")
    demo.note("      ssd-indexer (memberOf constraint on a custom attribute)")

    demo.step(
        "Reconcile: the scheduled job gets its EventBridge Scheduler schedule (a second run changes nothing)"
    )
    for attempt in ("first", "second"):
        demo.recorder.reset()
        result = reconcile(runtime.current())
        for a in result.actions:
            if a.kind == "schedule":
                demo.note(f"{attempt} run: {a.target:<24} {a.change:<8} {a.detail}")
        demo.note(
            f"{attempt} run: scheduler writes: {[op for op in demo.recorder.writes() if 'Schedule' in op] or 'none'}"
        )
    got = demo.clients.scheduler.get_schedule(Name="nightly-report", GroupName="ecspilot")
    demo.note(
        f"schedule: {got['ScheduleExpression']} {got['ScheduleExpressionTimezone']} -> {got['Target']['Input']}"
    )

    def fire(scheduled_time: str) -> dict[str, Any]:
        event = load_event("scheduler_run_job", scheduled_time=scheduled_time)
        demo.recorder.reset()
        result: dict[str, Any] = invoke("run_job", event)
        tasks = ", ".join(a.rsplit("/", 1)[-1][:8] for a in result["task_arns"]) or "-"
        demo.note(
            f"firing {scheduled_time}: {result['outcome']:<9} tasks: {tasks}  RunTask x{demo.recorder.count('RunTask')}"
        )
        if result["reason"]:
            demo.note(f"  {result['reason']}")
        return result

    demo.step("Scheduler fires nightly-report (run_job gets {job, scheduled_time}, as Scheduler sends it)")
    fire("2026-11-25T02:00:00Z")
    demo.step("The same firing retried (at-least-once delivery): the claim and clientToken start nothing")
    fire("2026-11-25T02:00:00Z")
    demo.step("The next night's firing while last night's task still runs: concurrency forbid skips it")
    fire("2026-11-26T02:00:00Z")

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

    demo.step("Run history: one record per task in the state table (the tracker closes them on STOPPED)")
    table(
        [
            {
                "job": r["job"],
                "trigger": r["trigger"],
                "task": r["task_arn"].rsplit("/", 1)[-1][:8],
                "status": r["status"],
                "scheduled_time": r.get("scheduled_time", ""),
            }
            for name in ("nightly-report", "cache-warmer")
            for r in _runs(demo, name)
        ],
        ["job", "trigger", "task", "status", "scheduled_time"],
    )


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
    config = {**DEMO_CONFIG, "jobs": jobs}
    Path(os.environ["ECSPILOT_CONFIG"]).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    runtime.reset(runtime.Runtime.build(clients=demo.clients))
    demo.note(
        "nightly-report: containers: {report: {repository: report, tags: [v*]}}, task_definition: report"
    )
    demo.note(f"report-replay:  task_definition: {pinned} (a pinned revision: pushes never change it)")
    table(_revision_rows(demo, [latest["taskDefinitionArn"]]), ["task_definition", "report image"])

    demo.step("Push report:v2 -> deploy_on_push registers a new revision of the family, pinned by digest")
    pushed = sb.push("report", "v2")
    demo.note(f"report:v2 is {pushed['detail']['image-digest'][:19]}...; ECR sends 'ECR Image Action'")
    demo.recorder.reset()
    result: dict[str, Any] = invoke("deploy_on_push", pushed)
    for j in result["jobs"]:
        demo.note(f"job {j['job']:<15} {j['outcome']:<10} -> {j['to_task_definition'].rsplit('/', 1)[-1]}")
    demo.note(f"writes: {', '.join(demo.recorder.writes()) or 'none'} (no service to update)")
    demo.note("cache-warmer and ssd-indexer name the family 'report' too: their next runs use it as well")
    [followed] = result["jobs"]
    table(
        _revision_rows(demo, [latest["taskDefinitionArn"], followed["to_task_definition"]]),
        ["task_definition", "report image"],
    )

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

    demo.step(f"report-replay (pinned to {pinned}) run by hand: exactly that revision, image unchanged")
    run = invoke("run_job", {"job": "report-replay"})
    _show_tasks(demo, run["task_arns"])


def _show_tasks(demo: Demo, arns: list[str]) -> None:
    tasks = demo.clients.ecs.describe_tasks(cluster="batch", tasks=arns)["tasks"]
    rows = []
    for task in tasks:
        [row] = _revision_rows(demo, [task["taskDefinitionArn"]])
        rows.append({"task": task["taskArn"].rsplit("/", 1)[-1][:8], "status": task["lastStatus"], **row})
    table(rows, ["task", "status", "task_definition", "report image"])


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
    run_cli(["placement", "check", "ssd-indexer"])
    demo.step("`ecspilot run ssd-indexer --dry-run`: the same core path, nothing started")
    run_cli(["run", "ssd-indexer", "--dry-run"])


def _runs(demo: Demo, job: str) -> list[dict[str, Any]]:
    from ecspilot.aws.dynamo import deserialize  # noqa: PLC0415

    resp = demo.clients.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{job}"}, ":run": {"S": "RUN#"}},
    )
    return [deserialize(i) for i in resp["Items"]]
