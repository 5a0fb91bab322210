"""Pause hooks: an ``ECS Hook State Change`` (``HOOK_AWAITING_ACTION``) -> the service's gates
evaluated -> ContinueServiceDeployment CONTINUE or ROLLBACK, or a notification and a wait for
``ecspilot approve`` / ``reject`` (:func:`approve_paused`).

The runbook of a hook event:

1. parse it (:mod:`ecspilot.domain.hook_events`); another event name, or a service the config
   does not name: ignored;
2. claim the hook in the state table (:mod:`ecspilot.aws.hook_state`, one conditional write):
   a redelivered event, or one racing another invocation, finds it held or decided and stops,
   so ContinueServiceDeployment is called once per hook;
3. evaluate the gates: the image scan of the deployment's images (DescribeServiceDeployments,
   DescribeServiceRevisions, DescribeImageScanFindings for the containers the config follows),
   their signatures (DescribeImageSigningStatus: FAILED or unsigned rolls back, IN_PROGRESS waits),
   the alarms quiet for ``quiet_minutes`` (``aws.alarms.alarm_gate``); decide (pure,
   :func:`ecspilot.domain.gates.hook_decision`). A gate that cannot be read cannot pass: the
   hook waits for a person, with the reason;
4. CONTINUE or ROLLBACK: ContinueServiceDeployment, sent once (no botocore retry); when it
   fails, ECS's status of the hook is read (DescribeServiceDeployments): an answer ECS took
   (its reply lost, or an error saying "already") ends the hook ANSWERED, and the invocation
   succeeds; otherwise the hook is marked RETRY and the invocation fails, so EventBridge's retry
   (then the DLQ) answers it, reading the hook's status first when the failure was uncertain.
   A hook taken over from a holder that died, or whose final write failed, is read at ECS before
   it is answered: never a second answer. WAIT: the hook is recorded WAITING and notified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ecspilot.aws.alarms import alarm_gate
from ecspilot.aws.clients import Clients
from ecspilot.aws.history import History
from ecspilot.aws.hook_state import HookRecords, hook_key
from ecspilot.aws.hooks import Answer, deployment_images
from ecspilot.aws.notify import Notifier
from ecspilot.aws.scans import Scans
from ecspilot.deploy.signature_gate import signature_verdicts
from ecspilot.domain.config import EcspilotConfig, ServiceConfig
from ecspilot.domain.gates import AlarmState, HookDecision, ScanVerdict, hook_decision, scan_verdict
from ecspilot.domain.hook_events import AWAITING_ACTION, EcsHookStateChangeEvent
from ecspilot.errors import EcspilotError, NothingPausedError
from ecspilot.obs import count, logger
from ecspilot.stopping.deferral import Deferrals
from ecspilot.tracking.ecs_hooks import ecs_view, fields_of, follow
from ecspilot.tracking.health import configured_service
from ecspilot.tracking.hook_answer import METRIC, answer

#: a hook's end as ECS's event names it -> the record's final status (TIMED_OUT: its timeout action)
ENDED = {"HOOK_SUCCEEDED": "CONTINUE", "HOOK_FAILED": "ROLLBACK", "HOOK_TIMED_OUT": "TIMED_OUT"}
FOLLOWS = ["WAITING", "RETRY"]  # a record held by an invocation is left to it


def ended_status(name: str, item: Mapping[str, Any]) -> tuple[str, str]:
    """(final status, decided_by) of a hook ECS reports ended (pure)."""
    status = ENDED[name]
    if status != "TIMED_OUT":
        return status, "outside ecspilot"
    action = str(item.get("timeout_action") or "")
    return (action if action in ("CONTINUE", "ROLLBACK") else "TIMED_OUT"), "timeout"


def _now() -> datetime:
    return datetime.now(UTC)


class HookTracker:
    """Answers paused deployments' hooks from the services' gates; see the module docstring."""

    def __init__(
        self,
        config: EcspilotConfig,
        clients: Clients,
        history: History,
        topic_arn: str | None = None,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.config = config
        self.clients = clients
        self.records = HookRecords(history)
        self.notifier = Notifier(clients, topic_arn)
        self.now = now
        # issue 25: outside its window or in a freeze, gates never CONTINUE by themselves: the
        # hook waits for a person (approve still works) or rolls back at its own timeout
        self.deferrals: Deferrals | None = None

    def hook_event(self, event: EcsHookStateChangeEvent) -> dict[str, Any]:
        """Apply one hook event; see the module docstring."""
        cluster, service = event.cluster_service
        hook_id = event.detail.hook_id
        log = {
            "cluster": cluster,
            "ecs_service": service,
            "hook_id": hook_id,
            "event_name": event.detail.event_name,
        }
        if not event.detail.is_pause:
            logger.info("not a pause hook: its own target answers it", extra=log)
            return {"ignored": f"a {event.detail.hook_type} hook is not answered by ecspilot"}
        if event.detail.event_name != AWAITING_ACTION:
            return self.ended(event)
        svc = configured_service(self.config, cluster, service)
        if svc is None:
            logger.info("paused deployment of a service not in the config", extra=log)
            return {"ignored": f"service {cluster}/{service} is not in the config"}
        fields = {
            "cluster": cluster,
            "service": service,
            "name": svc.name,
            "hook_id": hook_id,
            "service_deployment_arn": event.deployment_arn,
            "lifecycle_stage": event.detail.lifecycle_stage,
            "hook_expires_at": event.detail.expires_at.isoformat() if event.detail.expires_at else None,
        }
        return self.paused(svc, fields, "event")

    def ended(self, event: EcsHookStateChangeEvent) -> dict[str, Any]:
        """HOOK_SUCCEEDED / HOOK_FAILED / HOOK_TIMED_OUT: ECS moved on (answered from the console,
        another tool, or the timeout); a hook recorded WAITING (or RETRY) follows it, once."""
        cluster, service = event.cluster_service
        name, hook_id = event.detail.event_name, event.detail.hook_id
        key = hook_key(cluster, service, hook_id)
        item = self.records.get(key) if name in ENDED else {}
        if item.get("status") not in FOLLOWS:
            logger.info("hook event not acted on", extra={"hook_id": hook_id, "event_name": name})
            return {"ignored": f"hook event {name} needs no answer (no hook {hook_id} waits)"}
        status, decided_by = ended_status(name, item)
        reasons = [f"ECS: {name}"]
        if self.records.move(key, status, FOLLOWS, {"decided_by": decided_by, "reasons": reasons}) is None:
            return {"ignored": f"hook {hook_id} moved on meanwhile"}
        logger.info("hook record follows ECS", extra={"hook_id": hook_id, "status": status})
        return {"cluster": cluster, "service": service, "hook_id": hook_id, "followed": status}

    def paused(self, svc: ServiceConfig, fields: Mapping[str, Any], found_by: str) -> dict[str, Any]:
        """Claim a paused hook (``fields`` name it), evaluate the gates, answer or wait; the hook
        is answered once whoever found it (its event, or reconcile reading ECS: ``found_by``)."""
        cluster, service, hook_id = str(fields["cluster"]), str(fields["service"]), str(fields["hook_id"])
        log = {"cluster": cluster, "ecs_service": service, "hook_id": hook_id, "found_by": found_by}
        key = hook_key(cluster, service, hook_id)
        prior = self.records.claim(key, fields)
        if prior is None:
            status = self.records.get(key).get("status", "")
            logger.info("hook already handled: nothing to do", extra={**log, "status": status})
            count("HookEventsDuplicate")
            return {"ignored": f"hook {hook_id} is already {status}", "hook_id": hook_id}
        try:
            decision = self.evaluate(svc, str(fields["service_deployment_arn"]))
            stop = (
                self.deferrals.check(svc.name) if self.deferrals and decision.action == "CONTINUE" else None
            )
            if stop is not None:
                decision = HookDecision("WAIT", (*decision.reasons, f"{stop.reason}: a person decides"))
        except BaseException:
            try:  # let go, so the retry takes it at once; if this fails too, the hold expires
                self.records.move(key, "RETRY", ["EVALUATING"])
            except EcspilotError as exc:
                logger.error("hook not released after a failed evaluation", extra={**log, "error": str(exc)})
            raise
        logger.info(
            "gates evaluated", extra={**log, "action": decision.action, "reasons": list(decision.reasons)}
        )
        out = {
            "cluster": cluster,
            "service": service,
            "hook_id": hook_id,
            "action": decision.action,
            "reasons": list(decision.reasons),
        }
        if decision.action == "WAIT":
            self.records.move(key, "WAITING", ["EVALUATING"], {"reasons": list(decision.reasons)})
            count(METRIC["WAIT"])
            self._notify(fields, "WAITING", decision.reasons)
            return out
        # a hook taken over from a holder that died (maybe after answering) or released after an
        # uncertain failure: ECS's status of the hook is read before it is answered
        check_first = prior.get("status") in ("EVALUATING", "ANSWERING") or bool(
            prior.get("answer_uncertain")
        )
        out["status"] = answer(
            self.clients,
            self.records,
            key,
            fields,
            decision.action,
            "EVALUATING",
            decision.reasons,
            "gates",
            check_first=check_first,
        )
        if decision.action == "ROLLBACK":
            self._notify(fields, "ROLLBACK", decision.reasons)
        return out

    def evaluate(self, svc: ServiceConfig, deployment_arn: str) -> HookDecision:
        """The service's gates on this deployment (reads, then the pure decision)."""
        gates = svc.gates
        scans: list[tuple[ScanVerdict, str]] = []
        alarms: AlarmState | None = None
        if gates is not None and gates.image_scan is not None:
            scans = self._scans(svc, deployment_arn)
        if gates is not None and gates.signature is not None:  # issue 27: refused, or waits while IN_PROGRESS
            scans += signature_verdicts(self.clients, svc, deployment_arn)
        if gates is not None and gates.alarms is not None:
            now = self.now()
            since = now - timedelta(minutes=gates.alarms.quiet_minutes)
            try:
                gate = alarm_gate(self.clients.cloudwatch, gates.alarms.names, since, now)
                alarms = AlarmState(gate.quiet, gate.reasons, gate.firing)
            except EcspilotError as exc:  # cannot be read: cannot pass; a person decides
                alarms = AlarmState(False, (f"alarms unreadable: {exc}",))
        return hook_decision(gates, scans, alarms)

    def _scans(self, svc: ServiceConfig, deployment_arn: str) -> list[tuple[ScanVerdict, str]]:
        gate = svc.gates.image_scan if svc.gates else None
        assert gate is not None
        try:
            images = {
                i.get("containerName", ""): i for i in deployment_images(self.clients.ecs, deployment_arn)
            }
            scans = Scans(self.clients.ecr)
            out: list[tuple[ScanVerdict, str]] = []
            for container, source in sorted(svc.containers.items()):
                digest = images.get(container, {}).get("imageDigest", "")
                if not digest:
                    out.append(("pending", f"container {container}: no image digest in the deployment"))
                    continue
                out.append(scan_verdict(gate, scans.get(source.repository, digest)))
            return out
        except EcspilotError as exc:  # not read: not passed; a person decides
            return [("pending", f"image scan unreadable: {exc}")]

    def _notify(self, fields: Mapping[str, Any], status: str, reasons: tuple[str, ...]) -> None:
        target = f"{fields['cluster']}/{fields['service']}"
        what = {
            "WAITING": f"is paused at {fields['lifecycle_stage'] or 'a pause hook'} and waits for you",
            "ROLLBACK": "was rolled back by its gates",
        }[status]
        lines = [f"The deployment of {target} ({fields['name']}) {what}.", ""]
        lines += [f"- {r}" for r in reasons]
        if status == "WAITING":
            lines += [
                "",
                f"Answer with: ecspilot approve {fields['name']}  or  ecspilot reject {fields['name']}",
            ]
            if fields.get("timeout_action"):
                lines.append(f"Unanswered, ECS takes its timeout action: {fields['timeout_action']}.")
        lines += ["", f"Service deployment: {fields['service_deployment_arn']}"]
        self.notifier.notify(
            f"ecspilot: {target} deployment {'paused' if status == 'WAITING' else 'rolled back'}"[:99],
            "\n".join(lines),
            {"kind": "hook", "status": status, "service": target},
            chat={
                "service": str(fields["name"]),  # the configured name: the buttons' answer needs no lookup
                "hook": str(fields.get("hook_id") or ""),
                "deployment": str(fields.get("service_deployment_arn") or "").rsplit("/", 1)[-1],
            },
            next_steps=(
                [f"Approve or Reject with the buttons, or `ecspilot approve {fields['name']}`"]
                if status == "WAITING"
                else []
            ),
        )


def approve_paused(
    config: EcspilotConfig,
    clients: Clients,
    history: History,
    name: str,
    action: Answer = "CONTINUE",
    *,
    hook_id: str | None = None,
    origin: str = "the CLI",
) -> dict[str, Any] | None:
    """Answer the newest paused hook of service ``name`` (its config name), or given ``hook_id``
    that hook only: CONTINUE (``approve``) or ROLLBACK (``reject``). ECS says which hooks await
    an answer (:mod:`ecspilot.tracking.ecs_hooks`), whether or not their event was recorded; a
    record a hook answered elsewhere left WAITING follows ECS first. When ECS cannot be read, the
    records WAITING are answered. None when nothing of that service awaits an answer (also
    when another ``approve`` or the tracker holds it: it is answered once). ``origin`` says where
    the answer came from in the hook's record (``the CLI``, ``chat (role ...)``)."""
    svc = next((s for s in config.services if s.name == name), None)
    if svc is None:
        raise NothingPausedError(f"no service named {name} in the config")
    records = HookRecords(history)
    awaiting = ecs_view(clients, svc)
    candidates: list[tuple[Mapping[str, str], dict[str, Any]]] = []
    if awaiting is None:  # ECS unreadable: the records alone
        for item in reversed(records.waiting(svc.cluster, svc.service_name)):
            if hook_id is not None and item.get("hook_id") != hook_id:
                continue
            key = {"pk": str(item["pk"]), "sk": str(item["sk"])}
            if records.move(key, "ANSWERING", ["WAITING"]) is not None:
                candidates.append((key, item))
                break
    else:
        follow(clients, records, svc, awaiting)
        for hook in awaiting:
            if hook_id is not None and hook.hook_id != hook_id:
                continue
            key = hook_key(svc.cluster, svc.service_name, hook.hook_id)
            fields = fields_of(svc, hook)
            before = records.take(key, fields)
            if before is not None:
                candidates.append((key, {**{k: v for k, v in fields.items() if v is not None}, **before}))
                break
    if not candidates:
        return None
    chosen, item = candidates[0]
    decided_by = "approve" if action == "CONTINUE" else "reject"
    reason = f"{decided_by} from {origin}"
    who = decided_by if origin == "the CLI" else reason  # the CLI's records keep their word
    check_first = bool(item.get("answer_uncertain"))
    answer(clients, records, chosen, item, action, "ANSWERING", (reason,), who, check_first=check_first)
    return {
        "service": name,
        "cluster": svc.cluster,
        "hook_id": item.get("hook_id"),
        "service_deployment_arn": item.get("service_deployment_arn"),
        "lifecycle_stage": item.get("lifecycle_stage"),
        "action": action,
        "waited_for": list(item.get("reasons") or []),
    }
