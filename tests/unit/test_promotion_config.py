"""The promotion config (issue 13): accounts, account, promote; each problem with its path."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.domain.config import parse_config, root_of
from ecspilot.errors import ConfigError

ROLE = "arn:aws:iam::222222222222:role/ecspilot-deployer"


def doc(*services: dict[str, Any], accounts: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"version": 1, "accounts": accounts or {"prod": {"role_arn": ROLE}}, "services": list(services)}


SOURCE = {"name": "web-staging", "cluster": "staging", "containers": {"app": {"repository": "web"}}}


def promoted(name: str, source: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "cluster": "prod", "promote": {"from": source}, **extra}


def problems_of(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(document)
    return info.value.problems


def test_a_chain_with_accounts_parses_with_the_defaults() -> None:
    config = parse_config(
        doc(SOURCE, promoted("web-qa", "web-staging"), promoted("web-prod", "web-qa", account="prod"))
    )
    prod = config.services[2]
    assert prod.promote is not None
    assert (prod.promote.source, prod.promote.bake_minutes, prod.promote.alarms, prod.promote.approval) == (
        "web-qa",
        30,
        [],
        False,
    )
    assert prod.containers == {}
    assert config.accounts["prod"].account_id == "222222222222"
    assert config.accounts["prod"].region is None
    root = root_of(config.services, "web-prod")
    assert root is not None
    assert root.name == "web-staging"


def test_a_promoted_service_is_never_matched_by_a_push() -> None:
    config = parse_config(doc(SOURCE, promoted("web-prod", "web-staging")))
    assert [s.name for s, _ in config.services_for("web", "v1")] == ["web-staging"]


@pytest.mark.parametrize(
    ("document", "path", "reason"),
    [
        (doc(SOURCE, promoted("p", "nope")), "services[1].promote.from", "unknown service 'nope'"),
        (doc(SOURCE, promoted("p", "p")), "services[1].promote.from", "promotion cycle: p -> p"),
        (
            doc(SOURCE, promoted("a", "b"), promoted("b", "a")),
            "services[1].promote.from",
            "promotion cycle: a -> b -> a",
        ),
        (
            doc(SOURCE, {**promoted("p", "web-staging"), "containers": {"app": {"repository": "web"}}}),
            "services[1].containers",
            "has no containers of its own",
        ),
        (doc({"name": "x", "cluster": "c"}), "services[0].containers", "at least 1 item"),
        (
            doc(SOURCE, promoted("p", "web-staging", account="nope")),
            "services[1].account",
            "unknown account 'nope'",
        ),
        (
            doc(SOURCE, accounts={"prod": {"role_arn": "arn:aws:iam::2222:role/x"}}),
            "accounts.prod.role_arn",
            "is not an IAM role ARN",
        ),
        (
            doc(SOURCE, accounts={"prod": {"role_arn": "arn:aws:iam::222222222222:user/x"}}),
            "accounts.prod.role_arn",
            "is not an IAM role ARN",
        ),
        (
            doc(SOURCE, accounts={"prod": {"role_arn": ROLE, "region": "Europe"}}),
            "accounts.prod.region",
            "not an AWS region",
        ),
        (
            doc(
                SOURCE,
                {**promoted("p", "web-staging"), "promote": {"from": "web-staging", "bake_minutes": -1}},
            ),
            "services[1].promote.bake_minutes",
            "greater than or equal to 0",
        ),
        (
            doc(SOURCE, {**promoted("p", "web-staging"), "promote": {"from": "web-staging", "wait": 1}}),
            "services[1].promote.wait",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_each_promotion_problem_names_its_path(document: dict[str, Any], path: str, reason: str) -> None:
    problems = problems_of(document)
    assert any(p == path and reason in msg for p, msg in problems), problems


def test_two_accounts_may_have_a_service_of_the_same_cluster_and_name() -> None:
    other = {"role_arn": "arn:aws:iam::333333333333:role/d"}
    config = parse_config(
        doc(
            SOURCE,
            promoted("a", "web-staging", account="prod", service="web"),
            promoted("b", "web-staging", account="dr", service="web"),
            accounts={"prod": {"role_arn": ROLE}, "dr": other},
        )
    )
    assert len(config.services) == 3
