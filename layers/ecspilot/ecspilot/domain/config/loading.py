"""Loading and validating the config: YAML in, a typed :class:`EcspilotConfig` or every problem out.

Every problem is reported with its path inside the file, such as ``services[2].containers.app.tags``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ecspilot.domain.config.base import NAME_RE, ImageSource
from ecspilot.domain.config.promotion import promotion_problems
from ecspilot.domain.config.schema import EcspilotConfig
from ecspilot.domain.config.stops import stop_problems
from ecspilot.domain.modeling import validation_errors
from ecspilot.errors import ConfigError


def _cross_check(config: EcspilotConfig) -> Iterator[tuple[str, str]]:
    """Problems no single entry can see: duplicate names, fighting sources."""
    for section in ("services", "jobs", "daemons"):
        seen: dict[str, int] = {}
        for i, entry in enumerate(getattr(config, section)):
            if not NAME_RE.fullmatch(entry.name):
                yield f"{section}[{i}].name", f"{entry.name!r} is not a valid name"
            if entry.name in seen:
                yield (
                    f"{section}[{i}].name",
                    f"duplicate name {entry.name!r} (first at {section}[{seen[entry.name]}])",
                )
            else:
                seen[entry.name] = i
    owners: dict[tuple[str, str, str, str], tuple[int, ImageSource]] = {}
    for i, svc in enumerate(config.services):
        for container, source in svc.containers.items():
            key = (svc.account or "", svc.cluster, svc.service_name, container)
            if key in owners:
                first, _ = owners[key]
                yield (
                    f"services[{i}].containers.{container}",
                    f"container {container} of service {svc.cluster}/{svc.service_name} already has an "
                    f"image source at services[{first}]: two sources would fight over it",
                )
            else:
                owners[key] = (i, source)
    yield from promotion_problems(config.services, config.accounts)
    for name in config.windows:
        if not NAME_RE.fullmatch(name):
            yield f"windows.{name}", f"{name!r} is not a valid window name"
    users = [(f"services[{i}]", s.window) for i, s in enumerate(config.services)]
    users += [(f"daemons[{i}]", d.window) for i, d in enumerate(config.daemons)]
    yield from stop_problems(config.windows, config.freezes, users)
    daemon_targets: dict[tuple[str, str], int] = {}
    for i, daemon in enumerate(config.daemons):
        if daemon.clusters == "*":
            continue
        for cluster in daemon.clusters:
            target = (cluster, daemon.service_name)
            if target in daemon_targets:
                yield (
                    f"daemons[{i}].service",
                    f"daemons[{daemon_targets[target]}] already manages {cluster}/{daemon.service_name}",
                )
            daemon_targets[target] = i
    for i, job in enumerate(config.jobs):
        if ":" in job.task_definition and job.containers:
            yield (
                f"jobs[{i}].containers",
                f"job {job.name} is pinned to {job.task_definition}: pushes cannot update a pinned revision",
            )


def format_loc(loc: Sequence[int | str]) -> str:
    """Turn a pydantic location tuple into ``services[2].containers.app.tags``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[str]", "PlacementSpec", "function-after[_launch(), JobConfig]"):
            continue  # union branch names add nothing for a reader
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_config(data: Any, source: str = "<config>") -> EcspilotConfig:
    """Validate a decoded config document; raise :class:`ConfigError` listing every problem."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the config must be a mapping with version, services, jobs, daemons")
    try:
        config = EcspilotConfig.model_validate(data)
    except ValueError as exc:
        errors = validation_errors(exc)
        if errors is None:
            raise
        problems = []
        for err in errors:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append((format_loc(err["loc"]), msg))
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems) from exc
    problems = list(_cross_check(config))
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems)
    return config


def load_config(path: str | Path) -> EcspilotConfig:
    """Read and validate the YAML config at ``path``."""
    import yaml  # noqa: PLC0415 - only the config loader parses YAML

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(data, str(path))
