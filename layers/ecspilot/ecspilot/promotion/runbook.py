"""Promotion: evaluate each promoted service's gates, then deploy what is due through the deploy core.

The runbook (docs/ARCHITECTURE.md, "Promotion"):

1. read every target's promotion STATE item and service STATE item (holds): one BatchGetItem;
2. per source, its newest deployment records (one Query on gsi1, cached): the releases
   (:func:`decisions.releases`);
3. walk the gates (:func:`decisions.judge`), reading only what decides: the target service and
   its task definition (the target's account, through an assumed role), the source service and
   its task definition (the source's account), the source's alarms (``aws.alarms.alarm_gate``);
4. apply each ``promote`` through :meth:`PushDeployer.deploy_targets` with the target account's
   clients and the source's image as the push: clone of the target's own task definition with
   the digest pinned in the source's registry, registered there, ``UpdateService`` without
   ``desiredCount``, claims, records (trigger ``promotion``), verification;
5. a newly blocked release notifies once (per release and reason, remembered in the STATE item).

One promotion's failure (an AssumeRole denied, a read failing) is an ``error`` for that target
only. A second run with nothing new writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ecspilot.aws.accounts import AccountSessions
from ecspilot.aws.alarms import AlarmReadError, alarm_gate
from ecspilot.aws.clients import Clients
from ecspilot.aws.history import History
from ecspilot.aws.notify import Notifier
from ecspilot.aws.service_state import held_records, state_key
from ecspilot.deploy.result import PushResult, ServiceOutcome, Target, report
from ecspilot.deploy.rules import primary_deployment_id
from ecspilot.deploy.runbook import PushDeployer
from ecspilot.domain.config import EcspilotConfig, ServiceConfig, root_of
from ecspilot.domain.images import ImagePush, ImageRef, short_digest
from ecspilot.domain.keys import state_keys
from ecspilot.domain.taskdef import container_images
from ecspilot.errors import EcspilotError, PromotionError
from ecspilot.obs import count, logger
from ecspilot.promotion.decisions import (
    Facts,
    Release,
    judge,
    notice_message,
    parse_time,
    registry_of,
    releases,
    stamp,
)
from ecspilot.promotion.deferral import defer
from ecspilot.promotion.records import PromotionRecords, approval_attribute, notice_attribute, promotion_key
from ecspilot.promotion.result import Promotion, as_actions, runs_release
from ecspilot.stopping.deferral import Deferrals


class Promoter:
    """Evaluates and applies promotions; see the module docstring."""

    def __init__(
        self,
        config: EcspilotConfig,
        sessions: AccountSessions,
        history: History,
        own: tuple[str | None, str | None],
        max_workers: int = 8,
        trigger: str = "promotion",
        topic_arn: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.history = history
        self.records = PromotionRecords(history)
        self.max_workers = max_workers
        self.trigger = trigger
        self.notifier = Notifier(sessions.own, topic_arn)
        self.clock = clock
        self.own = own
        self.keys = state_keys(config, own)
        self._deployers: dict[str, PushDeployer] = {}  # per account name ("" = ecspilot's own)
        self._source_records: dict[str, list[dict[str, Any]]] = {}
        self._state: dict[tuple[str, str], dict[str, Any]] = {}
        self.deferrals: Deferrals | None = None  # windows and freezes (issue 25): automation only

    # reads --------------------------------------------------------------------------------------

    def clients_of(self, svc: ServiceConfig) -> Clients:
        return self.sessions.clients(svc.account, self.config.accounts)

    def deployer(self, svc: ServiceConfig) -> PushDeployer:
        """One deploy core per account (its reads are cached for the invocation)."""
        name = svc.account or ""
        if name not in self._deployers:
            # the deployment records say "promotion"; what woke it (timer, tracker, cli) is on the
            # promotion's own record
            deployer = PushDeployer(self.clients_of(svc), self.history, self.max_workers, "promotion")
            deployer.freshness_guard = False
            deployer.signature_clients = self.sessions.own  # the release's image: ecspilot's registry
            self._deployers[name] = deployer
        return self._deployers[name]

    def running_images(self, svc: ServiceConfig) -> dict[str, str]:
        """Container -> image the service runs now (DescribeServices + DescribeTaskDefinition, in
        the service's account, cached for the invocation)."""
        deployer = self.deployer(svc)
        deployer.describe_services([(svc.cluster, svc.service_name)])
        described = deployer.described(svc.cluster, svc.service_name)
        if isinstance(described, str):
            raise PromotionError(described, cluster=svc.cluster, service=svc.service_name)
        task_definition, _ = deployer.source(str(described["taskDefinition"]))
        return container_images(task_definition)

    def describe_targets(self, targets: Sequence[ServiceConfig]) -> None:
        """Describe the targets of each account together (10 services per call per cluster, into
        the deployer's cache) instead of one call each when their gates read them. An account whose
        role cannot be assumed is skipped here: each of its promotions reports it."""
        by_account: dict[str, list[ServiceConfig]] = {}
        for target in targets:
            by_account.setdefault(target.account or "", []).append(target)
        for group in by_account.values():
            try:
                deployer = self.deployer(group[0])
            except EcspilotError:
                continue
            deployer.describe_services([(t.cluster, t.service_name) for t in group])

    def _records_of(self, source: ServiceConfig) -> list[dict[str, Any]]:
        if source.name not in self._source_records:
            self._source_records[source.name] = self.history.deployments(*self.keys[source.name], limit=25)
        return self._source_records[source.name]

    def load_state(self, targets: Sequence[ServiceConfig]) -> None:
        """Read the targets' promotion and service STATE items (one BatchGetItem)."""
        keys = [promotion_key(t.name) for t in targets] + [state_key(*self.keys[t.name]) for t in targets]
        self._state = self.records.read(keys)

    def _promotion_state(self, target: ServiceConfig) -> dict[str, Any]:
        key = promotion_key(target.name)
        return self._state.get((key["pk"], key["sk"]), {})

    # evaluation ---------------------------------------------------------------------------------

    def candidates(self, target: ServiceConfig, digest: str | None = None) -> list[Promotion]:
        """The releases ``target`` should run (one per repository), or the one of ``digest``."""
        promote = target.promote
        assert promote is not None
        source = next(s for s in self.config.services if s.name == promote.source)
        root = root_of(self.config.services, target.name)
        if root is None:
            raise PromotionError(f"the promotion chain of {target.name} has no service with containers")
        records = self._records_of(source)
        found = releases(records, source.name, root)
        if digest is not None:
            found = releases([r for r in records if r.get("image_digest") == digest], source.name, root)
        pstate = self._promotion_state(target)
        sk = state_key(*self.keys[target.name])
        holds = held_records(self._state.get((sk["pk"], sk["sk"]), {}))
        base = Facts(
            release=None,
            bake_minutes=promote.bake_minutes,
            alarms=tuple(promote.alarms),
            approval_required=promote.approval,
            pinned_at=parse_time((pstate.get("pinned") or {}).get("at")),
        )
        out = []
        options: list[Release | None] = [*found] or [None]
        for release in options:
            facts = base
            if release is not None:
                held = next((h for h in holds if h.get("image_digest") == release.digest), None)
                facts = replace(
                    base,
                    release=release,
                    held=f"was {held['status']} on the target: held" if held else "",
                    approved=approval_attribute(release.deployment_id) in pstate,
                )
            out.append(Promotion(target, release, facts))
        return out

    def evaluate(self, promotion: Promotion) -> Promotion:
        """Walk the gates, reading what the next one needs."""
        now = self.clock()
        try:
            verdict = judge(promotion.facts, now)
            while verdict.needs is not None:
                promotion.facts = self._read(promotion, verdict.needs, now)
                verdict = judge(promotion.facts, now)
        except EcspilotError as exc:
            promotion.error = str(exc)
            logger.error(
                "promotion not evaluated", extra={"target": promotion.target.name, "error": str(exc)}
            )
            return promotion
        promotion.verdict = verdict
        return promotion

    def _read(self, promotion: Promotion, need: str, now: datetime) -> Facts:
        facts, release = promotion.facts, promotion.release
        assert release is not None
        if need == "target":
            images = self.running_images(promotion.target)
            return replace(
                facts, target_digests={c: ImageRef.parse(images.get(c, "")).digest for c in images}
            )
        if need == "source":
            return replace(facts, source_runs=self._source_runs(promotion))
        if need == "alarms":
            source = self._service(release.source)
            try:
                gate = alarm_gate(
                    self.clients_of(source).get("cloudwatch"), facts.alarms, release.completed_at, now
                )
            except AlarmReadError as exc:
                return replace(facts, alarm_reasons=(str(exc),))
            return replace(facts, alarm_reasons=tuple(gate.reasons))
        return replace(facts, approved=False)

    def _service(self, name: str) -> ServiceConfig:
        return next(s for s in self.config.services if s.name == name)

    def _source_runs(self, promotion: Promotion) -> str:
        """'' when the source runs the release's digest on its containers, else why not; keeps
        the source's image reference (its registry) for the deploy."""
        release = promotion.release
        assert release is not None
        images = self.running_images(self._service(release.source))
        refs = {c: ImageRef.parse(images.get(c, "")) for c in release.containers}
        promotion.image = images.get(release.containers[0], "")
        wrong = sorted(c for c, ref in refs.items() if ref.digest != release.digest)
        if wrong:
            running = short_digest(refs[wrong[0]].digest)
            return f"{release.source} no longer runs {short_digest(release.digest)} (runs {running})"
        return ""

    # applying -----------------------------------------------------------------------------------

    def apply(self, promotion: Promotion, backfill: bool = False) -> None:
        """Deploy a ``promote`` verdict through the deploy core, with the target's clients.

        ``backfill``: the target runs the release already (``in-sync``); the deploy core finds it
        ``unchanged`` and writes the records an earlier attempt started but could not write (its
        UpdateService reply or its record write lost): one BatchGetItem, no write when complete."""
        release = promotion.release
        assert release is not None
        if backfill:  # the target runs the release: its image names the registry
            promotion.image = self.running_images(promotion.target).get(release.containers[0], "")
        elif not promotion.image:
            self._source_runs(promotion)  # a forced promotion: the source's registry still
        registry = registry_of(promotion.image)
        if registry is None:
            raise PromotionError(
                f"{release.source} does not run an ECR image of {release.repository}: no registry to pin",
                service=promotion.target.name,
            )
        push = ImagePush(
            account=registry[0],
            region=registry[1],
            repository=release.repository,
            tag=release.tag,
            digest=release.digest,
            event_id=f"promotion-{release.deployment_id.rsplit('/', 1)[-1]}",
            time=release.completed_at,
        )
        target = promotion.target
        deployer = self.deployer(target)
        at = self.clock() if promotion.facts.force else release.completed_at
        deployer.know_pushed_at(release.repository, [{"imageDigest": release.digest, "imagePushedAt": at}])
        outcome = ServiceOutcome(target.name, target.cluster, target.service_name, list(release.containers))
        item = Target(target, outcome, state_service=self.keys[target.name][1])
        result = PushResult(push=push, dry_run=False, outcomes=[outcome])
        deployer.deploy_targets([item], push, result, False, None)
        if not backfill:
            log = {"repository": push.repository, "image_tag": push.tag}
            report(result, {**log, "image_digest": short_digest(push.digest)})
        if result.record_errors:
            raise PromotionError(
                f"deployment record not written: {result.record_errors[0]}", service=target.name
            )
        if outcome.outcome not in ("deployed", "unchanged"):
            raise PromotionError(f"{outcome.outcome}: {outcome.reason}", service=target.name)
        promotion.deployment_id = outcome.deployment_id
        promotion.applied = outcome.outcome == "deployed"
        if promotion.applied:
            count("PromotionsStarted")
        if backfill:  # the promotion's own record too, when an earlier attempt could not write it
            promotion.deployment_id = outcome.deployment_id or primary_deployment_id(item.service or {})
            if self._promotion_state(target).get("promoted") != release.deployment_id:
                self.records.promoted(target.name, promotion.entry("promoted", self.trigger))
            return
        if promotion.applied:
            self.records.promoted(target.name, promotion.entry("promoted", self.trigger))
        logger.info(
            "promotion applied",
            extra={
                "target": target.name,
                "source": release.source,
                "source_deployment_id": release.deployment_id,
                "image_digest": short_digest(release.digest),
                "deployment_id": outcome.deployment_id,
                "outcome": outcome.outcome,
            },
        )

    def _apply_once(self, promotion: Promotion) -> None:
        """Apply under the release's lease: of invocations racing on it, one registers and
        updates; the others report it in progress. A failure gives the lease back."""
        release = promotion.release
        assert release is not None
        name = promotion.target.name
        if not self.records.lease(name, release.deployment_id, self.clock().timestamp()):
            promotion.verdict = replace(
                promotion.verdict, word="waiting", detail="being promoted by another run"
            )
            logger.info("promotion in progress elsewhere", extra={"target": name})
            return
        try:
            self.apply(promotion)
        except EcspilotError:
            self.records.release_lease(name, release.deployment_id)
            raise

    def notice(self, promotion: Promotion) -> None:
        """Notify a blocked release or one awaiting approval, once per reason (STATE item)."""
        release = promotion.release
        if release is None:
            return
        reason = promotion.verdict.detail
        if notice_attribute(release.deployment_id, reason) in self._promotion_state(promotion.target):
            return
        if not self.records.notice_once(
            promotion.target.name, release.deployment_id, reason, stamp(self.clock())
        ):
            return
        self.records.add(promotion.entry(promotion.verdict.word, self.trigger))
        subject, body, chat, steps = notice_message(
            promotion.target.name, release, promotion.verdict.word, reason
        )
        # the attribute email filters know stays BLOCKED; the chat's own status tells which
        attributes = {"kind": "promotion", "status": "BLOCKED", "service": promotion.target.name}
        self.notifier.notify(subject, body, attributes, chat, steps)

    def run(self, names: Sequence[str] | None = None, dry_run: bool = False) -> list[Promotion]:
        """Evaluate (and unless ``dry_run`` apply) the promotions of ``names`` (default: all)."""
        targets = [s for s in self.config.services if s.promote and (names is None or s.name in names)]
        if not targets:
            return []
        self.load_state(targets)
        self.describe_targets(targets)
        done: list[Promotion] = []
        for target in targets:
            try:
                promotions = self.candidates(target)
            except EcspilotError as exc:
                done.append(Promotion(target, None, Facts(None, 0), error=str(exc)))
                continue
            for promotion in promotions:
                done.append(self.settle(promotion, dry_run))
        return done

    def settle(self, promotion: Promotion, dry_run: bool) -> Promotion:
        """Evaluate one promotion, then apply it or report it."""
        self.evaluate(promotion)
        if promotion.error:
            count("PromotionErrors")
            return promotion
        word = promotion.verdict.word
        if word == "promote" and self.deferrals is not None:  # a window or a freeze (issue 25)
            word = defer(promotion, self.deferrals, "/".join(self.keys[promotion.target.name]), dry_run)
        try:
            if word == "promote" and not dry_run:
                self._apply_once(promotion)
            elif word == "in-sync" and not dry_run and runs_release(promotion):
                self.apply(promotion, backfill=True)
            elif word == "blocked":
                count("PromotionsBlocked")
                if not dry_run:
                    self.notice(promotion)
            elif word in ("waiting", "awaiting approval"):
                count("PromotionsWaiting")
                if word == "awaiting approval" and not dry_run:
                    self.notice(promotion)  # a person is asked, once per release
        except EcspilotError as exc:
            promotion.error = str(exc)
            count("PromotionErrors")
            logger.error("promotion failed", extra={"target": promotion.target.name, "error": str(exc)})
        return promotion


__all__ = ["Promoter", "Promotion", "as_actions"]
