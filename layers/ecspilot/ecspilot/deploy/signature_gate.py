"""The signature gate (issue 27): before ecspilot registers anything, a service with
``gates.signature`` gets an image only when ECR reports a COMPLETE signature by one of its
signing profiles (``DescribeImageSigningStatus``, one read per image per invocation, in the
push's registry; for a promotion, the source's image in the target's gates).

- IN_PROGRESS: ``deferred``. Recorded (``aws.release_state``: DEFERRED); the first time, two
  one-time Scheduler timers (``deploy.signature_timer``: about 1 and 2.5 minutes later) invoke
  reconcile with this push for these services, which deploys it once COMPLETE; the 15-minute
  catch-up offers it again after that. Never deployed unsigned.
- FAILED, or no status for a listed profile: ``refused`` with ECR's failure reason, recorded
  (REFUSED) and notified once.
- the status cannot be read: ``failed`` (the invocation's retry asks again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ecspilot.aws.history import History
from ecspilot.aws.hooks import deployment_images
from ecspilot.aws.notify import Notifier
from ecspilot.aws.release_state import ReleaseRecords
from ecspilot.aws.signatures import Signatures
from ecspilot.deploy.result import Target
from ecspilot.deploy.scan_gate import notify_refused
from ecspilot.domain.config import ServiceConfig
from ecspilot.domain.gates import ScanVerdict
from ecspilot.domain.images import ImagePush, short_digest
from ecspilot.domain.signatures import signature_verdict
from ecspilot.errors import EcspilotError
from ecspilot.obs import count, logger

# (push, the deferred services' config names) -> None: sets the re-check timers
Timer = Callable[[ImagePush, list[str]], None]


def signature_gate(
    targets: Sequence[Target],
    push: ImagePush,
    registry: Any,
    history: History,
    notifier: Notifier | None,
    timer: Timer | None,
    dry_run: bool = False,
) -> None:
    """Mark the gated targets about to be deployed ``deferred``, ``refused`` or ``failed``
    (see the module docstring); ``registry``: the clients of the push's registry. A dry run
    (``plan``) records, notifies and schedules nothing."""
    signatures: Signatures | None = None
    deferred: list[Target] = []
    refused: list[Target] = []
    for t in targets:
        gates = t.config.gates
        if t.outcome.outcome != "would-deploy" or gates is None or gates.signature is None:
            continue
        signatures = signatures or Signatures(registry.ecr)
        try:
            statuses = signatures.get(push.repository, push.digest, push.account)
        except EcspilotError as exc:
            t.outcome.outcome, t.outcome.reason = "failed", f"signature gate: {exc}"
            continue
        verdict, reason = signature_verdict(gates.signature.profiles, statuses)
        if verdict == "pass":
            continue
        t.outcome.outcome, t.outcome.reason = verdict, reason
        if dry_run:
            continue
        try:
            news = ReleaseRecords(history).note(
                *t.key,
                push.digest,
                "DEFERRED" if verdict == "deferred" else "REFUSED",
                {"repository": push.repository, "image_tag": push.tag, "reason": reason, "outcome": verdict},
            )
        except EcspilotError as exc:
            logger.warning("signature decision not recorded", extra={"error": str(exc)})
            news = True  # told twice rather than never
        if news:
            (deferred if verdict == "deferred" else refused).append(t)
    if deferred:
        count("ImagesDeferred", len(deferred))
        logger.info(
            "image deferred by the signature gate",
            extra={"image_digest": short_digest(push.digest), "services": [t.config.name for t in deferred]},
        )
        if timer is not None:
            try:
                timer(push, [t.config.name for t in deferred])
            except EcspilotError as exc:  # catch-up offers it again on its schedule
                logger.error("signature re-check timer not set", extra={"error": str(exc)})
                count("SignatureTimerErrors")
    if refused:
        _refused(refused, push, notifier)


def _refused(refused: list[Target], push: ImagePush, notifier: Notifier | None) -> None:
    notify_refused(
        refused,
        push,
        notifier,
        gate="signature",
        subject=f"ecspilot: unsigned image refused {push.repository}:{push.tag}",
        headline=f"ecspilot refused {push.repository}:{push.tag} ({push.digest}): not signed",
        chat={"digest": push.digest},  # the chat threads it by its digest, as the scan gate's
    )


def signature_verdicts(
    clients: Any, svc: ServiceConfig, deployment_arn: str
) -> list[tuple[ScanVerdict, str]]:
    """A pause hook's signature gate (issue 27) on a paused deployment's images, as the hook's
    decision takes gate verdicts: refused -> ``refuse`` (rolled back), IN_PROGRESS -> ``pending``
    (waits), COMPLETE -> ``pass``; not readable -> ``pending`` (a person decides)."""
    gate = svc.gates.signature if svc.gates else None
    assert gate is not None
    try:
        images = {i.get("containerName", ""): i for i in deployment_images(clients.ecs, deployment_arn)}
        signatures = Signatures(clients.ecr)
        out: list[tuple[ScanVerdict, str]] = []
        for container, source in sorted(svc.containers.items()):
            digest = images.get(container, {}).get("imageDigest", "")
            if not digest:
                out.append(("pending", f"container {container}: no image digest in the deployment"))
                continue
            verdict, reason = signature_verdict(gate.profiles, signatures.get(source.repository, digest))
            word: ScanVerdict = {"pass": "pass", "deferred": "pending", "refused": "refuse"}[verdict]  # type: ignore[assignment]
            out.append((word, f"container {container}: {reason}" if reason else ""))
        return out
    except EcspilotError as exc:  # not read: not passed; a person decides
        return [("pending", f"signature unreadable: {exc}")]
