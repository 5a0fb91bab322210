"""The deploy decisions, pure: what a push does to one service or job's task definition.

One set of rules for every path that deploys an image (a push event, its redelivery, catch-up,
jobs following a push), so a retried or caught-up push can never decide differently:

- :func:`decide`: unchanged when every matched container already runs the digest;
- :func:`freshness`: never move back. Stale when the target runs an image of the repository
  pushed after this one; held when it runs one whose push time cannot be known (deleted, expired)
  unless this image is provably newer (pushed after the running revision was registered);
- :func:`rolled_back_reason`: never undo a rollback. A digest whose deployment FAILED or was
  ROLLED_BACK on a service is held there until a newer image is pushed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from ecspilot.domain.images import ImagePush, ImageRef, short_digest

BAD_OUTCOMES = ("FAILED", "ROLLED_BACK")
Freshness = Literal["newer", "stale", "unknown"]


def decide(
    images: Mapping[str, str], containers: Sequence[str], push: ImagePush
) -> tuple[Literal["unchanged", "deploy"], set[str]]:
    """Decide for one service from its current container images.

    Returns ``("unchanged", set())`` when every matched container already runs
    the pushed digest, else ``("deploy", digests)`` where ``digests`` are other
    digests of the same repository that the service runs (for the stale guard).
    """
    others: set[str] = set()
    current = True
    for name in containers:
        ref = ImageRef.parse(images[name])
        same_repository = ref.same_repository(push.registry, push.repository)
        if same_repository and ref.digest == push.digest:
            continue
        current = False
        if same_repository and ref.digest:
            others.add(ref.digest)
    return ("unchanged", set()) if current else ("deploy", others)


def is_stale(pushed_at: datetime | None, running_pushed_at: Iterable[datetime | None]) -> bool:
    """True when the service runs an image of the repository pushed after this one."""
    if pushed_at is None:
        return False
    return any(t is not None and t > pushed_at for t in running_pushed_at)


def freshness(
    pushed_at: datetime | None,
    running: Mapping[str, datetime | None],
    registered_at: datetime | None,
) -> tuple[Freshness, str]:
    """Whether an image pushed at ``pushed_at`` may replace the ``running`` digests (digest ->
    push time, None when unknown) of a revision registered at ``registered_at``.

    Returns ``("newer", "")``, ``("stale", digest)`` (that digest was pushed after this image) or
    ``("unknown", digest)`` (that digest's push time cannot be known and this image is not
    provably newer: pushed after the running revision was registered).
    """
    newer = sorted(
        d for d, at in running.items() if at is not None and pushed_at is not None and at > pushed_at
    )
    if newer:
        return "stale", newer[0]
    unknown = sorted(d for d, at in running.items() if at is None)
    if unknown and not (pushed_at is not None and registered_at is not None and pushed_at > registered_at):
        return "unknown", unknown[0]
    if pushed_at is None and running:
        return "unknown", sorted(running)[0]
    return "newer", ""


def freshness_reason(verdict: Freshness, digest: str) -> str:
    """The outcome reason of a stale or unknown :func:`freshness` verdict."""
    if verdict == "stale":
        return f"runs {short_digest(digest)}, pushed after this image"
    return (
        f"runs {short_digest(digest)}, whose push time cannot be known (image gone from ECR), and this "
        "image was not pushed after the running revision was registered: held, not moved back"
    )


def rolled_back_reason(records: Iterable[Mapping[str, Any]], push: ImagePush) -> str | None:
    """Why ``push`` must not be deployed again to a service whose latest ``records`` (newest
    first) say its digest FAILED or was ROLLED_BACK there, or None."""
    for record in records:
        if record.get("image_digest") == push.digest and record.get("status") in BAD_OUTCOMES:
            return (
                f"{push.repository}:{push.tag} ({short_digest(push.digest)}) was {record['status']} on this "
                f"service ({record.get('started_at', '')}): not redeployed; push a newer image to move on"
            )
    return None


def deployment_configuration(service: Mapping[str, Any], rollback: bool) -> dict[str, Any] | None:
    """The service's deployment configuration with the circuit breaker on, or None to leave it."""
    if not rollback:
        return None
    conf = copy.deepcopy(dict(service.get("deploymentConfiguration") or {}))
    conf["deploymentCircuitBreaker"] = {"enable": True, "rollback": True}
    return conf


def primary_deployment_id(service: Mapping[str, Any]) -> str:
    """The id of the service's PRIMARY deployment (``ecs-svc/...``), or ''."""
    for deployment in service.get("deployments", []):
        if deployment.get("status") == "PRIMARY":
            return str(deployment.get("id", ""))
    return ""
