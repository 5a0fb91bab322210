"""Release policies, pure (issue 27): what a container with ``order: semver`` does with a version.

- :func:`version_verdict`: a pushed (or caught-up) version against the one the service runs:
  ``stale`` when not higher (whatever its push time), ``conflict`` when equal from another
  digest (a re-tag), ``awaiting approval`` when a prerelease (``prerelease: false``) or a jump
  bigger than ``allow``, else ``deploy``;
- :func:`highest_allowed`: catch-up's choice among a repository's tagged images: the highest
  version the policy lets through by itself from the running one, not the newest push; two
  digests of that same version are a ``conflict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from ecspilot.domain.config import ServiceConfig
from ecspilot.domain.images import short_digest
from ecspilot.domain.semver import Jump, Version, allowed, claim_rank, jump, parse
from ecspilot.records import dataclass

VersionVerdict = Literal["deploy", "stale", "conflict", "awaiting approval"]


@dataclass(frozen=True)
class Policy:
    """A container's ``allow`` and ``prerelease`` (its ``order`` is semver)."""

    allow: Jump = "major"
    prerelease: bool = False


def version_verdict(
    policy: Policy,
    candidate: Version,
    running: Version | None,
    running_digest: str = "",
    approved: bool = False,
) -> tuple[VersionVerdict, str]:
    """Whether ``candidate`` (of another digest than the running one) replaces ``running``
    (None: the service runs no known version of the repository; nothing to order against).
    ``approved``: a person approved this digest (``ecspilot approve --digest``): the waits
    (conflict, prerelease, jump) are lifted, the order is not."""
    if running is not None and candidate < running:
        return "stale", f"runs {running}, higher than {candidate}: versions never go backwards"
    if running is not None and candidate.same_version(running):
        if approved:
            return "deploy", f"{candidate} approved over the running {short_digest(running_digest)}"
        return "conflict", (
            f"runs {running} from {short_digest(running_digest)}: {candidate} is the same version "
            "from another image (a re-tag?), never deployed by itself; ecspilot approve --digest picks it"
        )
    if approved:
        return "deploy", f"{candidate} approved"
    if candidate.is_prerelease and not policy.prerelease:
        return (
            "awaiting approval",
            f"{candidate} is a prerelease (prerelease: false): waits for ecspilot approve",
        )
    if running is not None and not allowed(policy.allow, running, candidate):
        return "awaiting approval", (
            f"{running} -> {candidate} is a {jump(running, candidate)} jump (allow: {policy.allow}): "
            "waits for ecspilot approve"
        )
    return "deploy", ""


@dataclass(frozen=True)
class Candidate:
    """A tagged image of a repository read as a version."""

    tag: str
    version: Version
    digest: str
    pushed_at: datetime | None
    registry_id: str = ""


def candidates(
    details: Iterable[dict[str, object]], matches: Sequence[str] | None = None
) -> tuple[list[Candidate], list[str]]:
    """The images of a DescribeImages listing whose tags are versions (the highest version among
    an image's matching tags), and the matching tags that are not versions (ignored)."""
    import fnmatch  # noqa: PLC0415 - only catch-up lists

    out: list[Candidate] = []
    ignored: list[str] = []
    for image in details:
        tags = [str(t) for t in image.get("imageTags", []) or []]  # type: ignore[attr-defined]
        if matches is not None:
            tags = [t for t in tags if any(fnmatch.fnmatchcase(t, p) for p in matches)]
        versions = []
        for tag in sorted(tags):
            v = parse(tag)
            if v is None:
                ignored.append(tag)
            else:
                versions.append((v, tag))
        if not versions:
            continue
        v, tag = max(versions, key=lambda vt: vt[0].key())
        at = image.get("imagePushedAt")
        out.append(
            Candidate(
                tag,
                v,
                str(image["imageDigest"]),
                at if isinstance(at, datetime) else None,
                str(image.get("registryId", "")),
            )
        )
    return out, ignored


def highest_allowed(
    found: Sequence[Candidate], policy: Policy, running: Version | None
) -> tuple[Candidate | None, str]:
    """The highest version ``policy`` deploys by itself from ``running`` (None: no base, every
    version counts), and ``""``; or None and why nothing is (an equal-version ``conflict``)."""
    ok = [
        c
        for c in found
        if (policy.prerelease or not c.version.is_prerelease)
        and (running is None or allowed(policy.allow, running, c.version))
    ]
    if not ok:
        return None, ""
    top = max(ok, key=lambda c: c.version.key())
    twins = sorted({c.digest for c in ok if c.version.same_version(top.version)})
    if len(twins) > 1:
        return None, (
            f"{top.version} is tagged on {len(twins)} images ({', '.join(short_digest(d) for d in twins)}): "
            "conflict, none deployed by itself"
        )
    return top, ""


def semver_rank(service: ServiceConfig, containers: Sequence[str], tag: str) -> float | None:
    """:func:`claim_rank` of ``tag`` when one of ``containers`` of ``service`` orders by
    version (``order: semver``), else None (the claim carries the push time)."""
    version = parse(tag)
    if version is None or not any(
        c in service.containers and service.containers[c].semver for c in containers
    ):
        return None
    return claim_rank(version)
