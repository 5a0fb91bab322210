"""AWS client factory: clients are created lazily, once, with adaptive retries.

Nothing here talks to AWS at import time (moto must start first in tests).
boto3 clients are thread-safe, so one :class:`Clients` serves a whole fan-out.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from ecspilot.aws.limiter import ECS_RATES, Limiter, Rate

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

USER_AGENT = "ecspilot/0.1.0"


def client_config(max_workers: int = 8) -> Config:
    """The botocore config every ecspilot client uses: adaptive retries absorb throttling."""
    return Config(
        retries={"mode": "adaptive", "max_attempts": 10},
        max_pool_connections=max(10, max_workers * 2),
        user_agent_extra=USER_AGENT,
    )


class Clients:
    """Lazily created boto3 clients, one per service, shared by threads.

    Pass ``overrides`` (service name -> client) to inject clients, e.g. a
    client wrapped with botocore's Stubber in tests.

    Every ECS client it makes is paced by :attr:`limiter` (:mod:`ecspilot.aws.limiter`): buckets
    keyed by ``account`` (a label: ``"self"`` for the function's own account, the config's account
    name for an assumed role), the client's region and the operation, shared by the process.
    """

    def __init__(
        self,
        session: boto3.Session | None = None,
        region: str | None = None,
        max_workers: int = 8,
        overrides: dict[str, Any] | None = None,
        account: str = "self",
        rates: Mapping[str, Rate] = ECS_RATES,
        limiter: Limiter | None = None,
    ) -> None:
        self.limiter = limiter or Limiter(account, rates)
        self._session = session
        self._region = region
        self._config = client_config(max_workers)
        self._clients: dict[str, Any] = dict(overrides or {})
        self._injected = frozenset(self._clients)
        self._lock = threading.Lock()

    def base_session(self) -> boto3.Session:
        """The session the clients are made from (created on first use): its event hooks are
        what sessions for other accounts copy (:mod:`ecspilot.aws.accounts`)."""
        with self._lock:
            if self._session is None:
                self._session = boto3.Session(region_name=self._region)
            return self._session

    def get(self, service: str) -> Any:
        """Return the client for ``service``, creating it on first use."""
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                session = self._session or boto3.Session(region_name=self._region)
                self._session = session
                client = session.client(service, config=self._config)  # type: ignore[call-overload]
                self._pace(service, client)
                self._clients[service] = client
            return client

    def single_attempt(self, service: str) -> Any:
        """A client for ``service`` that sends each request once: botocore never retries it.

        For calls that must not be applied twice where a lost reply cannot be told from a
        failure (RunTask: moto does not deduplicate its ``clientToken``; RegisterTaskDefinition:
        a resent request registers a second revision); the caller retries after finding out
        whether the lost attempt was applied. Same session, so the same hooks.
        """
        if service in self._injected:
            return self.get(service)  # an injected client (a Stubber's) answers every call
        key = f"{service}#single-attempt"
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                session = self._session or boto3.Session(region_name=self._region)
                self._session = session
                config = self._config.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))
                client = session.client(service, config=config)  # type: ignore[call-overload]
                self._pace(service, client)
                self._clients[key] = client
            return client

    def _pace(self, service: str, client: Any) -> None:
        if service == "ecs":
            self.limiter.attach(client)

    @property
    def ecs(self) -> ECSClient:
        return self.get("ecs")  # type: ignore[no-any-return]

    @property
    def ecr(self) -> ECRClient:
        return self.get("ecr")  # type: ignore[no-any-return]

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self.get("dynamodb")  # type: ignore[no-any-return]

    @property
    def scheduler(self) -> EventBridgeSchedulerClient:
        return self.get("scheduler")  # type: ignore[no-any-return]

    @property
    def sqs(self) -> SQSClient:
        return self.get("sqs")  # type: ignore[no-any-return]

    @property
    def sns(self) -> SNSClient:
        return self.get("sns")  # type: ignore[no-any-return]

    @property
    def cloudwatch(self) -> Any:
        """CloudWatch (alarm states for the alarm gate); untyped: no stubs are pinned for it."""
        return self.get("cloudwatch")
