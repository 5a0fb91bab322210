"""The text of service health notifications (pure): a crash loop, and the stopped tasks' causes
quoted in a failed deployment's message, each with what to fix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ecspilot.tracking.health_decisions import REPLACEMENTS, most_common_reason, running_digests

#: what to look at, by the kind of replacement (tracking.health_decisions.StopKind)
FIX: dict[str, str] = {
    "elb-health-check": (
        "the load balancer's health check fails on these tasks: make the health check path answer "
        "with the matcher's code within its timeout (`ecspilot status SERVICE` shows path, matcher "
        "and interval), let the load balancer's security group reach the container port, and give "
        "a slow start a healthCheckGracePeriodSeconds longer than it takes"
    ),
    "container-health-check": (
        "the container health check command fails: run it inside the image, and raise its "
        "startPeriod when the application needs longer to start"
    ),
    "out-of-memory": (
        "a container ran out of memory (exit 137 is SIGKILL): raise the task's or the container's "
        "memory, or find what grows"
    ),
    "failed-to-start": (
        "the task never started: check the image reference and that the execution role can pull "
        "it, the secrets it reads, and the subnets' route to ECR"
    ),
    "exited": (
        "an essential container exited: read its logs around the stop time; a service's process "
        "must keep running"
    ),
    "other-failure": "read the stopped task's reason and its containers' logs in the ECS console",
}


def _digests(stops: Sequence[Mapping[str, Any]]) -> str:
    digests = running_digests(stops)
    return ", ".join(f"{name}={digest}" for name, digest in sorted(digests.items())) or "-"


def crash_loop_message(
    cluster: str,
    service: str,
    stops: Sequence[Mapping[str, Any]],
    minutes: int,
    region: str,
    name: str = "",
) -> tuple[str, str]:
    """SNS subject and body of a crash loop: ``stops`` are the window's replacements, oldest first.
    ``service`` is the state table's name (``web@<account>:<region>`` in another account, issue
    13); ``name`` the config's (for ``ecspilot status NAME``)."""
    reason, times = most_common_reason(stops)
    kinds = Counter(str(s.get("kind", "")) for s in stops)
    kind = kinds.most_common(1)[0][0] if kinds else ""
    ecs_name, _, elsewhere = service.partition("@")
    account = f" in account {elsewhere.replace(':', ' ')}" if elsewhere else ""
    console = (
        f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/services/{ecs_name}"
        f"/events?region={region}"
    )
    lines = [
        f"ECS service {ecs_name} on cluster {cluster}{account} is crash-looping: ECS replaced {len(stops)} "
        f"tasks within {minutes} minutes.",
        "",
        f"service:      {cluster}/{service}",
        f"replaced:     {len(stops)} tasks in {minutes} minutes"
        f" ({stops[0].get('stopped_at', '') if stops else ''} .. {stops[-1].get('stopped_at', '') if stops else ''})",
        f"reason:       {reason} ({times} of {len(stops)})",
        f"image:        {_digests(stops)}",
        f"task def:     {str(stops[-1].get('task_definition', '')).rsplit('/', 1)[-1] if stops else '-'}",
        "",
        f"What to fix:  {FIX.get(kind, FIX['other-failure'])}.",
        "",
        f"ECS console:  {console}",
        f"Status:       ecspilot status {name or service}",
        "The next notification comes when this loop has ended and a new one begins.",
    ]
    subject = f"ecspilot: {cluster}/{service} is crash-looping ({len(stops)} tasks replaced in {minutes} min)"
    return subject[:100], "\n".join(lines)


def stops_quote(stops: Sequence[Mapping[str, Any]], limit: int = 3) -> list[str]:
    """Lines quoting why a deployment's tasks were stopped (its replacements only), the most
    common reasons first, and what to fix; empty when none of its tasks was replaced."""
    failed = [s for s in stops if s.get("kind") in REPLACEMENTS]
    if not failed:
        return []
    counts = Counter(str(s.get("reason") or s.get("stopped_reason") or "") for s in failed)
    kinds = Counter(str(s.get("kind", "")) for s in failed)
    lines = ["", f"Why its tasks stopped ({len(failed)} replaced):"]
    lines += [f"  {n} x {reason}" for reason, n in counts.most_common(limit)]
    if len(counts) > limit:
        lines.append(f"  ... and {len(counts) - limit} other reason(s)")
    lines.append(f"What to fix: {FIX.get(kinds.most_common(1)[0][0], FIX['other-failure'])}.")
    return lines
