"""Where ``ecspilot status`` reads each configured service: its account's clients and its key in
the state table (issues 13 and 16).

A service without ``account`` is read with ecspilot's own clients and keyed ``(cluster, service)``.
A service with ``account: prod`` lives in that account and region: it is read with the clients of
the account's assumed role (:class:`~ecspilot.aws.accounts.AccountSessions`: one ``AssumeRole``
per role and region per status run, whatever the number of its services), and its records are
keyed ``(cluster, "<service>@<account id>:<region>")``, as the deployer and the tracker write them
(:func:`~ecspilot.domain.keys.state_keys`). A role that cannot be assumed is that
account's services' problem only: their rows say why, the rest of status still shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ecspilot.aws.accounts import AccountSessions
from ecspilot.aws.clients import Clients
from ecspilot.domain.config import EcspilotConfig, ServiceConfig
from ecspilot.domain.keys import state_keys
from ecspilot.errors import AccountAccessError
from ecspilot.records import dataclass


@dataclass(frozen=True)
class Place:
    """Where one configured service is read from, and under which key its records are."""

    clients: Clients | None  # None: its account's role could not be assumed (see ``problem``)
    cluster: str  # the state table's key: (cluster, service)
    state_service: str
    account: str = ""  # the config's account name ("": ecspilot's own)
    account_id: str = ""
    region: str = ""  # the account's region ("": ecspilot's own)
    problem: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.cluster, self.state_service

    @property
    def where(self) -> str:
        """``prod (222222222222 eu-west-1)`` for a service in another account, else ``""``."""
        if not self.account:
            return ""
        return f"{self.account} ({' '.join(p for p in (self.account_id, self.region) if p)})"


def own_places(config: EcspilotConfig) -> dict[str, Place]:
    """Every service read with the given (own) clients under its plain key: the places of a
    caller that knows nothing of accounts (kept for them)."""
    return {s.name: Place(None, s.cluster, s.service_name) for s in config.services}


def service_places(
    config: EcspilotConfig,
    own: Clients,
    sessions: AccountSessions,
    own_origin: tuple[str | None, str | None],
    services: Iterable[ServiceConfig] | None = None,
) -> dict[str, Place]:
    """Each service's place (by service name); ``own_origin`` is ecspilot's (account id, region).
    One AssumeRole per account (a refused one is not asked again in the same run)."""
    keys = state_keys(config, own_origin)
    refused: dict[str, str] = {}
    out: dict[str, Place] = {}
    for svc in config.services if services is None else services:
        cluster, state_service = keys[svc.name]
        if svc.account is None:
            out[svc.name] = Place(own, cluster, state_service)
            continue
        account = config.accounts.get(svc.account)
        region = sessions.region_of(account)
        problem = refused.get(svc.account, "")
        clients: Clients | None = None
        if not problem:
            try:
                clients = sessions.clients(svc.account, config.accounts)
            except AccountAccessError as exc:
                problem = refused[svc.account] = f"account {svc.account} unreachable: {exc}"
        account_id = account.account_id if account else ""
        out[svc.name] = Place(clients, cluster, state_service, svc.account, account_id, region, problem)
    return out


def by_clients(
    services: Sequence[ServiceConfig], places: Mapping[str, Place]
) -> list[tuple[Clients | None, list[ServiceConfig]]]:
    """The reachable services grouped by the clients that read them (one batch of reads per
    account and region); None: the caller's own clients."""
    groups: dict[int, tuple[Clients | None, list[ServiceConfig]]] = {}
    for svc in services:
        place = places[svc.name]
        if not place.problem:
            groups.setdefault(id(place.clients), (place.clients, []))[1].append(svc)
    return list(groups.values())


__all__ = ["Place", "by_clients", "own_places", "service_places"]
