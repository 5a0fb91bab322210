"""Catch-up's choice for ``order: semver`` services (issue 27): not the newest push but the
highest version each service's policy deploys by itself from the version it runs
(:func:`ecspilot.domain.release_policy.highest_allowed`). Services that choose the same image
share one synthetic push; tags that are not versions are logged once and counted
(``TagsIgnored``); two images of the top version are a ``conflict`` (nothing deployed).

A service ecspilot cannot read here (another account's, not described) is offered the highest
version its prerelease rule allows: the deploy path's version gate, in its account, still
applies ``allow`` and the order to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecspilot.deploy.versions import PushDeployer, policy_of, running_version
from ecspilot.domain.config import ImageSource, ServiceConfig
from ecspilot.domain.images import ecr_registry
from ecspilot.domain.plan import Change
from ecspilot.domain.release_policy import Candidate, Policy, candidates, highest_allowed
from ecspilot.domain.semver import Version
from ecspilot.errors import EcspilotError
from ecspilot.obs import count, logger


def semver_sources(svc: ServiceConfig, repository: str, patterns: Sequence[str]) -> dict[str, ImageSource]:
    """The ``order: semver`` containers of ``svc`` that follow ``repository`` with ``patterns``."""
    return {
        c: s
        for c, s in svc.containers.items()
        if s.semver and s.repository == repository and tuple(s.tags) == tuple(patterns)
    }


def choose_versions(
    deployer: PushDeployer,
    services: Sequence[ServiceConfig],
    listing: Sequence[Mapping[str, Any]],
    repository: str,
    patterns: Sequence[str],
    region: str,
) -> tuple[list[tuple[Candidate, list[ServiceConfig]]], list[tuple[ServiceConfig, Change, str]]]:
    """Each chosen image with the services that chose it, and ``(service, change, reason)`` for
    those that chose none (``conflict``, ``error``, ``in-sync``)."""
    found, ignored = candidates([dict(i) for i in listing], patterns)
    if ignored:
        count("TagsIgnored", len(ignored))
        logger.info(
            "tags that are not semantic versions: ignored by order: semver containers",
            extra={"repository": repository, "tags": sorted(set(ignored))[:20]},
        )
    chosen: dict[str, tuple[Candidate, list[ServiceConfig]]] = {}
    skipped: list[tuple[ServiceConfig, Change, str]] = []
    for svc in services:
        sources = semver_sources(svc, repository, patterns)
        try:
            running = _running(deployer, svc, sources, found, repository, region)
        except EcspilotError as exc:
            skipped.append((svc, "error", f"release policy: {exc}"))
            continue
        policy = policy_of(sources.values())
        pick, why = highest_allowed(found, policy, running)
        if pick is None:
            skipped.append(
                (svc, "conflict", why) if why else (svc, "in-sync", _nothing(found, policy, running))
            )
            continue
        chosen.setdefault(pick.digest, (pick, []))[1].append(svc)
    return list(chosen.values()), skipped


def _running(
    deployer: PushDeployer,
    svc: ServiceConfig,
    sources: dict[str, ImageSource],
    found: Sequence[Candidate],
    repository: str,
    region: str,
) -> Version | None:
    if svc.account is not None:
        return None
    service = deployer.described(svc.cluster, svc.service_name)
    if isinstance(service, str) or service.get("status") != "ACTIVE":
        return None  # the deploy path says why (not found, inactive)
    registries = {ecr_registry(c.registry_id, region) for c in found if c.registry_id}
    best: Version | None = None
    for registry in sorted(registries):
        version, _ = running_version(
            deployer,
            (svc.cluster, svc.service_name),
            str(service["taskDefinition"]),
            sources,
            registry,
            repository,
        )
        if version is not None and (best is None or version > best):
            best = version
    return best


def _nothing(found: Sequence[Candidate], policy: Policy, running: Version | None) -> str:
    """Why no version is chosen: the higher ones all wait for approval, or there are none."""
    higher = [c for c in found if running is None or c.version > running]
    if not higher:
        return f"runs {running}, the highest version" if running else "no tag is a version"
    top = max(higher, key=lambda c: c.version.key())
    return (
        f"{top.tag} and every other higher version wait for ecspilot approve "
        f"(allow: {policy.allow}, prerelease: {str(policy.prerelease).lower()}, from {running})"
    )
