"""The gates' decisions, pure: an image scan against a ceiling, and what a paused deployment's
hook gets (CONTINUE, ROLLBACK, or WAIT for ``ecspilot approve`` / ``reject``).

Table-tested in ``tests/unit/test_gates.py``; the AWS reads that feed them are in
:mod:`ecspilot.aws.scans` and ``ecspilot.aws.alarms``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Literal

from ecspilot.domain.config.gates import Gates, ImageScanGate, severity_rank
from ecspilot.records import dataclass

# ECR's scan statuses that mean "no verdict yet": asked again later, the answer may change
PENDING_SCAN = frozenset({"IN_PROGRESS", "PENDING", "NOT_FOUND"})


@dataclass(frozen=True)
class ScanResult:
    """What ECR says of one image's scan: its status (``COMPLETE``, ``IN_PROGRESS``, ``FAILED``,
    ``UNSUPPORTED_IMAGE``, ... and ``NOT_FOUND`` for ``ScanNotFoundException``), the finding
    counts by severity (basic and enhanced scanning both give ``findingSeverityCounts``)."""

    repository: str
    digest: str
    status: str
    counts: Mapping[str, int] = field(default_factory=dict)
    description: str = ""


ScanVerdict = Literal["pass", "refuse", "pending"]


def worst_severity(counts: Mapping[str, int]) -> str | None:
    """The highest severity with at least one finding (unranked ones rank lowest), or None."""
    found = [s for s, n in counts.items() if n > 0]
    return max(found, key=severity_rank) if found else None


def scan_verdict(gate: ImageScanGate, scan: ScanResult) -> tuple[ScanVerdict, str]:
    """``pass``, ``refuse`` (findings above the ceiling, or a scan that failed or cannot run) or
    ``pending`` (no complete scan yet: asking again later may pass), with the reason."""
    image = f"{scan.repository}@{scan.digest[:19]}"
    if scan.status in PENDING_SCAN:
        what = "not scanned (enable scan on push)" if scan.status == "NOT_FOUND" else "being scanned"
        return "pending", f"scan not complete: {image} is {what}"
    if scan.status != "COMPLETE":
        detail = f": {scan.description}" if scan.description else ""
        return "refuse", f"scan {scan.status} for {image}{detail}"
    ceiling = severity_rank(gate.max_severity)
    above = {s: n for s, n in sorted(scan.counts.items()) if n > 0 and severity_rank(s) > ceiling}
    if above:
        listed = ", ".join(f"{n} {s}" for s, n in sorted(above.items(), key=lambda i: -severity_rank(i[0])))
        return "refuse", f"{image} has findings above {gate.max_severity}: {listed}"
    return "pass", ""


HookAction = Literal["CONTINUE", "ROLLBACK", "WAIT"]


@dataclass(frozen=True)
class AlarmState:
    """What the shared alarm gate (``aws.alarms.alarm_gate``) found, reduced to what a hook needs."""

    quiet: bool
    reasons: Sequence[str] = ()
    firing: Sequence[str] = ()


@dataclass(frozen=True)
class HookDecision:
    """What a paused deployment's hook gets, and why (every reason, in order)."""

    action: HookAction
    reasons: tuple[str, ...] = ()


def hook_decision(
    gates: Gates | None,
    scans: Sequence[tuple[ScanVerdict, str]] = (),
    alarms: AlarmState | None = None,
) -> HookDecision:
    """Decide a hook from the evaluated gates.

    - ROLLBACK when the gates decide against it: an image refused by the scan, an alarm in
      ALARM now;
    - WAIT (for ``approve`` / ``reject``) when they cannot decide yet (a scan not complete,
      alarms not quiet long enough, an alarm that does not exist), when ``approval: true``,
      or when the service has no gates at all (a pause hook ecspilot was given nothing to judge);
    - CONTINUE when every configured gate passes and no approval is asked.
    """
    if gates is None:
        return HookDecision("WAIT", ("no gates configured for this service: waiting for approval",))
    refused = [reason for verdict, reason in scans if verdict == "refuse"]
    firing = [f"alarm {name} is in ALARM" for name in (alarms.firing if alarms else ())]
    if refused or firing:
        return HookDecision("ROLLBACK", tuple(refused + firing))
    waiting = [reason for verdict, reason in scans if verdict == "pending"]
    if alarms is not None and not alarms.quiet:
        waiting += list(alarms.reasons) or ["alarms not quiet long enough"]
    if gates.approval:
        waiting.append("approval required (gates.approval)")
    if waiting:
        return HookDecision("WAIT", tuple(waiting))
    return HookDecision("CONTINUE", ("every gate passed",))
