"""Queue requests: the allowlist, the limits and the reasons, before anything reaches ECS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecspilot.domain.config import parse_config
from ecspilot.errors import InvalidMessageError
from ecspilot.queue.request import build_body, parse_request

CONFIG = parse_config(
    {
        "version": 1,
        "jobs": [
            {
                "name": "render",
                "cluster": "prod",
                "task_definition": "render",
                "queue": {
                    "allow": ["command", "environment.INPUT_URL", "memory", "container"],
                    "max_memory": 2048,
                    "max_count": 3,
                },
            },
            {
                "name": "open",
                "cluster": "prod",
                "task_definition": "open",
                "queue": {"allow": ["environment"]},
            },
            {"name": "nightly", "cluster": "prod", "task_definition": "nightly"},
        ],
    }
)


def body(**data: Any) -> str:
    return json.dumps(data)


def test_a_valid_request_becomes_a_container_override() -> None:
    request = parse_request(
        body(
            job="render",
            count=2,
            overrides={"command": ["render", "x"], "environment": {"INPUT_URL": "s3://b/k"}},
        ),
        CONFIG,
    )
    assert request.count == 2
    assert request.container_override("app") == {
        "name": "app",
        "command": ["render", "x"],
        "environment": [{"name": "INPUT_URL", "value": "s3://b/k"}],
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        (body(overrides={}), "no 'job'"),
        (body(job="ghost"), "unknown job 'ghost'"),
        (body(job="nightly"), "does not accept queue messages"),
        (body(job="render", colour="red"), "unknown key(s) in message: colour"),
        (body(job="render", count=4), "count must be a whole number from 1 to 3"),
        (body(job="render", count=True), "count must be"),
        (
            body(job="render", overrides={"taskRoleArn": "arn:aws:iam::1:role/admin"}),
            "taskRoleArn are not allowed",
        ),
        (body(job="render", overrides={"executionRoleArn": "x"}), "executionRoleArn are not allowed"),
        (body(job="render", overrides={"image": "evil:latest"}), "image are not allowed"),
        (body(job="render", overrides={"environment": {"OTHER": "1"}}), "environment.OTHER is not in"),
        (body(job="render", overrides={"environment": {"INPUT_URL": 3}}), "string value"),
        (body(job="render", overrides={"command": "rm -rf /"}), "list of strings"),
        (body(job="render", overrides={"cpu": 512}), "cpu is not in"),
        (body(job="render", overrides={"memory": 4096}), "beyond this job's limit"),
        (body(job="open", overrides={"command": ["x"]}), "command is not in"),
        (body(job="render", overrides={"command": ["x" * 9000]}), "ECS takes at most 8192"),
        (body(job="render", overrides=[]), "overrides must be a JSON object"),
        (body(job="render", idempotency_key=""), "idempotency_key"),
    ],
)
def test_invalid_requests_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        parse_request(raw, CONFIG)
    assert reason in caught.value.reason


def test_environment_allows_every_variable() -> None:
    request = parse_request(body(job="open", overrides={"environment": {"A": "1", "B": "2"}}), CONFIG)
    assert request.environment == (("A", "1"), ("B", "2"))


def test_the_cli_body_round_trips_through_the_same_rules() -> None:
    raw = build_body(
        "render", {"command": "render --fast", "environment.INPUT_URL": "s3://x", "memory": "1024"}
    )
    request = parse_request(raw, CONFIG)
    assert (request.command, request.environment, request.memory) == (
        ("render", "--fast"),
        (("INPUT_URL", "s3://x"),),
        1024,
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
FIELD = st.sampled_from(["job", "overrides", "count", "idempotency_key", "taskRoleArn", "x"])
BODIES = st.one_of(
    JSON.map(json.dumps),
    st.dictionaries(FIELD, JSON | st.sampled_from(["render", "open", "nightly"]), max_size=4).map(json.dumps),
    st.binary(max_size=50),
)


@given(BODIES)
def test_any_body_is_either_a_valid_request_or_a_reasoned_refusal(raw: str | bytes) -> None:
    refusal = ""
    try:
        request = parse_request(raw, CONFIG)
    except InvalidMessageError as exc:
        refusal = exc.reason
        request = None
    if request is None:
        assert refusal
        return
    assert request.job.queue is not None
    allowed = set(request.job.queue.allow)
    if request.command is not None:
        assert "command" in allowed
    for var, _ in request.environment:
        assert {"environment", f"environment.{var}"} & allowed


# --- nesting and containers (issues 6 and 12) ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        ('{"job": "render"}', 1),
        ('{"job": "render", "overrides": {"command": ["a"]}}', 3),
        ('{"job": "[[[[{{{{"}', 1),  # brackets inside strings do not nest
        ('{"job": "a\\"[[["}', 1),  # nor after an escaped quote
        ("[" * 10_000 + "]" * 10_000, 33),  # stops counting past the limit
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(body: str, depth: int) -> None:
    from ecspilot.queue.request import nesting_depth  # noqa: PLC0415

    assert nesting_depth(body) == depth


@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"job": "render", "overrides": {"command": ' + "[" * 10_000 + "]" * 10_000 + "}}",
        "{" * 5_000,  # not even valid JSON: the depth is what is wrong first
    ],
)
def test_a_body_nested_thousands_deep_is_refused_with_a_precise_reason(body: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        parse_request(body, CONFIG)
    assert "nests JSON 33 levels deep; a message has at most 32" in info.value.reason


TASK_DEFINITION = {"family": "render", "containerDefinitions": [{"name": "app"}, {"name": "log-router"}]}


@pytest.mark.parametrize(
    ("container", "problem"),
    [
        (None, None),
        ("app", None),
        ("log-router", None),
        (
            "sidecar",
            "override container 'sidecar' is not a container of render (containers: app, log-router)",
        ),
    ],
)
def test_a_message_container_must_be_one_of_the_task_definition(
    container: str | None, problem: str | None
) -> None:
    from ecspilot.queue.request import check_container  # noqa: PLC0415

    overrides: dict[str, Any] = {"command": ["go"]}
    if container:
        overrides["container"] = container
    request = parse_request(json.dumps({"job": "render", "overrides": overrides}), CONFIG)
    if problem is None:
        check_container(request, TASK_DEFINITION)
        return
    with pytest.raises(InvalidMessageError) as info:
        check_container(request, TASK_DEFINITION)
    assert info.value.reason == problem


def test_a_message_container_must_be_allowed_by_the_job() -> None:
    # GIVEN a job whose queue.allow does not name container
    body = json.dumps({"job": "open", "overrides": {"container": "sidecar", "environment": {"A": "1"}}})
    # WHEN a message aims its overrides at a container THEN it is refused, naming the allowlist
    with pytest.raises(InvalidMessageError) as info:
        parse_request(body, CONFIG)
    assert info.value.reason == "override container is not in this job's queue.allow"
