"""The incident freeze: ``CloudWatch Alarm State Change`` events of the ``incidents`` alarms.

Each event first records its alarm's newest state on the state table's incident item (a
conditional write: an older state change than the one stored is stale and changes nothing).
Then, by two conditional writes whose conditions read the alarms' states *as stored*:

- **start**: ``active`` becomes true only if it was not, and some listed alarm is in ALARM;
- **end**: once no listed alarm is in ALARM, ``ending_at`` is set ``quiet_minutes`` ahead (a
  flap back into ALARM removes it: the same freeze goes on); the first reconcile run after it
  (any trigger: its schedule, a reopen timer, the next alarm event) sets ``active`` false only if
  it was true, no listed alarm is in ALARM and ``ending_at`` has passed. With ``quiet_minutes:
  0`` the all-OK event ends it at once.

DynamoDB applies each write atomically, so whatever the order and the concurrency of the
events (flapping alarms, redeliveries, several alarms at once), exactly one writer starts a
freeze and exactly one ends it: **one notification when it starts, one when it ends**.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic import Field
else:
    from ecspilot.domain.modeling import Field

from ecspilot.aws.dynamo import conditional_update
from ecspilot.aws.freezes import ALARM_PREFIX, INCIDENT_FREEZE, INCIDENT_SK, PK, incident_reason
from ecspilot.aws.history import History
from ecspilot.aws.notify import Notifier
from ecspilot.domain.config import IncidentsConfig
from ecspilot.domain.envelope import EventBridgeEvent, EventModel
from ecspilot.domain.stops import stamp
from ecspilot.errors import AwsError
from ecspilot.obs import count, logger

METRICS = {"started": "IncidentFreezeStarted", "ended": "IncidentFreezeEnded"}
Transition = Literal["started", "ended", "none", "stale", "ignored"]


class AlarmState(EventModel):
    value: str = Field(min_length=1)
    timestamp: str = ""


class AlarmDetail(EventModel):
    alarm_name: str = Field(alias="alarmName", min_length=1, max_length=255)
    state: AlarmState


class AlarmStateChangeEvent(EventBridgeEvent):
    """EventBridge ``CloudWatch Alarm State Change`` (source ``aws.cloudwatch``)."""

    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    source: Literal["aws.cloudwatch"]
    detail: AlarmDetail

    @property
    def changed_at(self) -> datetime:
        """When the alarm changed state (``state.timestamp``, else the event's time)."""
        try:
            return (
                datetime.fromisoformat(self.detail.state.timestamp)
                if self.detail.state.timestamp
                else self.time
            )
        except ValueError:
            return self.time


class IncidentFreeze:
    """The incident item's conditional moves (see the module docstring)."""

    def __init__(self, history: History, incidents: IncidentsConfig, notifier: Notifier | None) -> None:
        self.history = history
        self.incidents = incidents
        self.notifier = notifier

    def _update(self, expression: str, names: dict[str, str], values: dict[str, Any], condition: str) -> bool:
        conn = self.history.connection()
        if conn is None:
            raise AwsError("no state table configured (ECSPILOT_TABLE): the incident freeze lives there")
        client, table = conn
        got = conditional_update(
            client,
            table,
            {"pk": PK, "sk": INCIDENT_SK},
            expression,
            names,
            values,
            condition,
            what="moving the incident freeze",
        )
        return got is not None

    def _alarms(self) -> tuple[dict[str, str], list[str], list[str]]:
        """Names for every listed alarm's state, and the conditions 'some in ALARM' / 'none'."""
        names = {"#st": "state"}
        some, none = [], []
        for i, alarm in enumerate(self.incidents.alarms):
            names[f"#a{i}"] = ALARM_PREFIX + alarm
            some.append(f"#a{i}.#st = :alarm")
            none.append(f"(attribute_not_exists(#a{i}) OR #a{i}.#st <> :alarm)")
        return names, some, none

    def on_state(self, alarm: str, state: str, at: datetime, now: datetime) -> Transition:
        """Record ``alarm``'s ``state`` changed ``at``, then start the freeze, or end it (after
        ``quiet_minutes`` of every alarm OK: :meth:`lift_if_due`)."""
        if alarm not in self.incidents.alarms:
            return "ignored"
        recorded = self._update(
            "SET #a = :v",
            {"#a": ALARM_PREFIX + alarm, "#t": "at"},
            {":v": {"state": state, "at": stamp(at)}, ":at": stamp(at)},
            "attribute_not_exists(#a) OR #a.#t < :at",
        )
        if not recorded:
            logger.info("stale alarm state ignored", extra={"alarm": alarm, "state": state})
            return "stale"
        names, some, none = self._alarms()
        values = {":t": True, ":f": False, ":alarm": "ALARM", ":now": stamp(now)}
        if state == "ALARM":
            started = self._update(
                "SET #act = :t, #s = :now REMOVE #e, #end",
                {**names, "#act": "active", "#s": "started_at", "#e": "ended_at", "#end": "ending_at"},
                values,
                f"(attribute_not_exists(#act) OR #act = :f) AND ({' OR '.join(some)})",
            )
            if started:
                self._tell("started", [alarm])
                return "started"
            # a flap back into ALARM during the quiet time: the same freeze goes on
            self._update(
                "REMOVE #end",
                {**names, "#act": "active", "#end": "ending_at"},
                {":t": True, ":alarm": "ALARM"},
                f"#act = :t AND attribute_exists(#end) AND ({' OR '.join(some)})",
            )
            return "none"
        if self.incidents.quiet_minutes == 0:
            return self.lift_if_due(now)
        due = now + timedelta(minutes=self.incidents.quiet_minutes)
        self._update(
            "SET #end = :due",
            {**names, "#act": "active", "#end": "ending_at"},
            {":t": True, ":alarm": "ALARM", ":due": stamp(due)},
            f"#act = :t AND attribute_not_exists(#end) AND {' AND '.join(none)}",
        )
        return "none"

    def lift_if_due(self, now: datetime) -> Transition:
        """End the freeze when every alarm is OK and its quiet time is over (reconcile asks on
        every run): one writer wins, one notification."""
        names, _, none = self._alarms()
        quiet = self.incidents.quiet_minutes > 0
        ended = self._update(
            "SET #act = :f, #e = :now REMOVE #end",
            {**names, "#act": "active", "#e": "ended_at", "#end": "ending_at"},
            {":t": True, ":f": False, ":alarm": "ALARM", ":now": stamp(now)},
            f"#act = :t AND {' AND '.join(none)}" + (" AND #end <= :now" if quiet else ""),
        )
        if ended:
            self._tell("ended", [])
            return "ended"
        return "none"

    def _tell(self, transition: str, alarms: list[str]) -> None:
        count(METRICS[transition])
        services = ", ".join(self.incidents.services)
        logger.warning(f"incident freeze {transition}", extra={"alarms": alarms, "services": services})
        if self.notifier is None:
            return
        if transition == "started":
            body = (
                f"ecspilot froze automated changes to {services}: {incident_reason(alarms)}.\n"
                "Pushes, catch-up, promotions and daemon updates are deferred until every listed alarm "
                f"({', '.join(self.incidents.alarms)}) is OK again. Rollbacks and job runs still work."
            )
        else:
            body = (
                f"Every incident alarm ({', '.join(self.incidents.alarms)}) is OK again: ecspilot lifted "
                f"the incident freeze on {services} and deploys what it deferred (the newest images)."
            )
        self.notifier.notify(
            f"ecspilot: incident freeze {transition}",
            body,
            # kind freeze and its id: the chat threads both notices, and the Unfreeze button answers
            # (refused: the incident freeze lifts when its alarms are OK, not by unfreeze)
            {"kind": "freeze", "status": transition.upper()},
            {"service": services.replace(" ", ""), "freeze": INCIDENT_FREEZE},
        )


__all__ = ["AlarmStateChangeEvent", "IncidentFreeze"]
