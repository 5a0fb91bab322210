"""What runs now and how it went: the data behind ``ecspilot status`` and ``ecspilot history``.

Reads only, through :mod:`ecspilot.aws.ecs_reads`: DescribeServices (10 per call per cluster),
DescribeTaskDefinition (once per revision), and Query on the state table (never Scan). A service
in another account (``account:``) is read there with the clients :mod:`.status_places` gives it
(one ``sts:AssumeRole`` per account and region per run) and its records under its own key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.ecs_reads import TaskDefinitions, describe_service_batch, service_batches
from ecspilot.aws.history import History
from ecspilot.domain.config import EcspilotConfig, root_of
from ecspilot.domain.images import ImageRef, short_digest
from ecspilot.domain.keys import state_keys
from ecspilot.domain.service_deployments import stage_text
from ecspilot.domain.taskdef import container_images, family_revision
from ecspilot.errors import AwsError, ConfigError
from ecspilot.interfaces.status_places import Place, by_clients, own_places
from ecspilot.records import dataclass


@dataclass
class ServiceStatus:
    """A configured service: the image it runs now, and its last deployment's outcome."""

    name: str
    cluster: str
    service: str
    account: str = ""  # another account's service (issue 13): "prod (222222222222 eu-west-1)"
    state_service: str = ""  # its key in the state table when not ``service`` (another account)
    task_definition: str = ""
    images: dict[str, str] = field(default_factory=dict)  # container -> tag (or "-")
    digests: dict[str, str] = field(default_factory=dict)  # container -> sha256:...
    versions: dict[str, str] = field(default_factory=dict)  # order: semver containers -> version (issue 27)
    last_deployment: str = "-"
    last_deployment_at: str = ""
    last_deployment_tag: str = ""
    last_deployment_reason: str = ""
    stage: str = ""  # a running blue/green, linear or canary deployment's stage
    problem: str = ""
    failed: bool = False  # a read failed: ``problem`` says which (``status`` exits 1)

    @property
    def label(self) -> str:
        """``prod/web``, or ``prod/web @ prod (222222222222 eu-west-1)`` in another account."""
        return f"{self.cluster}/{self.service}" + (f" @ {self.account}" if self.account else "")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobStatus:
    """A configured job: its last run and outcome."""

    name: str
    cluster: str
    last_run: str = "-"
    last_run_at: str = ""
    trigger: str = ""
    exit_codes: dict[str, int] = field(default_factory=dict)
    duration_seconds: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tag_for(image: str, digest: str | None, deployments: Sequence[Mapping[str, Any]]) -> str:
    """The tag of a running image: its own, or the tag ecspilot recorded when it pinned the digest."""
    ref = ImageRef.parse(image)
    if ref.tag:
        return ref.tag
    for record in deployments:
        if digest and record.get("image_digest") == digest and record.get("image_tag"):
            return str(record["image_tag"])
    return "-"


def _describe_services(
    ecs: Any, keys: Sequence[tuple[str, str]]
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, AwsError]]:
    """The (cluster, service) pairs found, 10 per DescribeServices call per cluster, and the
    clusters whose reads failed (a cluster that does not exist: its rows say so, the rest show)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    failed: dict[str, AwsError] = {}
    for cluster, names in service_batches(keys):
        try:
            services, _ = describe_service_batch(ecs, cluster, names)
        except (ClientError, BotoCoreError) as exc:
            failed[cluster] = AwsError(f"DescribeServices failed: {exc}", cluster=cluster)
            failed[cluster].__cause__ = exc
            continue
        found.update({(cluster, name): svc for name, svc in services.items()})
    return found, failed


def _read_services(
    config: EcspilotConfig, ecs: Any, where: Mapping[str, Place]
) -> tuple[dict[str, dict[str, Any] | None], dict[str, TaskDefinitions], dict[str, str]]:
    """Each service as DescribeServices says (None: not found), the task definition reader of its
    account, and why the services of a cluster that could not be read are missing."""
    described: dict[str, dict[str, Any] | None] = {}
    readers: dict[str, TaskDefinitions] = {}
    unreadable: dict[str, str] = {}
    errors: list[AwsError] = []
    for clients, members in by_clients(config.services, where):
        client = clients.ecs if clients is not None else ecs
        reader = TaskDefinitions(client)
        found, failed = _describe_services(client, [(s.cluster, s.service_name) for s in members])
        errors.extend(failed.values())
        for s in members:
            if s.cluster in failed:
                unreadable[s.name] = str(failed[s.cluster])
                continue
            described[s.name] = found.get((s.cluster, s.service_name))
            readers[s.name] = reader
    if errors and not described:
        raise errors[0]
    return described, readers, unreadable


def service_status(
    config: EcspilotConfig, ecs: Any, history: History, places: Mapping[str, Place] | None = None
) -> list[ServiceStatus]:
    """Every configured service, with what it runs and how its last deployment went. ``places``
    (:mod:`.status_places`): where each is read and keyed; default: all with ``ecs``, plain keys.
    A service whose reads fail (another account, a cluster that does not exist) shows the reason
    (``problem``, ``failed``); the others still show. When no read at all succeeds, the first
    failure is raised (no credentials, no network: one error line)."""
    where = places or own_places(config)
    described, readers, unreadable = _read_services(config, ecs, where)
    out: list[ServiceStatus] = []
    for svc in config.services:
        place = where[svc.name]
        row = ServiceStatus(svc.name, svc.cluster, svc.service_name, place.where)
        row.state_service = place.state_service if place.state_service != svc.service_name else ""
        out.append(row)
        deployments = history.deployments(*place.key, limit=20)
        # a circuit-breaker rollback is ECS undoing the last deployment: show that one's outcome
        last = next((d for d in deployments if d.get("trigger") != "rollback"), None)
        row.stage = stage_text(deployments[0], datetime.now(UTC)) if deployments else ""
        if last is not None:
            row.last_deployment = str(last.get("status", "-"))
            row.last_deployment_at = str(last.get("finished_at") or last.get("started_at", ""))
            row.last_deployment_tag = str(last.get("image_tag") or last.get("trigger", ""))
            row.last_deployment_reason = str(last.get("reason") or "")
        if place.problem or svc.name in unreadable:
            row.problem = place.problem or unreadable[svc.name]
            row.failed = True
            continue
        current = described.get(svc.name)
        if current is None or current.get("status") != "ACTIVE":
            row.problem = "service not found" if current is None else f"service is {current.get('status')}"
            continue
        arn = str(current["taskDefinition"])
        row.task_definition = family_revision(arn)
        try:
            images = container_images(dict(readers[svc.name].get(arn)["taskDefinition"]))
        except (ClientError, BotoCoreError) as exc:
            row.problem, row.failed = f"DescribeTaskDefinition failed: {exc}", True
            continue
        for container in _followed(config, svc):
            image = images.get(container)
            if image is None:
                row.problem = f"container {container} not in {row.task_definition}"
                continue
            digest = ImageRef.parse(image).digest
            row.digests[container] = digest or ""
            row.images[container] = tag_for(image, digest, deployments)
            _version(config, svc, container, row)
    return out


def _version(config: EcspilotConfig, svc: Any, container: str, row: ServiceStatus) -> None:
    """The version a followed ``order: semver`` container runs (its tag read as SemVer)."""
    from ecspilot.domain.semver import parse  # noqa: PLC0415

    root = root_of(config.services, svc.name) if svc.promote is not None else svc
    source = root.containers.get(container) if root is not None else None
    version = parse(row.images[container]) if source is not None and source.semver else None
    if version is not None:
        row.versions[container] = str(version)


def _followed(config: EcspilotConfig, svc: Any) -> list[str]:
    """The containers a service follows: its own, or (promoted, issue 13) its chain's root's."""
    root = root_of(config.services, svc.name) if svc.promote is not None else svc
    return list(root.containers) if root is not None else []


def job_status(config: EcspilotConfig, history: History) -> list[JobStatus]:
    """Every configured job, with its last run."""
    out: list[JobStatus] = []
    for job in config.jobs:
        row = JobStatus(job.name, job.cluster)
        out.append(row)
        runs = history.runs(job.name, limit=1)
        if not runs:
            continue
        last = runs[0]
        row.last_run = str(last.get("status", "-"))
        row.last_run_at = str(last.get("started_at", ""))
        row.trigger = str(last.get("trigger", ""))
        row.exit_codes = {str(k): int(v) for k, v in (last.get("exit_codes") or {}).items()}
        duration = last.get("duration_seconds")
        row.duration_seconds = int(duration) if duration is not None else None
        row.reason = str(last.get("reason") or "")
    return out


Kind = Literal["service", "job"]


def resolve(
    config: EcspilotConfig, name: str, own: tuple[str | None, str | None] = (None, None)
) -> tuple[Kind, str, str]:
    """What ``ecspilot history NAME`` is about: ``("service", cluster, service)`` or
    ``("job", cluster, job)``. NAME is a configured service or job name, an ECS service name
    of the config, or ``CLUSTER/SERVICE`` for any service (external deployments too). A configured
    service's ``service`` is its key in the state table: ``web@<account>:<region>`` in another
    account (``own``: ecspilot's account id and region)."""
    keys = state_keys(config, own)
    exact = [s for s in config.services if s.name == name]
    for svc in exact or config.services:
        if name in (svc.name, svc.service_name, f"{svc.cluster}/{svc.service_name}"):
            return "service", *keys[svc.name]
    job = config.job(name)
    if job is not None:
        return "job", job.cluster, job.name
    if "/" in name:
        cluster, _, service = name.partition("/")
        return "service", cluster, service
    raise ConfigError(f"{name!r} is neither a configured service nor a job (or give CLUSTER/SERVICE)")


def history_rows(
    config: EcspilotConfig,
    history: History,
    name: str,
    limit: int = 20,
    own: tuple[str | None, str | None] = (None, None),
) -> tuple[Kind, list[dict[str, Any]]]:
    """The newest ``limit`` deployments of a service, or runs of a job, for display."""
    kind, cluster, target = resolve(config, name, own)
    if kind == "job":
        rows = []
        for r in history.runs(target, limit=limit):
            exits = r.get("exit_codes") or {}
            rows.append(
                {
                    "started": r.get("started_at", ""),
                    "status": r.get("status", ""),
                    "trigger": r.get("trigger", ""),
                    "task": str(r.get("task_arn", "")).rsplit("/", 1)[-1][:12],
                    "exit": ",".join(f"{k}={v}" for k, v in exits.items()),
                    "duration": _duration(r.get("duration_seconds")),
                    "reason": r.get("reason", ""),
                    "record": plain(r),
                }
            )
        return kind, rows
    rows = []
    for r in history.deployments(cluster, target, limit=limit):
        rows.append(
            {
                "started": r.get("started_at", ""),
                "status": r.get("status", ""),
                "trigger": r.get("trigger", ""),
                "tag": r.get("image_tag") or "-",
                "digest": short_digest(str(r.get("image_digest") or "")) or "-",
                "to": family_revision(str(r.get("to_task_definition") or "")) or "-",
                "duration": _duration(r.get("duration_seconds")),
                "stage": stage_text(r, datetime.now(UTC)),
                "deployment": r.get("deployment_id", ""),
                "reason": r.get("reason", ""),
                "record": plain(r),
            }
        )
    return kind, rows


def plain(value: Any) -> Any:
    """A record as plain JSON values: DynamoDB numbers (Decimal) become int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(v) for v in value]
    return value


def _duration(value: Any) -> str:
    if value is None:
        return "-"
    total = int(value)
    return f"{total // 60}m{total % 60:02d}s" if total >= 60 else f"{total}s"
