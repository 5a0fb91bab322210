"""The service health decisions (pure, table-tested): what a stopped service task was, and when
replacements make a crash loop.

**Which stops are replacements.** ECS replaces a service's task whenever one stops; only some
stops say the service is unwell. The rules, in order (``stopCode`` and ``stoppedReason`` of the
``ECS Task State Change`` event, the essential containers' exit codes and reasons):

1. ``Scaling activity initiated by (deployment ...)``: the scheduler drained the task, for a
   deployment (an older deployment's task) or a scale-in (fewer desired): ``drained``, not a
   replacement (the reason reads the same for both, with stop code ``ServiceSchedulerInitiated``);
2. stop code ``UserInitiated``: someone called StopTask: ``stopped-by-user``, not a replacement;
3. ``SpotInterruption``, ``TerminationNotice``, ``InfrastructureHealth``: the capacity went
   away, not the application: ``infrastructure``, not a replacement;
4. ``Task failed ELB health checks in (target-group ...)``: ``elb-health-check``;
5. ``Task failed container health checks``: ``container-health-check``;
6. an essential container's reason says ``OutOfMemoryError``, or it exited 137 (SIGKILL: the
   kernel's OOM killer, or the memory limit): ``out-of-memory``;
7. stop code ``TaskFailedToStart`` (image pull, secrets, network, ``ResourceInitializationError``):
   ``failed-to-start``;
8. stop code ``EssentialContainerExited``: ``exited`` (a service's container should not exit);
9. any other stop: an essential container that exited non-zero or has a reason is
   ``other-failure``; without one it is ``scheduler`` (an ECS action we cannot tell apart from
   a drain), not a replacement: a crash-loop alarm must not cry wolf.

Kinds 4 to 9's failures are replacements.

**When replacements are a loop.** N replacements within M minutes, counted back from the
stopped time of the newest (``crash_loop``). The crash-loop item moves ``quiet -> looping``
(one notification) when a replacement's window holds N or more, and ``looping -> quiet`` when
a replacement's window holds fewer: the next notification needs a new loop. An event older
than the replacement that last moved the state (a late or redelivered one) never moves it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

from ecspilot.domain.config import CrashLoopConfig
from ecspilot.domain.events import EcsContainerState
from ecspilot.records import dataclass

StopKind = Literal[
    "elb-health-check",
    "container-health-check",
    "out-of-memory",
    "failed-to-start",
    "exited",
    "other-failure",
    "drained",
    "stopped-by-user",
    "infrastructure",
    "scheduler",
]
REPLACEMENTS: frozenset[str] = frozenset(
    {
        "elb-health-check",
        "container-health-check",
        "out-of-memory",
        "failed-to-start",
        "exited",
        "other-failure",
    }
)
DRAINED_PREFIX = "Scaling activity initiated by"
INFRASTRUCTURE_CODES = ("SpotInterruption", "TerminationNotice", "InfrastructureHealth")
OOM_EXIT = 137
ELB_CHECK = "Task failed ELB health checks"
CONTAINER_CHECK = "Task failed container health checks"
SERVICE_GROUP = "service:"
DEPLOYMENT_PREFIX = "ecs-svc/"

Transition = Literal["start", "end"]


@dataclass(frozen=True)
class StopVerdict:
    """What a stopped task was: its kind, whether it counts as a replacement, and the reason a
    crash loop's message groups it by."""

    kind: StopKind
    reason: str

    @property
    def replacement(self) -> bool:
        return self.kind in REPLACEMENTS


def _judged(containers: Sequence[EcsContainerState], essential: set[str] | None) -> list[EcsContainerState]:
    return [c for c in containers if essential is None or c.name in essential] or list(containers)


def _exit(c: EcsContainerState) -> str:
    return f"container {c.name} exited {c.exit_code}" if c.exit_code is not None else f"container {c.name}"


def classify_stop(
    stop_code: str,
    stopped_reason: str,
    containers: Sequence[EcsContainerState],
    essential: set[str] | None = None,
) -> StopVerdict:
    """The verdict on one stopped service task; see the module docstring for the rules.
    ``essential``: the essential containers' names (None: judge every container)."""
    reason = stopped_reason.strip()
    if reason.startswith(DRAINED_PREFIX):
        return StopVerdict("drained", reason)
    if stop_code == "UserInitiated":
        return StopVerdict("stopped-by-user", reason or "stopped by a StopTask call")
    if stop_code in INFRASTRUCTURE_CODES:
        return StopVerdict("infrastructure", reason or stop_code)
    if reason.startswith(ELB_CHECK):
        return StopVerdict("elb-health-check", reason)
    if reason.startswith(CONTAINER_CHECK):
        return StopVerdict("container-health-check", reason)
    judged = _judged(containers, essential)
    for c in judged:
        if "OutOfMemory" in c.reason:
            return StopVerdict("out-of-memory", f"container {c.name}: {c.reason}")
    for c in judged:
        if c.exit_code == OOM_EXIT:
            return StopVerdict("out-of-memory", f"{_exit(c)} (SIGKILL: out of memory?)")
    if stop_code == "TaskFailedToStart":
        why = reason or next((f"container {c.name}: {c.reason}" for c in judged if c.reason), stop_code)
        return StopVerdict("failed-to-start", why)
    failed = [c for c in judged if (c.exit_code not in (None, 0)) or c.reason]
    if stop_code == "EssentialContainerExited":
        culprit = failed[0] if failed else next(iter(judged), None)
        detail = f" ({_exit(culprit)})" if culprit is not None else ""
        return StopVerdict("exited", f"{reason or 'Essential container in task exited'}{detail}")
    if failed:
        return StopVerdict("other-failure", f"{reason or stop_code or 'stopped'} ({_exit(failed[0])})")
    return StopVerdict("scheduler", reason or stop_code or "stopped")


def service_of_group(group: str) -> str | None:
    """The service a task belongs to, from its ``group`` (``service:NAME``); None for others."""
    if group.startswith(SERVICE_GROUP) and len(group) > len(SERVICE_GROUP):
        return group[len(SERVICE_GROUP) :]
    return None


def deployment_of(started_by: str) -> str:
    """The ECS deployment that started a service task (its ``startedBy``, ``ecs-svc/...``)."""
    return started_by if started_by.startswith(DEPLOYMENT_PREFIX) else ""


def window_start(at: datetime, minutes: int) -> datetime:
    return at - timedelta(minutes=minutes)


@dataclass(frozen=True)
class LoopView:
    """The crash-loop state the decision needs (the stored item, without storage concerns)."""

    looping: bool
    changed_at: str


def loop_transition(
    state: LoopView | None, at: str, replacements: int, policy: CrashLoopConfig
) -> Transition | None:
    """How one replacement at ``at`` (ISO, UTC) with ``replacements`` in its window moves the
    service's crash-loop state: ``start`` (notify), ``end``, or None (no change)."""
    if state is not None and at < state.changed_at:
        return None  # older than what last moved the state: a late or redelivered event
    looping = state.looping if state is not None else False
    if not looping and replacements >= policy.replacements:
        return "start"
    if looping and replacements < policy.replacements:
        return "end"
    return None


def most_common_reason(stops: Sequence[Mapping[str, object]]) -> tuple[str, int]:
    """The reason most stops share, and how many; a tie goes to the newest stop's reason."""
    reasons = [str(s.get("reason") or s.get("stopped_reason") or "unknown") for s in stops]
    if not reasons:
        return "", 0
    counts = Counter(reasons)
    best = max(counts.values())
    newest = next(r for r in reversed(reasons) if counts[r] == best)
    return newest, best


def running_digests(stops: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """The image digests the newest of ``stops`` (oldest first) ran, by container."""
    for stop in reversed(stops):
        digests = stop.get("image_digests")
        if isinstance(digests, Mapping) and digests:
            return {str(k): str(v) for k, v in digests.items()}
    return {}
