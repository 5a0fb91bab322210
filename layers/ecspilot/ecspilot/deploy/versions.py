"""Release policies on the deploy path (issue 27): containers with ``order: semver``.

Called by :meth:`PushDeployer.deploy_targets` after the push-time judgement and before the
gates, so pushes, their redeliveries, catch-up and ``ecspilot approve`` decide alike:

1. the running version: the highest version among the ECR tags (matching the container's
   patterns) of the digest the container runs; when that digest lost its tags (a re-tag moved
   them, a lifecycle policy), the tag of ecspilot's newest deployment record of that digest;
2. :func:`ecspilot.domain.release_policy.version_verdict`: ``stale`` when not higher (this
   replaces the push-time order: a higher version pushed earlier deploys, a lower one pushed
   later does not), ``conflict`` (same version, another digest), ``awaiting approval``;
3. ``conflict`` and ``awaiting approval`` are recorded (``aws.release_state``) and notified
   once; an APPROVED record of this digest lifts the wait, a REJECTED one refuses it.

Tags that are not versions never reach here: such a container does not follow them
(:meth:`ImageSource.matches`); :func:`note_ignored` logs them once per push and counts
``TagsIgnored``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol

from ecspilot.aws.history import History
from ecspilot.aws.notify import Notifier
from ecspilot.aws.release_state import ReleaseRecords
from ecspilot.deploy.result import Target
from ecspilot.domain.config import EcspilotConfig, ImageSource
from ecspilot.domain.images import ImagePush, ImageRef, short_digest
from ecspilot.domain.release_policy import Policy, version_verdict
from ecspilot.domain.semver import Version, highest_version, parse
from ecspilot.domain.taskdef import container_images
from ecspilot.errors import EcspilotError
from ecspilot.obs import count, logger


class PushDeployer(Protocol):
    """What the version gate reads through the deploy core (``deploy.runbook.PushDeployer``)."""

    history: History

    def source(self, arn: str) -> tuple[dict[str, Any], list[dict[str, str]]]: ...

    def image_tags(self, repository: str, digest: str) -> list[str]: ...

    def described(self, cluster: str, service: str) -> dict[str, Any] | str: ...


JUDGED = ("would-deploy", "stale", "held")  # the push-time verdicts a version order replaces


def note_ignored(config: EcspilotConfig, push: ImagePush) -> list[str]:
    """The services with an ``order: semver`` container whose patterns match ``push.tag`` though
    it is not a version: logged (one line) and counted; they do not follow it."""
    if parse(push.tag) is not None:
        return []
    names = sorted(
        svc.name
        for svc in config.services
        for src in svc.containers.values()
        if src.semver
        and src.repository == push.repository
        and any(fnmatch.fnmatchcase(push.tag, p) for p in src.tags)
    )
    if names:
        count("TagsIgnored", 1)
        logger.info(
            "tag is not a semantic version: ignored by order: semver containers",
            extra={"repository": push.repository, "image_tag": push.tag, "services": names},
        )
    return names


def version_gate(
    deployer: PushDeployer,
    targets: Sequence[Target],
    push: ImagePush,
    notifier: Notifier | None,
    dry_run: bool = False,
) -> None:
    """Judge the ``order: semver`` targets by version (see the module docstring); a dry run
    (``plan``) records and notifies nothing."""
    candidate = parse(push.tag)
    for t in targets:
        sources = {c: t.config.containers[c] for c in t.outcome.containers if c in t.config.containers}
        semver = {c: s for c, s in sources.items() if s.semver}
        if candidate is None or not semver or t.outcome.outcome not in JUDGED or t.service is None:
            continue
        try:
            running, digest = running_version(
                deployer, t.key, str(t.service["taskDefinition"]), semver, push.registry, push.repository
            )
            policy = policy_of(semver.values())
            verdict, reason = version_verdict(policy, candidate, running, digest)
            outcome: str = verdict
            if verdict in ("conflict", "awaiting approval"):
                outcome, reason = _waiting(deployer, t, push, verdict, reason, notifier, dry_run)
            elif verdict == "deploy" and deployer.history.enabled:  # a rejected digest stays refused
                item = ReleaseRecords(deployer.history).get(*t.key, push.digest)
                if item.get("status") == "REJECTED":
                    outcome, reason = "refused", _rejected(push, item)
        except EcspilotError as exc:
            t.outcome.outcome, t.outcome.reason = "failed", f"release policy: {exc}"
            continue
        if outcome == "deploy":
            if running is not None:  # the version order replaces the push-time one
                t.outcome.outcome, t.outcome.reason = "would-deploy", reason or f"{running} -> {candidate}"
        elif outcome in ("stale", "refused", "conflict", "awaiting approval"):
            t.outcome.outcome, t.outcome.reason = outcome, reason  # type: ignore[assignment]


def policy_of(sources: Iterable[ImageSource]) -> Policy:
    """The strictest policy of the matched containers (they share the pushed image)."""
    srcs = list(sources)
    order = ("patch", "minor", "major")
    allow = min((s.allow for s in srcs), key=order.index)
    return Policy(allow=allow, prerelease=all(s.prerelease for s in srcs))


def running_version(
    deployer: PushDeployer,
    key: tuple[str, str],
    task_definition: str,
    semver: dict[str, ImageSource],
    registry: str,
    repository: str,
) -> tuple[Version | None, str]:
    """The highest version the ``semver`` containers of ``task_definition`` run (a service keyed
    ``key`` in the state table), and that digest; ``(None, "")`` when none is known."""
    images = container_images(deployer.source(task_definition)[0])
    best: tuple[Version | None, str] = (None, "")
    for container, src in semver.items():
        ref = ImageRef.parse(images.get(container, ""))
        if not ref.same_repository(registry, repository):
            continue
        if not ref.digest:  # runs by tag (before ecspilot's first deployment): the tag says it
            version = parse(ref.tag or "")
            if version is not None and (best[0] is None or version > best[0]):
                best = (version, "")
            continue
        tags = [
            tag
            for tag in deployer.image_tags(repository, ref.digest)
            if any(fnmatch.fnmatchcase(tag, p) for p in src.tags)
        ]
        version = highest_version(tags) or _recorded_version(deployer, key, ref.digest)
        if version is not None and (best[0] is None or version > best[0]):
            best = (version, ref.digest)
    return best


def _recorded_version(deployer: PushDeployer, key: tuple[str, str], digest: str) -> Version | None:
    """The version ecspilot deployed ``digest`` as (its newest deployment record's tag)."""
    if not deployer.history.enabled:
        return None
    for record in deployer.history.deployments(*key, limit=20):  # a failed read fails the target
        if record.get("image_digest") == digest:
            return parse(str(record.get("image_tag", "")))
    return None


def _waiting(
    deployer: PushDeployer,
    t: Target,
    push: ImagePush,
    verdict: str,
    reason: str,
    notifier: Notifier | None,
    dry_run: bool = False,
) -> tuple[Literal["deploy", "refused", "conflict", "awaiting approval"], str]:
    """A conflict or a jump that waits: deployed when this digest was approved, refused when
    rejected, else recorded (AWAITING) and notified once."""
    records = ReleaseRecords(deployer.history)
    item = records.get(*t.key, push.digest) if deployer.history.enabled else {}
    status = item.get("status")
    if status == "APPROVED":
        return "deploy", f"{push.tag} approved by {item.get('decided_by', 'a person')}"
    if status == "REJECTED":
        return "refused", _rejected(push, item)
    outcome: Literal["conflict", "awaiting approval"] = (
        "conflict" if verdict == "conflict" else "awaiting approval"
    )
    fields = {
        "repository": push.repository,
        "image_tag": push.tag,
        "registry_id": push.account,
        "region": push.region,
        "outcome": outcome,
        "reason": reason,
        "service_name": t.config.name,
    }
    if dry_run:
        return outcome, reason
    if records.note(*t.key, push.digest, "AWAITING", fields) and notifier is not None:
        name = f"{t.config.cluster}/{t.config.service_name}"
        notifier.notify(
            f"ecspilot: {t.config.name} awaits approval of {push.repository}:{push.tag}"[:99],
            "\n".join(
                [
                    f"{name}: {outcome}: {reason}",
                    "",
                    f"Deploy it: ecspilot approve {t.config.name} --digest {push.digest}",
                    f"Refuse it: ecspilot reject {t.config.name} --digest {push.digest}",
                ]
            ),
            {
                "kind": "release-awaiting-approval",
                "status": "AWAITING",
                "repository": push.repository,
                "service": t.config.name,
                "digest": push.digest,
            },
            # the chat's Approve and Reject buttons answer it by service and digest (ChatActions)
            next_steps=[
                f"Approve deploys {push.tag} ({short_digest(push.digest)}) to {t.config.name}, this version only",
                "Reject refuses it on this service for good",
            ],
        )
        logger.info(
            "release awaits approval",
            extra={
                "service": t.config.name,
                "image_tag": push.tag,
                "image_digest": short_digest(push.digest),
            },
        )
    return outcome, reason


def _rejected(push: ImagePush, item: dict[str, object]) -> str:
    return f"{push.tag} was rejected by {item.get('decided_by', 'a person')} (ecspilot reject): never deployed here"
