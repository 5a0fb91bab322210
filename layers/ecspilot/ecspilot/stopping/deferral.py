"""Deferring a change: the decision every changing flow asks, and what a deferral does.

A flow asks :meth:`Deferrals.check` (pure: the :class:`~ecspilot.domain.stops.Stops` read once
for the invocation) before it registers or updates anything; a stopped service or daemon gets
the outcome ``deferred`` and :meth:`Deferrals.defer`:

- records it in the state table (``DEFERRED#<digest or revision>`` under the service), with a
  conditional put, so a redelivered event, a continuation and every catch-up tick record it
  once: **one notification per service and digest**;
- sets a one-time EventBridge Scheduler timer at the moment every stop on it is gone (the same
  pattern as promotion's bake timer, ``promotion/timer.py``), targeting reconcile with
  ``{"trigger": "reopen"}``: reconcile's catch-up then deploys the newest image, not
  necessarily the deferred one. Its name is the minute (``ecspilot-reopen-YYYYmmddTHHMM``), so
  every deferral to the same opening shares one timer.

Nothing here is asked by ``ecspilot rollback``, ECS's circuit breaker or job runs: never blocked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.aws.freezes import FreezeStore
from ecspilot.aws.notify import Notifier
from ecspilot.domain.stops import Stop, Stops, stamp
from ecspilot.errors import EcspilotError, error_code
from ecspilot.obs import count, logger
from ecspilot.promotion.timer import TimerTarget, at_expression
from ecspilot.records import dataclass

REOPEN_DELAY = timedelta(seconds=5)  # after the opening: the reconcile then sees it open


def reopen_name(when: datetime) -> str:
    """One timer per opening minute, whoever defers to it."""
    return f"ecspilot-reopen-{when.strftime('%Y%m%dT%H%M')}"


def set_reopen_timer(scheduler: object, where: TimerTarget, when: datetime) -> bool:
    """Create the one-time schedule at ``when``; False when it exists (another deferral set it)."""
    name = reopen_name(when)
    try:
        scheduler.create_schedule(  # type: ignore[attr-defined]
            Name=name,
            GroupName=where.group,
            ScheduleExpression=at_expression(when),
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": where.function_arn,
                "RoleArn": where.role_arn,
                "Input": json.dumps({"trigger": "reopen"}),
            },
            Description="ecspilot: deploy what a window or freeze deferred",
        )
    except ClientError as exc:
        if error_code(exc) == "ConflictException":
            return False
        raise EcspilotError(f"CreateSchedule {name} failed: {exc}", schedule=name) from exc
    except BotoCoreError as exc:
        raise EcspilotError(f"CreateSchedule {name} failed: {exc}", schedule=name) from exc
    logger.info("reopen timer set", extra={"schedule": name, "at": at_expression(when)})
    return True


@dataclass
class Deferrals:
    """The invocation's stops, and the effects of deferring under them. ``load`` reads them
    (the freezes' Query) on the first question only: an invocation that changes nothing reads
    nothing."""

    load: Callable[[], Stops]
    store: FreezeStore | None = None
    notifier: Notifier | None = None
    clients: Clients | None = None
    timer: TimerTarget | None = None
    clock: Callable[[], datetime] | None = None  # the time of a later wave (default: the invocation's now)
    _timers: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stops: Stops | None = None

    @property
    def stops(self) -> Stops:
        with self._lock:
            if self._stops is None:
                self._stops = self.load()
            return self._stops

    @property
    def now(self) -> datetime:
        return self.stops.now

    def now_again(self) -> datetime:
        """Now, read again (a paced rollout's later wave): a dated freeze that began since counts."""
        return self.clock() if self.clock is not None else self.stops.now

    def check(self, name: str, at: datetime | None = None) -> Stop | None:
        """None when automation may change ``name`` (a config service or daemon name) at ``at``
        (default: the invocation's now)."""
        return self.stops.check(name, at)

    def defer(
        self,
        name: str,
        where: str,
        what: str,
        stop: Stop,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Record, notify (the first time for this service and ``what``) and set the timer.
        ``where`` is ``cluster/service`` as the state table keys it. Failures are logged, not
        raised: the change was not made, which is what matters; the record and the timer are
        the 15-minute reconcile's to catch up."""
        cluster, _, service = where.partition("/")
        count("ChangesDeferred")
        logger.info(
            "change deferred",
            extra={
                "target": name,
                "cluster": cluster,
                "ecs_service": service,
                "reason": stop.reason,
                "until": stamp(stop.until) if stop.until else None,
            },
        )
        first = True
        try:
            if self.store is not None:
                first = self.store.record_deferral(
                    cluster, service, what, stop.reason, stop.until, self.now, detail or {}
                )
        except EcspilotError as exc:
            logger.error("deferral not recorded", extra={"target": name, "error": str(exc)})
        if first and self.notifier is not None:
            when = (
                f"\nIt will be deployed when that ends ({stamp(stop.until)})."
                if stop.until
                else ("\nIt will be deployed when that ends.")
            )
            self.notifier.notify(
                f"ecspilot: {name} deferred"[:99],
                f"ecspilot deferred a change to {where} ({what}): {stop.reason}.{when}",
                *deferral_context(name, what, stop),
            )
        if stop.until is not None:
            self._timer(stop.until)

    def _timer(self, until: datetime) -> None:
        when = until + REOPEN_DELAY
        name = reopen_name(when)
        with self._lock:
            if name in self._timers or self.timer is None or self.clients is None:
                return
            self._timers.add(name)
        try:
            set_reopen_timer(self.clients.scheduler, self.timer, when)
        except EcspilotError as exc:
            logger.error("reopen timer not set", extra={"schedule": name, "error": str(exc)})


def deferral_context(name: str, what: str, stop: Stop) -> tuple[dict[str, str], dict[str, str]]:
    """The notification's attributes and chat context: deferred by a freeze -> ``kind`` freeze
    and its id (the chat's Unfreeze button answers it); by a closed window -> ``kind`` deferred."""
    kind = "freeze" if stop.freeze is not None else "deferred"
    chat = {
        "digest": what if what.startswith("sha256:") else "",
        "revision": "" if what.startswith("sha256:") else what,
    }
    if stop.freeze is not None:
        chat["freeze"] = stop.freeze.name
    return {"kind": kind, "status": "DEFERRED", "service": name}, chat


__all__ = ["Deferrals", "deferral_context", "reopen_name", "set_reopen_timer"]
