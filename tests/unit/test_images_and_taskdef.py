"""Image references, the deploy decision, and the task definition clone: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecspilot.deploy.rules import (
    decide,
    deployment_configuration,
    freshness,
    is_stale,
    primary_deployment_id,
    rolled_back_reason,
)
from ecspilot.domain.images import ImagePush, ImageRef
from ecspilot.domain.taskdef import clone_with_images, family_of, same_registration
from ecspilot.errors import DeployError

REG = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
PUSH = ImagePush(account="123456789012", region="us-east-1", repository="web", tag="v2", digest=D2)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", ImageRef(None, "nginx")),
        ("nginx:1.27", ImageRef(None, "nginx", "1.27")),
        ("library/nginx:1.27", ImageRef(None, "library/nginx", "1.27")),
        (f"{REG}/web:v1", ImageRef(REG, "web", "v1")),
        (f"{REG}/team/web@{D1}", ImageRef(REG, "team/web", None, D1)),
        (f"{REG}/web:v1@{D1}", ImageRef(REG, "web", "v1", D1)),
        ("localhost:5000/web:v1", ImageRef("localhost:5000", "web", "v1")),
        ("public.ecr.aws/nginx/nginx:stable", ImageRef("public.ecr.aws", "nginx/nginx", "stable")),
    ],
)
def test_image_references_parse_like_docker(image: str, expected: ImageRef) -> None:
    assert ImageRef.parse(image) == expected


def test_a_push_pins_by_digest_in_its_own_registry() -> None:
    assert PUSH.pinned == f"{REG}/web@{D2}"
    china = ImagePush(account="123456789012", region="cn-north-1", repository="web", tag="v1", digest=D1)
    assert china.registry == "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"


@pytest.mark.parametrize(
    ("images", "verdict", "others"),
    [
        ({"app": f"{REG}/web@{D2}"}, "unchanged", set()),
        ({"app": f"{REG}/web@{D1}"}, "deploy", {D1}),
        ({"app": f"{REG}/web:v1"}, "deploy", set()),
        ({"app": "nginx:1"}, "deploy", set()),
        ({"app": f"999999999999.dkr.ecr.us-east-1.amazonaws.com/web@{D1}"}, "deploy", set()),
        ({"app": f"{REG}/web@{D2}", "worker": f"{REG}/web@{D1}"}, "deploy", {D1}),
    ],
)
def test_decide(images: dict[str, str], verdict: str, others: set[str]) -> None:
    assert decide(images, sorted(images), PUSH) == (verdict, others)


NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pushed", "running", "stale"),
    [
        (NOW, [NOW - timedelta(seconds=1)], False),
        (NOW, [NOW + timedelta(seconds=1)], True),
        (NOW, [NOW], False),
        (NOW, [None], False),
        (None, [NOW], False),
        (NOW, [NOW - timedelta(days=1), NOW + timedelta(days=1)], True),
    ],
)
def test_is_stale(pushed: datetime | None, running: list[datetime | None], stale: bool) -> None:
    assert is_stale(pushed, running) is stale


EARLIER, LATER = NOW - timedelta(minutes=5), NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("pushed", "running", "registered", "expected"),
    [
        # known push times: newer moves on, older is stale, whatever the registration time
        (NOW, {D1: EARLIER}, None, ("newer", "")),
        (NOW, {D1: LATER}, None, ("stale", D1)),
        (NOW, {D1: LATER, D2: None}, EARLIER, ("stale", D1)),
        # the running image is gone (push time unknown): only a push after the registration moves on
        (NOW, {D1: None}, EARLIER, ("newer", "")),
        (NOW, {D1: None}, LATER, ("unknown", D1)),
        (NOW, {D1: None}, NOW, ("unknown", D1)),
        (NOW, {D1: None}, None, ("unknown", D1)),
        # this image's own push time unknown: not evidence either way
        (None, {D1: EARLIER}, EARLIER, ("unknown", D1)),
        (None, {}, None, ("newer", "")),
        # nothing of the repository runs by digest (a tag, another repository): moves on
        (NOW, {}, None, ("newer", "")),
    ],
)
def test_freshness(
    pushed: datetime | None,
    running: dict[str, datetime | None],
    registered: datetime | None,
    expected: tuple[str, str],
) -> None:
    assert freshness(pushed, running, registered) == expected


@pytest.mark.parametrize(
    ("records", "held"),
    [
        ([], False),
        ([{"image_digest": D2, "status": "FAILED", "started_at": "t"}], True),
        ([{"image_digest": D2, "status": "ROLLED_BACK"}], True),
        ([{"image_digest": D2, "status": "COMPLETED"}], False),
        ([{"image_digest": D2, "status": "IN_PROGRESS"}], False),
        ([{"image_digest": D1, "status": "FAILED"}], False),
        ([{"image_digest": D1, "status": "COMPLETED"}, {"image_digest": D2, "status": "ROLLED_BACK"}], True),
    ],
)
def test_a_digest_that_failed_or_was_rolled_back_on_a_service_is_held(
    records: list[dict[str, str]], held: bool
) -> None:
    reason = rolled_back_reason(records, PUSH)
    assert (reason is not None) is held
    if reason:
        assert "push a newer image" in reason


@pytest.mark.parametrize(
    ("other", "same"),
    [
        ({}, True),
        ({"tags": [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}]}, True),
        ({"tags": [{"key": "a", "value": "other"}]}, False),
        ({"tags": []}, False),
        ({"cpu": "512"}, False),
        ({"containerDefinitions": [{"name": "app", "image": "web@other"}]}, False),
        ({"taskRoleArn": "arn:aws:iam::123456789012:role/else"}, False),
    ],
)
def test_two_registrations_are_the_same_only_when_every_field_is(
    other: dict[str, object], same: bool
) -> None:
    base = {
        "family": "web",
        "cpu": "256",
        "containerDefinitions": [{"name": "app", "image": "web@sha"}],
        "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
    }
    assert same_registration(base, {**base, **other}) is same


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("web", "web"),
        ("web:7", "web"),
        ("arn:aws:ecs:us-east-1:123456789012:task-definition/web-api:12", "web-api"),
    ],
)
def test_family_of(name: str, family: str) -> None:
    assert family_of(name) == family


def test_rollback_keeps_the_rest_of_the_deployment_configuration() -> None:
    service = {"deploymentConfiguration": {"maximumPercent": 150, "minimumHealthyPercent": 50}}
    assert deployment_configuration(service, rollback=True) == {
        "maximumPercent": 150,
        "minimumHealthyPercent": 50,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }
    assert deployment_configuration(service, rollback=False) is None
    assert service["deploymentConfiguration"] == {"maximumPercent": 150, "minimumHealthyPercent": 50}


def test_primary_deployment_id() -> None:
    service = {
        "deployments": [{"id": "ecs-svc/1", "status": "ACTIVE"}, {"id": "ecs-svc/2", "status": "PRIMARY"}]
    }
    assert primary_deployment_id(service) == "ecs-svc/2"
    assert primary_deployment_id({}) == ""


TD = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
    "family": "web",
    "revision": 7,
    "status": "ACTIVE",
    "taskRoleArn": "arn:aws:iam::123456789012:role/web",
    "cpu": "256",
    "containerDefinitions": [{"name": "app", "image": "web:v1"}, {"name": "side", "image": "busybox"}],
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.task-iam-role"}],
    "compatibilities": ["EC2"],
    "registeredAt": NOW,
    "registeredBy": "me",
    "someFutureField": True,
}


def test_the_clone_changes_only_the_named_images_and_drops_read_only_fields() -> None:
    params = clone_with_images(TD, {"app": "web@sha"}, [{"key": "team", "value": "a"}])
    assert params == {
        "family": "web",
        "taskRoleArn": "arn:aws:iam::123456789012:role/web",
        "cpu": "256",
        "containerDefinitions": [{"name": "app", "image": "web@sha"}, {"name": "side", "image": "busybox"}],
        "someFutureField": True,
        "tags": [{"key": "team", "value": "a"}],
    }
    assert TD["containerDefinitions"][0]["image"] == "web:v1"  # type: ignore[index]


def test_the_clone_drops_what_register_does_not_accept() -> None:
    params = clone_with_images(TD, {"app": "x"}, accepted={"family", "containerDefinitions"})
    assert set(params) == {"family", "containerDefinitions"}


def test_the_clone_refuses_a_missing_container() -> None:
    with pytest.raises(DeployError, match="container\\(s\\) worker not in task definition"):
        clone_with_images(TD, {"worker": "x"})
