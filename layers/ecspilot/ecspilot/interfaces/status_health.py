"""Service health for ``ecspilot status``: tasks running / desired / pending, the load balancer's
target health and health check (with a note when it is far from sensible), and the tasks ECS
replaced in the last hour (from the tracker's records).

Reads only: ``ecs:DescribeServices`` (through :mod:`ecspilot.aws.ecs_reads`), the service's
revision (``ecs:DescribeTaskDefinition``, for the containers' health check start period),
``elasticloadbalancing:DescribeTargetGroups`` / ``DescribeTargetHealth``
(:mod:`ecspilot.aws.target_health`), and one Query and one GetItem on the state table per service
(:mod:`ecspilot.aws.health_records`). The judgements and the text are pure, table-tested. A
service in another account is read with that account's clients (:mod:`.status_places`) and its
stops under its own state-table key; that account's failures show on its rows only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.aws.ecs_reads import TaskDefinitions, describe_service_batch, service_batches
from ecspilot.aws.health_records import HealthRecords
from ecspilot.aws.history import History
from ecspilot.aws.target_health import target_groups, target_health
from ecspilot.domain.config import EcspilotConfig, ServiceConfig
from ecspilot.errors import AwsError, TargetHealthError
from ecspilot.interfaces.status_places import Place, by_clients, own_places
from ecspilot.records import dataclass

MAX_SENSIBLE_INTERVAL = 60  # seconds between checks; beyond it a dead task serves errors for minutes
STATES = ("healthy", "unhealthy", "draining")


@dataclass
class HealthCheck:
    """A target group's health check, as ELBv2 describes it."""

    protocol: str = ""
    path: str = ""
    port: str = ""
    interval: int = 0
    timeout: int = 0
    healthy_threshold: int = 0
    unhealthy_threshold: int = 0
    matcher: str = ""
    enabled: bool = True

    @classmethod
    def of(cls, group: Mapping[str, Any]) -> HealthCheck:
        matcher = group.get("Matcher") or {}
        return cls(
            protocol=str(group.get("HealthCheckProtocol", "")),
            path=str(group.get("HealthCheckPath", "")),
            port=str(group.get("HealthCheckPort", "")),
            interval=int(group.get("HealthCheckIntervalSeconds", 0)),
            timeout=int(group.get("HealthCheckTimeoutSeconds", 0)),
            healthy_threshold=int(group.get("HealthyThresholdCount", 0)),
            unhealthy_threshold=int(group.get("UnhealthyThresholdCount", 0)),
            matcher=str(matcher.get("HttpCode") or matcher.get("GrpcCode") or ""),
            enabled=bool(group.get("HealthCheckEnabled", True)),
        )

    def summary(self) -> str:
        what = f"{self.protocol} {self.path}".strip() if self.path else self.protocol or "-"
        return (
            f"{what} every {self.interval}s, expects {self.matcher or '(no matcher)'}, "
            f"healthy after {self.healthy_threshold}, unhealthy after {self.unhealthy_threshold}"
        )


@dataclass
class TargetGroupHealth:
    """One target group of a service: its targets' states and its health check."""

    name: str
    arn: str
    healthy: int = 0
    unhealthy: int = 0
    draining: int = 0
    other: int = 0  # initial, unused, unavailable
    reasons: dict[str, int] = field(default_factory=dict)  # reason code -> targets not healthy
    check: HealthCheck | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ServiceHealth:
    """A configured service's health, for ``ecspilot status``."""

    name: str
    cluster: str
    service: str
    account: str = ""  # another account's service (issue 13): "prod (222222222222 eu-west-1)"
    running: int = 0
    desired: int = 0
    pending: int = 0
    grace_period: int | None = None
    target_groups: list[TargetGroupHealth] = field(default_factory=list)
    replaced_last_hour: int | None = None  # None: no state table
    top_reason: str = ""
    crash_loop: bool = False
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- pure judgements ----------------------------------------------------------------------------


def count_targets(descriptions: Sequence[Mapping[str, Any]]) -> TargetGroupHealth:
    """The states of a target group's targets (DescribeTargetHealth), and the reason codes of
    those not healthy."""
    out = TargetGroupHealth(name="", arn="")
    reasons: Counter[str] = Counter()
    for d in descriptions:
        health = d.get("TargetHealth") or {}
        state = str(health.get("State", ""))
        if state in STATES:
            setattr(out, state, getattr(out, state) + 1)
        else:
            out.other += 1
        if state != "healthy":
            reasons[str(health.get("Reason") or state or "unknown")] += 1
    out.reasons = dict(reasons.most_common())
    return out


def check_notes(check: HealthCheck, grace_period: int | None, start_period: int) -> list[str]:
    """What is far from sensible in a load balancer health check for this service.

    ``grace_period``: the service's healthCheckGracePeriodSeconds (None when ECS did not say);
    ``start_period``: the longest health check startPeriod of its containers (0: none)."""
    notes = []
    if not check.enabled:
        notes.append("health checks are disabled: ECS never replaces a task that stops answering")
    if not check.matcher and check.protocol.upper() in ("HTTP", "HTTPS", ""):
        notes.append("no matcher: say which status codes mean healthy (e.g. 200)")
    if check.interval > MAX_SENSIBLE_INTERVAL:
        notes.append(
            f"interval {check.interval}s is long: a broken task serves errors for about "
            f"{check.interval * max(check.unhealthy_threshold, 1)}s before it is replaced"
        )
    grace = grace_period or 0
    if start_period and grace < start_period:
        notes.append(
            f"healthCheckGracePeriodSeconds {grace} is shorter than the container's start period "
            f"{start_period}s: the load balancer may fail tasks that are still starting"
        )
    elif grace == 0:
        notes.append(
            "healthCheckGracePeriodSeconds is 0 behind a load balancer: a slow start fails the "
            "health check and the task is replaced"
        )
    return notes


def start_period(task_definition: Mapping[str, Any]) -> int:
    """The longest container health check ``startPeriod`` of a task definition (0: none)."""
    periods = [
        int((c.get("healthCheck") or {}).get("startPeriod") or 0)
        for c in task_definition.get("containerDefinitions", [])
    ]
    return max(periods, default=0)


def targets_cell(health: ServiceHealth) -> str:
    """``3 healthy, 1 unhealthy (Target.ResponseCodeMismatch)`` over the service's groups."""
    if not health.target_groups:
        return "no load balancer"
    total = {s: sum(getattr(g, s) for g in health.target_groups) for s in (*STATES, "other")}
    parts = [f"{total[s]} {s}" for s in (*STATES, "other") if total[s] or s == "healthy"]
    reasons = Counter[str]()
    for g in health.target_groups:
        reasons.update(g.reasons)
    text = ", ".join(parts)
    return f"{text} ({', '.join(reasons)})" if reasons else text


def health_row(health: ServiceHealth) -> dict[str, str]:
    """One line of the ``status`` health table."""
    replaced = "-" if health.replaced_last_hour is None else str(health.replaced_last_hour)
    notes = [n for g in health.target_groups for n in g.notes]
    note = health.problem or ("CRASH LOOP: " + health.top_reason if health.crash_loop else "")
    note = note or (notes[0] if notes else "")
    return {
        "service": f"{health.cluster}/{health.service}" + (f" @ {health.account}" if health.account else ""),
        "tasks": f"{health.running}/{health.desired}"
        + (f" (+{health.pending} pending)" if health.pending else ""),
        "targets": targets_cell(health),
        "replaced 1h": replaced,
        "note": note,
    }


def detail_lines(health: ServiceHealth) -> list[str]:
    """``ecspilot status SERVICE``: the service's health in full."""
    lines = [
        f"service {health.cluster}/{health.service} ({health.name})"
        + (f" in account {health.account}" if health.account else ""),
        f"  tasks:          {health.running} running / {health.desired} desired / {health.pending} pending",
        f"  grace period:   {health.grace_period or 0}s",  # unset: ECS's default, 0
    ]
    if health.problem:
        lines.append(f"  problem:        {health.problem}")
    for g in health.target_groups:
        lines.append(f"  target group:   {g.name}")
        lines.append(
            f"    targets:      {g.healthy} healthy, {g.unhealthy} unhealthy, {g.draining} draining"
            + (f", {g.other} other" if g.other else "")
        )
        for reason, n in g.reasons.items():
            lines.append(f"    not healthy:  {n} x {reason}")
        if g.check is not None:
            lines.append(f"    health check: {g.check.summary()}")
        lines += [f"    note:         {n}" for n in g.notes]
    if not health.target_groups:
        lines.append("  load balancer:  none")
    if health.replaced_last_hour is None:
        lines.append("  replaced (1h):  - (no state table)")
    else:
        why = f", most often: {health.top_reason}" if health.top_reason else ""
        lines.append(f"  replaced (1h):  {health.replaced_last_hour}{why}")
    if health.crash_loop:
        lines.append("  crash loop:     yes (notified when it began)")
    return lines


# --- the reads ----------------------------------------------------------------------------------


def service_health(
    config: EcspilotConfig,
    clients: Clients,
    history: History,
    now: datetime,
    services: Sequence[ServiceConfig] | None = None,
    places: Mapping[str, Place] | None = None,
) -> list[ServiceHealth]:
    """The health of ``services`` (default: every configured one). ``places``
    (:mod:`.status_places`): each service's account clients and state-table key (default: all
    with ``clients``, plain keys); a service whose account cannot be read shows why."""
    chosen = list(config.services if services is None else services)
    where = places or own_places(config)
    out = {s.name: _row(s, where[s.name]) for s in chosen}
    for group, members in by_clients(chosen, where):
        _fill_group(group or clients, clients, members, out, where, history, now)
    return [out[s.name] for s in chosen]


def _row(svc: ServiceConfig, place: Place) -> ServiceHealth:
    row = ServiceHealth(svc.name, svc.cluster, svc.service_name, account=place.where)
    row.problem = place.problem
    return row


def _fill_group(
    group: Clients,
    own: Clients,
    members: Sequence[ServiceConfig],
    rows: Mapping[str, ServiceHealth],
    places: Mapping[str, Place],
    history: History,
    now: datetime,
) -> None:
    """The health of the services one set of clients reads (one account and region)."""
    described: dict[tuple[str, str], dict[str, Any]] = {}
    failed: dict[str, str] = {}  # a cluster whose reads failed: its rows say why, the rest show
    for cluster, names in service_batches([(s.cluster, s.service_name) for s in members]):
        try:
            found, _ = describe_service_batch(group.ecs, cluster, names)
        except (ClientError, BotoCoreError) as exc:
            error = AwsError(f"DescribeServices failed: {exc}", cluster=cluster)
            if group is own and not described and len(failed) + 1 == len({s.cluster for s in members}):
                raise error from exc  # nothing of ecspilot's own account could be read
            failed[cluster] = str(error)
            continue
        described.update({(cluster, name): svc for name, svc in found.items()})
    for s in members:
        if s.cluster in failed:
            rows[s.name].problem = failed[s.cluster]
    members = [s for s in members if s.cluster not in failed]
    arns = [
        str(lb["targetGroupArn"])
        for svc in described.values()
        for lb in svc.get("loadBalancers", [])
        if lb.get("targetGroupArn")
    ]
    groups: dict[str, dict[str, Any]] = {}
    unreadable = ""
    try:
        groups = target_groups(group.elbv2, arns) if arns else {}
    except TargetHealthError as exc:
        # the rest of status is still worth showing (credentials without ELB reads): said per service
        unreadable = str(exc)
    task_definitions = TaskDefinitions(group.ecs)
    for svc in members:
        row = rows[svc.name]
        current = described.get((svc.cluster, svc.service_name))
        if current is None or current.get("status") != "ACTIVE":
            row.problem = "service not found" if current is None else f"service is {current.get('status')}"
            continue
        _fill_service(row, current, groups, group, task_definitions)
        if unreadable and current.get("loadBalancers"):
            row.problem = unreadable
        _fill_replacements(row, history, now, places[svc.name].key)


def _fill_service(
    row: ServiceHealth,
    current: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, Any]],
    clients: Clients,
    task_definitions: TaskDefinitions,
) -> None:
    row.running = int(current.get("runningCount", 0))
    row.desired = int(current.get("desiredCount", 0))
    row.pending = int(current.get("pendingCount", 0))
    grace = current.get("healthCheckGracePeriodSeconds")
    row.grace_period = int(grace) if grace is not None else None
    balanced = [
        str(lb["targetGroupArn"]) for lb in current.get("loadBalancers", []) if lb.get("targetGroupArn")
    ]
    if not balanced:
        return
    try:
        definition = task_definitions.get(str(current["taskDefinition"]))["taskDefinition"]
        start = start_period(definition)
    except (ClientError, BotoCoreError):
        start = 0  # the notes then judge the grace period alone
    for arn in dict.fromkeys(balanced):
        group = groups.get(arn)
        try:
            tg = count_targets(target_health(clients.elbv2, arn))
        except TargetHealthError as exc:
            row.problem = str(exc)
            continue
        tg.arn, tg.name = arn, str((group or {}).get("TargetGroupName") or arn.rsplit("/", 2)[-2])
        if group is not None:
            tg.check = HealthCheck.of(group)
            tg.notes = check_notes(tg.check, row.grace_period, start)
        row.target_groups.append(tg)


def _fill_replacements(row: ServiceHealth, history: History, now: datetime, key: tuple[str, str]) -> None:
    """The replacements of the last hour, from the stops the tracker recorded under the
    service's key (``web@<account>:<region>`` for a service in another account)."""
    if not history.enabled:
        return
    records = HealthRecords(history)
    since = (now - timedelta(hours=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    replaced = [s for s in records.stops(*key, since) if s.get("replacement")]
    row.replaced_last_hour = len(replaced)
    reasons = Counter(str(s.get("reason", "")) for s in replaced)
    row.top_reason = reasons.most_common(1)[0][0] if reasons else ""
    state = records.loop_state(*key)
    row.crash_loop = bool(state and state.looping and replaced)
