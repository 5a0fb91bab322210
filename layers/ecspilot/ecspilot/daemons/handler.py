"""The daemons' entry point: the reconcile part, the only place that reads the process ``Runtime``."""

from __future__ import annotations

from ecspilot.daemons.runbook import DaemonReconciler
from ecspilot.domain.plan import Action
from ecspilot.interfaces.runtime import Runtime
from ecspilot.stopping.handler import deferrals_of


def reconcile_daemons(rt: Runtime, dry_run: bool) -> list[Action]:
    """The reconcile part for daemons: plan, and unless ``dry_run`` apply, every configured daemon."""
    if not rt.config.daemons:
        return []
    deferrals = deferrals_of(rt)  # windows and freezes (issue 25)
    return DaemonReconciler(rt.clients, rt.settings.max_workers).run(rt.config.daemons, dry_run, deferrals)
