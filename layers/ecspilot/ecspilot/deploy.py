"""Image push -> digest-pinned task definition revisions -> rolled services.

The runbook, step by step (DESIGN.md, "Image push"):

1. match the pushed repository and tag against the config's services;
2. describe the matched services, 10 per call per cluster;
3. describe each distinct task definition once (with its tags), cached for the invocation;
4. decide per service (pure): unchanged when every matched container already runs
   the digest, otherwise deploy; a service running another digest of the same
   repository is checked against ECR's ``imagePushedAt`` and skipped when newer;
5. register one clone per distinct source revision, only the matched containers'
   ``image`` changed to ``REGISTRY/REPO@sha256:...``;
6. ``UpdateService`` with the new revision (never ``desiredCount``);
7. record the deployments (IN_PROGRESS).

Steps 2, 3, 5 and 6 fan out on a bounded pool; one service's failure never
stops the others. With ``dry_run`` steps 5 to 7 are reported, not done.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws import Clients
from ecspilot.config import EcspilotConfig, JobConfig, ServiceConfig
from ecspilot.envelope import parse_event
from ecspilot.errors import DeployError, DeployFailuresError, EcspilotError
from ecspilot.events import EcrImageActionEvent
from ecspilot.fanout import bounded_map, chunks
from ecspilot.history import DeploymentRecord, History, utc_now
from ecspilot.images import ImagePush, ImageRef, short_digest
from ecspilot.obs import count, logger
from ecspilot.origins import untrusted_reason
from ecspilot.runtime import Runtime
from ecspilot.taskdef import clone_with_images, container_images, family_revision

Outcome = Literal["deployed", "would-deploy", "unchanged", "stale", "held", "failed"]
Hold = Callable[[ServiceConfig], "str | None"]
T = TypeVar("T")
R = TypeVar("R")
DESCRIBE_SERVICES_BATCH = 10


@dataclass
class ServiceOutcome:
    """What happened (or, in a dry run, would happen) to one configured service."""

    name: str
    cluster: str
    service: str
    containers: list[str]
    outcome: Outcome = "failed"
    from_task_definition: str = ""
    to_task_definition: str = ""
    deployment_id: str = ""
    reason: str = ""


@dataclass
class JobOutcome:
    """What a push did to a job's task definition family (jobs follow pushes: no service to update)."""

    job: str
    family: str
    containers: list[str]
    outcome: Literal["registered", "would-register", "unchanged", "stale", "failed"] = "failed"
    from_task_definition: str = ""
    to_task_definition: str = ""
    reason: str = ""


@dataclass
class PushResult:
    """The result of one push: an outcome per matched service, and the revisions registered."""

    push: ImagePush
    dry_run: bool
    outcomes: list[ServiceOutcome] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    jobs: list[JobOutcome] = field(default_factory=list)

    def by_outcome(self, outcome: Outcome) -> list[ServiceOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the handler's response)."""
        return {
            "repository": self.push.repository,
            "tag": self.push.tag,
            "digest": self.push.digest,
            "dry_run": self.dry_run,
            "registered": self.registered,
            "services": [asdict(o) for o in self.outcomes],
            "jobs": [asdict(j) for j in self.jobs],
        }


# --- pure decisions ---------------------------------------------------------------------------


def decide(
    images: Mapping[str, str], containers: Sequence[str], push: ImagePush
) -> tuple[Literal["unchanged", "deploy"], set[str]]:
    """Decide for one service from its current container images.

    Returns ``("unchanged", set())`` when every matched container already runs
    the pushed digest, else ``("deploy", digests)`` where ``digests`` are other
    digests of the same repository that the service runs (for the stale guard).
    """
    others: set[str] = set()
    current = True
    for name in containers:
        ref = ImageRef.parse(images[name])
        same_repository = ref.same_repository(push.registry, push.repository)
        if same_repository and ref.digest == push.digest:
            continue
        current = False
        if same_repository and ref.digest:
            others.add(ref.digest)
    return ("unchanged", set()) if current else ("deploy", others)


def is_stale(pushed_at: datetime | None, running_pushed_at: Iterable[datetime | None]) -> bool:
    """True when the service runs an image of the repository pushed after this one."""
    if pushed_at is None:
        return False
    return any(t is not None and t > pushed_at for t in running_pushed_at)


def deployment_configuration(service: Mapping[str, Any], rollback: bool) -> dict[str, Any] | None:
    """The service's deployment configuration with the circuit breaker on, or None to leave it."""
    if not rollback:
        return None
    conf = copy.deepcopy(dict(service.get("deploymentConfiguration") or {}))
    conf["deploymentCircuitBreaker"] = {"enable": True, "rollback": True}
    return conf


def primary_deployment_id(service: Mapping[str, Any]) -> str:
    """The id of the service's PRIMARY deployment (``ecs-svc/...``), or ''."""
    for deployment in service.get("deployments", []):
        if deployment.get("status") == "PRIMARY":
            return str(deployment.get("id", ""))
    return ""


# --- the runbook ------------------------------------------------------------------------------


@dataclass
class _Target:
    config: ServiceConfig
    outcome: ServiceOutcome
    service: dict[str, Any] | None = None
    running_digests: set[str] = field(default_factory=set)


class PushDeployer:
    """Deploys one image push to every configured service that follows it."""

    def __init__(
        self, clients: Clients, history: History, max_workers: int = 8, trigger: str = "push"
    ) -> None:
        self.clients = clients
        self.trigger = trigger
        self.history = history
        self.max_workers = max_workers
        self._task_definitions: dict[str, tuple[dict[str, Any], list[dict[str, str]]]] = {}
        self._pushed_at: dict[tuple[str, str], datetime | None] = {}
        self._services: dict[tuple[str, str], dict[str, Any] | str] = {}
        self.defer_records = False  # catch-up writes the records of all its pushes at once
        self.pending_records: list[DeploymentRecord] = []

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | EcspilotError]:
        """Run ``fn`` over ``items`` on the bounded pool; an ecspilot error is returned, not raised."""
        return bounded_map(fn, items, self.max_workers)

    # AWS edges ------------------------------------------------------------------------------

    def _describe_services(self, batch: tuple[str, Sequence[str]]) -> dict[str, Any]:
        cluster, names = batch
        try:
            resp = self.clients.ecs.describe_services(cluster=cluster, services=list(names))
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"DescribeServices failed: {exc}", cluster=cluster) from exc
        return dict(resp)

    def task_definition(self, arn: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """DescribeTaskDefinition once per ARN per invocation (with tags)."""
        cached = self._task_definitions.get(arn)
        if cached is None:
            try:
                resp = self.clients.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
            except (ClientError, BotoCoreError) as exc:
                raise DeployError(f"DescribeTaskDefinition failed: {exc}", task_definition=arn) from exc
            tags = [
                {"key": str(t.get("key", "")), "value": str(t.get("value", ""))} for t in resp.get("tags", [])
            ]
            cached = (dict(resp["taskDefinition"]), tags)
            self._task_definitions[arn] = cached
        return cached

    def know_pushed_at(self, repository: str, images: Iterable[Mapping[str, Any]]) -> None:
        """Seed the stale guard from an image listing already in hand (catch-up lists them)."""
        for image in images:
            self._pushed_at[(repository, str(image["imageDigest"]))] = image.get("imagePushedAt")

    def pushed_at(self, repository: str, digest: str) -> datetime | None:
        """ECR's imagePushedAt of a digest (None when the image is gone)."""
        key = (repository, digest)
        if key not in self._pushed_at:
            try:
                resp = self.clients.ecr.describe_images(
                    repositoryName=repository, imageIds=[{"imageDigest": digest}]
                )
                details = resp.get("imageDetails", [])
                self._pushed_at[key] = details[0].get("imagePushedAt") if details else None
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ImageNotFoundException":
                    raise DeployError(f"DescribeImages failed: {exc}", repository=repository) from exc
                self._pushed_at[key] = None
        return self._pushed_at[key]

    def _register(self, item: tuple[str, tuple[str, ...], str]) -> str:
        source_arn, containers, image = item
        task_definition, tags = self.task_definition(source_arn)
        shape = self.clients.ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape
        accepted = shape.members if shape is not None else None
        params = clone_with_images(task_definition, dict.fromkeys(containers, image), tags, accepted)
        try:
            resp = self.clients.ecs.register_task_definition(**params)
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"RegisterTaskDefinition failed: {exc}", task_definition=source_arn) from exc
        new_arn = resp["taskDefinition"]["taskDefinitionArn"]
        logger.info(
            "registered task definition",
            source_task_definition=family_revision(source_arn),
            task_definition=family_revision(new_arn),
            containers=list(containers),
            image=image,
        )
        return new_arn

    def _update(self, item: tuple[_Target, str]) -> str:
        target, new_arn = item
        svc = target.config
        kwargs: dict[str, Any] = {
            "cluster": svc.cluster,
            "service": svc.service_name,
            "taskDefinition": new_arn,
        }
        conf = deployment_configuration(target.service or {}, svc.rollback)
        if conf is not None:
            kwargs["deploymentConfiguration"] = conf
        try:
            resp = self.clients.ecs.update_service(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(
                f"UpdateService failed: {exc}", cluster=svc.cluster, service=svc.service_name
            ) from exc
        return primary_deployment_id(resp["service"])

    # the flow -------------------------------------------------------------------------------

    def run(
        self, push: ImagePush, config: EcspilotConfig, dry_run: bool = False, hold: Hold | None = None
    ) -> PushResult:
        """Deploy ``push`` to every service that follows it; see the module docstring.

        ``hold``, when given, may keep a service from a deployment the rules would make: it
        returns the reason (catch-up holds a digest that was rolled back on that service).
        """
        result = PushResult(push=push, dry_run=dry_run)
        log = {
            "repository": push.repository,
            "image_tag": push.tag,
            "image_digest": short_digest(push.digest),
        }
        targets = [
            _Target(svc, ServiceOutcome(svc.name, svc.cluster, svc.service_name, containers))
            for svc, containers in config.services_for(push.repository, push.tag)
        ]
        result.outcomes = [t.outcome for t in targets]
        jobs = config.jobs_for(push.repository, push.tag)
        if not targets and not jobs:
            logger.info("no configured service or job follows this image", extra=log)
            return result
        logger.info(
            "push matches",
            extra={"services": [t.config.name for t in targets], "jobs": [j.name for j, _ in jobs], **log},
        )
        if targets:
            self._attach_services(targets)
            live = [t for t in targets if t.service is not None]
            self._decide(live, push)
            self._guard_stale([t for t in live if t.outcome.outcome == "would-deploy"], push)
            for t in live:
                reason = hold(t.config) if hold and t.outcome.outcome == "would-deploy" else None
                if reason:
                    t.outcome.outcome, t.outcome.reason = "held", reason
            to_deploy = [t for t in live if t.outcome.outcome == "would-deploy"]
            if to_deploy and not dry_run:
                self._deploy(to_deploy, push, result)
        if jobs:
            outcomes = self._map(lambda item: self._follow_job(item[0], item[1], push, dry_run), jobs)
            result.jobs = [o for o in outcomes if isinstance(o, JobOutcome)]  # errors are caught per job
        self._report(result, log)
        return result

    def _follow_job(
        self, job: JobConfig, containers: list[str], push: ImagePush, dry_run: bool
    ) -> JobOutcome:
        """Register a new revision of a job's family with the pushed image, so the next run uses it."""
        outcome = JobOutcome(job.name, job.task_definition, containers)
        try:
            latest, _ = self.task_definition(job.task_definition)
            outcome.from_task_definition = latest["taskDefinitionArn"]
            self._task_definitions.setdefault(
                outcome.from_task_definition, self._task_definitions[job.task_definition]
            )
            images = container_images(latest)
            missing = [c for c in containers if c not in images]
            if missing:
                outcome.reason = f"container(s) {', '.join(missing)} not in {family_revision(outcome.from_task_definition)}"
                return outcome
            verdict, others = decide(images, containers, push)
            if verdict == "unchanged":
                outcome.outcome, outcome.reason = "unchanged", "latest revision already runs this digest"
                return outcome
            running = [self.pushed_at(push.repository, d) for d in sorted(others)]
            if others and is_stale(self.pushed_at(push.repository, push.digest), running):
                outcome.outcome, outcome.reason = (
                    "stale",
                    "latest revision runs an image pushed after this one",
                )
                return outcome
            if dry_run:
                outcome.outcome = "would-register"
                return outcome
            outcome.to_task_definition = self._register(
                (outcome.from_task_definition, tuple(containers), push.pinned)
            )
            outcome.outcome = "registered"
        except EcspilotError as exc:
            outcome.outcome, outcome.reason = "failed", str(exc)
        return outcome

    def describe_services(self, keys: Iterable[tuple[str, str]]) -> None:
        """Describe (cluster, service) pairs not yet known, 10 per call per cluster, into the
        invocation's cache: the service, or why it cannot be deployed to."""
        missing = sorted({k for k in keys if k not in self._services})
        by_cluster: dict[str, list[str]] = {}
        for cluster, name in missing:
            by_cluster.setdefault(cluster, []).append(name)
        batches = [
            (cluster, chunk)
            for cluster, names in by_cluster.items()
            for chunk in chunks(names, DESCRIBE_SERVICES_BATCH)
        ]
        for (cluster, names), resp in zip(batches, self._map(self._describe_services, batches), strict=True):
            if isinstance(resp, EcspilotError):
                for name in names:
                    self._services[(cluster, name)] = str(resp)
                continue
            for name in names:
                self._services[(cluster, name)] = "service not found (MISSING)"
            for failure in resp.get("failures", []):
                name = str(failure.get("arn", "")).rsplit("/", 1)[-1]
                self._services[(cluster, name)] = f"service not found ({failure.get('reason', 'unknown')})"
            for svc in resp.get("services", []):
                self._services[(cluster, svc["serviceName"])] = svc

    def _attach_services(self, targets: list[_Target]) -> None:
        self.describe_services((t.config.cluster, t.config.service_name) for t in targets)
        for t in targets:
            svc = self._services[(t.config.cluster, t.config.service_name)]
            if isinstance(svc, str):
                t.outcome.reason = svc
            elif svc.get("status") == "ACTIVE":
                t.service = svc
                t.outcome.from_task_definition = svc["taskDefinition"]
            else:
                t.outcome.reason = f"service is {svc.get('status')}"

    def _decide(self, targets: list[_Target], push: ImagePush) -> None:
        arns = sorted({t.outcome.from_task_definition for t in targets})
        described = dict(zip(arns, self._map(self.task_definition, arns), strict=True))
        for t in targets:
            got = described[t.outcome.from_task_definition]
            if isinstance(got, EcspilotError):
                t.outcome.reason = str(got)
                continue
            images = container_images(got[0])
            missing = [c for c in t.outcome.containers if c not in images]
            if missing:
                source = family_revision(t.outcome.from_task_definition)
                t.outcome.reason = f"container(s) {', '.join(missing)} not in {source}"
                continue
            verdict, others = decide(images, t.outcome.containers, push)
            t.outcome.outcome = "unchanged" if verdict == "unchanged" else "would-deploy"
            t.running_digests = others
            if verdict == "unchanged":
                t.outcome.reason = "already runs this digest"

    def _guard_stale(self, targets: list[_Target], push: ImagePush) -> None:
        checks = [t for t in targets if t.running_digests]
        if not checks:
            return
        try:
            mine = self.pushed_at(push.repository, push.digest)
            for t in checks:
                running = {d: self.pushed_at(push.repository, d) for d in sorted(t.running_digests)}
                if is_stale(mine, running.values()):
                    newer = [
                        d for d, at in running.items() if at is not None and mine is not None and at > mine
                    ]
                    t.outcome.outcome = "stale"
                    t.outcome.reason = f"runs {short_digest(newer[0])}, pushed after this image"
        except DeployError as exc:
            for t in checks:
                t.outcome.outcome = "failed"
                t.outcome.reason = str(exc)

    def _deploy(self, targets: list[_Target], push: ImagePush, result: PushResult) -> None:
        groups: dict[tuple[str, tuple[str, ...]], list[_Target]] = {}
        for t in targets:
            groups.setdefault((t.outcome.from_task_definition, tuple(t.outcome.containers)), []).append(t)
        keys = list(groups)
        registered = self._map(self._register, [(arn, containers, push.pinned) for arn, containers in keys])
        updates: list[tuple[_Target, str]] = []
        for key, new_arn in zip(keys, registered, strict=True):
            for t in groups[key]:
                if isinstance(new_arn, EcspilotError):
                    t.outcome.outcome, t.outcome.reason = "failed", str(new_arn)
                else:
                    t.outcome.to_task_definition = new_arn
                    updates.append((t, new_arn))
            if not isinstance(new_arn, EcspilotError):
                result.registered.append(new_arn)
        records = []
        started_at = utc_now()
        for (t, new_arn), outcome in zip(updates, self._map(self._update, updates), strict=True):
            if isinstance(outcome, EcspilotError):
                t.outcome.outcome, t.outcome.reason = "failed", str(outcome)
                continue
            t.outcome.outcome, t.outcome.deployment_id = "deployed", outcome
            # the service now runs the new revision: a later push in this invocation clones that one
            if t.service is not None:
                t.service["taskDefinition"] = new_arn
            records.append(
                DeploymentRecord(
                    cluster=t.config.cluster,
                    service=t.config.service_name,
                    from_task_definition=t.outcome.from_task_definition,
                    to_task_definition=new_arn,
                    image_digest=push.digest,
                    image_tag=push.tag,
                    repository=push.repository,
                    deployment_id=outcome,
                    started_at=started_at,
                    event_id=push.event_id,
                    trigger=self.trigger,
                )
            )
        if self.defer_records:
            self.pending_records.extend(records)
        else:
            self.history.record_deployments(records)

    def flush_records(self) -> None:
        """Write the deferred deployment records (BatchWriteItem, 25 per call)."""
        records, self.pending_records = self.pending_records, []
        self.history.record_deployments(records)

    def _report(self, result: PushResult, log: dict[str, str]) -> None:
        for o in result.outcomes:
            _log_outcome(
                "service",
                o.outcome,
                o.from_task_definition,
                o.to_task_definition,
                o.reason,
                {"cluster": o.cluster, "ecs_service": o.service, **log},
            )
        count("DeploymentsStarted", len(result.by_outcome("deployed")))
        count("DeploymentsSkipped", sum(o.outcome in ("unchanged", "stale", "held") for o in result.outcomes))
        count("DeploymentErrors", len(result.by_outcome("failed")))
        for j in result.jobs:
            _log_outcome(
                "job",
                j.outcome,
                j.from_task_definition,
                j.to_task_definition,
                j.reason,
                {"job": j.job, **log},
            )
        if result.jobs:
            count("JobImagesRegistered", sum(j.outcome == "registered" for j in result.jobs))


def _log_outcome(
    what: str, outcome: str, source: str, target: str, reason: str, keys: dict[str, Any]
) -> None:
    """One log line per service or job a push touched."""
    logger.info(
        f"{what} {outcome}",
        extra={
            **keys,
            "outcome": outcome,
            "from_task_definition": family_revision(source),
            "task_definition": family_revision(target),
            "reason": reason,
        },
    )


def deploy_push(
    push: ImagePush,
    config: EcspilotConfig,
    clients: Clients,
    history: History,
    max_workers: int = 8,
    dry_run: bool = False,
) -> PushResult:
    """Deploy one push; raise :class:`DeployFailuresError` after the fan-out if any service failed."""
    result = PushDeployer(clients, history, max_workers).run(push, config, dry_run=dry_run)
    failures = [
        DeployError(o.reason, cluster=o.cluster, service=o.service) for o in result.by_outcome("failed")
    ]
    failures += [DeployError(j.reason, job=j.job) for j in result.jobs if j.outcome == "failed"]
    if failures and not dry_run:
        raise DeployFailuresError(failures, result)
    return result


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
