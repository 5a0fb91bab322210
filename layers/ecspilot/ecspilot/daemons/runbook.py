"""Daemons everywhere: every configured DAEMON service exists and matches, on every target cluster.

The runbook, step by step (docs/ARCHITECTURE.md, "Reconcile", the ``daemons`` contract):

1. find the target clusters: the listed ones, or ``"*"`` = every cluster of the
   account (``ListClusters`` paginated), narrowed by ``cluster_tag``; both
   described with ``DescribeClusters`` (tags included), 100 per call;
2. resolve each task definition once per run: a family to its latest ACTIVE
   revision, a ``family:revision`` to itself (managed daemons: the daemon task
   definition family, through the Managed Daemons API);
3. describe what runs: ``DescribeServices`` 10 per call per cluster (tags
   included); managed daemons through ``ListDaemons`` / ``DescribeDaemon`` /
   ``DescribeDaemonRevisions`` / ``ListTagsForResource``;
4. decide per daemon and cluster (pure, :mod:`ecspilot.daemons.decisions`): create
   when missing or INACTIVE, update when the task definition or the placement
   constraints (or, for a managed daemon, the capacity providers) drifted, in-sync
   otherwise, and conflict when a same-named service is not ecspilot's (tags
   ``ecspilot:managed=true``, ``ecspilot:daemon=NAME``): it is never changed;
5. unless ``dry_run``: ``CreateService`` with ``schedulingStrategy=DAEMON``,
   launch type EC2, the constraints and tags, never a desired count nor a
   placement strategy; ``UpdateService`` with only what drifted. Managed daemons:
   ``CreateDaemon`` / ``UpdateDaemon``.

Steps 2, 3 and 5 fan out on a bounded pool; the AWS calls live in
:mod:`~ecspilot.daemons.ecs_edge` and :mod:`~ecspilot.daemons.managed_edge`. One cluster's
error never stops the others: it becomes an ``error`` action. A second run makes no write call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ecspilot.aws.clients import Clients
from ecspilot.aws.ecs_reads import TaskDefinitions, service_batches
from ecspilot.aws.fanout import bounded_map
from ecspilot.daemons.decisions import (
    KIND_MANAGED,
    KIND_SERVICE,
    Decision,
    Desired,
    Observed,
    capacity_provider_arn,
    last_segment,
    normalize_constraints,
    plan,
    tag_map,
    tag_matches,
)
from ecspilot.daemons.ecs_edge import (
    apply_service,
    describe_clusters,
    describe_services,
    list_cluster_arns,
    resolve_task_definition,
)
from ecspilot.daemons.managed_edge import apply_managed, observe_managed, resolve_daemon_task_definition
from ecspilot.domain.config import DaemonConfig
from ecspilot.domain.placement import constraints_from_strings
from ecspilot.domain.plan import Action
from ecspilot.domain.stops import deferred_detail, stamp
from ecspilot.domain.taskdef import family_revision
from ecspilot.errors import DaemonError, EcspilotError
from ecspilot.obs import count, logger
from ecspilot.records import dataclass
from ecspilot.stopping.deferral import Deferrals

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Target:
    config: DaemonConfig
    cluster: str
    cluster_arn: str = ""
    desired: Desired | None = None
    observed: Observed | None = None
    decision: Decision | None = None
    applied: bool = False

    @property
    def name(self) -> str:
        return self.config.service_name

    @property
    def managed(self) -> bool:
        return self.config.capacity_providers is not None

    def fail(self, reason: str) -> None:
        if self.decision is None or self.decision.change != "error":
            self.decision = Decision("error", reason)

    def action(self) -> Action:
        decision = self.decision or Decision("error", "not planned")
        return Action(
            kind=KIND_MANAGED if self.managed else KIND_SERVICE,
            target=f"{self.cluster}/{self.name}",
            change=decision.change,
            detail=decision.detail,
            applied=self.applied,
        )


class DaemonReconciler:
    """Ensures the configured daemons on their clusters; see the module docstring."""

    def __init__(self, clients: Clients, max_workers: int = 8) -> None:
        self.clients = clients
        self.max_workers = max_workers

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | EcspilotError]:
        """Run ``fn`` over ``items`` on the bounded pool; an ecspilot error is returned, not raised."""
        return bounded_map(fn, items, self.max_workers)

    def _apply(self, target: _Target) -> None:
        desired, decision = target.desired, target.decision
        if desired is None or decision is None:
            return  # only planned targets are applied
        if desired.managed:
            apply_managed(self.clients.ecs, desired, decision, target.observed)
        else:
            apply_service(self.clients.ecs, desired, decision)

    # the flow -----------------------------------------------------------------------------------

    def run(
        self, daemons: Sequence[DaemonConfig], dry_run: bool = False, deferrals: Deferrals | None = None
    ) -> list[Action]:
        """Plan (and unless ``dry_run`` apply) every daemon on every target cluster; a change
        a window or a freeze stops is ``deferred`` (issue 25), nothing created or updated."""
        targets, unresolved = self._targets(daemons)
        live = [t for t in targets if t.decision is None]
        self._resolve(live)
        live = [t for t in live if t.decision is None]
        self._observe(live)
        for t in live:
            if t.decision is None and t.desired is not None:
                t.decision = plan(t.desired, t.observed)
        if deferrals is not None:
            self._defer(
                [t for t in live if t.decision and t.decision.change in ("create", "update")],
                deferrals,
                dry_run,
            )
        if not dry_run:
            changes = [t for t in live if t.decision and t.decision.change in ("create", "update")]
            for t, outcome in zip(changes, self._map(self._apply, changes), strict=True):
                if isinstance(outcome, EcspilotError):
                    t.decision = Decision("error", str(outcome))
                else:
                    t.applied = True
        actions = unresolved + [t.action() for t in targets]
        self._report(targets, unresolved, dry_run)
        return actions

    def _defer(self, targets: list[_Target], deferrals: Deferrals, dry_run: bool) -> None:
        for t in targets:
            stop = deferrals.check(t.config.name)
            if stop is None or t.decision is None or t.desired is None:
                continue
            until = stamp(stop.until) if stop.until else ""
            t.decision = Decision("deferred", deferred_detail(f"{stop.reason} ({t.decision.change})", until))
            if not dry_run:
                revision = family_revision(t.desired.task_definition)
                deferrals.defer(t.config.name, f"{t.cluster}/{t.name}", revision, stop, {"trigger": "daemon"})

    def _targets(self, daemons: Sequence[DaemonConfig]) -> tuple[list[_Target], list[Action]]:
        """One target per daemon and cluster; a daemon whose clusters cannot be found is an error action."""
        listed = sorted({c for d in daemons if d.clusters != "*" for c in d.clusters})
        everywhere = any(d.clusters == "*" for d in daemons)
        unresolved: list[Action] = []
        try:
            names = sorted(set(listed) | set(list_cluster_arns(self.clients.ecs) if everywhere else ()))
            clusters, failures = describe_clusters(self.clients.ecs, names) if names else ([], {})
        except DaemonError as exc:
            for d in daemons:
                kind = KIND_MANAGED if d.capacity_providers is not None else KIND_SERVICE
                unresolved.append(Action(kind, f"*/{d.service_name}", "error", str(exc)))
            return [], unresolved
        by_key: dict[str, dict[str, Any]] = {}
        for c in clusters:
            by_key[c["clusterName"]] = by_key[c["clusterArn"]] = c
        active = sorted(
            (c for c in clusters if c.get("status") == "ACTIVE"), key=lambda c: str(c["clusterName"])
        )
        active = list({c["clusterArn"]: c for c in active}.values())
        targets: list[_Target] = []
        for d in daemons:
            if d.clusters == "*":
                for c in active:
                    if tag_matches(tag_map(c.get("tags")), d.cluster_tag):
                        targets.append(_Target(d, c["clusterName"], c["clusterArn"]))
                continue
            for name in d.clusters:
                found = by_key.get(name)
                t = _Target(d, last_segment(name))
                if found is None:
                    t.fail(f"cluster not found ({failures.get(last_segment(name), 'MISSING')})")
                elif found.get("status") != "ACTIVE":
                    t.fail(f"cluster is {found.get('status')}")
                else:
                    t.cluster, t.cluster_arn = found["clusterName"], found["clusterArn"]
                targets.append(t)
        return targets, unresolved

    def _resolve(self, targets: list[_Target]) -> None:
        """Resolve each distinct task definition once, then build each target's desired state."""
        refs = sorted({(t.managed, t.config.task_definition) for t in targets})
        ecs = self.clients.ecs
        task_definitions = TaskDefinitions(ecs)

        def resolve(item: tuple[bool, str]) -> str:
            managed, ref = item
            if managed:
                return resolve_daemon_task_definition(ecs, ref)
            return resolve_task_definition(task_definitions, ref)

        resolved = dict(zip(refs, self._map(resolve, refs), strict=True))
        for t in targets:
            arn = resolved[(t.managed, t.config.task_definition)]
            if isinstance(arn, EcspilotError):
                t.fail(str(arn))
                continue
            providers = None
            if t.config.capacity_providers is not None:
                providers = tuple(
                    capacity_provider_arn(t.cluster_arn, p) for p in t.config.capacity_providers
                )
            t.desired = Desired(
                daemon=t.config.name,
                cluster=t.cluster,
                cluster_arn=t.cluster_arn,
                name=t.name,
                task_definition=arn,
                constraints=normalize_constraints(constraints_from_strings(t.config.placement_constraints)),
                capacity_providers=providers,
            )

    def _observe(self, targets: list[_Target]) -> None:
        """Describe services 10 per call per cluster, managed daemons per cluster; attach what is found."""
        services: dict[str, list[_Target]] = {}
        managed: dict[str, list[_Target]] = {}
        for t in targets:
            # services by cluster name (what DescribeServices takes), managed daemons by cluster ARN
            if t.managed:
                managed.setdefault(t.cluster_arn, []).append(t)
            else:
                services.setdefault(t.cluster, []).append(t)
        keys = [(t.cluster, t.name) for group in services.values() for t in group]
        items: list[tuple[bool, str, Sequence[str]]] = [
            (False, cluster, names) for cluster, names in service_batches(keys)
        ]
        items += [(True, cluster, sorted({t.name for t in group})) for cluster, group in managed.items()]
        ecs = self.clients.ecs

        def observe(item: tuple[bool, str, Sequence[str]]) -> dict[str, Observed | None]:
            is_managed, cluster, names = item
            if is_managed:
                return observe_managed(ecs, cluster, names)
            return describe_services(ecs, cluster, names)

        for (is_managed, cluster, names), found in zip(items, self._map(observe, items), strict=True):
            for t in (managed if is_managed else services)[cluster]:
                if t.name not in names:
                    continue
                if isinstance(found, EcspilotError):
                    t.fail(str(found))
                else:
                    t.observed = found.get(t.name)

    def _report(self, targets: list[_Target], unresolved: list[Action], dry_run: bool) -> None:
        for t in targets:
            decision = t.decision or Decision("error", "not planned")
            logger.info(
                f"daemon {decision.change}",
                extra={
                    "daemon": t.config.name,
                    "cluster": t.cluster,
                    "ecs_service": t.name,
                    "task_definition": family_revision(t.desired.task_definition) if t.desired else "",
                    "change": decision.change,
                    "detail": decision.detail,
                    "applied": t.applied,
                    "dry_run": dry_run,
                },
            )
        changes = [t.decision.change for t in targets if t.decision is not None]
        count(
            "DaemonsCreated",
            sum(1 for t in targets if t.applied and t.decision and t.decision.change == "create"),
        )
        count(
            "DaemonsUpdated",
            sum(1 for t in targets if t.applied and t.decision and t.decision.change == "update"),
        )
        count("DaemonConflicts", changes.count("conflict"))
        count("DaemonErrors", changes.count("error") + len(unresolved))
