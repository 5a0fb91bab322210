"""What a handler needs besides its event: settings, config, clients, history.

Built once per process on first use (not at import time) and reused by warm
invocations. Tests and the demo call :func:`reset` to start again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import field
from datetime import UTC, datetime
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.aws.history import History
from ecspilot.aws.limiter import parse_rates
from ecspilot.domain.config import EcspilotConfig
from ecspilot.domain.config.compact import load_compact
from ecspilot.interfaces.settings import Settings
from ecspilot.records import dataclass


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    config: EcspilotConfig
    clients: Clients
    history: History
    # now, for the decisions that depend on the time (issue 25's windows and freezes); tests
    # and the demo inject their own with dataclasses.replace
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # what one invocation reads once and shares between its parts (reconcile sets a fresh one per
    # run: the freezes are read once, whatever part asks first); None: nothing is shared
    invocation: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings | None = None,
        config: EcspilotConfig | None = None,
        clients: Clients | None = None,
    ) -> Runtime:
        """Assemble a runtime; anything not given is built from the environment."""
        settings = settings or Settings.from_env()
        # the compact form validated at build time when it matches the YAML (domain/config/compact.py)
        config = config or load_compact(settings.config_path) or _load_yaml(settings.config_path)
        clients = clients or Clients(region=settings.region, max_workers=settings.max_workers)
        if settings.ecs_rates:  # an account's raised limits pace its calls (ecspilot.aws.limiter)
            clients.limiter.rates = parse_rates(settings.ecs_rates)
        history = History(
            clients.dynamodb if settings.table_name else None, settings.table_name, settings.retention_days
        )
        return cls(settings=settings, config=config, clients=clients, history=history)


def _load_yaml(path: str) -> EcspilotConfig:
    """The YAML config, parsed and validated (no compact form matches it: ``make build`` writes one)."""
    from ecspilot.domain.config.loading import load_config  # noqa: PLC0415 - the slow path only

    return load_config(path)


__all__ = ["Runtime", "Settings", "current", "reset"]

_lock = threading.Lock()
_current: Runtime | None = None


def current() -> Runtime:
    """The process-wide runtime, built on first use."""
    global _current  # noqa: PLW0603 - one runtime per Lambda process, by design
    with _lock:
        if _current is None:
            _current = Runtime.build()
        return _current


def reset(runtime: Runtime | None = None) -> None:
    """Forget the process-wide runtime (or set it): the next :func:`current` rebuilds it."""
    global _current  # noqa: PLW0603
    with _lock:
        _current = runtime
