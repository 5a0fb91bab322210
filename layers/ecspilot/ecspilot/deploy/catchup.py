"""Catch-up: deploy what a missed push would have deployed.

ECR delivers push events on a best-effort basis, so a release can be pushed and
never announced. On every reconcile, for each configured image source (the
``containers`` of services and of jobs), the newest *tagged* image of the
repository whose tag matches the source's patterns (ordered by ``imagePushedAt``;
with ``order: semver``, the highest version the service's policy allows:
``deploy.catchup_versions``) goes through the same deploy core as a push event (trigger ``catch-up``): the
same digest pinning, rules and records. A service or job already on that image
costs no write call. Catch-up never moves a service back: a service running an
image whose push time cannot be known (its tag deleted, expired by a lifecycle
policy) is held (a ``conflict``) unless the candidate was pushed after the
running revision was registered, and a digest that FAILED or was ROLLED_BACK on
a service is held there. One deployer serves every pass, so services sharing a
task definition get one revision whatever their tag patterns.

Runbook: list each repository's tagged images once (paginated) -> pick the
newest per (repository, patterns) -> one synthetic push per chosen image,
restricted to the services and jobs that chose it -> deploy core -> actions.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.accounts import AccountSessions
from ecspilot.aws.clients import Clients
from ecspilot.aws.history import History
from ecspilot.aws.notify import Notifier
from ecspilot.aws.open_work import open_services
from ecspilot.deploy.catchup_versions import choose_versions, semver_sources
from ecspilot.deploy.runbook import PushDeployer
from ecspilot.deploy.targets import AccountRoute, Own
from ecspilot.domain.config import EcspilotConfig, JobConfig, ServiceConfig
from ecspilot.domain.images import ImagePush, short_digest
from ecspilot.domain.keys import state_keys
from ecspilot.domain.plan import Action, Change
from ecspilot.domain.stops import deferred_detail
from ecspilot.errors import AwsError
from ecspilot.obs import logger
from ecspilot.records import dataclass
from ecspilot.stopping.deferral import Deferrals


@dataclass(frozen=True)
class Newest:
    """The newest tagged image of a repository that matches some patterns."""

    tag: str
    digest: str
    pushed_at: datetime
    registry_id: str


def newest_image(details: Iterable[Mapping[str, Any]], patterns: Sequence[str]) -> Newest | None:
    """Pick the most recently pushed image with a tag matching ``patterns`` (pure).

    Ties on ``imagePushedAt`` go to the larger digest, so the choice is stable.
    """
    best: Newest | None = None
    for image in details:
        tags = sorted(
            t for t in image.get("imageTags", []) if any(fnmatch.fnmatchcase(t, p) for p in patterns)
        )
        pushed_at = image.get("imagePushedAt")
        if not tags or pushed_at is None:
            continue
        candidate = Newest(tags[0], image["imageDigest"], pushed_at, str(image.get("registryId", "")))
        if best is None or (candidate.pushed_at, candidate.digest) > (best.pushed_at, best.digest):
            best = candidate
    return best


def _sources(
    config: EcspilotConfig,
) -> dict[tuple[str, tuple[str, ...]], tuple[list[ServiceConfig], list[JobConfig]]]:
    """Group the config's image sources by (repository, patterns)."""
    groups: dict[tuple[str, tuple[str, ...]], tuple[list[ServiceConfig], list[JobConfig]]] = {}
    for svc in config.services:
        for source in svc.containers.values():
            services, _ = groups.setdefault((source.repository, tuple(source.tags)), ([], []))
            if svc not in services:
                services.append(svc)
    for job in config.jobs:
        for source in job.containers.values():
            _, jobs = groups.setdefault((source.repository, tuple(source.tags)), ([], []))
            if job not in jobs:
                jobs.append(job)
    return groups


def _tagged_images(ecr: Any, repository: str) -> list[dict[str, Any]]:
    try:
        pages = ecr.get_paginator("describe_images").paginate(
            repositoryName=repository, filter={"tagStatus": "TAGGED"}
        )
        return [dict(d) for page in pages for d in page.get("imageDetails", [])]
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"listing images of {repository} failed: {exc}", repository=repository) from exc


CHANGES: dict[str, Change] = {
    "deployed": "update",
    "would-deploy": "update",
    "registered": "update",
    "would-register": "update",
    "failed": "error",
    "held": "conflict",
    "refused": "conflict",  # the image scan gate: offered again on the next tick
    "conflict": "conflict",  # issue 27: an equal version from another digest
    "awaiting approval": "conflict",  # issue 27: waits for ecspilot approve
    "deferred": "deferred",  # a window or a freeze (issue 25), or a signature IN_PROGRESS (issue 27)
}


def to_action(
    target: str, outcome: str, reason: str, push: ImagePush, applied: bool, change_text: str
) -> Action:
    """A deploy-core outcome (service or job) as a reconcile action (pure)."""
    image = f"{push.repository}:{push.tag} ({short_digest(push.digest)})"
    change = CHANGES.get(outcome, "in-sync")
    if change == "update":
        return Action("catch-up", target, "update", f"{change_text} {image}", applied=applied)
    if change in ("error", "conflict", "deferred"):
        return Action("catch-up", target, change, reason)
    return Action("catch-up", target, "in-sync", f"{reason} ({image} is the newest)")


def _stopped(outcome: str, reason: str) -> bool:
    """A deferral by a window or a freeze (issue 25), not by a signature still being made."""
    return outcome == "deferred" and not reason.startswith("signing by ")


def _catch_up_to(
    deployer: PushDeployer,
    route: AccountRoute,
    config: EcspilotConfig,
    newest: Newest,
    region: str,
    repository: str,
    services: list[ServiceConfig],
    jobs: list[JobConfig],
    dry_run: bool,
) -> list[Action]:
    """One synthetic push of ``newest`` through the deploy core, restricted to ``services`` and
    ``jobs``: an action each."""
    push = ImagePush(
        account=newest.registry_id,
        region=region,
        repository=repository,
        tag=newest.tag,
        digest=newest.digest,
        event_id=f"catch-up-{newest.digest[7:19]}",
        time=newest.pushed_at,
    )
    scoped = config.model_copy(update={"services": services, "jobs": jobs})
    result = deployer.run(push, scoped, dry_run=dry_run)
    actions = [
        to_action(
            route.where(o.name, o.cluster, o.service),
            o.outcome,
            deferred_detail(o.reason, o.until) if _stopped(o.outcome, o.reason) else o.reason,
            push,
            not dry_run,
            "deploy missed push",
        )
        for o in result.outcomes
    ]
    actions += [
        to_action(f"job/{j.job}", j.outcome, j.reason, push, not dry_run, f"register {j.family} with")
        for j in result.jobs
    ]
    return actions


def catch_up(
    config: EcspilotConfig,
    clients: Clients,
    history: History,
    max_workers: int = 8,
    dry_run: bool = False,
    sessions: AccountSessions | None = None,
    own: Own = (None, None),
    notifier: Notifier | None = None,
    deferrals: Deferrals | None = None,
) -> list[Action]:
    """Catch up every followed service and job: one action each (the reconcile part's core).
    A service with ``account`` is caught up in its account (``sessions``, ``deploy.targets``).
    ``notifier`` tells the release decisions (issue 27: awaiting approval, unsigned) once."""
    actions: list[Action] = []
    listings: dict[str, list[dict[str, Any]] | AwsError] = {}
    region = clients.ecr.meta.region_name
    deployer = PushDeployer(clients, history, max_workers, trigger="catch-up")
    deployer.defer_records = True
    deployer.release_notifier = notifier
    deployer.deferrals = deferrals
    route = AccountRoute(
        deployer, sessions or AccountSessions(clients, own[1], "reconcile", max_workers), config, own
    )
    sources = _sources(config)
    # a service ECS is still deploying (rolling out, baking, paused) is left to ECS: waiting
    keys = state_keys(config, own)
    followed = list({s.name: s for services, _ in sources.values() for s in services}.values())
    busy = open_services(history, (keys[s.name] for s in followed))
    waiting = {s.name: busy[keys[s.name]] for s in followed if keys[s.name] in busy}
    for svc in followed:
        if svc.name in waiting:
            target = route.where(svc.name, svc.cluster, svc.service_name)
            actions.append(Action("catch-up", target, "waiting", waiting[svc.name]))
            logger.info("catch-up waits for ECS", extra={"service": svc.name, "reason": waiting[svc.name]})
    sources = {
        k: (kept, jobs)
        for k, (services, jobs) in sources.items()
        if (kept := [s for s in services if s.name not in waiting]) or jobs
    }
    # one DescribeServices pass for every followed service of ecspilot's account, whatever
    # repository it follows (another account's are described there, by its deployer)
    deployer.describe_services(
        (svc.cluster, svc.service_name)
        for services, _ in sources.values()
        for svc in services
        if svc.account is None
    )
    for (repository, patterns), (services, jobs) in sources.items():
        if repository not in listings:
            try:
                listings[repository] = _tagged_images(clients.ecr, repository)
            except AwsError as exc:
                listings[repository] = exc
        listing = listings[repository]
        if isinstance(listing, AwsError):
            actions += [
                Action("catch-up", route.where(s.name, s.cluster, s.service_name), "error", str(listing))
                for s in services
            ]
            actions += [Action("catch-up", f"job/{j.name}", "error", str(listing)) for j in jobs]
            continue
        deployer.know_pushed_at(repository, listing)
        semver = [s for s in services if semver_sources(s, repository, patterns)]
        plain = [s for s in services if s not in semver]
        picks: list[tuple[Newest | None, list[ServiceConfig], list[JobConfig]]] = []
        if plain or jobs:
            picks.append((newest_image(listing, patterns), plain, jobs))
        if semver:  # issue 27: the highest version each policy allows, not the newest push
            chosen, skipped = choose_versions(deployer, semver, listing, repository, patterns, region)
            for c, members in chosen:
                at = c.pushed_at or datetime.now(UTC)
                picks.append((Newest(c.tag, c.digest, at, c.registry_id), members, []))
            actions += [
                Action("catch-up", route.where(s.name, s.cluster, s.service_name), change, reason)
                for s, change, reason in skipped
            ]
        for newest, members, member_jobs in picks:
            if newest is None:
                logger.info(
                    "no tagged image matches", extra={"repository": repository, "patterns": list(patterns)}
                )
                continue
            actions += _catch_up_to(
                deployer, route, config, newest, region, repository, members, member_jobs, dry_run
            )
    deployer.flush_records()
    route.flush_records()
    return actions
