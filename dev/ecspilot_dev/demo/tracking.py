"""Tracking: ECS's own events close deployment and run records; status and history."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say
from ecspilot_dev.demo.base import DEMO_CONFIG, Demo
from ecspilot_dev.local import invoke


def ecs_event(
    sample: str, deployment_id: str, service: str, cluster: str = "prod", **detail: Any
) -> dict[str, Any]:
    """The ``ECS Deployment State Change`` event ECS would send (moto never sends one)."""
    from ecspilot.aws.history import utc_now  # noqa: PLC0415
    from ecspilot_dev.local import load_event  # noqa: PLC0415

    reasons = {
        "ecs_deployment_completed": f"ECS deployment {deployment_id} completed.",
        "ecs_deployment_in_progress": f"ECS deployment {deployment_id} in progress.",
    }
    detail = {"deploymentId": deployment_id, "updatedAt": utc_now(), "reason": reasons.get(sample), **detail}
    arn = f"arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{service}"
    event = load_event(sample, {k: v for k, v in detail.items() if v is not None}, resources=[arn])
    event["id"] = f"{sample}-{deployment_id}"
    return event


def _deployment_of(service: str, tag: str) -> dict[str, Any]:
    rows = runtime.current().history.deployments("prod", service)
    return next(r for r in rows if r.get("image_tag") == tag)


def track(demo: Demo, event: dict[str, Any], expect: str) -> None:
    """Invoke the tracker with an event, narrate which record moved and check it moved as
    ``expect`` says (``"FROM -> TO"``, ``"record unchanged"``, or ``"status unchanged"``: the
    record keeps its status while the stage it shows follows ECS)."""
    result: dict[str, Any] = invoke("track_deployments", event)
    moved = result.get("moved") or []
    moves = [moved] if isinstance(moved, dict) else moved
    own = event["detail"].get("deploymentId")

    def said(m: dict[str, Any]) -> str:
        record = m.get("deployment_id", result.get("job", ""))
        whose = "" if record == own else f"{record}: " if not own else f"moves {record}: "
        return f"{whose}{m['from'] or '(new)'} -> {m['to']}"

    name = event["detail"].get("eventName") or f"task {event['detail']['lastStatus']}"
    label = f"{name} ({own})" if own else name
    unchanged = (
        "status unchanged, the stage follows ECS" if expect == "status unchanged" else "record unchanged"
    )
    demo.note(f"{label:<32} {', '.join(said(m) for m in moves) or unchanged}")
    told = ", ".join(f"{m['from']} -> {m['to']}".strip() for m in moves) or "record unchanged"
    wanted = "record unchanged" if expect == "status unchanged" else expect
    demo.check(told == wanted, f"{name}: {expect}, got {told}")


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
    subscribed = clients.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    demo.check([s["Endpoint"] for s in subscribed] == [inbox_arn], "the inbox is subscribed")
    demo.check(runtime.current().config.job("nightly-report") is not None, "nightly-report configured")
    return str(inbox)


def _bad_release(demo: Demo) -> None:
    """web:v3 fails; the circuit breaker rolls web back to v2; web-canary (no breaker) hangs."""
    clients = demo.clients
    demo.step("Push web:v3, a bad release: both services roll")
    time.sleep(1.1)  # ECR stamps imagePushedAt to the second
    demo.push_and_deploy("v3", "deployed")
    v2, v3 = _deployment_of("web", "v2"), _deployment_of("web", "v3")
    demo.note("web has the circuit breaker with rollback; web-canary has none, so its deployment just hangs")
    demo.step(
        "ECS: v3's tasks fail to start; the circuit breaker fails the deployment and rolls web back to v2"
    )
    track(demo, ecs_event("ecs_deployment_failed", v3["deployment_id"], "web"), "IN_PROGRESS -> FAILED")
    # what ECS does and moto does not: a new deployment back on v2's revision
    service = clients.ecs.update_service(
        cluster="prod", service="web", taskDefinition=v2["to_task_definition"]
    )
    rollback_id = service["service"]["deployments"][0]["id"]
    reason = f"ECS deployment circuit breaker: rolling back to deploymentId {v2['deployment_id']}."
    rolled_back = ecs_event("ecs_deployment_rolled_back", rollback_id, "web", reason=reason)
    track(demo, rolled_back, "FAILED -> ROLLED_BACK")
    track(demo, ecs_event("ecs_deployment_completed", rollback_id, "web"), "IN_PROGRESS -> COMPLETED")
    demo.note("v3's IN_PROGRESS event arrives last (EventBridge does not promise order):")
    track(demo, ecs_event("ecs_deployment_in_progress", v3["deployment_id"], "web"), "record unchanged")
    demo.check(_deployment_of("web", "v3")["status"] == "ROLLED_BACK", "v3's record stays ROLLED_BACK")


def _job_runs(demo: Demo) -> None:
    """Two nights of nightly-report through the run_job handler: one exits 0, one exits 1 (the
    STOPPED events ECS would send for those very tasks)."""
    from ecspilot.domain.taskdef import container_images  # noqa: PLC0415
    from ecspilot_dev.local import load_event, task_stopped_event  # noqa: PLC0415

    sb, ecs = demo.sandbox, demo.clients.ecs
    demo.step("Job runs: Scheduler fires nightly-report on two nights; the run_job handler starts each")
    report = sb.task_definition(
        "report", {"report": sb.image("report", "v7"), "log-router": "fluent-bit:stable"}
    )
    images = container_images(ecs.describe_task_definition(taskDefinition=report)["taskDefinition"])
    for night, sample, exit_code, status in (
        ("2026-11-25", "ecs_task_stopped", 0, "SUCCEEDED"),
        ("2026-11-26", "ecs_task_stopped_failed", 1, "FAILED"),
    ):
        firing = load_event("scheduler_run_job", job="nightly-report", scheduled_time=f"{night}T02:00:00Z")
        result: dict[str, Any] = invoke("run_job", firing)
        demo.check(result["outcome"] == "started", f"firing {night} started, got {result['outcome']}")
        demo.check(len(result["task_arns"]) == 1, f"one task, got {result['task_arns']}")
        [arn] = result["task_arns"]
        demo.note(
            f"firing {firing['scheduled_time']}: {result['outcome']} task {arn.rsplit('/', 1)[-1][:8]} "
            f"(startedBy {result['started_by']}), run record PENDING"
        )
        # what moto does not do: the container exits and ECS stops the task (the next night's
        # run would otherwise be skipped: concurrency forbid)
        task = ecs.stop_task(cluster="prod", task=arn, reason="demo: the container exited")["task"]
        demo.note(f"task {arn.rsplit('/', 1)[-1][:8]} ran; ECS reports it STOPPED: report exited {exit_code}")
        stopped = task_stopped_event(sample, task, images)
        # the sample's times are another night's (a 7m30s run): this task ran from its firing to now
        started = task.get("startedAt") or task.get("createdAt")
        now = datetime.now(UTC)
        began = started.astimezone(UTC) if isinstance(started, datetime) else now
        times = {"startedAt": began, "stoppingAt": now, "stoppedAt": now, "executionStoppedAt": now}
        stopped["detail"].update(
            {k: v.isoformat(timespec="milliseconds").replace("+00:00", "Z") for k, v in times.items()}
        )
        track(demo, stopped, f"PENDING -> {status}")


def _show_inbox(demo: Demo, inbox: str) -> None:
    demo.step("What a person got on the notification topic")
    messages = demo.clients.sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    bodies = [json.loads(message["Body"]) for message in messages]
    subjects = sorted(body["Subject"] for body in bodies)
    demo.check(
        subjects
        == [
            "ecspilot: job nightly-report failed",
            "ecspilot: prod/web deployment failed",
            "ecspilot: prod/web deployment rolled back",
        ],
        f"three notifications: web failed, web rolled back, nightly-report failed; got {subjects}",
    )
    for body in bodies:
        say(f"\n    Subject: {body['Subject']}")
        for line in body["Message"].splitlines():
            demo.note(f"  {line}")


def chapter_tracking(demo: Demo) -> None:
    """ECS's own events close the deployment and run records; status and history show them."""
    say("\n=== Tracking: did my push deploy, roll back, or hang? Did the job exit 0? ===")
    inbox = _notifications_and_a_job(demo)
    demo.step(
        "ECS reports the push chapter's deployments completed (moto sends no ECS events: the demo does)"
    )
    for service in ("web", "web-canary"):
        for tag in ("v1", "v2"):
            deployment_id = _deployment_of(service, tag)["deployment_id"]
            track(
                demo,
                ecs_event("ecs_deployment_completed", deployment_id, service),
                "IN_PROGRESS -> COMPLETED",
            )
    demo.step("The same COMPLETED event again, then a late IN_PROGRESS: records only move forward")
    v2 = _deployment_of("web", "v2")
    track(demo, ecs_event("ecs_deployment_completed", v2["deployment_id"], "web"), "record unchanged")
    track(demo, ecs_event("ecs_deployment_in_progress", v2["deployment_id"], "web"), "record unchanged")
    demo.check(_deployment_of("web", "v2")["status"] == "COMPLETED", "web's v2 record stays COMPLETED")
    _bad_release(demo)
    _job_runs(demo)
    _show_inbox(demo, inbox)
    for argv, shows in (
        (["status"], ["ROLLED_BACK (v3)", "IN_PROGRESS (v3)", "nightly-report", "FAILED"]),
        (["history", "web"], ["last 4 deployment(s)", "ROLLED_BACK", "COMPLETED", "rollback"]),
        (["history", "nightly-report"], ["last 2 run(s)", "SUCCEEDED", "FAILED"]),
    ):
        demo.step(f"$ ecspilot {' '.join(argv)}")
        code, out = demo.cli(argv)
        demo.check(code == 0, f"exit code 0, got {code}")
        demo.check(all(s in out for s in shows), f"the output shows {shows}")
