"""The text of the tracker's notifications: SNS subject and body of a failed or rolled-back
deployment, and of a failed job run, with a link to the ECS console (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecspilot.domain.taskdef import family_revision
from ecspilot.tracking.health_messages import stops_quote


def console_url(region: str, cluster: str, service: str | None = None, task_arn: str | None = None) -> str:
    base = f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}"
    if task_arn:
        return f"{base}/tasks/{task_arn.rsplit('/', 1)[-1]}/configuration?region={region}"
    return f"{base}/services/{service}/deployments?region={region}"


def deployment_message(
    record: Mapping[str, Any], status: str, region: str, stops: Sequence[Mapping[str, Any]] = ()
) -> tuple[str, str]:
    """SNS subject and body for a deployment that failed or was rolled back; ``stops``: its
    recorded stopped tasks, whose reasons are quoted with what to fix (a circuit breaker that
    tripped on health checks says why)."""
    cluster, service = str(record.get("cluster", "")), str(record.get("service", ""))
    what = "was rolled back" if status == "ROLLED_BACK" else "failed"
    image = "not started by ecspilot (image unknown)"
    if record.get("image_digest"):
        image = f"{record.get('repository', '')}:{record.get('image_tag', '')} ({record['image_digest']})"
    lines = [
        f"The deployment of ECS service {service} on cluster {cluster} {what}.",
        "",
        f"service:        {cluster}/{service}",
        f"image:          {image}",
        f"task def:       {family_revision(str(record.get('to_task_definition', ''))) or '-'}"
        f" (was {family_revision(str(record.get('from_task_definition', ''))) or '-'})",
        f"deployment:     {record.get('deployment_id', '')} ({record.get('trigger', '')})",
        f"started:        {record.get('started_at', '')}",
        f"reason:         {record.get('reason') or '-'}",
    ]
    if record.get("rolled_back_to"):
        lines.append(f"rolled back to: {record['rolled_back_to']} (the last completed deployment)")
    quote = stops_quote(stops)
    lines += [*quote, "", f"ECS console:    {console_url(region, cluster, service=service)}"]
    if status == "FAILED" and not quote:
        lines.append("What to do: look at the stopped tasks' reasons in the console, fix, push again.")
    subject = f"ecspilot: {cluster}/{service} deployment {status.replace('_', ' ').lower()}"
    return subject[:100], "\n".join(lines)


def run_message(record: Mapping[str, Any], region: str) -> tuple[str, str]:
    """SNS subject and body for a failed job run."""
    cluster, job = str(record.get("cluster", "")), str(record.get("job", ""))
    task_arn = str(record.get("task_arn", ""))
    exits = record.get("exit_codes") or {}
    images = record.get("images") or {}
    lines = [
        f"A run of job {job} on cluster {cluster} failed.",
        "",
        f"job:          {job} ({record.get('trigger', '')})",
        f"task:         {task_arn}",
        f"task def:     {family_revision(str(record.get('task_definition', '')))}",
        f"exit codes:   {', '.join(f'{k}={v}' for k, v in exits.items()) or '-'}",
        f"images:       {', '.join(f'{k}={v}' for k, v in images.items()) or '-'}",
        f"stop code:    {record.get('stop_code', '') or '-'}",
        f"reason:       {record.get('reason', '')}",
        f"started:      {record.get('started_at', '')}",
        "",
        f"ECS console:  {console_url(region, cluster, task_arn=task_arn)}",
        f"History:      ecspilot history {job}",
    ]
    return f"ecspilot: job {job} failed"[:100], "\n".join(lines)
