"""A service's deployment gates (``gates:``): alarms quiet for a while, an image scan ceiling,
a human approval. Pure models; the decisions that use them are in :mod:`ecspilot.domain.gates`.

.. code-block:: yaml

    gates:
      alarms: {names: [web-5xx, web-latency], quiet_minutes: 10}
      # or, quiet for the default 10 minutes:  alarms: [web-5xx, web-latency]
      image_scan: {max_severity: HIGH}     # CRITICAL findings refuse the image
      approval: true                       # a paused deployment waits for `ecspilot approve`
      signature: {profiles: [arn:aws:signer:us-east-1:123456789012:/signing-profiles/release]}
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pydantic import Field, field_validator
else:
    from ecspilot.domain.modeling import Field, field_validator

from ecspilot.domain.config.base import Model

# ECR's severities, lowest first (basic scanning and Amazon Inspector's enhanced scanning share
# them). UNDEFINED (basic) and UNTRIAGED (enhanced) carry no severity: they rank as INFORMATIONAL,
# so they never refuse an image by themselves (documented in README, "gates").
SEVERITIES: tuple[str, ...] = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
UNRANKED: frozenset[str] = frozenset({"UNDEFINED", "UNTRIAGED"})
Severity = Literal["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


class AlarmsGate(Model):
    """CloudWatch alarms that must have stayed out of ALARM for ``quiet_minutes``."""

    names: list[str] = Field(min_length=1, max_length=100)
    quiet_minutes: int = Field(default=10, ge=0, le=1440)

    @field_validator("names")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or len(name) > 255:
                raise ValueError(f"{name!r} is not a CloudWatch alarm name (1 to 255 characters)")
        if len(set(value)) != len(value):
            raise ValueError("an alarm is listed twice")
        return value


class ImageScanGate(Model):
    """Refuse an image whose ECR scan found anything above ``max_severity``."""

    max_severity: Severity


# AWS Signer signing profile ARNs, as ECR's DescribeImageSigningStatus documents them
SIGNING_PROFILE_RE = re.compile(
    r"arn:aws(-[a-z]+)*:signer:[a-z0-9-]+:[0-9]{12}:/signing-profiles/[a-zA-Z0-9_]{2,}"
)


class SignatureGate(Model):
    """The image must carry a COMPLETE ECR managed signature by one of ``profiles`` (issue 27)."""

    profiles: list[str] = Field(min_length=1, max_length=20)

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: list[str]) -> list[str]:
        for arn in value:
            if len(arn) > 200 or not SIGNING_PROFILE_RE.fullmatch(arn):
                raise ValueError(
                    f"{arn!r} is not a signing profile ARN "
                    "(arn:aws:signer:<region>:<account>:/signing-profiles/<name>)"
                )
        if len(set(value)) != len(value):
            raise ValueError("a signing profile is listed twice")
        return value


class Gates(Model):
    """The gates a paused deployment (and, for ``image_scan``, any push) must pass."""

    alarms: AlarmsGate | None = None
    image_scan: ImageScanGate | None = None
    approval: bool = False
    signature: SignatureGate | None = None  # deploy/signature_gate.py

    @field_validator("alarms", mode="before")
    @classmethod
    def _alarm_list(cls, value: object) -> object:
        """``alarms: [a, b]`` is short for ``alarms: {names: [a, b]}`` (the default quiet time),
        the same list form ``promote.alarms`` takes."""
        return {"names": value} if isinstance(value, list) else value


def severity_rank(severity: str) -> int:
    """0 (INFORMATIONAL, and the unranked UNDEFINED / UNTRIAGED) to 4 (CRITICAL); an unknown
    severity a future scanner may add ranks as CRITICAL: refused rather than waved through."""
    if severity in UNRANKED:
        return 0
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1
