"""``ecspilot rollback SERVICE [--dry-run] [--reason TEXT]``: the verb over
:mod:`ecspilot.deploy.rollback` (presentation only)."""

from __future__ import annotations

import argparse
from typing import Any

from ecspilot.deploy.rollback import rollback
from ecspilot.domain.config import EcspilotConfig, ServiceConfig
from ecspilot.domain.images import short_digest
from ecspilot.errors import ConfigError
from ecspilot.interfaces.cli_status import require_table
from ecspilot.interfaces.present import as_json, say


def configured_service(config: EcspilotConfig, name: str) -> ServiceConfig:
    """The configured service NAME names: its configured name first (``web`` and ``web-prod`` may
    both run an ECS service ``web``), else its ECS service name or CLUSTER/SERVICE when that is
    one service only. A service in another account is refused (its rollback would need that
    account's role and the keys of its records: not built yet)."""
    exact = [s for s in config.services if s.name == name]
    matches = exact or [
        s for s in config.services if name in (s.service_name, f"{s.cluster}/{s.service_name}")
    ]
    if not matches:
        raise ConfigError(f"{name!r} is not a configured service")
    if len(matches) > 1:
        names = ", ".join(s.name for s in matches)
        raise ConfigError(f"{name!r} names several configured services ({names}): give the configured name")
    [svc] = matches
    if svc.account:
        raise ConfigError(
            f"{svc.name} lives in account {svc.account!r}: rollback acts on ecspilot's own account only "
            "(roll it back from its source, or with `ecspilot promote --digest ... --force`)"
        )
    return svc


def run_rollback(rt: Any, args: argparse.Namespace) -> int:
    """Roll the service back (or, with ``--dry-run``, say how); 0 when done."""
    svc = configured_service(rt.config, args.service)  # bad input before any AWS call
    require_table(rt)  # the hold and the record live in the state table
    result = rollback(svc, rt.clients, rt.history, reason=args.reason or "", dry_run=args.dry_run)
    if args.output == "json":
        as_json(result.as_dict())
        return 0
    say(result.summary())
    if result.held:
        verb = "would hold" if result.dry_run else "held"
        say(
            f"{verb} {', '.join(short_digest(d) for d in result.held)}: a redelivered push or catch-up "
            "of it is not deployed again"
        )
    if result.deployment_id:
        say(f"ECS deployment {result.deployment_id} (record trigger rollback)")
    return 0
