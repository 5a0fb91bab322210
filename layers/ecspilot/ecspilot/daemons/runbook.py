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
4. decide per daemon and cluster (pure, :func:`plan`): create when missing or
   INACTIVE, update when the task definition or the placement constraints (or,
   for a managed daemon, the capacity providers) drifted, in-sync otherwise, and
   conflict when a same-named service is not ecspilot's (tags
   ``ecspilot:managed=true``, ``ecspilot:daemon=NAME``): it is never changed;
5. unless ``dry_run``: ``CreateService`` with ``schedulingStrategy=DAEMON``,
   launch type EC2, the constraints and tags, never a desired count nor a
   placement strategy; ``UpdateService`` with only what drifted. Managed daemons:
   ``CreateDaemon`` / ``UpdateDaemon``.

Steps 3 and 5 fan out on a bounded pool. One cluster's error never stops the
others: it becomes an ``error`` action. A second run makes no write call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.aws.fanout import bounded_map, chunks
from ecspilot.domain.config import ClusterTag, DaemonConfig
from ecspilot.domain.placement import constraints_from_strings
from ecspilot.domain.plan import Action, Change
from ecspilot.domain.taskdef import family_revision
from ecspilot.errors import DaemonError, EcspilotError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import count, logger

T = TypeVar("T")
R = TypeVar("R")

MANAGED_TAG = "ecspilot:managed"
DAEMON_TAG = "ecspilot:daemon"
# What ecspilot sent as placement constraints, for when ECS does not return them (moto drops them
# from CreateService's answer); when DescribeServices returns ``placementConstraints``, those win.
PLACEMENT_TAG = "ecspilot:placement"
DESCRIBE_SERVICES_BATCH = 10
DESCRIBE_CLUSTERS_BATCH = 100
DESCRIBE_DAEMON_REVISIONS_BATCH = 20
KIND_SERVICE = "daemon"
KIND_MANAGED = "managed-daemon"

Constraint = tuple[str, str]  # (type, expression)


# --- what is wanted, what is there, and the decision --------------------------------------------


@dataclass(frozen=True)
class Desired:
    """One daemon on one cluster, as the config wants it (task definition resolved to an ARN)."""

    daemon: str
    cluster: str
    cluster_arn: str
    name: str  # the ECS service name, or the managed daemon's name
    task_definition: str
    constraints: tuple[Constraint, ...] = ()
    capacity_providers: tuple[str, ...] | None = None  # ARNs; None: a DAEMON service

    @property
    def managed(self) -> bool:
        return self.capacity_providers is not None


@dataclass(frozen=True)
class Observed:
    """What AWS reports for the same-named service (or managed daemon) on the cluster."""

    arn: str
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)
    task_definition: str = ""
    scheduling_strategy: str = "DAEMON"
    constraints: tuple[Constraint, ...] | None = None  # None: not returned by ECS
    capacity_providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What to do about one daemon on one cluster, and which fields drifted."""

    change: Change
    detail: str
    task_definition: bool = False
    constraints: bool = False
    capacity_providers: bool = False


def normalize_constraints(items: Iterable[Mapping[str, Any]]) -> tuple[Constraint, ...]:
    """ECS placement constraints as a sorted tuple: ECS applies all of them, order means nothing."""
    return tuple(sorted((str(c.get("type", "")), str(c.get("expression") or "")) for c in items))


def constraints_fingerprint(constraints: Sequence[Constraint]) -> str:
    """A short, tag-safe digest of the constraints (tag values are at most 256 characters)."""
    text = json.dumps(sorted(constraints), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def daemon_tags(desired: Desired) -> list[dict[str, str]]:
    """The tags that make a service (or managed daemon) ecspilot's, and record what was sent."""
    tags = [{"key": MANAGED_TAG, "value": "true"}, {"key": DAEMON_TAG, "value": desired.daemon}]
    if not desired.managed:
        tags.append({"key": PLACEMENT_TAG, "value": constraints_fingerprint(desired.constraints)})
    return tags


def ownership_problem(desired: Desired, observed: Observed) -> str:
    """Why an existing service is not ecspilot's to change for this daemon, or ''."""
    what = "daemon" if desired.managed else "service"
    if observed.tags.get(MANAGED_TAG) != "true":
        return f"{what} {desired.name} exists and was not created by ecspilot (no {MANAGED_TAG}=true tag)"
    owner = observed.tags.get(DAEMON_TAG, "")
    if owner != desired.daemon:
        return (
            f"{what} {desired.name} belongs to ecspilot daemon {owner or '(unnamed)'}, not {desired.daemon}"
        )
    if not desired.managed and observed.scheduling_strategy != "DAEMON":
        return f"service {desired.name} is a {observed.scheduling_strategy} service, not a DAEMON"
    return ""


def plan(desired: Desired, observed: Observed | None) -> Decision:
    """Decide for one daemon on one cluster (pure): create, update, in-sync, conflict or error."""
    td = family_revision(desired.task_definition)
    if observed is None:
        return Decision("create", f"missing: create with {td}")
    if observed.status == "INACTIVE":
        return Decision("create", f"INACTIVE: create again with {td}")
    problem = ownership_problem(desired, observed)
    if problem:
        return Decision("conflict", problem + "; left alone")
    if observed.status != "ACTIVE":
        return Decision(
            "error", f"{observed.status}: ECS takes a new one once it is gone; a later reconcile creates it"
        )
    drift: list[str] = []
    td_drift = observed.task_definition != desired.task_definition
    if td_drift:
        drift.append(f"task definition {family_revision(observed.task_definition)} -> {td}")
    if observed.constraints is not None:
        constraints_drift = observed.constraints != tuple(sorted(desired.constraints))
    else:
        recorded = observed.tags.get(PLACEMENT_TAG)
        constraints_drift = recorded is not None and recorded != constraints_fingerprint(desired.constraints)
    if constraints_drift:
        drift.append("placement constraints")
    cp_drift = desired.managed and set(observed.capacity_providers) != set(desired.capacity_providers or ())
    if cp_drift:
        drift.append("capacity providers")
    if drift:
        return Decision("update", "; ".join(drift), td_drift, constraints_drift, cp_drift)
    return Decision("in-sync", f"runs {td}")


def create_service_params(desired: Desired) -> dict[str, Any]:
    """``CreateService`` for a DAEMON service: never a desired count, never a placement strategy."""
    params: dict[str, Any] = {
        "cluster": desired.cluster,
        "serviceName": desired.name,
        "taskDefinition": desired.task_definition,
        "schedulingStrategy": "DAEMON",
        "launchType": "EC2",
        "tags": daemon_tags(desired),
    }
    if desired.constraints:
        params["placementConstraints"] = [{"type": t, "expression": e} for t, e in desired.constraints]
    return params


def update_service_params(desired: Desired, decision: Decision) -> dict[str, Any]:
    """``UpdateService`` with only what drifted; never a desired count."""
    params: dict[str, Any] = {"cluster": desired.cluster, "service": desired.name}
    if decision.task_definition:
        params["taskDefinition"] = desired.task_definition
    if decision.constraints:
        # an empty list removes every constraint, which is what an empty config list means
        params["placementConstraints"] = [{"type": t, "expression": e} for t, e in desired.constraints]
    return params


def create_daemon_params(desired: Desired) -> dict[str, Any]:
    """``CreateDaemon`` (Managed Daemons API) for a daemon on Managed Instances capacity providers."""
    return {
        "daemonName": desired.name,
        "clusterArn": desired.cluster_arn,
        "daemonTaskDefinitionArn": desired.task_definition,
        "capacityProviderArns": list(desired.capacity_providers or ()),
        "tags": daemon_tags(desired),
    }


def update_daemon_params(desired: Desired, observed: Observed) -> dict[str, Any]:
    """``UpdateDaemon`` takes the whole desired revision: task definition and capacity providers."""
    return {
        "daemonArn": observed.arn,
        "daemonTaskDefinitionArn": desired.task_definition,
        "capacityProviderArns": list(desired.capacity_providers or ()),
    }


def capacity_provider_arn(cluster_arn: str, name_or_arn: str) -> str:
    """A capacity provider ARN in the cluster's account and region (an ARN is kept)."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    prefix = cluster_arn.split(":cluster/", 1)[0]
    return f"{prefix}:capacity-provider/{name_or_arn}"


def tag_matches(tags: Mapping[str, str], selector: ClusterTag | None) -> bool:
    """True when a cluster's tags satisfy ``cluster_tag`` (no selector: every cluster)."""
    if selector is None:
        return True
    if selector.key not in tags:
        return False
    return selector.value is None or tags[selector.key] == selector.value


def tag_map(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t.get("key", "")): str(t.get("value", "")) for t in tags or ()}


def last_segment(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


# --- the runbook ------------------------------------------------------------------------------


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

    # AWS edges: clusters ------------------------------------------------------------------------

    def list_cluster_arns(self) -> list[str]:
        """Every cluster ARN of the account and region (``ListClusters``, all pages)."""
        try:
            pages = self.clients.ecs.get_paginator("list_clusters").paginate()
            return [arn for page in pages for arn in page.get("clusterArns", [])]
        except (ClientError, BotoCoreError) as exc:
            raise DaemonError(f"ListClusters failed: {exc}") from exc

    def describe_clusters(self, names: Sequence[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """``DescribeClusters`` with tags, 100 per call: the clusters, and name -> why not found."""
        found: list[dict[str, Any]] = []
        failures: dict[str, str] = {}
        for batch in chunks(list(names), DESCRIBE_CLUSTERS_BATCH):
            try:
                resp = self.clients.ecs.describe_clusters(clusters=list(batch), include=["TAGS"])
            except (ClientError, BotoCoreError) as exc:
                raise DaemonError(f"DescribeClusters failed: {exc}") from exc
            found.extend(dict(c) for c in resp.get("clusters", []))
            for failure in resp.get("failures", []):
                failures[last_segment(str(failure.get("arn", "")))] = str(failure.get("reason", "unknown"))
        return found, failures

    # AWS edges: task definitions ----------------------------------------------------------------

    def resolve_task_definition(self, ref: str) -> str:
        """A family's latest ACTIVE revision, or a pinned ``family:revision``, as an ARN."""
        try:
            td = self.clients.ecs.describe_task_definition(taskDefinition=ref)["taskDefinition"]
        except (ClientError, BotoCoreError) as exc:
            raise DaemonError(f"DescribeTaskDefinition failed: {exc}", task_definition=ref) from exc
        if td.get("status") != "ACTIVE" and ":" not in ref:
            raise DaemonError("no ACTIVE revision in the family", task_definition=ref)
        return str(td["taskDefinitionArn"])

    def resolve_daemon_task_definition(self, ref: str) -> str:
        """The Managed Daemons API's task definition: the family's newest ACTIVE one, or the pinned one."""
        family, _, revision = ref.partition(":")
        try:
            if revision:
                resp = self.clients.ecs.describe_daemon_task_definition(daemonTaskDefinition=ref)
                return str(resp["daemonTaskDefinition"]["daemonTaskDefinitionArn"])
            listed = self.clients.ecs.list_daemon_task_definitions(
                family=family, status="ACTIVE", sort="DESC", maxResults=1
            )
        except (ClientError, BotoCoreError) as exc:
            raise DaemonError(f"daemon task definition lookup failed: {exc}", task_definition=ref) from exc
        items = listed.get("daemonTaskDefinitions", [])
        if not items:
            raise DaemonError("no ACTIVE daemon task definition in the family", task_definition=ref)
        return str(items[0]["arn"])

    # AWS edges: what runs -----------------------------------------------------------------------

    def _describe_services(self, batch: tuple[str, Sequence[str]]) -> dict[str, Observed | None]:
        cluster, names = batch
        try:
            resp = self.clients.ecs.describe_services(cluster=cluster, services=list(names), include=["TAGS"])
        except (ClientError, BotoCoreError) as exc:
            raise DaemonError(f"DescribeServices failed: {exc}", cluster=cluster) from exc
        out: dict[str, Observed | None] = dict.fromkeys(names)
        for svc in resp.get("services", []):
            out[svc["serviceName"]] = Observed(
                arn=svc.get("serviceArn", ""),
                status=svc.get("status", ""),
                tags=tag_map(svc.get("tags")),
                task_definition=svc.get("taskDefinition", ""),
                scheduling_strategy=svc.get("schedulingStrategy", "REPLICA"),
                constraints=(
                    normalize_constraints(svc["placementConstraints"])
                    if "placementConstraints" in svc
                    else None
                ),
            )
        return out

    def _observe_managed(self, item: tuple[str, Sequence[str]]) -> dict[str, Observed | None]:
        """Managed daemons named ``names`` on one cluster (by ARN): summary, detail, revision, tags."""
        cluster_arn, names = item
        ecs = self.clients.ecs
        out: dict[str, Observed | None] = dict.fromkeys(names)
        try:
            summaries: list[Mapping[str, Any]] = []
            kwargs: dict[str, Any] = {"clusterArn": cluster_arn}
            while True:
                page = ecs.list_daemons(**kwargs)
                summaries.extend(page.get("daemonSummariesList", []))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
            for summary in summaries:
                name = last_segment(str(summary.get("daemonArn", "")))
                if name not in out:
                    continue
                arn = str(summary["daemonArn"])
                detail = ecs.describe_daemon(daemonArn=arn)["daemon"]
                current = detail.get("currentRevisions", [])
                providers = sorted({cp["arn"] for rev in current for cp in rev.get("capacityProviders", [])})
                task_definition = ""
                revision_arns = [rev["arn"] for rev in current if rev.get("arn")]
                if revision_arns:
                    revisions = ecs.describe_daemon_revisions(
                        daemonRevisionArns=revision_arns[:DESCRIBE_DAEMON_REVISIONS_BATCH]
                    ).get("daemonRevisions", [])
                    newest = max(revisions, key=lambda r: str(r.get("createdAt", "")), default=None)
                    task_definition = str((newest or {}).get("daemonTaskDefinitionArn", ""))
                tags = ecs.list_tags_for_resource(resourceArn=arn).get("tags", [])
                out[name] = Observed(
                    arn=arn,
                    status=str(detail.get("status", summary.get("status", ""))),
                    tags=tag_map(tags),
                    task_definition=task_definition,
                    capacity_providers=tuple(providers),
                )
        except (ClientError, BotoCoreError) as exc:
            raise DaemonError(f"reading managed daemons failed: {exc}", cluster=cluster_arn) from exc
        return out

    # AWS edges: changes -------------------------------------------------------------------------

    def _apply(self, target: _Target) -> None:
        desired, decision, observed = target.desired, target.decision, target.observed
        if desired is None or decision is None:
            return  # only planned targets are applied
        ecs = self.clients.ecs
        try:
            if desired.managed and decision.change == "create":
                ecs.create_daemon(**create_daemon_params(desired))
            elif desired.managed and observed is not None:
                ecs.update_daemon(**update_daemon_params(desired, observed))
            elif decision.change == "create":
                ecs.create_service(**create_service_params(desired))
            else:
                ecs.update_service(**update_service_params(desired, decision))
        except (ClientError, BotoCoreError) as exc:
            raise DaemonError(
                f"{decision.change} failed: {exc}",
                cluster=desired.cluster,
                daemon=desired.daemon,
                ecs_service=desired.name,
            ) from exc

    # the flow -----------------------------------------------------------------------------------

    def run(self, daemons: Sequence[DaemonConfig], dry_run: bool = False) -> list[Action]:
        """Plan (and unless ``dry_run`` apply) every daemon on every target cluster."""
        targets, unresolved = self._targets(daemons)
        live = [t for t in targets if t.decision is None]
        self._resolve(live)
        live = [t for t in live if t.decision is None]
        self._observe(live)
        for t in live:
            if t.decision is None and t.desired is not None:
                t.decision = plan(t.desired, t.observed)
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

    def _targets(self, daemons: Sequence[DaemonConfig]) -> tuple[list[_Target], list[Action]]:
        """One target per daemon and cluster; a daemon whose clusters cannot be found is an error action."""
        listed = sorted({c for d in daemons if d.clusters != "*" for c in d.clusters})
        everywhere = any(d.clusters == "*" for d in daemons)
        unresolved: list[Action] = []
        try:
            names = sorted(set(listed) | set(self.list_cluster_arns() if everywhere else ()))
            clusters, failures = self.describe_clusters(names) if names else ([], {})
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

        def resolve(item: tuple[bool, str]) -> str:
            managed, ref = item
            return self.resolve_daemon_task_definition(ref) if managed else self.resolve_task_definition(ref)

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
        items: list[tuple[bool, str, Sequence[str]]] = [
            (False, cluster, chunk)
            for cluster, group in services.items()
            for chunk in chunks(sorted({t.name for t in group}), DESCRIBE_SERVICES_BATCH)
        ] + [(True, cluster, sorted({t.name for t in group})) for cluster, group in managed.items()]

        def observe(item: tuple[bool, str, Sequence[str]]) -> dict[str, Observed | None]:
            is_managed, cluster, names = item
            return (
                self._observe_managed((cluster, names))
                if is_managed
                else self._describe_services((cluster, names))
            )

        for (is_managed, cluster, names), found in zip(items, self._map(observe, items), strict=True):
            group = (managed if is_managed else services)[cluster]
            for t in group:
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


def reconcile_daemons(rt: Runtime, dry_run: bool) -> list[Action]:
    """The reconcile part for daemons: plan, and unless ``dry_run`` apply, every configured daemon."""
    if not rt.config.daemons:
        return []
    return DaemonReconciler(rt.clients, rt.settings.max_workers).run(rt.config.daemons, dry_run=dry_run)
