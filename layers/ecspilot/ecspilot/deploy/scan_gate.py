"""The image scan gate on plain rolling deployments: before ecspilot registers anything, a
service with ``gates.image_scan`` gets the pushed image only when its ECR scan passes.

- findings above ``max_severity``, or a scan that FAILED or cannot run: ``refused``;
- no complete scan yet (``ScanNotFoundException``, ``IN_PROGRESS``): ``refused`` with
  "scan not complete": nothing waits inside the invocation; reconcile's catch-up (every
  schedule tick) offers the same newest image again, and deploys it once the scan passes;
- the scan cannot be read (throttled past retries, access denied, network): ``failed``, so the
  invocation fails and its retry asks again; nothing is deployed unchecked.

Every refusal counts ``ImagesRefused`` and is notified (one message per push) when a topic is
configured. Services without the gate are not read for.
"""

from __future__ import annotations

from collections.abc import Sequence

from ecspilot.aws.clients import Clients
from ecspilot.aws.notify import Notifier
from ecspilot.aws.scans import Scans
from ecspilot.deploy.result import Target
from ecspilot.domain.gates import scan_verdict
from ecspilot.domain.images import ImagePush, short_digest
from ecspilot.errors import ScanError
from ecspilot.obs import count, logger


def scan_gate(
    targets: Sequence[Target], push: ImagePush, clients: Clients, notifier: Notifier | None
) -> None:
    """Mark the gated targets about to be deployed ``refused`` (or ``failed`` when the scan
    cannot be read); the others are left as they are. One scan read per push."""
    refused: list[Target] = []
    scans: Scans | None = None
    for t in targets:
        gates = t.config.gates
        if t.outcome.outcome != "would-deploy" or gates is None or gates.image_scan is None:
            continue
        scans = scans or Scans(clients.ecr)
        try:
            scan = scans.get(push.repository, push.digest)
        except ScanError as exc:
            t.outcome.outcome, t.outcome.reason = "failed", f"image scan gate: {exc}"
            continue
        verdict, reason = scan_verdict(gates.image_scan, scan)
        if verdict != "pass":
            t.outcome.outcome, t.outcome.reason = "refused", reason
            refused.append(t)
    if not refused:
        return
    notify_refused(
        refused,
        push,
        notifier,
        gate="scan",
        subject=f"ecspilot: image refused {push.repository}:{push.tag}",
        headline=f"ecspilot refused {push.repository}:{push.tag} ({push.digest}):",
        chat={"digest": push.digest, "repository": push.repository, "tag": push.tag},
        next_steps=["Fix what the scan found, then push a new image (a refused image is never deployed)"],
    )


def notify_refused(
    refused: list[Target],
    push: ImagePush,
    notifier: Notifier | None,
    *,
    gate: str,
    subject: str,
    headline: str,
    chat: dict[str, str],
    next_steps: Sequence[str] = (),
) -> None:
    """Count, log and notify (once per push) the services an image gate refused ``push`` on."""
    count("ImagesRefused", len(refused))
    names = [f"{t.config.cluster}/{t.config.service_name}" for t in refused]
    logger.warning(
        f"image refused by the {gate} gate",
        extra={"repository": push.repository, "image_digest": short_digest(push.digest), "services": names},
    )
    if notifier is not None:
        body = "\n".join(
            [headline, ""]
            + [f"- {n}: {t.outcome.reason}" for n, t in zip(names, refused, strict=True)]
            + ["", "Nothing was registered or deployed for these services."]
        )
        notifier.notify(
            subject[:99],
            body,
            {"kind": "image-refused", "status": "REFUSED", "repository": push.repository},
            chat=chat,
            next_steps=next_steps,
        )
