"""The delivery metrics a closed deployment emits (the dashboard's four keys over time). Pure.

When the tracker first closes a deployment record (from IN_PROGRESS, or creating it closed):

=====================  =======  =============================================================
metric                 unit     when
=====================  =======  =============================================================
``ChangesClosed``      Count    a change (any trigger but ``rollback``) COMPLETED, FAILED or
                                ROLLED_BACK: the failure rate's denominator
``ChangesCompleted``   Count    a change COMPLETED: the deployment frequency
``ChangesFailed``      Count    a change FAILED or ROLLED_BACK: the failure rate's numerator
``LeadTime``           Seconds  a change COMPLETED whose record has ``image_pushed_at``: pushed
                                -> completed
``TimeToRestore``      Seconds  a ``rollback`` deployment COMPLETED: its start (the failure
                                declared) -> completed
=====================  =======  =============================================================

A FAILED record later marked ROLLED_BACK is not counted twice. ``ecspilot insights`` computes
the same keys from the records, with what metrics cannot see (crash loops within the hour, a
rollback by ``ecspilot rollback``, the time from the failure itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

#: what :func:`delivery_metrics` names -> the metric: counts, and durations in seconds
DELIVERY_COUNTS = {"closed": "ChangesClosed", "completed": "ChangesCompleted", "failed": "ChangesFailed"}
DELIVERY_SECONDS = {"lead_time": "LeadTime", "restore": "TimeToRestore"}


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def delivery_metrics(record: Mapping[str, Any], before: str, status: str) -> list[tuple[str, float]]:
    """``[(key, value)]`` for a record that moved from ``before`` to ``status``: a key of
    :data:`DELIVERY_COUNTS` or :data:`DELIVERY_SECONDS`."""
    if before not in ("", "IN_PROGRESS") or status not in ("COMPLETED", "FAILED", "ROLLED_BACK"):
        return []
    finished = _when(record.get("finished_at"))
    if record.get("trigger") == "rollback":
        started = _when(record.get("started_at"))
        if status == "COMPLETED" and started is not None and finished is not None:
            return [("restore", max(0.0, (finished - started).total_seconds()))]
        return []
    out: list[tuple[str, float]] = [("closed", 1.0)]
    if status != "COMPLETED":
        return [*out, ("failed", 1.0)]
    out.append(("completed", 1.0))
    pushed = _when(record.get("image_pushed_at"))
    if pushed is not None and finished is not None:
        out.append(("lead_time", max(0.0, (finished - pushed).total_seconds())))
    return out
