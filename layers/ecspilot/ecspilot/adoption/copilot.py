"""``ecspilot import copilot DIR``: AWS Copilot manifests -> an ecspilot config (pure: files in, dict out).

Scheduled Job -> ``jobs`` (schedule translated by :mod:`.copilot_schedule`, image -> ``containers``
following the repository, so the job follows pushes); Load Balanced / Backend / Worker Service ->
``services`` (``rollback`` from ``deployment.rollback_alarms``). Every manifest field that is not
translated comes back as one line saying why: nothing is dropped silently.

Copilot creates the cluster and the task definitions per environment, ecspilot needs their names:
``cluster`` defaults to ``<app>-<env>`` (Copilot's real cluster is ``<app>-<env>-Cluster-<suffix>``,
named by CloudFormation) and task definitions to ``<app>-<env>-<name>``, the family Copilot
registers; ECR repositories of built images are ``<app>/<name>``. The lines say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ecspilot.adoption.copilot_schedule import translate_schedule
from ecspilot.domain.config.base import REPOSITORY_RE
from ecspilot.errors import CopilotImportError

SERVICE_TYPES = ("Load Balanced Web Service", "Backend Service", "Worker Service")
JOB_TYPE = "Scheduled Job"
_ECR_URI = re.compile(
    r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?(?:@.+)?$"
)
# Fields Copilot puts in the task definition it registers: ecspilot reuses that family as it is.
_TASKDEF_FIELDS = frozenset(
    {"cpu", "memory", "variables", "secrets", "env_file", "platform", "storage", "logging", "command",
     "entrypoint", "taskdef_overrides", "image.port", "image.healthcheck", "image.depends_on",
     "image.credentials", "image.labels", "image.build", "image.location", "sidecars"}
)  # fmt: skip
_REASONS = {
    "count": "is not translated: ecspilot never sends desiredCount (the service keeps its count)",
    "exec": "is not translated: ECS Exec stays as Copilot configured the service",
}


class _Yaml11Safe(yaml.SafeLoader):
    """YAML as Copilot (Go, YAML 1.2) reads it: ``on:`` is a key, not the boolean true."""


_Yaml11Safe.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool" or first in "tTfF"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Manifest:
    """A manifest with one environment's overrides merged, remembering which fields were used."""

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.data = data
        self.source = source
        self.used: set[str] = {"name", "type", "environments"}

    def get(self, path: str) -> Any:
        """The value at dotted ``path`` (None when absent), marked as translated."""
        self.used.add(path)
        node: Any = self.data
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def leftovers(self) -> Iterator[str]:
        """Dotted paths of the leaves nothing translated, in manifest order."""

        def walk(node: Any, prefix: str) -> Iterator[str]:
            if prefix in self.used:
                return
            if isinstance(node, dict) and node:
                for key, value in node.items():
                    yield from walk(value, f"{prefix}.{key}" if prefix else str(key))
            elif prefix:
                yield prefix

        yield from walk(self.data, "")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Copilot's environment override: maps merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml11Safe)
    except (OSError, yaml.YAMLError) as exc:
        raise CopilotImportError(f"cannot read {path}", path=str(path)) from exc
    if not isinstance(data, dict):
        raise CopilotImportError(f"{path} is not a YAML mapping", path=str(path))
    return data


def _copilot_dir(workspace: Path) -> Path:
    for candidate in (workspace / "copilot", workspace):
        if (candidate / ".workspace").is_file():
            return candidate
    raise CopilotImportError(f"no copilot/.workspace under {workspace}: not a Copilot workspace")


def _image_source(image: Any, app: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """``image`` -> an ecspilot image source, or None and the reason it cannot follow pushes."""
    if isinstance(image, str):
        image = {"location": image}
    if not isinstance(image, dict):
        return None, "image is missing: pushes cannot be followed"
    if image.get("build") is not None:
        return {"repository": f"{app}/{name}", "tags": ["*"]}, None
    location = image.get("location")
    match = _ECR_URI.fullmatch(str(location)) if location else None
    if match is None or not REPOSITORY_RE.fullmatch(match["repo"]):
        return None, f"image.location {location!r} is not an ECR image: pushes to it cannot be followed"
    note = None
    if match["tag"]:
        note = (
            f"image.location pins tag {match['tag']!r}: the config follows every push to "
            f"{match['repo']} (tags ['*']), narrow the tags"
        )
    return {"repository": match["repo"], "tags": ["*"]}, note


def _containers(m: _Manifest, app: str, name: str, lines: list[str]) -> dict[str, Any]:
    containers: dict[str, Any] = {}
    source, note = _image_source(m.get("image"), app, name)
    m.used.discard("image")  # only build/location are translated; the rest is reported
    m.used.update({"image.build", "image.location"})
    if source is not None:
        containers[name] = source  # Copilot names the main container after the workload
    if note:
        lines.append(f"{name}: {note} (manifest {m.source})")
    sidecars = m.get("sidecars")
    m.used.discard("sidecars")
    for sidecar, spec in (sidecars or {}).items():
        m.used.add(f"sidecars.{sidecar}.image")
        uri = spec.get("image") if isinstance(spec, dict) else None
        match = _ECR_URI.fullmatch(str(uri)) if isinstance(uri, str) else None
        if match and REPOSITORY_RE.fullmatch(match["repo"]):
            containers[sidecar] = {"repository": match["repo"], "tags": ["*"]}
        else:
            lines.append(
                f"{name}: sidecars.{sidecar}.image {uri!r} is not an ECR image: not followed (manifest {m.source})"
            )
    return containers


def _job(m: _Manifest, app: str, env: str, cluster: str, lines: list[str]) -> dict[str, Any]:
    name = str(m.get("name"))
    job: dict[str, Any] = {
        "name": name,
        "cluster": cluster,
        "task_definition": f"{app}-{env}-{name}",
        "launch_type": "FARGATE",
    }
    containers = _containers(m, app, name, lines)
    if containers:
        job["containers"] = containers
    schedule = m.get("on.schedule")
    if schedule is None or str(schedule).strip().lower() == "none":
        lines.append(
            f"{name}: on.schedule is {schedule!r}: imported as an on-demand job (manifest {m.source})"
        )
    else:
        try:
            job["schedule"] = translate_schedule(str(schedule))
        except CopilotImportError as exc:
            lines.append(
                f"{name}: on.schedule not translated, the job is on-demand: {exc} (manifest {m.source})"
            )
    timeout, retries = m.get("timeout"), m.get("retries")
    if timeout is not None:
        lines.append(
            f"{name}: timeout {timeout} is not translated: Copilot stops the task after it, "
            f"ecspilot does not stop runs (manifest {m.source})"
        )
    if retries is not None:
        lines.append(
            f"{name}: retries {retries} is not translated: Copilot re-runs a task that exits non-zero, "
            f"ecspilot's retry_policy only retries the schedule's RunTask call (manifest {m.source})"
        )
    lines.append(
        f"{name}: network: Copilot ran the job on Fargate in the environment's subnets; "
        f"add network.subnets and security_groups to the job (manifest {m.source})"
    )
    return job


def _service(m: _Manifest, app: str, env: str, cluster: str, lines: list[str]) -> dict[str, Any] | None:
    name = str(m.get("name"))
    containers = _containers(m, app, name, lines)
    if not containers:
        lines.append(f"{name}: no ECR image to follow: the service is left out (manifest {m.source})")
        return None
    service: dict[str, Any] = {"name": name, "cluster": cluster, "containers": containers}
    alarms = m.get("deployment.rollback_alarms")
    if alarms:
        service["rollback"] = True
        lines.append(
            f"{name}: deployment.rollback_alarms {alarms!r}: rollback: true turns on the deployment "
            f"circuit breaker with rollback; the alarms themselves are not attached (manifest {m.source})"
        )
    lines.append(
        f"{name}: service: CloudFormation named the ECS service {app}-{env}-{name}-Service-<suffix>; "
        f"set services[].service to it (manifest {m.source})"
    )
    if m.data.get("type") == "Worker Service":
        topics = [t.get("name") for t in (m.get("subscribe.topics") or []) if isinstance(t, dict)]
        m.used.add("subscribe")
        lines.append(
            f"{name}: subscribe (topics {topics}, queue): a Worker Service polls its own SQS queue; "
            "ecspilot's queue runs one task per message with overrides, which does not fit: "
            "the queue and subscriptions stay outside ecspilot (where one message is one unit of "
            f"work, a job with a queue: section can replace the worker) (manifest {m.source})"
        )
    return service


def _reason(path: str) -> str:
    head = path.split(".", maxsplit=1)[0]
    if path in _TASKDEF_FIELDS or head in _TASKDEF_FIELDS:
        return "stays in the task definition Copilot registered (ecspilot reuses that family as is)"
    return _REASONS.get(head, "has no ecspilot equivalent")


def _environments(copilot: Path, manifests: list[dict[str, Any]]) -> list[str]:
    found = {p.parent.name for p in (copilot / "environments").glob("*/manifest.yml")}
    for data in manifests:
        found.update((data.get("environments") or {}).keys())
    return sorted(found)


def import_copilot(
    workspace: Path, environment: str | None = None, cluster: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Translate the Copilot workspace at ``workspace`` (the directory holding ``copilot/``).

    Returns the config (ecspilot's shape, validating with ``parse_config``) and one line per thing
    not translated or assumed. ``environment`` chooses whose overrides apply (default: the first
    environment found, sorted); ``cluster`` is the ECS cluster (default ``<app>-<env>``).
    """
    copilot = _copilot_dir(workspace)
    app = str(_load_yaml(copilot / ".workspace").get("application") or "")
    if not app:
        raise CopilotImportError(f"{copilot / '.workspace'} names no application")
    paths = sorted(p for p in copilot.glob("*/manifest.yml") if p.parent.name != "environments")
    raw = [(p, _load_yaml(p)) for p in paths]
    lines: list[str] = []
    envs = _environments(copilot, [d for _, d in raw])
    if environment is not None and envs and environment not in envs:
        raise CopilotImportError(f"--env {environment}: the workspace has no such environment (found {envs})")
    env = environment or (envs[0] if envs else "test")
    if environment is None:
        lines.append(f"environment: {env!r} used (found {envs}); choose another with --env")
    if cluster is None:
        cluster = f"{app}-{env}"
        lines.append(
            f"cluster: {cluster!r} assumed; Copilot's cluster is named {app}-{env}-Cluster-<suffix> "
            "by CloudFormation: pass the real name with --cluster"
        )
    lines.append(f"task_definition: families assumed {app}-{env}-<name>, as Copilot names them")
    for env_manifest in sorted((copilot / "environments").glob("*/manifest.yml")):
        lines.append(
            f"environments/{env_manifest.parent.name}: the environment manifest (VPC, cluster, load "
            "balancers) is not translated: ecspilot deploys into what it created"
        )
    services: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    for path, loaded in raw:
        source = path.relative_to(copilot.parent).as_posix()
        name = str(loaded.get("name") or path.parent.name)
        data = {**loaded, "name": name}
        overrides = data.get("environments") or {}
        for other in sorted(k for k in overrides if k != env):
            lines.append(
                f"{name}: environments.{other} overrides not applied (environment {env!r}) (manifest {source})"
            )
        m = _Manifest(_merge(data, overrides.get(env) or {}), source)
        kind = data.get("type")
        if kind == JOB_TYPE:
            jobs.append(_job(m, app, env, cluster, lines))
        elif kind in SERVICE_TYPES:
            service = _service(m, app, env, cluster, lines)
            if service is not None:
                services.append(service)
        else:
            lines.append(
                f"{name}: type {kind!r} does not run on ECS tasks ecspilot manages: left out (manifest {source})"
            )
            continue
        lines.extend(f"{name}: {leaf} {_reason(leaf)} (manifest {source})" for leaf in m.leftovers())
    config: dict[str, Any] = {"version": 1}
    if services:
        config["services"] = services
    if jobs:
        config["jobs"] = jobs
    return config, lines
