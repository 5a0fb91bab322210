"""Job runs for the tracker's tests, written the way ``run_job`` will write them.

The ``run_job`` handler is being built on another branch. Until it lands, this is the ONE
place tests create run records: a real ``run_task`` on moto (so the task exists, with
ecspilot's ``startedBy`` and ``ecspilot:job`` tag), then a PENDING :class:`RunRecord` through
``History`` exactly as the RunRecord contract in ``ecspilot.history`` says. Once ``run_job``
lands, the tests using :func:`start_run_like_run_job` should invoke the real handler instead.
"""

from __future__ import annotations

import uuid

from ecspilot.history import History, RunRecord, utc_now
from ecspilot.sandbox import Sandbox


def start_run_like_run_job(
    sandbox: Sandbox,
    history: History,
    job: str,
    cluster: str,
    task_definition: str,
    trigger: str = "schedule",
) -> RunRecord:
    """Run one task of ``job`` on moto and record it PENDING, as ``run_job`` will."""
    resp = sandbox.clients.ecs.run_task(
        cluster=cluster,
        taskDefinition=task_definition,
        count=1,
        startedBy=f"ecspilot-{job}"[:36],
        tags=[{"key": "ecspilot:job", "value": job}],
    )
    task = resp["tasks"][0]
    record = RunRecord(
        job=job,
        run_id=str(uuid.uuid4()),
        task_arn=task["taskArn"],
        cluster=cluster,
        task_definition=task["taskDefinitionArn"],
        trigger=trigger,
        started_at=utc_now(),
    )
    history.put_items([record.to_item()])
    return record
