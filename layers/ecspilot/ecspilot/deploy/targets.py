"""Where a push deploys each service: ecspilot's own account, or the account its config names.

Any service may set ``account`` (issue 13), promoted or not. A push (``deploy_on_push`` and its
continuations) and reconcile's catch-up deploy such a service **in its account and region**:

- the services of one account go to one deployer of that account (:class:`AccountDeployer`,
  the same deploy core), its clients from ``aws.accounts.AccountSessions``: one AssumeRole per
  account/region per invocation, shared with the promotions of the same process;
- the image stays the push's, pinned in ecspilot's registry (``OWN.dkr.ecr.REGION...@sha256:``),
  and what is read about it (ECR push times for the stale guard, scan findings) is read there,
  through ecspilot's own clients;
- records, claims and holds are keyed as promotions key them (``domain.keys.state_keys``:
  ``web@222222222222:eu-west-1``), so the same-named service of ecspilot's own account never
  shares them, and is never touched;
- an account whose role cannot be assumed fails its services only (``failed`` with the reason,
  asked once per invocation); the others deploy and :func:`deploy_push` raises at the end, so
  Lambda retries.
"""

from __future__ import annotations

from datetime import datetime

from ecspilot.aws.accounts import AccountSessions
from ecspilot.aws.clients import Clients
from ecspilot.aws.history import History
from ecspilot.aws.notify import Notifier
from ecspilot.deploy.continuation import Budget, Continuation, enqueue, first_part
from ecspilot.deploy.continuation_trust import write_rollout
from ecspilot.deploy.result import PushResult, Target
from ecspilot.deploy.runbook import PushDeployer
from ecspilot.deploy.signature_timer import SignatureTimer
from ecspilot.domain.config import EcspilotConfig
from ecspilot.domain.images import ImagePush
from ecspilot.domain.keys import state_keys
from ecspilot.errors import AccountAccessError, DeployError, DeployFailuresError
from ecspilot.obs import logger
from ecspilot.promotion.timer import TimerTarget
from ecspilot.stopping.deferral import Deferrals

Own = tuple[str | None, str | None]  # ecspilot's (account id, region)


class AccountDeployer(PushDeployer):
    """The deploy core in another account: its ECS through the assumed role; the push's image,
    its push times and its scans read through ``home`` (ecspilot's own deployer)."""

    def __init__(self, clients: Clients, home: PushDeployer) -> None:
        super().__init__(clients, home.history, home.max_workers, home.trigger)
        self.home = home
        self.rollout_id = home.rollout_id
        self.notifier = home.notifier
        self.defer_records = home.defer_records
        self.registry_clients = home.registry_clients
        self.signature_timer = home.signature_timer
        self.release_notifier = home.release_notifier
        self.deferrals = home.deferrals

    def pushed_at(self, repository: str, digest: str) -> datetime | None:
        return self.home.pushed_at(repository, digest)  # one cache: catch-up seeds the home's

    def image_tags(self, repository: str, digest: str) -> list[str]:
        return self.home.image_tags(repository, digest)


class AccountRoute:
    """``PushDeployer.route``: deploys the targets of other accounts, returns ecspilot's own."""

    def __init__(
        self, home: PushDeployer, sessions: AccountSessions, config: EcspilotConfig, own: Own
    ) -> None:
        self.home = home
        self.sessions = sessions
        self.config = config
        self.keys = state_keys(config, own)
        self.deployers: dict[str, AccountDeployer | AccountAccessError] = {}  # per account name
        home.route = self

    def where(self, name: str, cluster: str, service: str) -> str:
        """``cluster/service`` as the state table keys the configured service ``name``."""
        return "/".join(self.keys.get(name, (cluster, service)))

    def deployer(self, account: str) -> AccountDeployer | AccountAccessError:
        if account not in self.deployers:  # a refusal is remembered: asked once per invocation
            try:
                clients = self.sessions.clients(account, self.config.accounts)
                self.deployers[account] = AccountDeployer(clients, self.home)
            except AccountAccessError as exc:
                self.deployers[account] = exc
        return self.deployers[account]

    def __call__(
        self, targets: list[Target], push: ImagePush, result: PushResult, dry_run: bool, budget: Budget | None
    ) -> list[Target]:
        home: list[Target] = []
        away: dict[str, list[Target]] = {}
        for t in targets:
            if t.config.account is None:
                home.append(t)
                continue
            t.state_service = self.keys.get(t.config.name, t.key)[1]
            away.setdefault(t.config.account, []).append(t)
        for account, members in sorted(away.items()):
            deployer = self.deployer(account)
            if isinstance(deployer, AccountAccessError):
                logger.error(
                    "services of an account not deployed",
                    extra={"account": account, "services": [t.config.name for t in members]},
                )
                for t in members:
                    t.outcome.outcome, t.outcome.reason = "failed", str(deployer)
                continue
            deployer.deploy_targets(members, push, result, dry_run, budget)
        return home

    def flush_records(self) -> None:
        """Write every account deployer's deferred records (catch-up)."""
        for deployer in self.deployers.values():
            if isinstance(deployer, AccountDeployer):
                deployer.flush_records()


def deploy_push(
    push: ImagePush,
    config: EcspilotConfig,
    clients: Clients,
    history: History,
    max_workers: int = 8,
    dry_run: bool = False,
    continuation: Continuation | None = None,
    topic_arn: str | None = None,
    sessions: AccountSessions | None = None,
    own: Own = (None, None),
    timer: TimerTarget | None = None,
    deferrals: Deferrals | None = None,
) -> PushResult:
    """Deploy one push (or one continuation of its rollout), each service in its account
    (``sessions``: the assumed-role clients); the services that do not fit the budget are sent
    on to the continuation queue. Raise :class:`DeployFailuresError` after the fan-out if any
    service failed."""
    deployer = PushDeployer(clients, history, max_workers)
    deployer.notifier = Notifier(clients, topic_arn)
    if timer is not None:  # issue 27: a deferred signature is re-checked by a one-time schedule
        deployer.signature_timer = SignatureTimer(clients.scheduler, timer)
    deployer.deferrals = deferrals
    item = continuation.item if continuation else None
    if item is not None:
        deployer.rollout_id = item.rollout_id
    AccountRoute(
        deployer, sessions or AccountSessions(clients, own[1], "deploy_on_push", max_workers), config, own
    )
    result = deployer.run(
        push,
        config,
        dry_run=dry_run,
        only=frozenset(item.services) if item else None,
        budget=continuation.budget if continuation else None,
    )
    left = [o.name for o in result.by_outcome("continued")]
    if left and continuation is not None:
        rest = item.rest(left) if item else first_part(push, left)
        if item is None:  # what every later part is checked against (deploy.continuation_trust)
            write_rollout(history, rest)
        enqueue(clients.sqs, continuation.queue_url, rest)
        result.continued_in = rest.rollout_id
    failures = [
        DeployError(o.reason, cluster=o.cluster, service=o.service) for o in result.by_outcome("failed")
    ]
    failures += [DeployError(j.reason, job=j.job) for j in result.jobs if j.outcome == "failed"]
    failures += [DeployError(f"deployment records not written: {e}") for e in result.record_errors]
    if failures and not dry_run:
        raise DeployFailuresError(failures, result)
    return result


__all__ = ["AccountDeployer", "AccountRoute", "deploy_push"]
