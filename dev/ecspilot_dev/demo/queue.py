"""Queue-driven jobs: valid, refused and waiting messages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say, table
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.local import invoke


def chapter_queue(demo: Demo) -> None:
    """Queue messages become job runs: allowlisted, bounded, never lost, never run twice."""
    from ecspilot.queue.request import build_body  # noqa: PLC0415
    from ecspilot_dev.sandbox import QueuePump  # noqa: PLC0415

    say("\n=== Queue: one SQS message, one ECS task; nothing lost, nothing run twice ===")
    clients = demo.clients
    queue_url, dlq_url = _render_video(demo)
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
    demo.check(_depth(demo, queue_url) == 7, "7 messages queued")

    def deliver(title: str, size: int, stay: int, run_tasks: int) -> None:
        demo.step(title)
        event = pump.receive()
        demo.recorder.reset()
        response = invoke("run_queued_jobs", event)
        calls = demo.calls_line()  # the handler's, before the event source deletes what succeeded
        pump.settle(event, response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        demo.note(
            f"batch of {len(event['Records'])}: {len(failed)} reported in batchItemFailures (stay queued)"
        )
        demo.note(calls)
        demo.check(len(event["Records"]) == size, f"a batch of {size}, got {len(event['Records'])}")
        demo.check(len(failed) == stay, f"{stay} message(s) stay queued, got {len(failed)}")
        demo.check(demo.recorder.count("RunTask") == run_tasks, f"RunTask x{run_tasks}")

    deliver("Lambda's SQS event source delivers the batch to run_queued_jobs", 7, 1, 3)
    live = clients.ecs.list_tasks(cluster="batch", startedBy="ecspilot/render-video")["taskArns"]
    demo.note(f"render-video tasks running: {len(live)} (max_running 3); 1 valid message waits for capacity")
    demo.check(len(live) == 3, f"3 tasks running, got {len(live)}")
    demo.step("The dead-letter queue: each refused message with its reason (never retried, never lost)")
    dead = clients.sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    rows = [
        {"body": m["Body"][:48], "reason": m["MessageAttributes"]["ecspilot_reason"]["StringValue"][:90]}
        for m in dead.get("Messages", [])
    ]
    table(rows, ["body", "reason"])
    demo.check(len(rows) == 3 and all(r["reason"] for r in rows), "3 refused messages, each with a reason")
    deliver("Redelivery while the 3 tasks still run: the waiting message stays queued", 1, 1, 0)
    demo.step("One task finishes (ECS stops it); the next delivery runs the waiting message")
    clients.ecs.stop_task(cluster="batch", task=live[0], reason="demo: render finished")
    tasks = clients.ecs.describe_tasks(cluster="batch", tasks=live)["tasks"]
    stopping = [t["taskArn"] for t in tasks if t["desiredStatus"] == "STOPPED"]
    demo.note(
        f"task {live[0].rsplit('/', 1)[-1][:8]} stopped: {len(live) - len(stopping)} of max_running 3 still running"
    )
    demo.check(stopping == live[:1], f"one task stopped, got {stopping}")
    deliver("Redelivery after the visibility timeout", 1, 0, 1)
    left = _depth(demo, queue_url)
    demo.note(f"messages left in the queue: {left}")
    demo.check(left == 0, f"the queue is empty, got {left}")


def _render_video(demo: Demo) -> tuple[str, str]:
    """The cluster, the queue-driven job, the jobs queue and its DLQ; returns both queue URLs."""
    from ecspilot_dev.sandbox import create_jobs_queue  # noqa: PLC0415

    demo.step(
        "Cluster 'batch' (3 instances); a job 'render-video' that accepts queue messages: command and "
        "environment.INPUT_URL, max_running 3"
    )
    demo.sandbox.cluster("batch", instances_per_zone=1)
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
    queue_url, dlq_url = create_jobs_queue(demo.clients)
    os.environ["ECSPILOT_JOBS_DLQ_URL"] = dlq_url
    runtime.reset(runtime.Runtime.build(clients=demo.clients))
    job = runtime.current().config.job("render-video")
    demo.check(job is not None and job.queue is not None, "render-video accepts queue messages")
    return queue_url, dlq_url


def _depth(demo: Demo, queue_url: str) -> int:
    attributes = demo.clients.sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])
