"""The promotion's pure decisions (issue 13): the gates in order, the releases, the keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ecspilot.domain.config import parse_config
from ecspilot.domain.keys import scoped_service, state_keys
from ecspilot.promotion.decisions import (
    Facts,
    Release,
    judge,
    registry_of,
    releases,
    schedule_name,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
RELEASE = Release("web-staging", "ecs-svc/1", "web", "v1", D1, "", NOW - timedelta(minutes=40), ("app",))
BASE = Facts(RELEASE, bake_minutes=30, alarms=("staging-5xx",), approval_required=True)
READ = replace(BASE, target_digests={"app": D2}, source_runs="", alarm_reasons=(), approved=True)


@pytest.mark.parametrize(
    ("facts", "word", "detail", "needs"),
    [
        (Facts(None, 30), "waiting", "the source has no COMPLETED deployment yet", None),
        (BASE, "waiting", "", "target"),
        (replace(READ, target_digests={"app": D1}), "in-sync", f"runs {D1[:19]}", None),
        (replace(READ, pinned_at=NOW - timedelta(minutes=5)), "in-sync", None, None),
        (replace(READ, pinned_at=NOW - timedelta(hours=5)), "promote", D1[:19], None),
        (replace(READ, held="was ROLLED_BACK on the target: held"), "blocked", None, None),
        (replace(READ, bake_minutes=60), "waiting", "bake ends at 2026-11-29T12:20:00Z", None),
        (replace(BASE, target_digests={"app": D2}), "waiting", "", "source"),
        (
            replace(READ, source_runs="web-staging no longer runs x"),
            "blocked",
            "web-staging no longer runs x",
            None,
        ),
        (replace(READ, alarm_reasons=None), "waiting", "", "alarms"),
        (
            replace(READ, alarm_reasons=("alarm staging-5xx in ALARM",)),
            "blocked",
            "alarm staging-5xx in ALARM",
            None,
        ),
        (replace(READ, approved=None), "waiting", "", "approval"),
        (replace(READ, approved=False), "awaiting approval", None, None),
        (READ, "promote", D1[:19], None),
        (replace(READ, alarms=(), alarm_reasons=None), "promote", D1[:19], None),
        (replace(READ, approval_required=False, approved=None), "promote", D1[:19], None),
        # --force skips the bake, the source, the alarms and the approval, never the hold
        (replace(BASE, target_digests={"app": D2}, bake_minutes=600, force=True), "promote", D1[:19], None),
        (replace(BASE, target_digests={"app": D2}, held="held", force=True), "blocked", None, None),
    ],
)
def test_the_gates_in_order(facts: Facts, word: str, detail: str | None, needs: str | None) -> None:
    verdict = judge(facts, NOW)
    assert (verdict.word, verdict.needs) == (word, needs)
    if detail is not None:
        assert verdict.detail == detail


def test_the_gates_passed_are_listed_for_the_history() -> None:
    assert [g for g, _ in judge(READ, NOW).gates] == [
        "completed",
        "bake",
        "source runs it",
        "alarms",
        "approval",
    ]


ROOT = parse_config(
    {
        "version": 1,
        "services": [
            {
                "name": "web-staging",
                "cluster": "staging",
                "containers": {
                    "app": {"repository": "web", "tags": ["v*"]},
                    "proxy": {"repository": "envoy"},
                },
            }
        ],
    }
).services[0]


def record(status: str, digest: str, at: str, repository: str = "web", tag: str = "v1") -> dict[str, str]:
    return {
        "status": status,
        "image_digest": digest,
        "repository": repository,
        "image_tag": tag,
        "deployment_id": f"ecs-svc/{at}",
        "started_at": at,
        "finished_at": at,
    }


def test_the_release_is_the_newest_completed_record_per_repository() -> None:
    records = [  # newest first, as the gsi1 query returns them
        record("IN_PROGRESS", D2, "2026-11-29T11:00:00Z"),
        record("COMPLETED", D1, "2026-11-29T10:00:00Z", "envoy", "1.30"),
        record("FAILED", D2, "2026-11-29T09:30:00Z"),
        {"status": "COMPLETED", "deployment_id": "ecs-svc/external", "image_digest": ""},
        record("COMPLETED", D1, "2026-11-29T09:00:00Z"),
        record("COMPLETED", D2, "2026-11-28T09:00:00Z"),
        record("COMPLETED", D1, "2026-11-28T08:00:00Z", "other"),
    ]
    found = releases(records, "web-staging", ROOT)
    assert [(r.repository, r.digest, r.containers, r.deployment_id) for r in found] == [
        ("envoy", D1, ("proxy",), "ecs-svc/2026-11-29T10:00:00Z"),
        ("web", D1, ("app",), "ecs-svc/2026-11-29T09:00:00Z"),
    ]


@pytest.mark.parametrize(
    ("account", "region", "key"),
    [
        ("123456789012", "us-east-1", "web"),
        ("222222222222", "us-east-1", "web@222222222222:us-east-1"),
        ("123456789012", "eu-west-1", "web@123456789012:eu-west-1"),
    ],
)
def test_a_service_elsewhere_is_keyed_with_its_account_and_region(
    account: str, region: str, key: str
) -> None:
    assert scoped_service("web", account, region, ("123456789012", "us-east-1")) == key


def test_two_accounts_with_the_same_cluster_and_service_never_share_a_key() -> None:
    config = parse_config(
        {
            "version": 1,
            "accounts": {
                "prod": {"role_arn": "arn:aws:iam::222222222222:role/d", "region": "eu-west-1"},
                "dr": {"role_arn": "arn:aws:iam::333333333333:role/d"},
            },
            "services": [
                {
                    "name": "a",
                    "cluster": "prod",
                    "service": "web",
                    "containers": {"app": {"repository": "web"}},
                },
                {
                    "name": "b",
                    "cluster": "prod",
                    "service": "web",
                    "account": "prod",
                    "promote": {"from": "a"},
                },
                {"name": "c", "cluster": "prod", "service": "web", "account": "dr", "promote": {"from": "a"}},
            ],
        }
    )
    keys = state_keys(config, ("123456789012", "us-east-1"))
    assert keys == {
        "a": ("prod", "web"),
        "b": ("prod", "web@222222222222:eu-west-1"),
        "c": ("prod", "web@333333333333:us-east-1"),
    }


def test_the_timer_name_is_stable_and_fits_schedulers_limit() -> None:
    assert schedule_name("web-prod", "ecs-svc/123") == schedule_name("web-prod", "ecs-svc/123")
    assert schedule_name("web-prod", "ecs-svc/123") == "promote-web-prod-123"
    long = schedule_name("x" * 80, "ecs-svc/9876543210")
    assert len(long) <= 64
    assert long != schedule_name("x" * 79 + "y", "ecs-svc/9876543210")


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:ab", ("123456789012", "us-east-1")),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/web:v1", ("123456789012", "cn-north-1")),
        ("public.ecr.aws/nginx:1", None),
        ("nginx:1", None),
    ],
)
def test_the_registry_of_an_image(image: str, registry: tuple[str, str] | None) -> None:
    assert registry_of(image) == registry
