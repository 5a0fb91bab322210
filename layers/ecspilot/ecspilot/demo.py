"""``ecspilot demo``: ecspilot's main flows against a local AWS (moto's server, in-process).

Each chapter builds what it needs through public AWS APIs, invokes the real
handlers with the events AWS would send, and narrates what happened. Nothing
here touches a real account: credentials are fake and every client points at
moto on loopback.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ecspilot import runtime
from ecspilot.errors import EcspilotError
from ecspilot.local import CallRecorder, ecs_deployment_per_update, invoke, local_aws
from ecspilot.present import say, table
from ecspilot.sandbox import Sandbox, create_state_table

TABLE = "ecspilot-demo-state"

DEMO_CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "rollback": True,
        },
        {
            "name": "web-canary",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
        },
    ],
    "jobs": [],
    "daemons": [],
}


class Demo:
    """Shared state of the chapters: the sandbox, a call recorder, the narration."""

    def __init__(self) -> None:
        import boto3  # noqa: PLC0415

        from ecspilot.aws import Clients  # noqa: PLC0415

        self.recorder = CallRecorder()
        session = boto3.Session()
        self.recorder.attach(session)
        self.clients = Clients(session=session)
        self.sandbox = Sandbox(self.clients)
        self.step_no = 0

    def step(self, text: str) -> None:
        self.step_no += 1
        say(f"\n[{self.step_no}] {text}")

    def note(self, text: str) -> None:
        say(f"    {text}")

    def service_images(self, cluster: str, services: list[str]) -> list[dict[str, str]]:
        rows = []
        for svc in self.clients.ecs.describe_services(cluster=cluster, services=services)["services"]:
            td = self.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])[
                "taskDefinition"
            ]
            app = next(c for c in td["containerDefinitions"] if c["name"] == "app")
            rows.append(
                {
                    "service": svc["serviceName"],
                    "task_definition": f"{td['family']}:{td['revision']}",
                    "app image": app["image"].rsplit("/", 1)[-1][:40],
                }
            )
        return rows

    def push_and_deploy(self, tag: str, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = event or self.sandbox.push("web", tag)
        self.recorder.reset()
        result: dict[str, Any] = invoke("deploy_on_push", event)
        for svc in result.get("services", []):
            detail = svc["reason"] or f"-> {svc['to_task_definition'].rsplit('/', 1)[-1]}"
            self.note(f"{svc['service']:<12} {svc['outcome']:<10} {detail}")
        calls = ", ".join(f"{op} x{self.recorder.count(op)}" for op in dict.fromkeys(self.recorder.ops()))
        self.note(f"AWS calls: {calls or 'none'}")
        return result


def chapter_deploy_on_push(demo: Demo) -> None:
    """Image push -> digest-pinned revision -> rolled services."""
    sb = demo.sandbox
    say("\n=== Image push: services roll to exactly the pushed image, pinned by digest ===")
    demo.step("Create ECR repository 'web' and cluster 'prod' with one container instance per AZ (3 AZs)")
    sb.repository("web")
    sb.cluster("prod", instances_per_zone=1)
    td = sb.task_definition(
        "web",
        {
            "app": sb.image("web", "v0"),
            "log-router": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
        },
        taskRoleArn="arn:aws:iam::123456789012:role/ecs-web-task",
        tags=[{"key": "team", "value": "storefront"}],
    )
    for name in ("web", "web-canary"):
        sb.service("prod", name, td)
    demo.note("services web and web-canary share task definition web:1 (app: web:v0)")
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])

    demo.step("Push web:v1 -> ECR sends 'ECR Image Action'; the deploy_on_push handler runs")
    v1 = sb.push("web", "v1")
    result = demo.push_and_deploy("v1", event=v1)
    demo.note(f"registered {len(result['registered'])} revision(s) for 2 services (shared task definition)")
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])

    demo.step("The same event again (EventBridge delivers at least once): nothing to do")
    demo.push_and_deploy("v1", event=v1)

    demo.step("Push web:v2: both services roll again, one registration")
    time.sleep(1.1)  # ECR stamps imagePushedAt to the second: keep v1 and v2 apart
    demo.push_and_deploy("v2")

    demo.step("web:v1's event arrives late (after v2): the stale-push guard keeps v2")
    demo.push_and_deploy("v1", event=v1)

    demo.step("Push web:latest: no configured tag pattern (v*) matches, nothing happens")
    demo.push_and_deploy("latest")
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])

    demo.step("History: the deployment records in the state table")
    rows = runtime.current().history.deployments("prod", "web")
    table(
        [
            {
                "started": r["started_at"],
                "tag": r["image_tag"],
                "to": r["to_task_definition"].rsplit("/", 1)[-1],
                "status": r["status"],
            }
            for r in rows
        ],
        ["started", "tag", "to", "status"],
    )


def chapter_catch_up(demo: Demo) -> None:
    """A push whose event never arrives is caught up by reconcile; a rolled-back digest is held."""
    from ecspilot.reconcile import reconcile  # noqa: PLC0415

    say("\n=== Catch-up: ECR events are best effort; reconcile deploys a missed push ===")
    rt = runtime.current()

    def plan(title: str) -> None:
        demo.step(title)
        actions = [a for a in reconcile(rt, dry_run=True).actions if a.kind == "catch-up"]
        table([a.__dict__ for a in actions], ["target", "change", "detail"])

    plan(
        "ecspilot plan now: web was rolled back from v3, so catch-up holds it there (no undoing the breaker)"
    )
    demo.step("Push web:v4 while the push handler is down: the event is dropped, nothing rolls")
    time.sleep(1.1)  # keep imagePushedAt (one-second resolution) apart from v3
    demo.sandbox.push("web", "v4")
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])
    plan("ecspilot plan: the dry run shows the catch-up it would do")

    demo.step("Reconcile (the 15-minute schedule) applies it, through the same deploy core as a push")
    demo.recorder.reset()
    invoke("reconcile", {})
    demo.note(f"writes: {', '.join(demo.recorder.writes()) or 'none'}")
    table(demo.service_images("prod", ["web", "web-canary"]), ["service", "task_definition", "app image"])

    demo.step("Reconcile again: everything is on the newest image, so no write call")
    demo.recorder.reset()
    result = invoke("reconcile", {})
    demo.note(f"summary: {result['summary']}; writes: {', '.join(demo.recorder.writes()) or 'none'}")


def _ecs_event(sample: str, deployment_id: str, service: str, **detail: Any) -> dict[str, Any]:
    """The ``ECS Deployment State Change`` event ECS would send (moto never sends one)."""
    from ecspilot.history import utc_now  # noqa: PLC0415
    from ecspilot.local import load_event  # noqa: PLC0415

    reasons = {
        "ecs_deployment_completed": f"ECS deployment {deployment_id} completed.",
        "ecs_deployment_in_progress": f"ECS deployment {deployment_id} in progress.",
    }
    detail = {"deploymentId": deployment_id, "updatedAt": utc_now(), "reason": reasons.get(sample), **detail}
    arn = f"arn:aws:ecs:us-east-1:123456789012:service/prod/{service}"
    event = load_event(sample, {k: v for k, v in detail.items() if v is not None}, resources=[arn])
    event["id"] = f"{sample}-{deployment_id}"
    return event


def _deployment_of(service: str, tag: str) -> dict[str, Any]:
    rows = runtime.current().history.deployments("prod", service)
    return next(r for r in rows if r.get("image_tag") == tag)


def _track(demo: Demo, event: dict[str, Any]) -> None:
    """Invoke the tracker with an event and narrate which record moved."""
    result: dict[str, Any] = invoke("track_deployments", event)
    moved = result.get("moved") or []
    moves = [moved] if isinstance(moved, dict) else moved
    what = ", ".join(
        f"{m.get('deployment_id', result.get('job', ''))}: {m['from']} -> {m['to']}" for m in moves
    )
    name = event["detail"].get("eventName") or f"task {event['detail']['lastStatus']}"
    demo.note(f"{name:<32} {what or 'record unchanged'}")


def _notifications_and_a_job(demo: Demo) -> str:
    """Turn notifications on and add a job to the config; return the inbox queue URL."""
    clients = demo.clients
    demo.step("Notifications on: an SNS topic (an SQS queue subscribed, to read what a person gets)")
    topic = clients.sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    inbox = clients.sqs.create_queue(QueueName="ecspilot-inbox")["QueueUrl"]
    inbox_arn = clients.sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    clients.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    config = {
        **DEMO_CONFIG,
        "jobs": [{"name": "nightly-report", "cluster": "prod", "task_definition": "report"}],
    }
    Path(os.environ["ECSPILOT_CONFIG"]).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    os.environ["ECSPILOT_NOTIFY_TOPIC_ARN"] = topic
    runtime.reset(runtime.Runtime.build(clients=clients))
    demo.note("config: + job nightly-report; ECSPILOT_NOTIFY_TOPIC_ARN set")
    return str(inbox)


def _bad_release(demo: Demo) -> None:
    """web:v3 fails; the circuit breaker rolls web back to v2; web-canary (no breaker) hangs."""
    clients = demo.clients
    demo.step("Push web:v3, a bad release: both services roll")
    time.sleep(1.1)  # ECR stamps imagePushedAt to the second
    demo.push_and_deploy("v3")
    v2, v3 = _deployment_of("web", "v2"), _deployment_of("web", "v3")
    demo.note("web has the circuit breaker with rollback; web-canary has none, so its deployment just hangs")
    demo.step(
        "ECS: v3's tasks fail to start; the circuit breaker fails the deployment and rolls web back to v2"
    )
    _track(demo, _ecs_event("ecs_deployment_failed", v3["deployment_id"], "web"))
    # what ECS does and moto does not: a new deployment back on v2's revision
    service = clients.ecs.update_service(
        cluster="prod", service="web", taskDefinition=v2["to_task_definition"]
    )
    rollback_id = service["service"]["deployments"][0]["id"]
    reason = f"ECS deployment circuit breaker: rolling back to deploymentId {v2['deployment_id']}."
    _track(demo, _ecs_event("ecs_deployment_rolled_back", rollback_id, "web", reason=reason))
    _track(demo, _ecs_event("ecs_deployment_completed", rollback_id, "web"))
    demo.note("v3's IN_PROGRESS event arrives last (EventBridge does not promise order):")
    _track(demo, _ecs_event("ecs_deployment_in_progress", v3["deployment_id"], "web"))


def _job_runs(demo: Demo) -> None:
    """Two nights of nightly-report through the run_job handler: one exits 0, one exits 1 (the
    STOPPED events ECS would send for those very tasks)."""
    from ecspilot.local import load_event, task_stopped_event  # noqa: PLC0415
    from ecspilot.taskdef import container_images  # noqa: PLC0415

    sb, ecs = demo.sandbox, demo.clients.ecs
    demo.step("Job runs: Scheduler fires nightly-report on two nights; the run_job handler starts each")
    report = sb.task_definition(
        "report", {"report": sb.image("report", "v7"), "log-router": "fluent-bit:stable"}
    )
    images = container_images(ecs.describe_task_definition(taskDefinition=report)["taskDefinition"])
    for night, sample, exit_code in (
        ("2026-11-25", "ecs_task_stopped", 0),
        ("2026-11-26", "ecs_task_stopped_failed", 1),
    ):
        firing = load_event("scheduler_run_job", job="nightly-report", scheduled_time=f"{night}T02:00:00Z")
        result: dict[str, Any] = invoke("run_job", firing)
        [arn] = result["task_arns"]
        demo.note(
            f"firing {firing['scheduled_time']}: {result['outcome']} task {arn.rsplit('/', 1)[-1][:8]} "
            f"(startedBy {result['started_by']}), run record PENDING"
        )
        # what moto does not do: the container exits and ECS stops the task (the next night's
        # run would otherwise be skipped: concurrency forbid)
        task = ecs.stop_task(cluster="prod", task=arn, reason="demo: the container exited")["task"]
        demo.note(f"task {arn.rsplit('/', 1)[-1][:8]} ran; ECS reports it STOPPED: report exited {exit_code}")
        _track(demo, task_stopped_event(sample, task, images))


def _show_inbox(demo: Demo, inbox: str) -> None:
    demo.step("What a person got on the notification topic")
    messages = demo.clients.sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        body = json.loads(message["Body"])
        say(f"\n    Subject: {body['Subject']}")
        for line in body["Message"].splitlines():
            demo.note(f"  {line}")


def chapter_tracking(demo: Demo) -> None:
    """ECS's own events close the deployment and run records; status and history show them."""
    from ecspilot.cli import main as cli  # noqa: PLC0415

    say("\n=== Tracking: did my push deploy, roll back, or hang? Did the job exit 0? ===")
    inbox = _notifications_and_a_job(demo)
    demo.step(
        "ECS reports the push chapter's deployments completed (moto sends no ECS events: the demo does)"
    )
    for service in ("web", "web-canary"):
        for tag in ("v1", "v2"):
            _track(
                demo,
                _ecs_event(
                    "ecs_deployment_completed", _deployment_of(service, tag)["deployment_id"], service
                ),
            )
    demo.step("The same COMPLETED event again, then a late IN_PROGRESS: records only move forward")
    v2 = _deployment_of("web", "v2")
    _track(demo, _ecs_event("ecs_deployment_completed", v2["deployment_id"], "web"))
    _track(demo, _ecs_event("ecs_deployment_in_progress", v2["deployment_id"], "web"))
    _bad_release(demo)
    _job_runs(demo)
    _show_inbox(demo, inbox)
    for argv in (["status"], ["history", "web"], ["history", "nightly-report"]):
        demo.step(f"$ ecspilot {' '.join(argv)}")
        cli(argv)


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
    from ecspilot.local import load_event, moto_api  # noqa: PLC0415
    from ecspilot.reconcile import reconcile  # noqa: PLC0415

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
    from ecspilot.jobs import run_job  # noqa: PLC0415

    first = run_job(job, runtime.current(), "manual")
    demo.note(f"run 1: started {', '.join(a.rsplit('/', 1)[-1][:8] for a in first.task_arns)}")
    second = run_job(job, runtime.current(), "manual")
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
    from ecspilot.jobs import live_tasks  # noqa: PLC0415
    from ecspilot.local import load_event  # noqa: PLC0415

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
    from ecspilot import cli  # noqa: PLC0415

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
    cli.main(["placement", "check", "ssd-indexer"])
    demo.step("`ecspilot run ssd-indexer --dry-run`: the same core path, nothing started")
    cli.main(["run", "ssd-indexer", "--dry-run"])


def _runs(demo: Demo, job: str) -> list[dict[str, Any]]:
    from ecspilot.history import deserialize  # noqa: PLC0415

    resp = demo.clients.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{job}"}, ":run": {"S": "RUN#"}},
    )
    return [deserialize(i) for i in resp["Items"]]


def _reconcile_and_show(demo: Demo, event: dict[str, Any] | None = None) -> dict[str, Any]:
    """Invoke the reconcile handler as Lambda would and narrate its actions and AWS calls."""
    demo.recorder.reset()
    result: dict[str, Any] = invoke("reconcile", event or {})
    table(result["actions"], ["target", "change", "detail"])
    writes = demo.recorder.writes()
    calls = ", ".join(f"{op} x{writes.count(op)}" for op in dict.fromkeys(writes))
    demo.note(f"AWS write calls: {calls or 'none'}")
    return result


def chapter_daemons_everywhere(demo: Demo) -> None:
    """Reconcile keeps a DAEMON service on every configured cluster."""
    from dataclasses import replace  # noqa: PLC0415

    from ecspilot.config import parse_config  # noqa: PLC0415
    from ecspilot.local import load_event  # noqa: PLC0415
    from ecspilot.reconcile import reconcile  # noqa: PLC0415

    sb = demo.sandbox
    say("\n=== Daemons everywhere: one log agent per host, on every cluster, kept in place ===")
    demo.step("Create clusters 'analytics' and 'batch', register task definition fluent-bit:1")
    for name in ("analytics", "batch"):
        sb.cluster(name)
    fluent_bit = "public.ecr.aws/aws-observability/aws-for-fluent-bit"
    sb.task_definition("fluent-bit", {"fluent-bit": f"{fluent_bit}:2.34"})
    daemon = {
        "name": "log-agent",
        "clusters": ["analytics", "batch"],
        "task_definition": "fluent-bit",
        "placement_constraints": ["attribute:ecs.os-type == linux"],
    }

    def use_daemons(*daemons: dict[str, Any]) -> None:
        current = runtime.current()
        config = parse_config({**current.config.model_dump(exclude_none=True), "daemons": list(daemons)})
        runtime.reset(replace(current, config=config))

    use_daemons(daemon)
    demo.note(
        "config: daemons: [{name: log-agent, clusters: [analytics, batch], task_definition: fluent-bit}]"
    )

    demo.step("`ecspilot plan`: the dry run shows what reconcile would do, and changes nothing")
    planned = reconcile(runtime.current(), dry_run=True)
    table([a.__dict__ for a in planned.actions], ["target", "change", "detail"])

    demo.step("Reconcile (rate schedule, stack deploy or drift event): the agent is created on both")
    _reconcile_and_show(demo)
    svc = demo.clients.ecs.describe_services(cluster="batch", services=["log-agent"], include=["TAGS"])
    created = svc["services"][0]
    tags = ", ".join(
        f"{t['key']}={t['value']}" for t in created.get("tags", []) if "placement" not in t["key"]
    )
    demo.note(f"batch/log-agent: schedulingStrategy {created['schedulingStrategy']}, tags {tags}")
    sent = demo.recorder.params("CreateService")
    refused = [k for p in sent for k in ("desiredCount", "placementStrategy") if k in p]
    demo.note(
        f"{len(sent)} CreateService call(s), desiredCount/placementStrategy sent: {refused or 'never'}"
        " (ECS refuses both for DAEMON)"
    )

    demo.step("Reconcile again: everything is in sync, so not one write call")
    _reconcile_and_show(demo)

    demo.step("Someone deletes batch/log-agent by hand; CloudTrail's DeleteService event runs reconcile")
    demo.clients.ecs.delete_service(cluster="batch", service="log-agent", force=True)
    deleted = load_event(
        "cloudtrail_delete_service", {"requestParameters": {"cluster": "batch", "service": "log-agent"}}
    )
    _reconcile_and_show(demo, deleted)

    demo.step("Register fluent-bit:2: the family's latest ACTIVE revision moves, both agents update")
    sb.task_definition("fluent-bit", {"fluent-bit": f"{fluent_bit}:2.35"})
    _reconcile_and_show(demo)

    demo.step("Cluster 'legacy' already runs a hand-made 'log-agent'; the daemon now targets every cluster")
    sb.cluster("legacy")
    handmade = sb.task_definition("legacy-logs", {"agent": f"{fluent_bit}:1.9"})
    sb.service("legacy", "log-agent", handmade, desired=1)
    use_daemons({**daemon, "clusters": "*"})
    demo.note('config: clusters: "*"; CloudTrail\'s CreateCluster event runs reconcile')
    _reconcile_and_show(
        demo, load_event("cloudtrail_create_cluster", {"requestParameters": {"clusterName": "legacy"}})
    )
    demo.note(
        "legacy/log-agent is reported as a conflict and left alone: ecspilot never changes what it did not create"
    )


def chapter_queue(demo: Demo) -> None:
    """Queue messages become job runs: allowlisted, bounded, never lost, never run twice."""
    from ecspilot.queue_request import build_body  # noqa: PLC0415
    from ecspilot.sandbox import QueuePump, create_jobs_queue  # noqa: PLC0415

    say("\n=== Queue: one SQS message, one ECS task; nothing lost, nothing run twice ===")
    clients = demo.clients
    demo.step(
        "A job 'render-video' that accepts queue messages: command and environment.INPUT_URL, max_running 3"
    )
    path = Path(os.environ["ECSPILOT_CONFIG"])
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["jobs"].append(
        {
            "name": "render-video",
            "cluster": "batch",
            "task_definition": "render",
            "launch_type": "EC2",
            "queue": {"allow": ["command", "environment.INPUT_URL"], "max_running": 3},
        }
    )
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    demo.sandbox.task_definition("render", {"app": demo.sandbox.image("render", "v1")})
    queue_url, dlq_url = create_jobs_queue(clients)
    os.environ["ECSPILOT_JOBS_DLQ_URL"] = dlq_url
    runtime.reset(runtime.Runtime.build(clients=clients))
    pump = QueuePump(clients, queue_url)

    demo.step("Send 7 messages: 4 valid, 1 overriding taskRoleArn, 1 for an unknown job, 1 not even JSON")
    bodies = [
        build_body("render-video", {"environment.INPUT_URL": f"s3://uploads/clip-{i}.mov"}) for i in range(4)
    ]
    bodies += [
        json.dumps(
            {"job": "render-video", "overrides": {"taskRoleArn": "arn:aws:iam::123456789012:role/admin"}}
        ),
        json.dumps({"job": "mine-bitcoin"}),
        "render clip 9 please",
    ]
    for body in bodies:
        clients.sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        demo.note(body[:100])

    def deliver(title: str) -> None:
        demo.step(title)
        event = pump.receive()
        demo.recorder.reset()
        response = invoke("run_queued_jobs", event)
        pump.settle(event, response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        demo.note(
            f"batch of {len(event['Records'])}: {len(failed)} reported in batchItemFailures (stay queued)"
        )
        demo.note(
            f"AWS calls: RunTask x{demo.recorder.count('RunTask')}, ListTasks x{demo.recorder.count('ListTasks')}"
        )

    deliver("Lambda's SQS event source delivers the batch to run_queued_jobs")
    live = clients.ecs.list_tasks(cluster="batch", startedBy="ecspilot/render-video")["taskArns"]
    demo.note(f"render-video tasks running: {len(live)} (max_running 3); 1 valid message waits for capacity")
    demo.step("The dead-letter queue: each refused message with its reason (never retried, never lost)")
    dead = clients.sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    table(
        [
            {"body": m["Body"][:48], "reason": m["MessageAttributes"]["ecspilot_reason"]["StringValue"][:90]}
            for m in dead.get("Messages", [])
        ],
        ["body", "reason"],
    )
    deliver("Redelivery while the 3 tasks still run: the waiting message stays queued")
    demo.step("One task finishes (ECS stops it); the next delivery runs the waiting message")
    clients.ecs.stop_task(cluster="batch", task=live[0], reason="demo: render finished")
    deliver("Redelivery after the visibility timeout")
    waiting = clients.sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    demo.note(f"messages left in the queue: {waiting['Attributes']['ApproximateNumberOfMessages']}")


CHAPTERS: list[Callable[[Demo], None]] = [
    chapter_deploy_on_push,
    chapter_tracking,
    chapter_catch_up,
    chapter_jobs,
    chapter_jobs_follow_pushes,
    chapter_placement_check,
    chapter_queue,
    chapter_daemons_everywhere,
]


def run(verbose: bool = False) -> int:
    """Run every chapter against a fresh local AWS; return an exit code."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO" if verbose else "ERROR"
    from ecspilot.obs import logger  # noqa: PLC0415

    # the narration says what happened; --verbose adds the handlers' structured logs
    logger.setLevel("INFO" if verbose else "ERROR")
    # ecs_deployment_per_update: ECS gives every deployment its own id, moto keeps one per service
    with local_aws() as endpoint, tempfile.TemporaryDirectory() as tmp, ecs_deployment_per_update():
        say(f"local AWS: moto server at {endpoint} (fake credentials; nothing leaves this machine)")
        config_path = Path(tmp) / "ecspilot.yaml"
        config_path.write_text(yaml.safe_dump(DEMO_CONFIG, sort_keys=False), encoding="utf-8")
        os.environ["ECSPILOT_CONFIG"] = str(config_path)
        os.environ["ECSPILOT_TABLE"] = TABLE
        demo = Demo()
        create_state_table(demo.clients, TABLE)
        # the handlers build their runtime from the environment, as in Lambda; only the
        # clients are shared with the demo so that it can count the handlers' AWS calls
        runtime.reset(runtime.Runtime.build(clients=demo.clients))
        try:
            for chapter in CHAPTERS:
                chapter(demo)
        except EcspilotError as exc:
            say(f"\ndemo failed: {exc}")
            return 1
    say("\nDemo complete.")
    return 0
