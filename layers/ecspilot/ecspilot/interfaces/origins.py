"""Which AWS accounts and regions ecspilot takes events from. Pure.

An EventBridge event names the account and region it comes from. ecspilot acts on them (an
ECR push pins ``<account>.dkr.ecr.<region>...``), so an event from anywhere else is ignored:
the rules filter on ``account`` and ``region`` in ``template.yaml``, and the code checks again
here, so a rule edited by hand, a forwarded event or a direct invoke cannot widen the set.
The tracker also takes the ECS events of the config's ``accounts`` (forwarded to ecspilot's bus
by the member template): :func:`promotion_origins`.

The trusted set is the function's own account and region (settings, from the environment the
template sets: no STS call). It is a set so a later config key (``accounts:``) can add more.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ecspilot.domain.config import EcspilotConfig
from ecspilot.interfaces.settings import Settings
from ecspilot.obs import count, logger
from ecspilot.records import dataclass


@dataclass(frozen=True)
class TrustedOrigins:
    """The (account, region) pairs events may come from."""

    pairs: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str | None, str | None]]) -> TrustedOrigins:
        """Keep only complete pairs: an unknown account or region trusts nothing (fail closed)."""
        return cls(frozenset((a, r) for a, r in pairs if a and r))

    @classmethod
    def from_settings(cls, settings: Settings, extra: Iterable[tuple[str, str]] = ()) -> TrustedOrigins:
        """The function's own account and region, plus ``extra`` pairs."""
        return cls.of([(settings.account_id, settings.region), *extra])

    def why_untrusted(self, account: str, region: str) -> str | None:
        """None when ``account``/``region`` is trusted, else the reason to ignore the event."""
        if (account, region) in self.pairs:
            return None
        if not self.pairs:
            return "no trusted account is configured (set ECSPILOT_ACCOUNT_ID and AWS_REGION)"
        return f"event from untrusted origin account {account} region {region}"


def promotion_origins(config: EcspilotConfig) -> list[tuple[str, str | None]]:
    """The configured accounts (issue 13) as ``(account id, region)``; a None region is
    ecspilot's own. Only the tracker takes events from them (their ECS events, forwarded)."""
    return [(a.account_id, a.region) for a in config.accounts.values()]


def untrusted_reason(
    settings: Settings,
    account: str,
    region: str,
    kind: str,
    accounts: Iterable[tuple[str, str | None]] = (),
) -> str | None:
    """Check an event's origin against ``settings`` (and the configured ``accounts``, for the
    tracker); log and count an untrusted one.

    Returns the reason to ignore the event, or None when it may be acted on.
    """
    extra = [(a, r or settings.region or "") for a, r in accounts]
    reason = TrustedOrigins.from_settings(settings, extra).why_untrusted(account, region)
    if reason is not None:
        logger.warning(
            "event from an untrusted origin ignored",
            event_kind=kind,
            event_account=account,
            event_region=region,
            reason=reason,
        )
        count("EventsUntrustedOrigin")
    return reason


#: the fields of an ECS event's ``detail`` that name ECS resources (issue 24)
ARN_FIELDS = ("serviceArn", "clusterArn", "taskArn", "serviceDeploymentArn")


def foreign_arn(event: Any, account: str, region: str) -> str | None:
    """The first ECS ARN in ``event`` (``resources``, the ``detail`` fields of :data:`ARN_FIELDS`)
    that names another account or region than the event's own, or None (pure). An event of one
    account may only speak of that account's resources: a member account's event naming
    ecspilot's own service is not taken."""
    if not isinstance(event, dict):
        return None
    raw = event.get("detail")
    detail: dict[str, Any] = raw if isinstance(raw, dict) else {}
    resources = event.get("resources")
    named = [*(resources if isinstance(resources, list) else []), *(detail.get(f) for f in ARN_FIELDS)]
    for arn in named:
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            continue
        parts = arn.split(":", 5)
        if len(parts) < 6 or parts[2] != "ecs":
            continue
        if (parts[4], parts[3]) != (account, region):
            return arn
    return None


def foreign_arn_reason(event: Any, account: str, region: str, kind: str) -> str | None:
    """:func:`foreign_arn`, logged and counted; the reason to ignore the event, or None."""
    arn = foreign_arn(event, account, region)
    if arn is None:
        return None
    reason = f"event of account {account} region {region} names a resource elsewhere: {arn[:300]}"
    logger.warning("event naming another account's resource ignored", event_kind=kind, reason=reason)
    count("EventsUntrustedOrigin")
    return reason


__all__ = ["TrustedOrigins", "foreign_arn", "foreign_arn_reason", "promotion_origins", "untrusted_reason"]
