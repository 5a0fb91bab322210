"""Which configured service ``ecspilot rollback NAME`` acts on (pure: config only)."""

from __future__ import annotations

import pytest

from ecspilot.domain.config import parse_config
from ecspilot.errors import ConfigError
from ecspilot.interfaces.cli_rollback import configured_service

CONTAINERS = {"app": {"repository": "web"}}
CONFIG = parse_config(
    {
        "version": 1,
        "accounts": {"prod": {"role_arn": "arn:aws:iam::222222222222:role/ecspilot-deployer"}},
        "services": [
            {"name": "web", "cluster": "staging", "containers": CONTAINERS},
            {"name": "web-canary", "cluster": "canary", "service": "web", "containers": CONTAINERS},
            {"name": "api", "cluster": "staging", "containers": CONTAINERS},
            {
                "name": "web-prod",
                "account": "prod",
                "cluster": "prod",
                "service": "web",
                "containers": CONTAINERS,
            },
        ],
    }
)


@pytest.mark.parametrize(
    ("name", "chosen"),
    [
        ("web", "web"),
        ("web-canary", "web-canary"),
        ("canary/web", "web-canary"),
        ("api", "api"),
        ("staging/api", "api"),
    ],
)
def test_the_configured_name_wins_then_a_unique_ecs_name(name: str, chosen: str) -> None:
    assert configured_service(CONFIG, name).name == chosen


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("nope", "'nope' is not a configured service"),
        ("web-prod", "web-prod lives in account 'prod': rollback acts on ecspilot's own account only"),
        ("prod/web", "web-prod lives in account 'prod'"),
    ],
)
def test_unknown_and_other_account_services_are_refused(name: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error.replace("(", r"\(")):
        configured_service(CONFIG, name)


def test_an_ecs_name_shared_by_several_services_asks_for_the_configured_name() -> None:
    config = parse_config(
        {
            "version": 1,
            "services": [
                {"name": "a", "cluster": "one", "service": "svc", "containers": CONTAINERS},
                {"name": "b", "cluster": "two", "service": "svc", "containers": CONTAINERS},
            ],
        }
    )
    with pytest.raises(ConfigError, match=r"'svc' names several configured services \(a, b\)"):
        configured_service(config, "svc")
