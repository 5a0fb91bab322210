"""Queue requests: parse and validate a message body against the job's allowlist. Pure.

Body: ``{"job": NAME, "overrides": {...}, "count": N, "idempotency_key": "..."}``.
``overrides`` takes ``command`` (list of strings), ``environment`` (name -> value),
``cpu`` and ``memory`` (integers), and ``container`` (which container they apply
to, a container of the job's task definition: :func:`check_container`, once it is resolved;
default: the task definition's first container). Each must be allowed by the
job's ``queue.allow``: ``environment`` allows every variable, ``environment.NAME``
one; ``container`` must be allowed too (issue 24: a message aiming the overrides at a sidecar
is a choice the job's owner makes). Anything else (``taskRoleArn``, ``executionRoleArn``, ``image``, unknown
keys) is refused: a message can never choose a role or an image.
The same rules serve the handler and ``ecspilot enqueue``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ecspilot.domain.config import EcspilotConfig, JobConfig
from ecspilot.errors import InvalidMessageError
from ecspilot.records import dataclass

# ECS refuses a RunTask whose overrides exceed 8192 bytes (JSON).
MAX_OVERRIDES_BYTES = 8192
MAX_BODY_BYTES = 256 * 1024
OVERRIDE_KEYS = frozenset({"command", "environment", "cpu", "memory", "container"})
BODY_KEYS = frozenset({"job", "overrides", "count", "idempotency_key"})
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
# A valid body nests 4 levels (body, overrides, environment or command, value); a deeper one is
# refused before it is parsed, so a body nested 10,000 deep never reaches the recursive parser.
MAX_NESTING = 32


@dataclass(frozen=True)
class QueueRequest:
    """A validated request: what the job runner needs, nothing a message may not choose."""

    job: JobConfig
    count: int = 1
    container: str | None = None
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    cpu: int | None = None
    memory: int | None = None
    idempotency_key: str | None = None

    def container_override(self, container: str) -> dict[str, Any]:
        """The ECS ``containerOverrides`` entry for ``container`` (camelCase, as RunTask takes it)."""
        out: dict[str, Any] = {"name": container}
        if self.command is not None:
            out["command"] = list(self.command)
        if self.environment:
            out["environment"] = [{"name": k, "value": v} for k, v in self.environment]
        if self.cpu is not None:
            out["cpu"] = self.cpu
        if self.memory is not None:
            out["memory"] = self.memory
        return out

    @property
    def has_overrides(self) -> bool:
        return bool(
            self.command is not None or self.environment or self.cpu is not None or self.memory is not None
        )


def _allowed(allow: list[str], key: str, variable: str | None = None) -> bool:
    if key in allow:
        return True
    return variable is not None and f"{key}.{variable}" in allow


def _int(value: Any, name: str, job: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidMessageError(f"override {name} must be a whole number >= 0", job=job)
    return value


def invalid_unicode(value: Any, path: str = "the body") -> str | None:
    """Where ``value`` (parsed JSON) holds a string that is not valid Unicode (a lone UTF-16
    surrogate, which JSON's ``\\uXXXX`` escapes can spell), keys included; None when it holds none."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            name = ascii(key)[1:-1]  # the reason must itself be valid Unicode
            found = invalid_unicode(key, f"a key of {path}") or invalid_unicode(item, f"{path}.{name}")
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = invalid_unicode(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def parse_request(body: str | bytes, config: EcspilotConfig) -> QueueRequest:
    """Validate a message body; raise :class:`InvalidMessageError` with a precise reason."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidMessageError(f"message body is larger than {MAX_BODY_BYTES} bytes")
    depth = nesting_depth(body)
    if depth > MAX_NESTING:
        raise InvalidMessageError(
            f"message body nests JSON {depth} levels deep; a message has at most {MAX_NESTING}"
        )
    try:
        data = json.loads(body)
    except RecursionError as exc:  # unreachable past the depth check; kept as a precise reason
        raise InvalidMessageError("message body nests JSON too deeply to parse") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidMessageError(f"message body is not JSON: {exc}") from exc
    where = invalid_unicode(data)
    if where is not None:
        # a lone surrogate ("\\udc80") is a valid JSON escape but no Unicode character: ECS,
        # the logs and the DLQ would each choke on it, or mangle it, somewhere later
        job = data.get("job") if isinstance(data, dict) else None
        raise InvalidMessageError(
            f"message body has invalid Unicode (a lone surrogate) in {where}",
            job=job if isinstance(job, str) and invalid_unicode(job) is None else "",
        )
    if not isinstance(data, dict):
        raise InvalidMessageError("message body must be a JSON object with a 'job' key")
    unknown = sorted(set(data) - BODY_KEYS)
    if unknown:
        raise InvalidMessageError(f"unknown key(s) in message: {', '.join(map(str, unknown))}")
    name = data.get("job")
    if not isinstance(name, str) or not name:
        raise InvalidMessageError("message has no 'job' (a job name from the config)")
    job = config.job(name)
    if job is None:
        raise InvalidMessageError(f"unknown job {name!r}", job=name)
    if job.queue is None:
        raise InvalidMessageError(f"job {name} does not accept queue messages (no 'queue' section)", job=name)
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= job.queue.max_count:
        raise InvalidMessageError(f"count must be a whole number from 1 to {job.queue.max_count}", job=name)
    key = data.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.match(key)):
        raise InvalidMessageError("idempotency_key must be 1-128 printable ASCII characters", job=name)
    overrides = data.get("overrides", {})
    if not isinstance(overrides, dict):
        raise InvalidMessageError("overrides must be a JSON object", job=name)
    request = _overrides(job, overrides, count, key)
    size = len(
        json.dumps({"containerOverrides": [request.container_override(request.container or "x" * 255)]})
    )
    if size > MAX_OVERRIDES_BYTES:
        raise InvalidMessageError(
            f"overrides are {size} bytes once encoded; ECS takes at most {MAX_OVERRIDES_BYTES}", job=name
        )
    return request


def nesting_depth(body: str | bytes) -> int:
    """The deepest nesting of JSON arrays and objects in ``body`` (brackets inside strings do
    not count). Linear, no recursion; stops counting past ``MAX_NESTING``."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_NESTING:
                    break
        elif char in "]}":
            depth -= 1
    return deepest


def check_container(request: QueueRequest, task_definition: Mapping[str, Any]) -> None:
    """A message's ``container`` must be a container of the job's task definition (else RunTask
    would fail later, or apply the overrides to nothing): :class:`InvalidMessageError` if not."""
    if request.container is None:
        return
    names = [str(c.get("name", "")) for c in task_definition.get("containerDefinitions", [])]
    if request.container not in names:
        family = str(task_definition.get("family", "")) or "the task definition"
        raise InvalidMessageError(
            f"override container {request.container!r} is not a container of {family} "
            f"(containers: {', '.join(names) or 'none'})",
            job=request.job.name,
        )


def _overrides(job: JobConfig, overrides: dict[str, Any], count: int, key: str | None) -> QueueRequest:
    assert job.queue is not None
    allow, name = job.queue.allow, job.name
    forbidden = sorted(str(k) for k in overrides if k not in OVERRIDE_KEYS)
    if forbidden:
        raise InvalidMessageError(
            f"override(s) {', '.join(forbidden)} are not allowed: a message may only set {', '.join(allow) or 'nothing'}",
            job=name,
        )
    container = overrides.get("container")
    if container is not None and (not isinstance(container, str) or not container):
        raise InvalidMessageError("override container must be a container name", job=name)
    if container is not None and not _allowed(allow, "container"):
        raise InvalidMessageError("override container is not in this job's queue.allow", job=name)
    command = overrides.get("command")
    if command is not None:
        if not _allowed(allow, "command"):
            raise InvalidMessageError("override command is not in this job's queue.allow", job=name)
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise InvalidMessageError("override command must be a list of strings", job=name)
    environment: list[tuple[str, str]] = []
    env = overrides.get("environment")
    if env is not None:
        if not isinstance(env, dict):
            raise InvalidMessageError("override environment must be an object of name -> string", job=name)
        for var, value in env.items():
            if not isinstance(var, str) or not ENV_NAME_RE.match(var) or not isinstance(value, str):
                raise InvalidMessageError(
                    f"environment variable {var!r} must be a valid name with a string value", job=name
                )
            if not _allowed(allow, "environment", var):
                raise InvalidMessageError(
                    f"override environment.{var} is not in this job's queue.allow", job=name
                )
            environment.append((var, value))
    sizes: dict[str, int | None] = {"cpu": None, "memory": None}
    limits = {"cpu": job.queue.max_cpu, "memory": job.queue.max_memory}
    for resource in ("cpu", "memory"):
        if resource in overrides:
            if not _allowed(allow, resource):
                raise InvalidMessageError(f"override {resource} is not in this job's queue.allow", job=name)
            value = _int(overrides[resource], resource, name)
            limit = limits[resource]
            if limit is None or value > limit:
                raise InvalidMessageError(
                    f"override {resource}={value} is beyond this job's limit (queue.max_{resource}: {limit})",
                    job=name,
                )
            sizes[resource] = value
    return QueueRequest(
        job=job,
        count=count,
        container=container,
        command=tuple(command) if command is not None else None,
        environment=tuple(environment),
        cpu=sizes["cpu"],
        memory=sizes["memory"],
        idempotency_key=key,
    )


def build_body(job: str, settings: dict[str, str], count: int = 1, idempotency_key: str | None = None) -> str:
    """A message body from ``--set KEY=VALUE`` pairs: ``command`` (a JSON list, or words split on
    spaces), ``environment.NAME``, ``cpu``, ``memory``, ``container``."""
    overrides: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "command":
            overrides["command"] = json.loads(value) if value.startswith("[") else value.split()
        elif key.startswith("environment."):
            overrides.setdefault("environment", {})[key.removeprefix("environment.")] = value
        elif key in ("cpu", "memory"):
            overrides[key] = int(value) if value.isdigit() else value
        else:
            overrides[key] = value
    body: dict[str, Any] = {"job": job, "count": count}
    if overrides:
        body["overrides"] = overrides
    if idempotency_key:
        body["idempotency_key"] = idempotency_key
    return json.dumps(body, sort_keys=True)
