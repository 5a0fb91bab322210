"""Reconcile's ``deployments`` part, paused hooks: a deployment paused at a pause hook whose
``ECS Hook State Change`` event never arrived (or whose invocation died) is found from ECS and
answered, so a lost event costs at most one reconcile period.

For each configured service with ``gates`` in ecspilot's own account and region:

1. ECS's view (:func:`ecspilot.tracking.ecs_hooks.ecs_view`): ListServiceDeployments IN_PROGRESS,
   DescribeServiceDeployments, the hooks AWAITING_ACTION. ECS unreadable: one ``error`` action;
2. the records WAITING whose hook ECS no longer awaits follow ECS (answered from the console,
   timed out): :func:`ecspilot.tracking.ecs_hooks.follow`;
3. each hook awaiting an answer, by its record: none (the event was lost) or RETRY -> the tracker
   claims it, evaluates the gates and answers, or records it WAITING and notifies (once: a WAITING
   hook is not notified again); WAITING -> ``in-sync``, waiting for ``approve`` / ``reject``;
   held by an invocation -> ``in-sync``.

In a dry run nothing is written or answered: the gates are evaluated (reads only) and each hook
that would be answered is one ``update`` action reading ``would-answer`` or ``would-wait``.
"""

from __future__ import annotations

from ecspilot.aws.hook_state import hook_key
from ecspilot.domain.plan import Action
from ecspilot.tracking.ecs_hooks import ecs_view, fields_of, follow
from ecspilot.tracking.hooks import HookTracker

KIND = "hook"


def reconcile_paused(tracker: HookTracker, dry_run: bool) -> list[Action]:
    """The paused hooks of the gated services (see the module docstring): one action each."""
    actions: list[Action] = []
    for svc in tracker.config.services:
        if svc.gates is None or svc.account is not None:
            continue
        target = f"{svc.cluster}/{svc.service_name}"
        awaiting = ecs_view(tracker.clients, svc)
        if awaiting is None:
            actions.append(Action(KIND, target, "error", "paused hooks not read from ECS"))
            continue
        for item, status, decided_by in follow(tracker.clients, tracker.records, svc, awaiting, dry_run):
            word = "would-move" if dry_run else "moved"
            detail = f"{word} hook {item.get('hook_id')} WAITING -> {status} ({decided_by}, per ECS)"
            actions.append(Action(KIND, target, "update", detail, applied=not dry_run))
        for hook in awaiting:
            what = f"hook {hook.hook_id} at {hook.lifecycle_stage or 'a pause hook'}"
            record = tracker.records.get(hook_key(svc.cluster, svc.service_name, hook.hook_id))
            status = str(record.get("status") or "")
            if status == "WAITING":
                actions.append(Action(KIND, target, "in-sync", f"{what} waits for approve / reject"))
            elif status not in ("", "RETRY"):
                actions.append(Action(KIND, target, "in-sync", f"{what} is {status}"))
            elif dry_run:
                decision = tracker.evaluate(svc, hook.deployment_arn)
                word = "would-wait" if decision.action == "WAIT" else f"would-answer {decision.action}"
                actions.append(Action(KIND, target, "update", f"{what}: {word}"))
            else:
                out = tracker.paused(svc, fields_of(svc, hook), "reconcile")
                if "ignored" in out:
                    actions.append(Action(KIND, target, "in-sync", str(out["ignored"])))
                    continue
                word = "waits for a person" if out["action"] == "WAIT" else f"answered {out['action']}"
                reasons = "; ".join(out["reasons"]) or "every gate passes"
                actions.append(Action(KIND, target, "update", f"{what} {word}: {reasons}", applied=True))
    return actions
