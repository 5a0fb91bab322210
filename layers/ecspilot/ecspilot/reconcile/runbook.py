"""Reconcile: desired state (config) vs actual (AWS) -> a plan -> apply.

Each concern contributes a *part*: a function ``(runtime, dry_run) -> list[Action]``
that plans its actions and, unless ``dry_run``, applies them. Parts never raise
for one target's failure: they return an ``error`` action and go on, so one
cluster's error never stops the others. The same plan prints as a dry run
(``ecspilot plan``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from ecspilot.domain.plan import Action, ReconcileResult
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import count, logger

Part = Callable[[Runtime, bool], list[Action]]


def parts() -> list[tuple[str, Part]]:
    """The reconcile parts, in order. Imported lazily: each is only loaded when reconcile runs."""
    from ecspilot.daemons.handler import reconcile_daemons  # noqa: PLC0415
    from ecspilot.deploy.handler import reconcile_catch_up  # noqa: PLC0415 - each part imports this module
    from ecspilot.jobs.handler import reconcile_schedules  # noqa: PLC0415
    from ecspilot.promotion.handler import reconcile_promotions  # noqa: PLC0415
    from ecspilot.tracking.handler import reconcile_deployments  # noqa: PLC0415

    return [
        ("daemons", reconcile_daemons),
        ("schedules", reconcile_schedules),
        # first of the deploying parts: open records settled from ECS (a rollback learned here
        # holds its digest) before catch-up and promotion decide anything; a release closed here
        # is promoted now
        ("deployments", reconcile_deployments),
        ("catch-up", reconcile_catch_up),
        ("promotion", reconcile_promotions),
    ]


def run_part(name: str, part: Part, rt: Runtime, dry_run: bool) -> list[Action]:
    """Run one part; whatever it raises (a bug, a network error, throttling past the retries)
    becomes one ``error`` action for that part, logged with its traceback and counted."""
    try:
        return part(rt, dry_run)
    except Exception as exc:  # isolation boundary: reported as an error action
        logger.exception("reconcile part failed", part=name, dry_run=dry_run, error_type=type(exc).__name__)
        count("ReconcilePartFailed")
        return [Action(name, "(part)", "error", f"{name} failed: {type(exc).__name__}: {exc}")]


def reconcile(
    rt: Runtime, dry_run: bool = False, parts_to_run: Sequence[tuple[str, Part]] | None = None
) -> ReconcileResult:
    """Run ``parts_to_run`` (by default every part, :func:`parts`) with what they take, the
    runtime; one part's failure is reported as an error action, the others still run."""
    result = ReconcileResult(dry_run=dry_run)
    rt = dataclasses.replace(rt, invocation={})  # one read of the freezes for every part (issue 25)
    for name, part in parts() if parts_to_run is None else parts_to_run:
        actions = run_part(name, part, rt, dry_run)
        result.actions.extend(actions)
        logger.info("reconcile part done", extra={"part": name, "dry_run": dry_run, "actions": len(actions)})
    for change, n in result.summary().items():
        count(f"Reconcile{change.title().replace('-', '')}", n)
    return result
