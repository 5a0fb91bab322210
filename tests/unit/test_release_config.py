"""The release policy keys and the signature gate in the config (issue 27): valid forms, and
each problem named by its path."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.domain.config import parse_config
from ecspilot.errors import ConfigError

PROFILE = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/release"


def doc(app: dict[str, Any], gates: dict[str, Any] | None = None) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "name": "web",
        "cluster": "prod",
        "containers": {"app": {"repository": "web", **app}},
    }
    if gates is not None:
        svc["gates"] = gates
    return {"version": 1, "services": [svc]}


def problems(d: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(d, "ecspilot.yaml")
    return caught.value.problems


def test_the_issue_example_is_valid_and_defaults_are_todays_behaviour() -> None:
    config = parse_config(
        doc(
            {"tags": ["v*"], "order": "semver", "allow": "minor", "prerelease": False},
            {
                "signature": {
                    "profiles": [PROFILE, "arn:aws-cn:signer:cn-north-1:123456789012:/signing-profiles/a_b"]
                }
            },
        )
    )
    app = config.services[0].containers["app"]
    assert (app.order, app.allow, app.prerelease, app.semver) == ("semver", "minor", False, True)
    gates = config.services[0].gates
    assert gates is not None
    assert gates.signature is not None
    assert gates.signature.profiles[0] == PROFILE
    plain = parse_config(doc({"tags": ["v*"]})).services[0].containers["app"]
    assert (plain.order, plain.allow, plain.prerelease, plain.semver) == ("pushed", "major", False, False)


@pytest.mark.parametrize(
    ("app", "gates", "path", "reason"),
    [
        ({"order": "semver"}, None, "services[0].containers.app", "only with tags"),
        (
            {"allow": "minor", "prerelease": True},
            None,
            "services[0].containers.app",
            "allow, prerelease only with tags",
        ),
        ({"tags": ["v*"], "allow": "minor"}, None, "services[0].containers.app.allow", "order: semver"),
        (
            {"tags": ["v*"], "order": "pushed", "allow": "major"},
            None,
            "services[0].containers.app.allow",
            "semver",
        ),
        ({"tags": ["v*"], "prerelease": True}, None, "services[0].containers.app.prerelease", "semver"),
        ({"tags": ["v*"], "order": "newest"}, None, "services[0].containers.app.order", "semver"),
        (
            {"tags": ["v*"], "order": "semver", "allow": "huge"},
            None,
            "services[0].containers.app.allow",
            "patch",
        ),
        ({}, {"signature": {"profiles": []}}, "services[0].gates.signature.profiles", "at least 1"),
        ({}, {"signature": {}}, "services[0].gates.signature.profiles", "required"),
        (
            {},
            {"signature": {"profiles": ["arn:aws:signer:us-east-1:123456789012:signing-profiles/release"]}},
            "services[0].gates.signature.profiles",
            "not a signing profile ARN",
        ),
        (
            {},
            {"signature": {"profiles": ["arn:aws:signer:us-east-1:1234:/signing-profiles/release"]}},
            "services[0].gates.signature.profiles",
            "not a signing profile ARN",
        ),
        (
            {},
            {"signature": {"profiles": ["arn:aws:signer:us-east-1:123456789012:/signing-profiles/re-lease"]}},
            "services[0].gates.signature.profiles",
            "not a signing profile ARN",
        ),
        (
            {},
            {"signature": {"profiles": [PROFILE + "\n"]}},
            "services[0].gates.signature.profiles",
            "not a signing",
        ),
        (
            {},
            {"signature": {"profiles": [PROFILE, PROFILE]}},
            "services[0].gates.signature.profiles",
            "twice",
        ),
    ],
)
def test_each_problem_names_its_path(
    app: dict[str, Any], gates: dict[str, Any] | None, path: str, reason: str
) -> None:
    got = problems(doc(app, gates))
    assert any(p == path and reason in msg for p, msg in got), got


def test_a_job_does_not_take_semver() -> None:
    d = {
        "version": 1,
        "jobs": [
            {
                "name": "report",
                "cluster": "prod",
                "task_definition": "report",
                "containers": {"app": {"repository": "web", "tags": ["v*"], "order": "semver"}},
            }
        ],
    }
    got = problems(d)
    assert any(p == "jobs[0].containers" and "for services" in msg for p, msg in got), got


def test_an_express_service_does_not_take_semver() -> None:
    d = doc({"tags": ["v*"], "order": "semver"})
    d["services"][0]["express"] = True
    got = problems(d)
    assert any(p == "services[0].express" and "Express" in msg for p, msg in got), got
