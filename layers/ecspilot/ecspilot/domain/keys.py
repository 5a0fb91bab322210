"""Where a configured service's records live in the state table: ``(cluster, service)`` keys,
scoped by account and region for a service outside ecspilot's own (two accounts may both have a
``prod/web``). Pure; used by deploy, promotion, the tracker and status alike."""

from __future__ import annotations

from ecspilot.domain.config import EcspilotConfig


def scoped_service(service: str, account_id: str, region: str, own: tuple[str | None, str | None]) -> str:
    """The service's name in the state table's keys: its own in ecspilot's account and region,
    ``<service>@<account>:<region>`` elsewhere (two accounts may both have ``prod/web``)."""
    if (account_id, region) == own or not account_id:
        return service
    return f"{service}@{account_id}:{region}"


def state_keys(config: EcspilotConfig, own: tuple[str | None, str | None]) -> dict[str, tuple[str, str]]:
    """Each configured service's ``(cluster, service)`` in the state table's keys (see
    :func:`scoped_service`); ``own`` is ecspilot's (account id, region)."""
    out = {}
    for svc in config.services:
        account = config.accounts.get(svc.account) if svc.account else None
        if account is None:
            out[svc.name] = (svc.cluster, svc.service_name)
            continue
        region = account.region or own[1] or ""
        out[svc.name] = (svc.cluster, scoped_service(svc.service_name, account.account_id, region, own))
    return out
