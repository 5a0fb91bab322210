"""The signature gate's verdict, pure (issue 27): an image passes when ECR reports a COMPLETE
signature by one of the service's listed signing profiles.

- COMPLETE for a listed profile: ``pass`` (whatever the other profiles say);
- else IN_PROGRESS for a listed profile: ``deferred`` (asked again shortly, never deployed
  unsigned);
- else FAILED for a listed profile: ``refused`` with ECR's failure code and reason;
- else (no status for any listed profile, or none at all): ``refused``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

SignatureVerdict = Literal["pass", "deferred", "refused"]


def _profile_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def signature_verdict(
    profiles: Sequence[str], statuses: Sequence[Mapping[str, Any]]
) -> tuple[SignatureVerdict, str]:
    """The verdict on an image whose signing ``statuses`` ECR reported, and its reason."""
    listed = [s for s in statuses if s.get("signingProfileArn") in profiles]
    if any(s.get("status") == "COMPLETE" for s in listed):
        return "pass", ""
    pending = [s for s in listed if s.get("status") == "IN_PROGRESS"]
    if pending:
        names = ", ".join(sorted(_profile_name(str(s["signingProfileArn"])) for s in pending))
        return "deferred", f"signing by {names} is IN_PROGRESS: deployed once COMPLETE, never unsigned"
    failed = [s for s in listed if s.get("status") == "FAILED"]
    if failed:
        why = "; ".join(
            f"{_profile_name(str(s['signingProfileArn']))}: {s.get('failureCode') or 'FAILED'}"
            + (f" ({s['failureReason']})" if s.get("failureReason") else "")
            for s in failed
        )
        return "refused", f"signing FAILED: {why}"
    wanted = ", ".join(_profile_name(p) for p in profiles)
    others = sorted({_profile_name(str(s.get("signingProfileArn", ""))) for s in statuses})
    tail = f" (ECR reports only {', '.join(others)})" if others else ""
    return "refused", f"not signed by {wanted}: no signing status{tail}"
