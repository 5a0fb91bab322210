"""Windows and freezes on the deploy path (issue 25): the targets a stop holds are ``deferred``."""

from __future__ import annotations

from datetime import datetime

from ecspilot.deploy.result import Target
from ecspilot.domain.images import ImagePush
from ecspilot.domain.stops import stamp
from ecspilot.stopping.deferral import Deferrals


def defer_targets(
    deferrals: Deferrals | None,
    trigger: str,
    targets: list[Target],
    push: ImagePush,
    dry_run: bool,
    at: datetime | None = None,
) -> list[Target]:
    """Mark ``deferred`` the targets a window or freeze stops (at ``at``, default the
    invocation's now); unless ``dry_run`` record and notify each (once per service and
    digest) and set the reopen timer. Returns the targets still free to deploy."""
    if deferrals is None:
        return targets
    free = []
    for t in targets:
        stop = deferrals.check(t.config.name, at)
        if stop is None:
            free.append(t)
            continue
        t.outcome.outcome, t.outcome.reason = "deferred", stop.reason
        t.outcome.until = stamp(stop.until) if stop.until else ""
        if not dry_run:
            detail = {"repository": push.repository, "tag": push.tag, "trigger": trigger}
            deferrals.defer(t.config.name, "/".join(t.key), push.digest, stop, detail)
    return free
