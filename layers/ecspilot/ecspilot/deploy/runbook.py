"""Image push -> digest-pinned task definition revisions -> rolled services.

The runbook, step by step (docs/ARCHITECTURE.md, "Image push"):

1. match the pushed repository and tag against the config's services; a service with
   ``account`` is deployed by a deployer of its account (``route``: ``deploy.targets``);
2. describe the matched services, 10 per call per cluster (``aws.ecs_reads``);
3. describe each distinct task definition once (with its tags), cached for the invocation; a
   failed describe is tried once more, then fails only the services on it;
4. judge per distinct source revision (``deploy.rules``, pure, the same for pushes, their
   redeliveries, catch-up and jobs): unchanged, stale (it runs a newer push), held (it runs an
   image whose push time cannot be known and this one is not provably newer); then, for the
   services about to be deployed only, held when this digest FAILED or was ROLLED_BACK there
   (the services' state items, one BatchGetItem);
5. one revision per distinct source revision, only the matched containers' ``image`` changed
   to ``REGISTRY/REPO@sha256:...``: the family's identical latest revision is reused, so a
   retry or a lost reply never adds one (``aws.revisions``);
6. claim the services' containers, ``UpdateService`` (never ``desiredCount``), record the
   deployments, and verify the claims (``deploy.commit``, ``aws.service_state``);
7. beyond the bursts of ECS's rate limits, steps 5 and 6 run in paced waves; what the
   invocation's time cannot finish continues in the next one (``deploy.continuation``).

One service's failure, whatever it is, never stops the others. With ``dry_run`` steps 5 to 7
are reported, not done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from ecspilot.aws.clients import Clients
from ecspilot.aws.ecs_reads import aware, once_more
from ecspilot.aws.fanout import bounded_map
from ecspilot.aws.history import DeploymentRecord, History, utc_now
from ecspilot.aws.notify import Notifier
from ecspilot.aws.revisions import TaskDefinition
from ecspilot.aws.service_state import Claim
from ecspilot.deploy.commit import Checked, DeployCommit
from ecspilot.deploy.continuation import Budget, fitting
from ecspilot.deploy.deferral import defer_targets
from ecspilot.deploy.express import deploy_express
from ecspilot.deploy.result import JobOutcome, PushResult, ServiceOutcome, Target, report
from ecspilot.deploy.rules import decide, freshness, freshness_reason
from ecspilot.deploy.scan_gate import scan_gate
from ecspilot.deploy.signature_gate import Timer, signature_gate
from ecspilot.deploy.versions import note_ignored, version_gate
from ecspilot.domain.config import EcspilotConfig, JobConfig
from ecspilot.domain.images import ImagePush, short_digest
from ecspilot.domain.taskdef import clone_with_images, container_images, family_revision
from ecspilot.errors import BudgetExhaustedError, DeployError, EcspilotError
from ecspilot.obs import logger
from ecspilot.stopping.deferral import Deferrals

Verdict = Literal["deploy", "unchanged", "stale", "held", "failed"]
# deploys the targets of other accounts and returns ecspilot's own (``deploy.targets``, issue 13)
Route = Callable[[list[Target], ImagePush, PushResult, bool, Budget | None], list[Target]]


# --- the runbook ------------------------------------------------------------------------------


class PushDeployer(DeployCommit):
    """Deploys one image push to every configured service that follows it."""

    def __init__(
        self, clients: Clients, history: History, max_workers: int = 8, trigger: str = "push"
    ) -> None:
        super().__init__(clients, history, max_workers, trigger)
        self._registered: dict[tuple[str, tuple[str, ...], str], str] = {}  # per invocation
        self._registering: dict[tuple[str, tuple[str, ...], str], threading.Lock] = {}
        self.notifier: Notifier | None = None  # refused images are notified (issue 14)
        # issue 27: the release decisions (awaiting approval, unsigned) are told once, catch-up's too
        self.release_notifier: Notifier | None = None
        self.freshness_guard = True  # a promotion's order is its source's releases, not ECR's push times
        self.route: Route | None = None  # services in other accounts: their own deployers
        self.registry_clients = clients  # the push's registry (its scans): ecspilot's for another account
        self.signature_timer: Timer | None = None  # re-checks a deferred signature (issue 27)
        self.signature_clients: Clients | None = None  # a promotion's: ecspilot's, where the image is
        self.deferrals: Deferrals | None = None  # windows and freezes (issue 25): deferred, not deployed

    # AWS edges ------------------------------------------------------------------------------

    def _register(self, item: tuple[str, tuple[str, ...], str]) -> str:
        """The revision of ``source`` with ``containers`` on ``image``: registered once per
        invocation, and reused when the family's latest ACTIVE revision already is exactly it.
        Waves of one big group ask at once: the first registers, the others wait for it."""
        with self._lock:
            lock = self._registering.setdefault(item, threading.Lock())
        with lock:
            return self._register_once(item)

    def _register_once(self, item: tuple[str, tuple[str, ...], str]) -> str:
        with self._lock:
            known = self._registered.get(item)
        if known is not None:
            return known
        source_arn, containers, image = item
        task_definition, tags = self.source(source_arn)
        family = str(task_definition["family"])
        params = clone_with_images(
            task_definition, dict.fromkeys(containers, image), tags, self.revisions.accepted()
        )
        latest = self._task_definitions.get(family)
        new_arn, reused = self.revisions.ensure(params, None if isinstance(latest, DeployError) else latest)
        with self._lock:
            self._registered[item] = new_arn
            self._task_definitions.pop(family, None)  # the family's latest may have changed
        logger.info(
            "reused identical task definition" if reused else "registered task definition",
            source_task_definition=family_revision(source_arn),
            task_definition=family_revision(new_arn),
            containers=list(containers),
            image=image,
        )
        return new_arn

    # the flow -------------------------------------------------------------------------------

    def run(
        self,
        push: ImagePush,
        config: EcspilotConfig,
        dry_run: bool = False,
        only: frozenset[str] | None = None,
        budget: Budget | None = None,
    ) -> PushResult:
        """Deploy ``push`` to every service that follows it; see the module docstring.

        ``only`` restricts it to those services (a continuation: no job follows it again);
        with a ``budget`` the services that cannot finish in it are ``continued``.

        The same rules hold on every path (a push, its redelivery, catch-up): a service never
        moves back to an older image (stale) nor to one not provably newer (held), and a digest
        that FAILED or was ROLLED_BACK on a service is held there.
        """
        result = PushResult(push=push, dry_run=dry_run)
        log = {
            "repository": push.repository,
            "image_tag": push.tag,
            "image_digest": short_digest(push.digest),
        }
        targets = [
            Target(svc, ServiceOutcome(svc.name, svc.cluster, svc.service_name, containers))
            for svc, containers in config.services_for(push.repository, push.tag)
            if only is None or svc.name in only
        ]
        result.outcomes = [t.outcome for t in targets]
        note_ignored(config, push)
        jobs = config.jobs_for(push.repository, push.tag) if only is None else []
        if not targets and not jobs:
            logger.info("no configured service or job follows this image", extra=log)
            return result
        logger.info(
            "push matches",
            extra={"services": [t.config.name for t in targets], "jobs": [j.name for j, _ in jobs], **log},
        )
        if targets:
            home = self.route(targets, push, result, dry_run, budget) if self.route else targets
            self.deploy_targets(home, push, result, dry_run, budget)
        if jobs:
            outcomes = self._map(lambda item: self._follow_job(item[0], item[1], push, dry_run), jobs)
            result.jobs = [
                o if isinstance(o, JobOutcome) else JobOutcome(j.name, j.task_definition, c, reason=str(o))
                for (j, c), o in zip(jobs, outcomes, strict=True)
            ]
        report(result, log)
        return result

    def deploy_targets(
        self, targets: list[Target], push: ImagePush, result: PushResult, dry_run: bool, budget: Budget | None
    ) -> None:
        """Steps 2 to 7 for ``targets`` (each with its containers to put on ``push``); the seam a
        promotion deploys through, with its target account's clients and the source's image."""
        express = [t for t in targets if t.config.express]
        self.defer(express, push, dry_run)
        express = [t for t in express if t.outcome.outcome != "deferred"]
        deploy_express(self, express, push, result, dry_run, self.notifier)
        self._attach_services([t for t in targets if not t.config.express])
        live = [t for t in targets if t.service is not None]
        self._decide(live, push)
        version_gate(
            self, live, push, None if dry_run else (self.release_notifier or self.notifier), dry_run
        )  # order: semver (issue 27)
        self.hold_rolled_back([t for t in live if t.outcome.outcome == "would-deploy"], push)
        self.defer([t for t in live if t.outcome.outcome == "would-deploy"], push, dry_run)
        scan_gate(live, push, self.registry_clients, self.notifier)  # before anything is registered
        signing = self.signature_clients or self.registry_clients
        notifier = self.release_notifier or self.notifier
        signature_gate(live, push, signing, self.history, notifier, self.signature_timer, dry_run)
        to_deploy = [t for t in live if t.outcome.outcome == "would-deploy"]
        if to_deploy and not dry_run:
            self._paced_deploy(to_deploy, push, result, budget)
        if not dry_run:
            self.check_claims(live, push)  # a retry checks the claims, not just the running digest
            self.backfill(live, push, result)

    def defer(
        self, targets: list[Target], push: ImagePush, dry_run: bool, at: datetime | None = None
    ) -> list[Target]:
        """Mark ``deferred`` the targets a window or freeze stops (``deploy.deferral``); returns
        the targets still free to deploy."""
        return defer_targets(self.deferrals, self.trigger, targets, push, dry_run, at)

    def judge(
        self, source: TaskDefinition, containers: Sequence[str], push: ImagePush
    ) -> tuple[Verdict, str]:
        """The one decision and guard for a service's or a job's revision: deploy, unchanged,
        stale (runs a newer push), held (runs an image not provably older) or failed."""
        task_definition = source[0]
        images = container_images(task_definition)
        missing = [c for c in containers if c not in images]
        if missing:
            where = family_revision(str(task_definition.get("taskDefinitionArn", "")))
            return "failed", f"container(s) {', '.join(missing)} not in {where}"
        verdict, others = decide(images, containers, push)
        if verdict == "unchanged":
            return "unchanged", "already runs this digest"
        if not others or not self.freshness_guard:
            return "deploy", ""
        mine = self.pushed_at(push.repository, push.digest) or aware(push.time)
        running = {d: self.pushed_at(push.repository, d) for d in sorted(others)}
        fresh, digest = freshness(mine, running, aware(task_definition.get("registeredAt")))
        if fresh == "newer":
            return "deploy", ""
        return ("stale" if fresh == "stale" else "held"), freshness_reason(fresh, digest)

    def _judge_source(self, item: tuple[str, tuple[str, ...]], push: ImagePush) -> tuple[Verdict, str]:
        return self.judge(self.source(item[0]), item[1], push)

    def _follow_job(
        self, job: JobConfig, containers: list[str], push: ImagePush, dry_run: bool
    ) -> JobOutcome:
        """Register a new revision of a job's family with the pushed image, so the next run uses it."""
        outcome = JobOutcome(job.name, job.task_definition, containers)
        try:
            latest = self.task_definition(job.task_definition)
            outcome.from_task_definition = str(latest[0]["taskDefinitionArn"])
            verdict, outcome.reason = self.judge(latest, containers, push)
            if verdict == "unchanged":
                outcome.outcome, outcome.reason = "unchanged", "latest revision already runs this digest"
            elif verdict in ("stale", "held", "failed"):
                outcome.outcome = verdict
            elif dry_run:
                outcome.outcome = "would-register"
            else:
                outcome.to_task_definition = self._register(
                    (outcome.from_task_definition, tuple(containers), push.pinned)
                )
                outcome.outcome = "registered"
        except EcspilotError as exc:
            outcome.outcome, outcome.reason = "failed", str(exc)
        return outcome

    def _attach_services(self, targets: list[Target]) -> None:
        self.describe_services((t.config.cluster, t.config.service_name) for t in targets)
        for t in targets:
            svc = self._services[(t.config.cluster, t.config.service_name)]
            if isinstance(svc, str):
                t.outcome.reason = svc
            elif svc.get("status") == "ACTIVE":
                t.service = svc
                t.outcome.from_task_definition = svc["taskDefinition"]
            else:
                t.outcome.reason = f"service is {svc.get('status')}"

    def _decide(self, targets: list[Target], push: ImagePush) -> None:
        """Judge once per distinct (source revision, containers): the describes fan out, the
        judgements (a few cached ECR reads) run one by one, each failing only its own services."""
        keys = sorted({(t.outcome.from_task_definition, tuple(t.outcome.containers)) for t in targets})
        self._map(self.source, sorted({arn for arn, _ in keys}))  # warm the cache in parallel
        verdicts = dict(zip(keys, bounded_map(lambda k: self._judge_source(k, push), keys, 1), strict=True))
        for t in targets:
            got = verdicts[(t.outcome.from_task_definition, tuple(t.outcome.containers))]
            if isinstance(got, EcspilotError):
                t.outcome.reason = str(got)
                continue
            verdict, t.outcome.reason = got
            t.outcome.outcome = "would-deploy" if verdict == "deploy" else verdict

    def _paced_deploy(
        self, targets: list[Target], push: ImagePush, result: PushResult, budget: Budget | None
    ) -> None:
        """Deploy what fits ``budget`` at the paced rates; the rest is ``continued``. The limiter
        refuses a call whose token comes after the deadline: its service is continued too."""
        if budget is None:
            self._deploy(targets, push, result)
            return
        limiter = self.clients.limiter
        region = str(self.clients.ecs.meta.region_name)
        targets = sorted(targets, key=_group)  # a group's services together: one registration each
        seconds = budget.seconds()
        available = {op: limiter.available(region, op) for op in limiter.rates}
        n = fitting([_group(t) for t in targets], seconds, limiter.rates, available)
        for t in targets[n:]:
            t.outcome.outcome, t.outcome.reason = "continued", CONTINUED
        logger.info(
            "paced plan",
            extra={"services": len(targets), "now": n, "budget_seconds": round(seconds, 1), "region": region},
        )
        limiter.deadline = limiter.clock() + seconds
        try:
            self._deploy(targets[:n], push, result)
        finally:
            limiter.deadline = None

    def _deploy(self, targets: list[Target], push: ImagePush, result: PushResult) -> None:
        """Register, claim, update, record, verify. Within ECS's bursts in one wave; beyond them
        pipelined in waves (one per source revision, at most ``WAVE`` services each), each wave
        claiming, updating, recording and verifying its own services: UpdateService overlaps the
        paced registrations, and the claims and records of one wave overlap the paced updates of
        the others, so the whole takes about the buckets' time and not that plus the writes'."""
        groups: dict[tuple[str, tuple[str, ...]], list[Target]] = {}
        for t in targets:
            groups.setdefault(_group(t), []).append(t)
        started_at = utc_now()
        rates = self.clients.limiter.rates
        register, update = rates.get("RegisterTaskDefinition"), rates.get("UpdateService")
        if not (register and len(groups) > register.burst) and not (update and len(targets) > update.burst):
            records, applied, lost = self._deploy_wave(groups, push, result, started_at)
            self.write_records(records, result)
            self.verify(applied, lost)
            return
        waves = [
            {key: members[i : i + WAVE]}
            for key, members in groups.items()
            for i in range(0, len(members), WAVE)
        ]

        def wave(w: dict[tuple[str, tuple[str, ...]], list[Target]]) -> None:
            if self.deferrals is not None:  # a freeze that begins mid-rollout stops the next wave
                now = self.deferrals.now_again()
                w = {k: self.defer(m, push, False, now) for k, m in w.items()}
                w = {k: m for k, m in w.items() if m}
            records, applied, lost = self._deploy_wave(w, push, result, started_at)
            self.write_records(records, result)
            self.verify(applied, lost)

        # big waves fan out inside (their updates): two at a time keep one claiming while the
        # other's updates wait for tokens; single-service waves use the whole pool
        largest = max(len(m) for w in waves for m in w.values())
        for w, got in zip(
            waves, bounded_map(wave, waves, 2 if largest > 1 else self.max_workers), strict=True
        ):
            if isinstance(got, EcspilotError):  # a bug in one wave fails its services only
                for t in (t for members in w.values() for t in members):
                    t.outcome.outcome, t.outcome.reason = "failed", str(got)

    def _deploy_wave(
        self,
        groups: dict[tuple[str, tuple[str, ...]], list[Target]],
        push: ImagePush,
        result: PushResult,
        started_at: str,
    ) -> tuple[list[DeploymentRecord], list[tuple[Target, list[Claim]]], list[Checked]]:
        keys = list(groups)
        registered = self._map(self._register, [(arn, containers, push.pinned) for arn, containers in keys])
        updates: list[tuple[Target, str]] = []
        for key, new_arn in zip(keys, registered, strict=True):
            for t in groups[key]:
                if isinstance(new_arn, BudgetExhaustedError):
                    t.outcome.outcome, t.outcome.reason = "continued", CONTINUED
                elif isinstance(new_arn, EcspilotError):
                    t.outcome.outcome, t.outcome.reason = "failed", str(new_arn)
                else:
                    t.outcome.to_task_definition = new_arn
                    updates.append((t, new_arn))
            if not isinstance(new_arn, EcspilotError):
                with self._lock:
                    if new_arn not in result.registered:  # waves of one group share it
                        result.registered.append(new_arn)
        updates, lost = self.claim(updates, push)
        records = []
        applied = []
        for (t, new_arn), outcome in zip(updates, self._map(once_more(self._update), updates), strict=True):
            if isinstance(outcome, BudgetExhaustedError):
                t.outcome.outcome, t.outcome.reason = "continued", CONTINUED
                continue
            if isinstance(outcome, EcspilotError):
                t.outcome.outcome, t.outcome.reason = "failed", str(outcome)
                continue
            t.outcome.outcome, t.outcome.deployment_id = "deployed", outcome
            # the service now runs the new revision: a later push in this invocation clones that one
            if t.service is not None:
                t.service["taskDefinition"] = new_arn
            applied.append((t, self.claims_of(t, new_arn, push)))
            records.append(self.record(t, new_arn, outcome, push, started_at))
        return records, applied, lost


def _group(t: Target) -> tuple[str, tuple[str, ...]]:
    return (t.outcome.from_task_definition, tuple(t.outcome.containers))


WAVE = 25  # services per wave of a pipelined deploy: small, so the first updates start early
CONTINUED = "continues in the next invocation (this one's time budget)"
