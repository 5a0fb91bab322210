"""The config contract: what validates, and the path and reason of what does not."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from ecspilot.domain.config import load_config, parse_config
from ecspilot.errors import ConfigError


def svc(name: str = "web", **extra: Any) -> dict[str, Any]:
    return {"name": name, "cluster": "prod", "containers": {"app": {"repository": "web"}}, **extra}


def job(name: str = "report", **extra: Any) -> dict[str, Any]:
    return {"name": name, "cluster": "prod", "task_definition": "report", **extra}


def daemon(name: str = "log-agent", **extra: Any) -> dict[str, Any]:
    return {"name": name, "clusters": ["prod"], "task_definition": "fluent-bit", **extra}


def problems_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, "ecspilot.yaml")
    return caught.value.problems


def test_the_design_example_is_valid() -> None:
    config = parse_config(
        {
            "version": 1,
            "services": [svc(containers={"app": {"repository": "web", "tags": ["v*", "latest"]}})],
            "jobs": [
                job(
                    launch_type="EC2",
                    placement="az-balanced-spread",
                    overrides={"containers": {"report": {"command": ["report", "--daily"]}}},
                    schedule="cron(0 3 * * ? *)",
                    timezone="Europe/Rome",
                    concurrency="forbid",
                    queue={"allow": ["command", "environment"], "max_running": 5},
                )
            ],
            "daemons": [daemon(placement_constraints=["attribute:ecs.os-type == linux"])],
        }
    )
    assert config.services[0].service_name == "web"
    assert config.services[0].containers["app"].tags == ["v*", "latest"]
    assert config.jobs[0].concurrency == "forbid"


def test_defaults_are_documented_ones() -> None:
    config = parse_config({"version": 1, "services": [svc()], "jobs": [job()]})
    assert config.services[0].containers["app"].tags == ["*"]
    assert config.services[0].rollback is False
    assert (config.jobs[0].count, config.jobs[0].timezone, config.jobs[0].enabled) == (1, "UTC", True)


@pytest.mark.parametrize(
    ("doc", "path", "reason"),
    [
        ({"version": 2}, "version", "Input should be 1"),
        ({"version": 1, "services": [svc(containers={})]}, "services[0].containers", "at least 1 item"),
        (
            {
                "version": 1,
                "services": [svc(), svc(), svc(containers={"app": {"repository": "web", "tags": ["v 1"]}})],
            },
            "services[2].containers.app.tags",
            "not a tag glob",
        ),
        (
            {"version": 1, "services": [svc(containers={"app": {"repository": "Web!"}})]},
            "services[0].containers.app.repository",
            "not a valid ECR repository name",
        ),
        (
            {"version": 1, "services": [svc(colour="blue")]},
            "services[0].colour",
            "Extra inputs are not permitted",
        ),
        ({"version": 1, "services": [svc(), svc()]}, "services[1].name", "duplicate name 'web'"),
        (
            {"version": 1, "services": [svc("a", service="web"), svc("b", service="web")]},
            "services[1].containers.app",
            "two sources would fight over it",
        ),
        ({"version": 1, "jobs": [job(task_definition="report:latest")]}, "jobs[0].task_definition", "family"),
        (
            {"version": 1, "jobs": [job(schedule="cron(0 3 * * *)")]},
            "jobs[0].schedule",
            "cron needs 6 fields",
        ),
        ({"version": 1, "jobs": [job(schedule="every day")]}, "jobs[0].schedule", "is not a schedule"),
        ({"version": 1, "jobs": [job(timezone="Mars/Olympus")]}, "jobs[0].timezone", "unknown time zone"),
        ({"version": 1, "jobs": [job(concurrency="sometimes")]}, "jobs[0].concurrency", "allow"),
        (
            {"version": 1, "jobs": [job(launch_type="FARGATE", placement="az-balanced-spread")]},
            "jobs[0].placement",
            "not supported on FARGATE",
        ),
        (
            {
                "version": 1,
                "jobs": [
                    job(
                        capacity_provider_strategy=[{"capacity_provider": "FARGATE_SPOT"}],
                        placement="binpack",
                    )
                ],
            },
            "jobs[0].placement",
            "not supported on FARGATE",
        ),
        (
            {"version": 1, "jobs": [job(placement={"strategy": [{"type": "random"}] * 6})]},
            "jobs[0].placement",
            "at most 5 strategies, got 6",
        ),
        (
            {
                "version": 1,
                "jobs": [
                    job(
                        placement={
                            "constraints": [
                                {
                                    "type": "memberOf",
                                    "expression": "attribute:ecs.instance-type =~ t3.* andd x",
                                }
                            ]
                        }
                    )
                ],
            },
            "jobs[0].placement",
            "invalid memberOf expression: unexpected 'andd'",
        ),
        ({"version": 1, "jobs": [job(placement="spready")]}, "jobs[0].placement", "unknown placement preset"),
        ({"version": 1, "jobs": [job(schedule="cron(0 25 * * ? *)")]}, "jobs[0].schedule", "outside 0-23"),
        (
            {
                "version": 1,
                "jobs": [job(launch_type="EC2", capacity_provider_strategy=[{"capacity_provider": "x"}])],
            },
            "jobs[0]",
            "exclusive",
        ),
        (
            {"version": 1, "jobs": [job(queue={"allow": ["taskRoleArn"]})]},
            "jobs[0].queue.allow",
            "cannot be allowed",
        ),
        ({"version": 1, "jobs": [job(count=0)]}, "jobs[0].count", "greater than or equal to 1"),
        (
            {
                "version": 1,
                "jobs": [job(task_definition="report:3", containers={"r": {"repository": "report"}})],
            },
            "jobs[0].containers",
            "pinned",
        ),
        ({"version": 1, "daemons": [daemon(clusters="all")]}, "daemons[0].clusters", ""),
        (
            {"version": 1, "daemons": [daemon(), daemon("other", service="log-agent")]},
            "daemons[1].service",
            "already",
        ),
    ],
)
def test_each_problem_names_its_path_and_reason(doc: dict[str, Any], path: str, reason: str) -> None:
    problems = problems_of(doc)
    assert any(p == path and reason in msg for p, msg in problems), problems


def test_one_container_per_repository_and_service_is_fine() -> None:
    # two containers of one service from two repositories, and one repository feeding two services
    config = parse_config(
        {
            "version": 1,
            "services": [
                svc("web", containers={"app": {"repository": "web"}, "proxy": {"repository": "nginx"}}),
                svc("api", containers={"app": {"repository": "web"}}),
            ],
        }
    )
    assert [s.name for s, _ in config.services_for("web", "v1")] == ["web", "api"]
    assert config.services_for("nginx", "1.27")[0][1] == ["proxy"]


@pytest.mark.parametrize(
    ("patterns", "tag", "matches"),
    [
        (["v*"], "v1.4.2", True),
        (["v*"], "latest", False),
        (["*"], "anything", True),
        (["release-?"], "release-1", True),
        (["release-?"], "release-10", False),
        (["v[0-9]*"], "v2", True),
        (["v[0-9]*"], "vx", False),
        (["latest", "stable"], "stable", True),
    ],
)
def test_tag_globs(patterns: list[str], tag: str, matches: bool) -> None:
    config = parse_config(
        {"version": 1, "services": [svc(containers={"app": {"repository": "web", "tags": patterns}})]}
    )
    assert bool(config.services_for("web", tag)) is matches


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ecspilot.yaml"
    path.write_text("version: 1\nservices:\n  - name: web\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert ("services[0].cluster", "Field required") in caught.value.problems


@pytest.mark.parametrize(
    ("text", "expected"), [("version: [1\n", "not valid YAML"), ("- 1\n", "must be a mapping")]
)
def test_unreadable_documents(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


# --- strict parsing: whole values only, UTF-8 only -----------------------------------------------


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"version": 1, "services": [svc("web\n")]}, "services[0].name"),
        (
            {"version": 1, "services": [svc(containers={"app": {"repository": "web\n"}})]},
            "services[0].containers.app",
        ),
        (
            {"version": 1, "services": [svc(containers={"app": {"repository": "web", "tags": ["v*\n"]}})]},
            "services[0].containers.app.tags",
        ),
        ({"version": 1, "jobs": [job(task_definition="report\n")]}, "jobs[0].task_definition"),
        ({"version": 1, "jobs": [job(schedule="rate(1 day)\n")]}, "jobs[0].schedule"),
        ({"version": 1, "jobs": [job(schedule="rate(\u0661 day)")]}, "jobs[0].schedule"),
        ({"version": 1, "jobs": [job(schedule="at(2026-11-29T16:00:00)\n")]}, "jobs[0].schedule"),
    ],
    ids=["name", "repository", "tag", "task-definition", "rate", "rate-unicode-digit", "at"],
)
def test_a_value_with_a_trailing_newline_or_foreign_digits_is_rejected(
    doc: dict[str, Any], path: str
) -> None:
    assert any(p.startswith(path) for p, _ in problems_of(doc)), problems_of(doc)


@pytest.mark.parametrize(
    "content",
    [b"version: 1\nservices: []\n# caf\xe9 in latin-1\n", b"\xff\xfeversion: 1\n", b"version: 1\n\x80\n"],
    ids=["latin-1", "utf-16-bom", "stray-byte"],
)
def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "ecspilot.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        load_config(path)
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("base", ["Model", "ImageSource", "NAME_RE"]),
        ("jobs", ["JobConfig", "NetworkConfig", "PlacementSpec", "RetryPolicy", "QueueConfig"]),
        ("schema", ["EcspilotConfig", "ServiceConfig", "DaemonConfig", "ClusterTag"]),
        ("loading", ["load_config", "parse_config", "format_loc"]),
    ],
)
def test_the_package_re_exports_each_part_under_its_old_import_path(module: str, names: list[str]) -> None:
    # GIVEN the config split by layer WHEN importing from ecspilot.domain.config, as every caller does
    from ecspilot.domain import config  # noqa: PLC0415

    part = importlib.import_module(f"ecspilot.domain.config.{module}")
    # THEN the names are the very objects the part defines, and the package lists them
    for name in names:
        assert getattr(config, name) is getattr(part, name)
        assert name in config.__all__
