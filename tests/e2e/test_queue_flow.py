"""A queue message through moto's server: SQS -> run_queued_jobs -> ECS task -> track_deployments."""

from __future__ import annotations

import json

import pytest

from ecspilot.aws.history import utc_now
from ecspilot_dev.local import invoke, load_event, moto_api
from ecspilot_dev.sandbox import QueuePump, create_jobs_queue
from tests.e2e.conftest import World

CLUSTER = "mediafarm"


def test_a_queued_request_runs_once_and_its_stopped_task_closes_the_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a cluster, a queue job and the jobs queue (tasks keep their status, as ECS's do)
    moto_api(
        world.endpoint,
        "state-manager/set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
    )
    sb = world.sandbox
    sb.cluster(CLUSTER, instances_per_zone=1)
    task_definition = sb.task_definition("transcode", {"app": sb.image("transcode", "v1")})
    queue_url, dlq_url = create_jobs_queue(world.clients)
    monkeypatch.setenv("ECSPILOT_JOBS_DLQ_URL", dlq_url)
    rt = world.configure(
        {
            "version": 1,
            "jobs": [
                {
                    "name": "transcode",
                    "cluster": CLUSTER,
                    "task_definition": "transcode",
                    "launch_type": "EC2",
                    "queue": {"allow": ["environment.INPUT_URL"]},
                }
            ],
        },
        monkeypatch,
    )
    body = {"job": "transcode", "overrides": {"environment": {"INPUT_URL": "s3://in/a.mov"}}}
    world.clients.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    pump = QueuePump(world.clients, queue_url)
    # WHEN the event source mapping delivers it, twice (at-least-once delivery)
    event = pump.receive()
    assert invoke("run_queued_jobs", event) == {"batchItemFailures": []}
    assert invoke("run_queued_jobs", event) == {"batchItemFailures": []}
    # THEN one task runs, with the message's override
    [task_arn] = world.clients.ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    [task] = world.clients.ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"]
    assert task["overrides"]["containerOverrides"][0]["environment"] == [
        {"name": "INPUT_URL", "value": "s3://in/a.mov"}
    ]
    [run] = rt.history.runs("transcode")
    assert (run["trigger"], run["status"], run["message_id"]) == (
        "queue",
        "PENDING",
        event["Records"][0]["messageId"],
    )
    # WHEN the task exits 0 and ECS sends its STOPPED event
    world.clients.ecs.stop_task(cluster=CLUSTER, task=task_arn, reason="done")
    stopped = load_event(
        "ecs_task_stopped",
        {
            "taskArn": task_arn,
            "clusterArn": task["clusterArn"],
            "taskDefinitionArn": task_definition,
            "startedBy": task["startedBy"],
            "containers": [{"name": "app", "exitCode": 0, "lastStatus": "STOPPED", "taskArn": task_arn}],
            "stoppedAt": utc_now(),
        },
    )
    invoke("track_deployments", stopped)
    # THEN the run is closed as SUCCEEDED, with the exit code
    [closed] = rt.history.runs("transcode")
    assert closed["status"] == "SUCCEEDED"
