"""Which configured service a service task stop belongs to, by the account and region it comes
from (issues 13 and 16); the crash-loop message of a service in another account. Pure."""

from __future__ import annotations

import pytest

from ecspilot.domain.config import parse_config
from ecspilot.tracking.health import arn_origin, service_at
from ecspilot.tracking.health_messages import crash_loop_message

OWN = ("123456789012", "us-east-1")
ROLE = "arn:aws:iam::222222222222:role/ecspilot-deployer"
CONFIG = parse_config(
    {
        "version": 1,
        "accounts": {
            "prod": {"role_arn": ROLE, "region": "eu-west-1"},
            "dr": {"role_arn": "arn:aws:iam::333333333333:role/ecspilot-deployer"},
        },
        "services": [
            {"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}},
            {
                "name": "web-prod",
                "account": "prod",
                "cluster": "prod",
                "service": "web",
                "promote": {"from": "web"},
            },
            {
                "name": "web-dr",
                "account": "dr",
                "cluster": "prod",
                "service": "web",
                "promote": {"from": "web"},
            },
        ],
    }
)


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (OWN, ("web", "web")),
        (("222222222222", "eu-west-1"), ("web-prod", "web@222222222222:eu-west-1")),
        # an account without a region of its own lives in ecspilot's region
        (("333333333333", "us-east-1"), ("web-dr", "web@333333333333:us-east-1")),
        # a configured account in another region than its configured one: not that service
        (("222222222222", "us-east-1"), None),
        (("333333333333", "eu-west-1"), None),
        (("444444444444", "eu-west-1"), None),
    ],
)
def test_a_stop_belongs_to_the_service_configured_in_its_account_and_region(
    origin: tuple[str, str], expected: tuple[str, str] | None
) -> None:
    found = service_at(CONFIG, "prod", "web", origin, OWN)
    got = (found[0].name, found[1]) if found is not None else None
    assert got == expected


def test_a_service_configured_only_elsewhere_is_not_found() -> None:
    assert service_at(CONFIG, "staging", "web", ("222222222222", "eu-west-1"), OWN) is None
    assert service_at(CONFIG, "prod", "api", OWN, OWN) is None


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:ecs:eu-west-1:222222222222:cluster/prod", ("222222222222", "eu-west-1")),
        ("arn:aws-cn:ecs:cn-north-1:222222222222:cluster/prod", ("222222222222", "cn-north-1")),
        ("prod", None),
        ("arn:aws:ecs:::cluster/prod", None),
        ("arn:aws:iam::222222222222:role/x", None),
    ],
)
def test_the_origin_an_ecs_arn_names(arn: str, expected: tuple[str, str] | None) -> None:
    assert arn_origin(arn) == expected


def test_a_crash_loop_in_another_account_names_the_account_and_the_config_name() -> None:
    stops = [
        {
            "stopped_at": "2026-11-29T03:00:00.000Z",
            "reason": "Task failed ELB health checks",
            "kind": "elb-health-check",
        }
    ]
    subject, body = crash_loop_message(
        "prod", "web@222222222222:eu-west-1", stops, 10, "eu-west-1", "web-prod"
    )
    assert subject.startswith("ecspilot: prod/web@222222222222:eu-west-1 is crash-looping")
    assert "ECS service web on cluster prod in account 222222222222 eu-west-1 is crash-looping" in body
    assert "/ecs/v2/clusters/prod/services/web/events?region=eu-west-1" in body
    assert "Status:       ecspilot status web-prod" in body
