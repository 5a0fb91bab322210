"""The service health runbook: a stopped service task -> its stop recorded, ``TasksReplaced``,
and one notification per crash loop.

The runbook of an ``ECS Task State Change`` (STOPPED) whose ``group`` is ``service:NAME``:

1. the service must be configured (cluster and ECS service name) in the account and region the
   event comes from: ecspilot's own, or a configured ``accounts`` entry's (issue 13: forwarded by
   the member template); another service's stop is ignored, without error. A stop is keyed as the
   service's deployment records are: ``web@<account>:<region>`` outside ecspilot's own account and
   region (:func:`~ecspilot.domain.keys.scoped_service`);
2. judge the stop (pure, :func:`~ecspilot.tracking.health_decisions.classify_stop`): a
   replacement (health checks, exits, OOM, failed starts) or not (drained by a deployment or a
   scale-in, stopped by a person, capacity gone); the essential containers come from the task
   definition (:mod:`.essential`, cached), read in the service's account (assumed role; when
   that fails, every container counts as essential: the safe side the job tracker takes);
3. record it as its own item (:class:`~ecspilot.aws.health_records.StopRecord`, a conditional
   PutItem: a redelivered event writes nothing and counts nothing). A failed write fails the
   invocation, so EventBridge delivers the event again: a stop is never lost;
4. a new replacement counts ``TasksReplaced`` (dimensions Cluster, Service);
5. when the service's ``crash_loop`` is on: the replacements of the window (one Query), the
   crash-loop item (GetItem), the decision (:func:`~.health_decisions.loop_transition`), and
   a write conditioned on the version read: of two invocations deciding at once, one moves the
   state and only a ``start`` it wins publishes the notification.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ecspilot.aws.accounts import AccountSessions
from ecspilot.aws.clients import Clients
from ecspilot.aws.dynamo import conditional_update
from ecspilot.aws.ecs_reads import TaskDefinitions
from ecspilot.aws.health_records import HealthRecords, LoopItem, StopRecord
from ecspilot.aws.history import History, deployment_key
from ecspilot.aws.notify import Notifier
from ecspilot.domain.config import CrashLoopConfig, EcspilotConfig, ServiceConfig, crash_loop_policy
from ecspilot.domain.events import EcsTaskStateChangeEvent
from ecspilot.domain.keys import scoped_service, state_keys
from ecspilot.errors import AccountAccessError, AwsError, HealthRecordError
from ecspilot.obs import count, logger
from ecspilot.tracking.decisions import cluster_name, iso
from ecspilot.tracking.essential import essential_containers
from ecspilot.tracking.health_decisions import (
    LoopView,
    Transition,
    classify_stop,
    deployment_of,
    loop_transition,
    most_common_reason,
    running_digests,
    service_of_group,
    window_start,
)
from ecspilot.tracking.health_messages import crash_loop_message
from ecspilot.tracking.report import set_dimensions

LOOP_ATTEMPTS = 5  # conditional writes lost to concurrent invocations before giving up (each re-reads)
QUOTE_LOOKBACK_MINUTES = 5  # a deployment's tasks stop after its record was written; allow for clocks


Origin = tuple[str | None, str | None]  # (account id, region)


def configured_service(config: EcspilotConfig, cluster: str, service: str) -> ServiceConfig | None:
    return next((s for s in config.services if s.cluster == cluster and s.service_name == service), None)


def arn_origin(arn: str) -> tuple[str, str] | None:
    """``(account, region)`` an ECS ARN names (``arn:aws:ecs:REGION:ACCOUNT:...``); None when
    it is not a full ARN. Pure."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "ecs" or not parts[3] or not parts[4]:
        return None
    return parts[4], parts[3]


def service_at(
    config: EcspilotConfig, cluster: str, service: str, origin: tuple[str, str], own: Origin
) -> tuple[ServiceConfig, str] | None:
    """The service configured as ``cluster/service`` in the account and region ``origin`` (an
    event's), and its service name in the state table's keys; None when none is configured there.
    Pure."""
    key = scoped_service(service, origin[0], origin[1], own)
    keys = state_keys(config, own)
    found = next((s for s in config.services if keys[s.name] == (cluster, key)), None)
    return (found, key) if found is not None else None


class ServiceHealthTracker:
    """Records service task stops and detects crash loops; see the module docstring."""

    def __init__(
        self,
        config: EcspilotConfig,
        clients: Clients,
        history: History,
        topic_arn: str | None = None,
        own: Origin = (None, None),
        sessions: AccountSessions | None = None,
    ) -> None:
        self.config = config
        self.clients = clients
        self.records = HealthRecords(history)
        self.notifier = Notifier(clients, topic_arn)
        # issue 13: ecspilot's (account id, region), and the clients of the configured accounts
        self.own = own
        self.sessions = sessions

    def _essential(self, svc: ServiceConfig, task_definition_arn: str) -> set[str] | None:
        """The essential containers, read with the service's account's clients; None (every
        container counts) when that account's role cannot be assumed."""
        clients = self.clients
        if svc.account is not None and self.sessions is not None:
            try:
                clients = self.sessions.clients(svc.account, self.config.accounts)
            except AccountAccessError as exc:
                logger.warning(
                    "cannot read the task definition in the service's account: every container "
                    "counts as essential",
                    extra={"account": svc.account, "error": str(exc)},
                )
                return None
        return essential_containers(TaskDefinitions(clients.ecs), task_definition_arn)

    def task_event(self, event: EcsTaskStateChangeEvent) -> dict[str, Any]:
        """Record one stopped service task and judge the service's crash loop."""
        task = event.detail
        cluster, name = cluster_name(task.cluster_arn), service_of_group(task.group) or ""
        log = {"cluster": cluster, "ecs_service": name, "task_arn": task.task_arn}
        if task.last_status != "STOPPED":
            count("EventsIgnored")
            return {"ignored": f"task is {task.last_status}, not STOPPED"}
        named = arn_origin(task.cluster_arn)
        if named is not None and named != (event.account, event.region):
            # ECS names its own account's cluster: a forwarded or hand-made event cannot borrow one
            logger.warning("service task stop whose cluster is not its account's: ignored", extra=log)
            count("EventsIgnored")
            return {"ignored": f"cluster {task.cluster_arn} is not in {event.account} {event.region}"}
        found = service_at(self.config, cluster, name, (event.account, event.region), self.own)
        if found is None:
            logger.info(
                "stopped task of a service not in the config: ignored",
                extra={**log, "event_account": event.account, "event_region": event.region},
            )
            count("EventsIgnored")
            where = "" if (event.account, event.region) == self.own else f" in {event.account} {event.region}"
            return {"ignored": f"service {cluster}/{name} is not configured{where}"}
        svc, service = found  # service: the state table's name (with account and region elsewhere)
        essential = self._essential(svc, task.task_definition_arn)
        verdict = classify_stop(task.stop_code, task.stopped_reason, task.containers, essential)
        stopped_at = iso(task.stopped_at or event.time) or ""
        record = StopRecord(
            cluster=cluster,
            service=service,
            task_arn=task.task_arn,
            stopped_at=stopped_at,
            kind=verdict.kind,
            replacement=verdict.replacement,
            reason=verdict.reason,
            stop_code=task.stop_code,
            stopped_reason=task.stopped_reason,
            deployment_id=deployment_of(task.started_by),
            task_definition=task.task_definition_arn,
            started_at=iso(task.started_at) or "",
            exit_codes={c.name: c.exit_code for c in task.containers if c.exit_code is not None},
            container_reasons={c.name: c.reason for c in task.containers if c.reason},
            image_digests={c.name: c.image_digest for c in task.containers if c.image_digest},
            event_id=event.id,
        )
        new = self.records.put_stop(record)
        if verdict.replacement and new:
            set_dimensions({"Cluster": cluster, "Service": service})
            count("TasksReplaced")
        logger.info(
            "service task stopped: " + ("replaced" if verdict.replacement else verdict.kind),
            extra={**log, "kind": verdict.kind, "reason": verdict.reason, "recorded": new},
        )
        result: dict[str, Any] = {
            "service": f"{cluster}/{service}",
            "task_arn": task.task_arn,
            "kind": verdict.kind,
            "replacement": verdict.replacement,
            "recorded": new,
            "crash_loop": None,
        }
        policy = crash_loop_policy(svc.crash_loop)
        if verdict.replacement and policy is not None:
            at = task.stopped_at or event.time
            result.update(self._judge_loop(cluster, service, at, policy, event.region, svc.name))
        return result

    def _judge_loop(
        self, cluster: str, service: str, at: datetime, policy: CrashLoopConfig, region: str, name: str
    ) -> dict[str, Any]:
        """Count the window's replacements and move the crash-loop item; notify a loop's start."""
        until = iso(at) or ""
        window = [
            s
            for s in self.records.stops(cluster, service, iso(window_start(at, policy.minutes)) or "", until)
            if s.get("replacement")
        ]
        moved: Transition | None = None
        for _ in range(LOOP_ATTEMPTS):
            state = self.records.loop_state(cluster, service)
            view = LoopView(state.looping, state.changed_at) if state else None
            moved = loop_transition(view, until, len(window), policy)
            if moved is None:
                break
            reason, _ = most_common_reason(window)
            new = LoopItem(
                looping=moved == "start",
                changed_at=until,
                version=(state.version + 1) if state else 1,
                started_at=str(window[0].get("stopped_at", ""))
                if moved == "start"
                else (state.started_at if state else ""),
                count=len(window),
                reason=reason,
            )
            if self.records.replace_loop_state(cluster, service, new, state.version if state else None):
                break
            moved = None  # another invocation moved it first: read again and decide again
        log = {
            "cluster": cluster,
            "ecs_service": service,
            "replacements": len(window),
            "minutes": policy.minutes,
        }
        if moved == "start":
            logger.warning("crash loop: tasks replaced again and again", extra=log)
            self._mark_deployments(window, str(window[0].get("stopped_at", "")) or until)
            subject, body = crash_loop_message(cluster, service, window, policy.minutes, region, name)
            self.notifier.notify(
                subject,
                body,
                {"kind": "crash-loop", "service": f"{cluster}/{service}"},
                chat={
                    "service": name or f"{cluster}/{service}",  # the configured name, for the button
                    # the image(s) it loops on: what the Rollback button rolls away from
                    "digest": ",".join(sorted(set(running_digests(window).values()))),
                    "release": ",".join(sorted(set(running_digests(window).values()))),
                    "deployment": f"loop-{window[0].get('stopped_at', '')}" if window else "",
                },
                next_steps=[f"Roll back with the Rollback button or `ecspilot rollback {cluster}/{service}`"],
            )
        elif moved == "end":
            logger.info("crash loop over: fewer replacements in the window", extra=log)
        return {"crash_loop": moved, "replacements_in_window": len(window)}

    def _mark_deployments(self, window: list[dict[str, Any]], started_at: str) -> None:
        """Note the loop's start (``crash_loop_at``) on the deployment records whose tasks looped:
        the insights count a change that started a crash loop within an hour as failed. The
        first loop stays (``if_not_exists``); a failed write is logged, not raised (the loop was
        judged and notified; the insights then miss this one)."""
        connection = self.records.history.connection()
        ids = sorted({str(s.get("deployment_id")) for s in window if s.get("deployment_id")})
        for deployment_id in ids if connection is not None else []:
            assert connection is not None
            try:
                conditional_update(
                    *connection,
                    deployment_key(deployment_id),
                    "SET #c = if_not_exists(#c, :c)",
                    {"#c": "crash_loop_at"},
                    {":c": started_at},
                    "attribute_exists(pk)",
                    what="marking the crash loop on its deployment",
                )
            except AwsError as exc:
                logger.warning(
                    "crash loop not marked on its deployment record",
                    extra={"deployment_id": deployment_id, "error": str(exc)},
                )


def deployment_stops(history: History, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The recorded stopped tasks of one deployment (by its ECS id), for its failure message.
    A read that fails is logged, not raised: the record has moved, the message still goes."""
    deployment_id = str(record.get("deployment_id", ""))
    cluster, service = str(record.get("cluster", "")), str(record.get("service", ""))
    if not deployment_id or not history.enabled:
        return []
    since = ""
    started = str(record.get("started_at") or "")
    if started:
        try:
            at = datetime.fromisoformat(started.replace("Z", "+00:00"))
            since = iso(window_start(at, QUOTE_LOOKBACK_MINUTES)) or ""
        except ValueError:
            since = ""
    try:
        stops = HealthRecords(history).stops(cluster, service, since)
    except HealthRecordError as exc:
        logger.warning(
            "cannot read the deployment's stopped tasks: the message goes without them",
            extra={
                "cluster": cluster,
                "ecs_service": service,
                "deployment_id": deployment_id,
                "error": str(exc),
            },
        )
        return []
    return [s for s in stops if s.get("deployment_id") == deployment_id]
