"""Pure decisions of a job run: startedBy, concurrency, count splitting, failure classes, RunTask shapes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ecspilot.domain.config import JobConfig
from ecspilot.jobs.plan import (
    STARTED_BY_MAX,
    classify_failure,
    client_token,
    container_overrides,
    decide,
    firing_token,
    plan_requests,
    run_task_params,
    split_count,
    started_by,
)


def job(**fields: Any) -> JobConfig:
    return JobConfig.model_validate(
        {"name": "report", "cluster": "prod", "task_definition": "report", **fields}
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report", "ecspilot/report"),
        ("nightly_report-2", "ecspilot/nightly_report-2"),
        ("a" * 27, "ecspilot/" + "a" * 27),
    ],
)
def test_a_short_plain_job_name_is_its_started_by(name: str, expected: str) -> None:
    assert started_by(name) == expected


@pytest.mark.parametrize(
    "name",
    ["a" * 28, "nightly.report", "x" * 255, "billing.monthly-invoices-for-every-customer"],
)
def test_a_long_or_dotted_name_is_shortened_to_a_valid_unique_started_by(name: str) -> None:
    value = started_by(name)
    assert len(value) <= STARTED_BY_MAX
    assert re.fullmatch(r"[A-Za-z0-9_/-]+", value)
    assert value.startswith("ecspilot/")
    assert started_by(name + "x") != value


def test_two_long_names_with_the_same_prefix_get_different_started_by() -> None:
    first, second = "monthly-invoices-for-customers-in-europe", "monthly-invoices-for-customers-in-asia"
    assert started_by(first)[:27] == started_by(second)[:27]
    assert started_by(first) != started_by(second)


@pytest.mark.parametrize(
    ("policy", "live", "decision"),
    [
        ("allow", 0, "run"),
        ("allow", 3, "run"),
        ("forbid", 0, "run"),
        ("forbid", 1, "skip"),
        ("replace", 0, "run"),
        ("replace", 2, "replace"),
    ],
)
def test_the_concurrency_policy_decides_from_the_live_tasks(policy: Any, live: int, decision: str) -> None:
    assert decide(policy, live) == decision


@pytest.mark.parametrize(
    ("total", "calls"),
    [(1, [1]), (10, [10]), (11, [10, 1]), (25, [10, 10, 5]), (30, [10, 10, 10]), (0, [])],
)
def test_counts_are_split_in_run_task_calls_of_at_most_ten(total: int, calls: list[int]) -> None:
    assert split_count(total) == calls


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("RESOURCE:MEMORY", "retryable"),
        ("RESOURCE:CPU", "retryable"),
        ("RESOURCE:PORTS_TCP", "retryable"),
        ("RESOURCE:ENI", "retryable"),
        ("AGENT", "retryable"),
        ("MISSING", "permanent"),
        ("INACTIVE", "permanent"),
        ("ATTRIBUTE", "permanent"),
        ("LOCATION", "permanent"),
        ("SOMETHING NEW", "permanent"),
    ],
)
def test_run_task_failures_are_retryable_only_for_capacity(reason: str, kind: str) -> None:
    assert classify_failure(reason) == kind


def test_client_tokens_are_stable_per_request_and_offset_and_fit_the_limit() -> None:
    key = firing_token("report", "2026-11-25T02:00:00Z")
    assert client_token(key, 0) == client_token(key, 0)
    assert client_token(key, 0) != client_token(key, 10)
    assert client_token(key, 0) != client_token(firing_token("report", "2026-11-26T02:00:00Z"), 0)
    assert len(client_token("k" * 500, 990)) <= 64


def test_planned_calls_start_only_the_missing_tasks_with_tokens_by_offset() -> None:
    requests = plan_requests({"cluster": "prod"}, 23, 3, "key")
    assert [r["count"] for r in requests] == [10, 10]
    assert [r["clientToken"] for r in requests] == [client_token("key", 3), client_token("key", 13)]
    assert all("clientToken" not in r for r in plan_requests({}, 5, 0, None))


def test_overrides_merge_the_config_and_the_request_by_container_and_variable() -> None:
    j = job(overrides={"containers": {"app": {"command": ["run"], "environment": {"A": "1", "B": "2"}}}})
    extra = {"containers": {"app": {"environment": {"B": "3"}}, "side": {"cpu": 128}}, "memory": "1024"}
    assert container_overrides(j, extra) == {
        "containerOverrides": [
            {
                "name": "app",
                "command": ["run"],
                "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}],
            },
            {"name": "side", "cpu": 128},
        ],
        "memory": "1024",
    }
    assert container_overrides(job()) == {}


def test_run_task_params_carry_placement_tags_and_the_started_by() -> None:
    params = run_task_params(job(launch_type="EC2", placement="one-task-per-host"), "arn:td/report:3")
    assert params == {
        "cluster": "prod",
        "taskDefinition": "arn:td/report:3",
        "startedBy": "ecspilot/report",
        "tags": [{"key": "ecspilot:job", "value": "report"}],
        "enableECSManagedTags": True,
        "propagateTags": "TASK_DEFINITION",
        "launchType": "EC2",
        "placementConstraints": [{"type": "distinctInstance"}],
    }


def test_a_fargate_job_gets_its_network_and_capacity_providers_and_no_placement() -> None:
    params = run_task_params(
        job(
            capacity_provider_strategy=[{"capacity_provider": "FARGATE_SPOT", "weight": 3, "base": 1}],
            network={"subnets": ["subnet-1"], "security_groups": ["sg-1"], "assign_public_ip": True},
            platform_version="1.4.0",
            propagate_tags=None,
            enable_ecs_managed_tags=False,
        ),
        "td",
    )
    assert params["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 1}
    ]
    assert params["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-1"],
            "assignPublicIp": "ENABLED",
            "securityGroups": ["sg-1"],
        }
    }
    assert params["platformVersion"] == "1.4.0"
    assert "propagateTags" not in params
    assert params["enableECSManagedTags"] is False
    assert not {"launchType", "placementStrategy", "placementConstraints"} & set(params)
