"""The deploy's writes, once the decisions are made: claim, UpdateService, verify, record.

- **claim** each service's containers for the pushed image in the state table, conditionally,
  before ``UpdateService``; **verify** after it, and apply a newer claim's revision again
  (:mod:`ecspilot.aws.service_state` has the protocol and why the newest image ends up last);
- **record** what was started: one item per ECS deployment id, upserted so the tracker and the
  deployer meet on it in any order (:mod:`ecspilot.aws.history`); a failed write is kept on the
  result, not raised, and the retry of the invocation writes what it finds missing
  (:meth:`DeployCommit.backfill`);
- **hold**: the digests that FAILED or were ROLLED_BACK on a service, from the same state items
  (the tracker marks them), read in one BatchGetItem for every service about to be deployed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.aws.ecs_reads import DeployReads
from ecspilot.aws.history import DeploymentRecord, History, deployment_key, utc_now
from ecspilot.aws.service_state import (
    Claim,
    ServiceState,
    held_records,
    state_key,
)
from ecspilot.deploy.result import PushResult, Target
from ecspilot.deploy.rules import deployment_configuration, primary_deployment_id, rolled_back_reason
from ecspilot.deploy.verify_rules import Step, verdict
from ecspilot.domain.images import ImagePush
from ecspilot.domain.release_policy import semver_rank
from ecspilot.errors import AwsError, DeployError, EcspilotError
from ecspilot.obs import count, logger

VERIFY_ROUNDS = 5  # each round needs yet another, newer concurrent push


class DeployCommit(DeployReads):
    """The write side of one invocation of the deploy core."""

    def __init__(
        self, clients: Clients, history: History, max_workers: int = 8, trigger: str = "push"
    ) -> None:
        super().__init__(clients, max_workers)
        self.history = history
        self.trigger = trigger
        self.rollout_id = ""  # a continuation names the rollout it continues; else the push's event id
        self.state = ServiceState(history)
        self.defer_records = False  # catch-up writes the records of all its pushes at once
        self.pending_records: list[DeploymentRecord] = []
        self.pending_backfill: list[tuple[Target, ImagePush]] = []
        # the state table's transactions, one at a time per invocation: pipelined waves claim and
        # record concurrently otherwise (moto's in-process TransactWriteItems is not thread-safe)
        self._writes = threading.Lock()

    # UpdateService ----------------------------------------------------------------------------

    def _update(self, item: tuple[Target, str]) -> str:
        target, new_arn = item
        svc = target.config
        kwargs: dict[str, Any] = {
            "cluster": svc.cluster,
            "service": svc.service_name,
            "taskDefinition": new_arn,
        }
        conf = deployment_configuration(target.service or {}, svc.rollback)
        if conf is not None:
            kwargs["deploymentConfiguration"] = conf
        try:
            resp = self.clients.ecs.update_service(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(
                f"UpdateService failed: {exc}", cluster=svc.cluster, service=svc.service_name
            ) from exc
        return primary_deployment_id(resp["service"])

    # the rolled-back hold ---------------------------------------------------------------------

    def hold_rolled_back(self, targets: Sequence[Target], push: ImagePush) -> None:
        """Hold the services where this digest FAILED or was ROLLED_BACK: a redelivered push or
        catch-up must not undo the circuit breaker. One BatchGetItem per 100 services."""
        if not targets or not self.state.enabled:
            return
        try:
            states = self.state.read(t.key for t in targets)
        except AwsError as exc:
            for t in targets:  # not knowing is not permission: the retry decides
                t.outcome.outcome, t.outcome.reason = "failed", f"reading the rolled-back hold failed: {exc}"
            return
        for t in targets:
            reason = rolled_back_reason(held_records(states.get(t.key, {})), push)
            if reason:
                t.outcome.outcome, t.outcome.reason = "held", reason

    # claim, act, verify -----------------------------------------------------------------------

    def claims_of(self, t: Target, task_definition: str, push: ImagePush) -> list[Claim]:
        rank = semver_rank(t.config, t.outcome.containers, push.tag)  # issue 27: versions order
        pushed_at = rank if rank is not None else self._pushed_at_for_claims(push)
        previous = t.outcome.from_task_definition
        return [
            Claim(*t.key, c, push.digest, pushed_at, task_definition, previous) for c in t.outcome.containers
        ]

    def _pushed_at_for_claims(self, push: ImagePush) -> float:
        """When the pushed image was pushed: ECR's imagePushedAt, else the event's time, else now."""
        try:
            at = self.pushed_at(push.repository, push.digest)
        except DeployError:
            at = None
        at = at or push.time
        return at.timestamp() if at is not None else time.time()

    def claim(
        self, updates: list[tuple[Target, str]], push: ImagePush
    ) -> tuple[list[tuple[Target, str]], list[Checked]]:
        """Claim each service's containers for this image before UpdateService. Returns the
        services to update, and those whose claim was lost: to a newer image (its revision is
        applied by :meth:`verify` unless this invocation sees it there; held digests never) or
        to a hold of this digest (``held``, not updated)."""
        if not updates or not self.state.enabled:
            return updates, []
        claims = [c for t, arn in updates for c in self.claims_of(t, arn, push)]
        try:
            with self._writes:
                lost = self.state.claim(claims)
        except AwsError as exc:
            # without the claim a racing older push could win: do not act, let the retry do it
            for t, _ in updates:
                t.outcome.outcome = "failed"
                t.outcome.reason = f"not deployed: {exc}"
            return [], []
        kept, superseded = [], []
        for t, arn in updates:
            if t.key in lost:
                t.outcome.outcome = "stale"
                t.outcome.reason = "a newer image was given to this service by a concurrent deployment"
                count("DeploymentsSuperseded")
                superseded.append((t, self.claims_of(t, arn, push), False))
            else:
                kept.append((t, arn))
        return kept, superseded

    def check_claims(self, targets: Sequence[Target], push: ImagePush) -> None:
        """A service that already runs this digest (``unchanged``: a redelivery, a retry) may
        not run its newest claim: a newer image claimed it and that deployer's UpdateService was
        overwritten, or a held digest was put back. Verify those too (one read per 100)."""
        if not self.state.enabled:
            return
        unchanged = [t for t in targets if t.outcome.outcome == "unchanged" and t.service is not None]
        items = [
            (t, self.claims_of(t, str((t.service or {}).get("taskDefinition", "")), push), True)
            for t in unchanged
        ]
        self.verify([], items, checking=True)

    def verify(
        self, applied: list[tuple[Target, list[Claim]]], lost: Sequence[Checked] = (), checking: bool = False
    ) -> None:
        """After UpdateService: where a newer image claimed a container meanwhile, apply its
        revision, and look again, so the last UpdateService carries the newest image; where this
        digest was held meanwhile (the tracker saw it fail), put the service back on the revision
        it ran before. A read that fails, an update that fails, or a claim still moving after
        ``VERIFY_ROUNDS`` fails the service: the invocation fails and Lambda's retry verifies."""
        pending: list[Checked] = [(t, claims, True) for t, claims in applied] + list(lost)
        rounds = 0
        while pending and self.state.enabled:
            rounds += 1
            if rounds > VERIFY_ROUNDS:
                for t, _, _ in pending:
                    t.outcome.outcome = "failed"
                    t.outcome.reason = (
                        "newer images kept claiming the service while it was verified: retrying"
                    )
                return
            try:
                states = self.state.read(t.key for t, _, _ in pending)
            except AwsError as exc:
                logger.warning("could not verify the services' claims", extra={"error": str(exc)})
                count("DeploymentVerifyErrors")
                for t, _, _ in pending:
                    t.outcome.outcome = "failed"
                    t.outcome.reason = f"not verified (the newest claim may not be applied): {exc}"
                return
            redo: list[tuple[Target, Step]] = []
            for t, claims, ours in pending:
                step = verdict(t, claims, ours, states.get(t.key, {}), checking)
                if step is not None:
                    redo.append((t, step))
            if not redo:
                return
            pending = self._apply(redo)

    def _apply(self, redo: list[tuple[Target, Step]]) -> list[Checked]:
        """UpdateService each service to the revision its step names: a newer claim's (``stale``)
        or, when the digest applied is held there, the revision it ran before (``held``)."""
        items = [(t, step.task_definition) for t, step in redo]
        out: list[Checked] = []
        for (t, step), outcome in zip(redo, self._map(self._update, items), strict=True):
            t.outcome.outcome, t.outcome.reason = step.outcome, step.reason
            count("DeploymentsUndone" if step.outcome == "held" else "DeploymentsSuperseded")
            if isinstance(outcome, EcspilotError):  # not applied: the invocation fails, its retry applies it
                t.outcome.outcome, t.outcome.reason = "failed", f"{step.reason}, but: {outcome}"
                continue
            if t.service is not None:
                t.service["taskDefinition"] = step.task_definition
            if step.claim is not None:
                out.append((t, [step.claim], True))
        return out

    # records ----------------------------------------------------------------------------------

    def record(
        self, t: Target, new_arn: str, deployment_id: str, push: ImagePush, started_at: str
    ) -> DeploymentRecord:
        return DeploymentRecord(
            cluster=t.key[0],
            service=t.key[1],
            from_task_definition=t.outcome.from_task_definition,
            to_task_definition=new_arn,
            image_digest=push.digest,
            image_tag=push.tag,
            repository=push.repository,
            deployment_id=deployment_id,
            started_at=started_at,
            event_id=push.event_id,
            trigger=self.trigger,
            rollout_id=self.rollout_id or push.event_id,
            image_pushed_at=self._image_pushed_at(push),
        )

    def _image_pushed_at(self, push: ImagePush) -> str:
        """ECR's imagePushedAt of the image (read already for the claim), else the push event's
        time; "" for a promotion, whose deployer is told the release's completion instead (the
        insights take the push time its first stage recorded for the digest)."""
        if self.trigger == "promotion":
            return ""
        try:
            at = self.pushed_at(push.repository, push.digest)
        except DeployError:
            at = None
        at = at or push.time
        return _iso(at.astimezone(UTC)) if at is not None else ""

    def write_records(self, records: list[DeploymentRecord], result: PushResult) -> None:
        """Write (or defer) the records; a failed write is kept on the result, not raised, so the
        jobs that follow the push are still registered; the invocation fails at the end and its
        retry writes the records it finds missing (:meth:`backfill`)."""
        if self.defer_records:
            self.pending_records.extend(records)
            return
        try:
            with self._writes:
                self.history.record_deployments(records)
        except AwsError as exc:
            logger.error("deployment records not written", extra={"error": str(exc), "records": len(records)})
            count("HistoryWriteErrors")
            result.record_errors.append(exc)

    def flush_records(self) -> None:
        """Check the deferred backfills (one BatchGetItem for every push of the run) and write
        the deferred deployment records (TransactWriteItems, 100 per call)."""
        pending, self.pending_backfill = self.pending_backfill, []
        if pending:
            self.pending_records.extend(self._missing_records(pending))
        records, self.pending_records = self.pending_records, []
        self.history.record_deployments(records)

    def backfill(self, targets: Sequence[Target], push: ImagePush, result: PushResult) -> None:
        """Record the deployments an earlier attempt started but could not record: a service
        already on this digest, whose ECS deployment has no record (or only the tracker's
        ``external`` one) while the service's state says ecspilot gave it this image. One
        BatchGetItem for every such service (deferred with the records: one for a whole run)."""
        unchanged = [
            (t, push)
            for t in targets
            if t.outcome.outcome == "unchanged" and t.service is not None and primary_deployment_id(t.service)
        ]
        if not unchanged or not self.history.enabled:
            return
        if self.defer_records:
            self.pending_backfill.extend(unchanged)
            return
        missing = self._missing_records(unchanged)
        if missing:
            self.write_records(missing, result)

    def _missing_records(self, unchanged: Sequence[tuple[Target, ImagePush]]) -> list[DeploymentRecord]:
        keys = []
        for t, _ in unchanged:
            keys += [
                deployment_key(primary_deployment_id(t.service or {})),
                state_key(*t.key),
            ]
        try:
            items = self.history.get_many(keys)
        except AwsError as exc:
            logger.warning("could not check for missing deployment records", extra={"error": str(exc)})
            return []
        missing = []
        for t, push in unchanged:
            service = t.service or {}
            deployment_id = primary_deployment_id(service)
            key = deployment_key(deployment_id)
            state_pk = state_key(*t.key)
            state = items.get((state_pk["pk"], state_pk["sk"]), {})
            ours = all(_claimed(state, c) == push.digest for c in t.outcome.containers)
            if items.get((key["pk"], key["sk"]), {}).get("image_digest") or not ours:
                continue  # recorded by ecspilot already, or not ecspilot's deployment of this image
            t.outcome.deployment_id = deployment_id
            t.outcome.reason = "already runs this digest; its missing deployment record was written"
            missing.append(
                DeploymentRecord(
                    cluster=t.key[0],
                    service=t.key[1],
                    from_task_definition="",
                    to_task_definition=str(service.get("taskDefinition", "")),
                    image_digest=push.digest,
                    image_tag=push.tag,
                    repository=push.repository,
                    deployment_id=deployment_id,
                    started_at=_iso(_primary_created_at(service)) or utc_now(),
                    event_id=push.event_id,
                    trigger=self.trigger,
                    rollout_id=self.rollout_id or push.event_id,
                    image_pushed_at=self._image_pushed_at(push),
                )
            )
        if missing:
            logger.info("deployment records written on a retry", extra={"records": len(missing)})
        return missing


Checked = tuple[Target, list[Claim], bool]  # a service, its claims, whether they were applied


def _claimed(state: Mapping[str, Any], container: str) -> str:
    held = state.get(f"image#{container}")
    return str(held.get("digest", "")) if isinstance(held, Mapping) else ""


def _primary_created_at(service: Mapping[str, Any]) -> datetime | None:
    for deployment in service.get("deployments", []):
        if deployment.get("status") == "PRIMARY":
            at = deployment.get("createdAt")
            return at if isinstance(at, datetime) else None
    return None


def _iso(at: datetime | None) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z") if at else ""
