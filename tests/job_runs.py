"""Job runs for the tracker's tests: started by the real ``run_job`` handler, ended the way ECS
ends them.

moto runs no containers and emits no task events. A run ends here as a real one does: the task
stops (``StopTask`` on moto stands for the container exiting) and ECS sends its ``ECS Task State
Change`` event, built from a sample in ``events/`` about that very task
(:func:`ecspilot_dev.local.task_stopped_event`). Use with the ``frozen_tasks`` fixture, so moto keeps
the task RUNNING until then.
"""

from __future__ import annotations

from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot_dev.local import invoke, load_event, task_stopped_event


def fire(clients: Clients, job: str, scheduled_time: str = "2026-11-25T02:00:00Z") -> dict[str, Any]:
    """Fire ``job``'s schedule once through the run_job handler; return the task it started."""
    result = invoke("run_job", load_event("scheduler_run_job", job=job, scheduled_time=scheduled_time))
    [arn] = result["task_arns"]
    [task] = clients.ecs.describe_tasks(cluster=result["cluster"], tasks=[arn])["tasks"]
    return dict(task)


def ends(clients: Clients, task: dict[str, Any], sample: str) -> dict[str, Any]:
    """Stop ``task`` on moto and return the STOPPED event ECS sends, from ``events/<sample>.json``."""
    clients.ecs.stop_task(cluster=task["clusterArn"], task=task["taskArn"], reason="the container exited")
    return task_stopped_event(sample, task)
