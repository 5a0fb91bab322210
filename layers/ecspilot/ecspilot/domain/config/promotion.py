"""Promotion across environments and accounts: the ``accounts`` section and a service's
``promote`` (issue 13). Pure models; the cross-checks (unknown ``from``, cycles, unknown
``account``) are in :func:`promotion_problems`, called by the loader with the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from pydantic import Field, field_validator
else:
    from ecspilot.domain.modeling import Field, field_validator

from ecspilot.domain.config.base import Model

ROLE_ARN_RE = re.compile(r"arn:aws[-a-z]*:iam::(?P<account>\d{12}):role/[\w+=,.@/-]{1,512}")
REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]{2,1224}")


class AccountConfig(Model):
    """Another account (and region) ecspilot deploys into, through an assumed role."""

    role_arn: str
    region: str | None = None  # default: ecspilot's own region
    external_id: str | None = None

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str) -> str:
        if not ROLE_ARN_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not REGION_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not an AWS region name")
        return value

    @field_validator("external_id")
    @classmethod
    def _external_id(cls, value: str | None) -> str | None:
        if value is not None and not EXTERNAL_ID_RE.fullmatch(value):
            raise ValueError("external_id must be 2 to 1224 characters of letters, digits and +=,.@:/-")
        return value

    @property
    def account_id(self) -> str:
        """The account the role lives in: where the target's resources are."""
        match = ROLE_ARN_RE.fullmatch(self.role_arn)
        return match.group("account") if match else ""


class PromoteConfig(Model):
    """A service that runs what its source proved: the source's COMPLETED, baked, gated digests."""

    source: str = Field(alias="from")
    bake_minutes: int = Field(default=30, ge=0, le=60 * 24 * 30)
    alarms: list[str] = Field(default_factory=list, max_length=100)
    approval: bool = False

    @field_validator("alarms")
    @classmethod
    def _alarms(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or len(name) > 255:
                raise ValueError(f"{name!r} is not a CloudWatch alarm name (1 to 255 characters)")
        return value


class _Service(Protocol):
    """What the cross-checks read of a service (``schema.ServiceConfig``; no import: a cycle)."""

    @property
    def name(self) -> str: ...
    @property
    def account(self) -> str | None: ...
    @property
    def promote(self) -> PromoteConfig | None: ...


S = TypeVar("S", bound=_Service)


def promotion_problems(
    services: Sequence[_Service], accounts: Mapping[str, AccountConfig]
) -> Iterator[tuple[str, str]]:
    """Problems only the whole file shows: an unknown ``account`` or ``from``, a cycle."""
    names = {svc.name: i for i, svc in enumerate(services)}
    for i, svc in enumerate(services):
        if svc.account is not None and svc.account not in accounts:
            known = ", ".join(sorted(accounts)) or "none configured"
            yield f"services[{i}].account", f"unknown account {svc.account!r} (accounts: {known})"
        if svc.promote is None:
            continue
        if svc.promote.source not in names:
            yield f"services[{i}].promote.from", f"unknown service {svc.promote.source!r}"
            continue
        seen = [svc.name]
        current = svc
        while current.promote is not None and current.promote.source in names:
            nxt = current.promote.source
            if nxt in seen:
                chain = " -> ".join([*seen, nxt])
                yield f"services[{i}].promote.from", f"promotion cycle: {chain}"
                break
            seen.append(nxt)
            current = services[names[nxt]]


def root_of(services: Sequence[S], name: str) -> S | None:
    """The service at the start of ``name``'s promotion chain: the one with containers (pure;
    None when the chain is broken, which validation refuses)."""
    by_name = {svc.name: svc for svc in services}
    current = by_name.get(name)
    seen: set[str] = set()
    while current is not None and current.promote is not None:
        if current.name in seen:
            return None
        seen.add(current.name)
        current = by_name.get(current.promote.source)
    return current


__all__ = ["ROLE_ARN_RE", "AccountConfig", "PromoteConfig", "promotion_problems", "root_of"]
