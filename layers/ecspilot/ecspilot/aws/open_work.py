"""Which services ECS is still deploying, as ecspilot's records say: catch-up and promotion
leave those alone (reconcile never undoes ECS).

A service is *open* while one of its newest deployment records is an IN_PROGRESS blue/green,
linear or canary deployment (its record carries the ``service_deployment_arn``): rolling out,
baking, or paused at a hook. Reconcile's ``deployments`` part runs first and moves these records
to what ECS says (COMPLETED, ROLLED_BACK, ...), so an IN_PROGRESS one here is really open: ECS may
still roll it back, and deploying now would race ECS (or redeploy a digest ECS is rolling back).

A rolling deployment's record (no service deployment ARN) does not count: its events are the
truth, the deploy core itself leaves a record IN_PROGRESS until ECS's event closes it, and a lost
event must not stop catch-up for ever (a rollback by the circuit breaker comes as events too).

One Query per service (gsi1, the :data:`NEWEST` newest records). Pure decision:
:func:`open_reason`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ecspilot.aws.history import History

NEWEST = 5


def open_reason(records: Sequence[Mapping[str, Any]]) -> str:
    """Why the service's deployment is still open ("" when none is), from its newest records (pure)."""
    for record in records:
        if record.get("status") != "IN_PROGRESS" or not record.get("service_deployment_arn"):
            continue
        ident = str(record.get("deployment_id") or "?")
        strategy = str(record.get("strategy") or "")
        stage = str(record.get("lifecycle_stage") or record.get("ecs_status") or "IN_PROGRESS")
        where = f"{strategy} deployment" if strategy else "deployment"
        return f"{where} {ident} is still open at {stage}: ECS decides first"
    return ""


def open_services(history: History, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The open services among ``keys`` (state-table ``(cluster, service)`` keys), with the reason."""
    if not history.enabled:
        return {}
    out: dict[tuple[str, str], str] = {}
    for key in dict.fromkeys(keys):
        reason = open_reason(history.deployments(*key, limit=NEWEST))
        if reason:
            out[key] = reason
    return out
