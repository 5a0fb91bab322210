"""``ecspilot plan``: the reconcile dry run, or ``--event FILE``: what the function that handles
that event would do, as a dry run (reads only, never a write call).

Every event ecspilot handles is recognised by its shape (:func:`event_function`): an ECR push
(``deploy_on_push``), an ECS deployment or task state change (``track_deployments``), the
Scheduler payload (``run_job``), an SQS batch (``run_queued_jobs``), and the reconcile triggers
(CloudTrail drift events, other EventBridge events, the rate schedule's input, a custom resource).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ecspilot.errors import EventError
from ecspilot.interfaces.present import as_json, counted, say, table
from ecspilot.interfaces.runtime import Runtime

TRACKED = ("ECS Deployment State Change", "ECS Task State Change", "ECS Hook State Change")
#: where a Scheduler schedule's target would be before the stack is deployed
NOT_DEPLOYED = "arn:aws:lambda:{region}:{account}:function:ecspilot-run-job (not deployed yet)"
CHANGES = (
    "would-deploy",
    "would-run",
    "would-register",
    "would-move",
    "would-record",
    "would-answer",
    "would-wait",
    "deferred",  # issue 25: a change, for later (a window or a freeze)
    "create",
    "update",
    "delete",
)


def read_event(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EventError(f"cannot read event {path}: {exc}") from exc


def event_function(event: Any) -> str:
    """The function that handles ``event`` (pure), or :class:`EventError` for anything else."""
    if not isinstance(event, dict):
        raise EventError(f"not an event ecspilot handles: a JSON {type(event).__name__}, not an object")
    detail_type = event.get("detail-type")
    if detail_type == "ECR Image Action":
        return "deploy_on_push"
    if detail_type in TRACKED:
        return "track_deployments"
    records = event.get("Records")
    if (
        isinstance(records, list)
        and records
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    ):
        return "run_queued_jobs"
    if "job" in event and "detail-type" not in event:
        return "run_job"
    if (
        event in ({}, {"trigger": "schedule"}, {"trigger": "reopen"})
        or "detail-type" in event
        or "source" in event
        or "RequestType" in event
    ):
        return "reconcile"
    raise EventError(
        "not an event ecspilot handles: expected an ECR push, an ECS deployment, task or hook state "
        'change, a Scheduler payload {"job": ...}, an SQS batch {"Records": [...]}, or a reconcile '
        "trigger (a CloudTrail event, the schedule's {})"
    )


def without_schedule_target(rt: Runtime) -> tuple[Runtime, str | None]:
    """Before the stack is deployed there is no run_job to target: plan the schedules against a
    placeholder, and say so (the note), instead of failing the schedules part."""
    if not any(j.owns_schedule for j in rt.config.jobs) or (
        rt.settings.run_job_arn and rt.settings.scheduler_role_arn
    ):
        return rt, None
    placeholder = NOT_DEPLOYED.format(
        region=rt.settings.region or "REGION", account=rt.settings.account_id or "ACCOUNT"
    )
    settings = dataclasses.replace(
        rt.settings,
        run_job_arn=rt.settings.run_job_arn or placeholder,
        scheduler_role_arn=rt.settings.scheduler_role_arn or placeholder.replace("function:", "role/"),
    )
    note = (
        "note: ECSPILOT_RUN_JOB_ARN / ECSPILOT_SCHEDULER_ROLE_ARN are not set (stack not deployed?): "
        "schedules are shown without their run_job target"
    )
    return dataclasses.replace(rt, settings=settings), note


def plan_reconcile(rt: Runtime, output: str, event: Any = None) -> tuple[dict[str, Any], bool]:
    """The reconcile dry run (``event``: the trigger, checked as the function checks it)."""
    from ecspilot.reconcile.handler import trigger_of  # noqa: PLC0415
    from ecspilot.reconcile.runbook import reconcile  # noqa: PLC0415

    if isinstance(event, dict) and ("RequestType" in event or "ResponseURL" in event):
        from ecspilot.reconcile.custom_resource import parse_request  # noqa: PLC0415

        parse_request(event)  # refused as the function refuses it (issue 24: the ResponseURL)
    elif isinstance(event, dict) and event.get("detail-type") == "CloudWatch Alarm State Change":
        return _plan_alarm(rt, event, output)
    elif event is not None:
        trigger = trigger_of(event, rt)
        if isinstance(trigger, dict):
            return _ignored("reconcile", trigger, output), False
    rt, note = without_schedule_target(rt)
    result = reconcile(rt, dry_run=True)
    changed = any(a.change in CHANGES for a in result.actions)
    data = {"function": "reconcile", **result.as_dict(), **({"note": note} if note else {})}
    if output == "json":
        as_json(data)
        return data, changed
    say("dry run: what reconcile would change")
    table([a.__dict__ for a in result.actions], ["kind", "target", "change", "detail"])
    say(counted(result.summary()) or "nothing to do")
    if note:
        say(note)
    return data, changed


def _plan_alarm(rt: Runtime, event: dict[str, Any], output: str) -> tuple[dict[str, Any], bool]:
    """An incident alarm's event (issue 25): ignored as the function ignores it, else the state
    it would record on the incident freeze (which starts on ALARM, and lifts once every listed
    alarm is OK for the quiet time)."""
    from ecspilot.stopping.handler import incident_alarm  # noqa: PLC0415

    parsed = incident_alarm(event, rt)
    if isinstance(parsed, dict):
        return _ignored("reconcile", parsed, output), False
    alarm, state = parsed.detail.alarm_name, parsed.detail.state.value
    detail = f"alarm {alarm} in {state}: the incident freeze " + (
        "starts (if not on already)" if state == "ALARM" else "lifts once every listed alarm is OK"
    )
    data = {"function": "reconcile", "dry_run": True, "alarm": alarm, "state": state}
    data |= {"change": "would-record", "detail": detail}
    if output == "json":
        as_json(data)
    else:
        say(f"dry run: reconcile would record {detail}")
    return data, True


def _ignored(function: str, result: Mapping[str, Any], output: str) -> dict[str, Any]:
    data = {"function": function, **result}
    if output == "json":
        as_json(data)
    else:
        say(f"{function}: event ignored: {result['ignored']}")
    return data


def plan_event(rt: Runtime, event: Any, output: str) -> tuple[dict[str, Any], bool]:
    """Dispatch ``event`` to its function's dry run; returns what it would do and whether that
    changes anything."""
    function = event_function(event)
    if function == "reconcile":
        return plan_reconcile(rt, output, event)
    if function == "deploy_on_push":
        from ecspilot.deploy.handler import handle_push_event  # noqa: PLC0415

        result = handle_push_event(event, rt, dry_run=True)
    elif function == "run_job":
        from ecspilot.jobs.handler import handle_run_job_event  # noqa: PLC0415

        result = handle_run_job_event(event, rt, dry_run=True)
    elif function == "run_queued_jobs":
        from ecspilot.queue.handler import queue_batch  # noqa: PLC0415

        outcomes = queue_batch(rt, dry_run=True).process(list(event["Records"]))
        result = {"messages": [dataclasses.asdict(o) for o in outcomes.values()]}
    else:
        from ecspilot.interfaces.tracking_preview import preview  # noqa: PLC0415

        result = preview(event, rt)
    if "ignored" in result:
        return _ignored(function, result, output), False
    data = {"function": function, **result}
    changed = any(value in CHANGES for value in _outcomes(function, result))
    if output == "json":
        as_json(data)
    else:
        show(function, result)
    return data, changed


#: what a row of a dry run says when that part could not be planned (a read failed)
FAILED = ("error", "failed", "retry")


def failures(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a plan that failed, as ``{"target", "detail"}`` (exit 1)."""
    out = [
        {"target": a.get("target", ""), "detail": a.get("detail", "")}
        for a in data.get("actions", [])
        if a.get("change") == "error"
    ]
    for s in data.get("services", []):
        if s.get("outcome") in FAILED:
            out.append({"target": f"{s.get('cluster')}/{s.get('service')}", "detail": s.get("reason", "")})
    for m in data.get("messages", []):
        if m.get("outcome") in FAILED:
            out.append({"target": f"message {m.get('message_id')}", "detail": m.get("reason", "")})
    for m in data.get("moves", []):
        if m.get("change") in FAILED:
            out.append({"target": str(m.get("record", "")), "detail": m.get("detail", "")})
    if data.get("function") == "run_job" and data.get("outcome") in FAILED:
        out.append({"target": f"job {data.get('job')}", "detail": data.get("reason", "")})
    return out


def _outcomes(function: str, result: Mapping[str, Any]) -> list[str]:
    if function == "deploy_on_push":
        return [str(s.get("outcome")) for s in result.get("services", [])]
    if function == "run_queued_jobs":
        return [str(m.get("outcome")) for m in result["messages"]]
    if function == "run_job":
        return [str(result.get("outcome"))]
    return [str(m.get("change")) for m in result.get("moves", [])]


def show(function: str, result: Mapping[str, Any]) -> None:
    """The table form of a function's dry run."""
    if function == "deploy_on_push":
        say(
            f"dry run of deploy_on_push: push {result['repository']}:{result['tag']} ({result['digest'][:19]})"
        )
        rows = [
            {
                **s,
                "from": s["from_task_definition"].rsplit("/", 1)[-1],
                "containers": ",".join(s["containers"]),
            }
            for s in result["services"]
        ]
        table(rows, ["name", "cluster", "service", "containers", "outcome", "from", "reason", "until"])
    elif function == "run_job":
        td = str(result.get("task_definition", "")).rsplit("/", 1)[-1]
        say(f"dry run of run_job: job {result['job']} ({result['trigger']}): {result['outcome']} ({td})")
        if result.get("reason"):
            say(f"  {result['reason']}")
    elif function == "run_queued_jobs":
        say(f"dry run of run_queued_jobs: {len(result['messages'])} message(s)")
        table(list(result["messages"]), ["message_id", "job", "outcome", "reason"])
    else:
        say(f"dry run of track_deployments: {result['summary']}")
        table(list(result.get("moves", [])), ["record", "from", "to", "change"])
