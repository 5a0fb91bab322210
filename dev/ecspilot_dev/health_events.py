"""The ``ECS Task State Change`` events ECS sends when a service's task stops (moto sends none):
for the service health tests and the demo's health chapter.

``events/<sample>.json`` gives the outcome (stop code, stopped reason, exit codes, the image
digest); the arguments give the identity the tracker and the EventBridge rule match on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ecspilot_dev.local import load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION

ELB_FAILED = "ecs_service_task_failed_elb_health_checks"
DRAINED = "ecs_service_task_drained"


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def service_task_stopped(
    sample: str,
    number: int,
    at: datetime,
    *,
    cluster: str = "prod",
    service: str = "web",
    task_definition: str | None = None,
    started_by: str | None = None,
    last_status: str = "STOPPED",
    account: str = ACCOUNT,
    region: str = REGION,
    **detail: Any,
) -> dict[str, Any]:
    """The event of service ``cluster/service``'s task number ``number``, stopped at ``at``."""
    task_arn = f"arn:aws:ecs:{region}:{account}:task/{cluster}/{number:032x}"
    event = load_event(sample)
    overrides: dict[str, Any] = {
        "taskArn": task_arn,
        "clusterArn": f"arn:aws:ecs:{region}:{account}:cluster/{cluster}",
        "group": f"service:{service}",
        "lastStatus": last_status,
        "stoppedAt": iso(at),
        **detail,
    }
    if task_definition:
        overrides["taskDefinitionArn"] = task_definition
    if started_by:
        overrides["startedBy"] = started_by
    sample_place = f":{event['region']}:{event['account']}:"
    reason = str(event["detail"].get("stoppedReason", ""))
    if reason and "stoppedReason" not in detail:  # the sample's ARNs name its own account and region
        overrides["stoppedReason"] = reason.replace(sample_place, f":{region}:{account}:")
    event["detail"] = {**event["detail"], **overrides}
    event["detail"]["containers"] = [{**c, "taskArn": task_arn} for c in event["detail"]["containers"]]
    event.update(
        account=account, region=region, resources=[task_arn], id=f"{sample}-{cluster}-{service}-{number}"
    )
    event["time"] = iso(at)
    return event
