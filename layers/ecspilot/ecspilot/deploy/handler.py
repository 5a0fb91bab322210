"""The deploy flow's entry points: the only deploy module that knows the process ``Runtime``.

- :func:`handle_push_event`: the ``deploy_on_push`` function (an ECR Image Action event);
- :func:`reconcile_catch_up`: the reconcile part ``(runtime, dry_run) -> list[Action]``.

Each unpacks the runtime into what the core takes (config, clients, history, settings values).
"""

from __future__ import annotations

from typing import Any

from ecspilot.deploy.catchup import catch_up
from ecspilot.deploy.runbook import deploy_push
from ecspilot.domain.envelope import parse_event
from ecspilot.domain.events import EcrImageActionEvent
from ecspilot.domain.images import short_digest
from ecspilot.domain.plan import Action
from ecspilot.interfaces.origins import untrusted_reason
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import count, logger


def handle_push_event(event: Any, runtime: Runtime, dry_run: bool = False) -> dict[str, Any]:
    """The ``deploy_on_push`` flow: parse an ECR Image Action event and deploy it."""
    parsed = parse_event(EcrImageActionEvent, event, "ECR Image Action")
    untrusted = untrusted_reason(runtime.settings, parsed.account, parsed.region, "ECR Image Action")
    if untrusted:
        return {"ignored": untrusted}
    reason = parsed.ignore_reason()
    if reason:
        logger.info(
            "event ignored",
            reason=reason,
            repository=parsed.detail.repository_name,
            image_digest=short_digest(parsed.detail.image_digest),
        )
        count("EventsIgnored")
        return {"ignored": reason}
    result = deploy_push(
        parsed.to_push(),
        runtime.config,
        runtime.clients,
        runtime.history,
        max_workers=runtime.settings.max_workers,
        dry_run=dry_run,
    )
    return result.as_dict()


def reconcile_catch_up(runtime: Runtime, dry_run: bool = False) -> list[Action]:
    """The reconcile part: deploy what a missed push would have deployed (one action per
    followed service and job)."""
    return catch_up(
        runtime.config, runtime.clients, runtime.history, runtime.settings.max_workers, dry_run=dry_run
    )
