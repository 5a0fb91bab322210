"""Clients for the accounts and regions a config names: ``sts:AssumeRole`` credentials (issue 13).

A service with ``account: prod`` lives in the account of ``accounts.prod.role_arn`` (and its
region, default ecspilot's own). Its clients are built from the role's temporary credentials:

- one ``AssumeRole`` per (role, region, external id) per invocation, whatever the number of
  services or threads (a lock per key): the sessions are cached on the function's own
  :class:`Clients`, so a warm Lambda process reuses them until :data:`REFRESH_BEFORE` their expiry;
- ``RoleSessionName`` is ``ecspilot-<function>`` (CloudTrail in the target account names who
  acted), ``ExternalId`` is sent when configured;
- a refusal (AccessDenied), a throttle past botocore's retries or any other failure is one
  :class:`AccountAccessError` for that account: its services fail, the others go on.

A service without ``account`` uses ecspilot's own clients. Each account's clients get their own
ECS rate buckets (``Clients(account=NAME)``): the rate limits are per account and region.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import boto3
import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.domain.config import AccountConfig
from ecspilot.errors import AccountAccessError, error_code, is_transient
from ecspilot.obs import count, logger
from ecspilot.records import dataclass

REFRESH_BEFORE = timedelta(minutes=5)
DURATION_SECONDS = 3600
SessionKey = tuple[str, str, str]  # (role ARN, region, external id)


@dataclass(frozen=True)
class Assumed:
    clients: Clients
    expires: datetime


def session_name(function: str) -> str:
    """``ecspilot-<function>``, within AssumeRole's 64 characters of ``[\\w+=,.@-]``."""
    safe = "".join(ch if ch.isalnum() or ch in "+=,.@-_" else "-" for ch in function)
    return f"ecspilot-{safe}"[:64]


class AccountSessions:
    """The clients of each configured account; see the module docstring."""

    def __init__(
        self,
        own: Clients,
        region: str | None,
        function: str = "cli",
        max_workers: int = 8,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.own = own
        self.region = region
        self.function = function
        self.max_workers = max_workers
        self.clock = clock
        self.assumed_calls = 0  # AssumeRole calls made (the bench and tests read it)
        self._sessions: dict[SessionKey, Assumed] = {}
        self._locks: dict[SessionKey, threading.Lock] = {}
        self._lock = threading.Lock()

    def region_of(self, account: AccountConfig | None) -> str:
        """Where a service of ``account`` lives: its region, else ecspilot's."""
        region = (account.region if account else None) or self.region
        if region:
            return region
        return str(self.own.get("sts").meta.region_name)

    def clients(self, name: str | None, accounts: Mapping[str, AccountConfig]) -> Clients:
        """The clients for a service's ``account`` (None: ecspilot's own clients)."""
        if name is None:
            return self.own
        account = accounts.get(name)
        if account is None:
            raise AccountAccessError(f"account {name!r} is not configured", account=name)
        key = (account.role_arn, self.region_of(account), account.external_id or "")
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one AssumeRole per key, even when a fan-out asks from many threads
            known = self._sessions.get(key)
            if known is not None and known.expires - self.clock() > REFRESH_BEFORE:
                return known.clients
            assumed = self._assume(name, account, key[1])
            self._sessions[key] = assumed
            return assumed.clients

    def _assume(self, name: str, account: AccountConfig, region: str) -> Assumed:
        kwargs = {
            "RoleArn": account.role_arn,
            "RoleSessionName": session_name(self.function),
            "DurationSeconds": DURATION_SECONDS,
        }
        if account.external_id:
            kwargs["ExternalId"] = account.external_id
        self.assumed_calls += 1
        try:
            resp = self.own.get("sts").assume_role(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            count("AssumeRoleErrors")
            logger.error(
                "assuming the account's role failed",
                extra={"account": name, "role_arn": account.role_arn, "error_code": error_code(exc)},
            )
            error = AccountAccessError(
                f"sts:AssumeRole of {account.role_arn} failed: {exc}", account=name, region=region
            )
            error.retryable = is_transient(exc)
            raise error from exc
        creds = resp["Credentials"]
        # the new session copies the own session's event hooks (botocore's built-in handlers and
        # whatever observes the process's calls), then uses the role's credentials
        emitter = self.own.base_session()._session.get_component("event_emitter")
        core = botocore.session.Session(event_hooks=copy.copy(emitter), include_builtin_handlers=False)
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
            botocore_session=core,
        )
        expires = creds["Expiration"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        logger.info("assumed the account's role", extra={"account": name, "region": region})
        clients = Clients(
            session=session,
            region=region,
            max_workers=self.max_workers,
            account=name,
            rates=self.own.limiter.rates,
        )
        return Assumed(clients, expires)


_BY_OWN: weakref.WeakKeyDictionary[Clients, dict[str, AccountSessions]] = weakref.WeakKeyDictionary()
_BY_OWN_LOCK = threading.Lock()


def sessions_of(own: Clients, region: str | None, function: str, max_workers: int = 8) -> AccountSessions:
    """The :class:`AccountSessions` of a process's own clients and a function (one per runtime
    and session name: a warm Lambda process keeps its assumed sessions until near their expiry;
    a process serving several functions, as local runs do, names each one's sessions its own)."""
    with _BY_OWN_LOCK:
        by_function = _BY_OWN.setdefault(own, {})
        found = by_function.get(function)
        if found is None:
            found = AccountSessions(own, region, function, max_workers)
            by_function[function] = found
        return found


__all__ = ["AccountSessions", "session_name", "sessions_of"]
