"""The CLI's exit-code table and region order (``ecspilot.interfaces.exits``), table-tested."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from ecspilot.errors import (
    AwsError,
    ConfigError,
    EventError,
    InputError,
    NothingPausedError,
    PromotionInputError,
    SettingsError,
)
from ecspilot.interfaces.exits import EXIT_CODES, NO_CREDENTIALS, error_text, exit_code, region_of


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConfigError("bad config"), 2),
        (EventError("bad event"), 2),
        (InputError("--limit 0"), 2),
        (SettingsError("no table"), 2),
        (PromotionInputError("not promoted"), 2),
        (NoRegionError(), 2),
        (NoCredentialsError(), 1),
        (NothingPausedError("nothing waits"), 1),
        (AwsError("DescribeServices failed"), 1),
        (ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeServices"), 1),
        (EndpointConnectionError(endpoint_url="https://ecs"), 1),
        (ValueError("a bug"), None),
    ],
)
def test_each_failure_has_the_tables_code(exc: BaseException, code: int | None) -> None:
    assert exit_code(exc) == code
    assert code is None or code in EXIT_CODES


@pytest.mark.parametrize(
    ("given", "env", "region"),
    [
        ("ap-south-1", {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "ap-south-1"),
        (None, {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "eu-west-1"),
        (None, {"AWS_DEFAULT_REGION": "us-east-1"}, "us-east-1"),
        (None, {"AWS_REGION": ""}, None),  # the profile's, resolved by boto3
    ],
)
def test_the_region_comes_from_the_flag_then_aws_region_then_aws_default_region(
    given: str | None, env: dict[str, str], region: str | None
) -> None:
    assert region_of(given, env) == region


def test_missing_credentials_say_where_to_give_them_also_inside_a_flows_error() -> None:
    assert error_text(NoCredentialsError()) == NO_CREDENTIALS
    wrapped = AwsError("reading history failed: Unable to locate credentials", table="t")
    wrapped.__cause__ = NoCredentialsError()
    assert error_text(wrapped).endswith(f"({NO_CREDENTIALS})")


def test_an_errors_context_is_said_once_when_its_message_wraps_another() -> None:
    inner = AwsError("DescribeServices failed", cluster="prod")
    outer = AwsError(f"status failed: {inner}", cluster="prod", service="web")
    assert str(outer) == "status failed: DescribeServices failed (cluster=prod) (service=web)"
    assert str(AwsError("x", cluster="prod-eu")) == "x (cluster=prod-eu)"
    assert (
        str(AwsError("no job named 'nope' in the config", job="nope")) == "no job named 'nope' in the config"
    )
    assert (
        str(AwsError("job nightly is off", job="nightly", cluster="prod"))
        == "job nightly is off (cluster=prod)"
    )
