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
    from ecspilot_dev.sandbox import QueuePump, create_jobs_queue  # noqa: PLC0415

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
