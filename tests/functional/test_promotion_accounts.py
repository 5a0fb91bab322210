"""Assumed-role clients (issue 13): one AssumeRole per role and region, refreshed near expiry,
with ExternalId and a RoleSessionName naming the function; a refusal is one typed error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from ecspilot.aws.accounts import AccountSessions, session_name
from ecspilot.aws.clients import Clients
from ecspilot.domain.config import AccountConfig
from ecspilot.errors import AccountAccessError
from tests.races import race

ACCOUNTS = {
    "prod": AccountConfig(
        role_arn="arn:aws:iam::222222222222:role/ecspilot-deployer", region="eu-west-1", external_id="ext-42"
    ),
    "dr": AccountConfig(role_arn="arn:aws:iam::333333333333:role/ecspilot-deployer"),
}
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def credentials(expires: datetime) -> dict[str, object]:
    return {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": expires,
        }
    }


def expect(stub: Stubber, role: str, expires: datetime, external_id: str | None = None) -> None:
    params = {"RoleArn": role, "RoleSessionName": "ecspilot-reconcile", "DurationSeconds": 3600}
    if external_id:
        params["ExternalId"] = external_id
    stub.add_response("assume_role", credentials(expires), params)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def sessions(sts: object, clock: Clock) -> AccountSessions:
    own = Clients(region="us-east-1", overrides={"sts": sts})
    return AccountSessions(own, "us-east-1", "reconcile", clock=clock)


def test_one_assume_role_per_account_cached_until_near_expiry() -> None:
    sts = boto3.client("sts", region_name="us-east-1")
    clock = Clock()
    with Stubber(sts) as stub:
        expect(stub, ACCOUNTS["prod"].role_arn, T0 + timedelta(hours=1), "ext-42")
        expect(stub, ACCOUNTS["dr"].role_arn, T0 + timedelta(hours=1))
        expect(stub, ACCOUNTS["prod"].role_arn, T0 + timedelta(hours=2), "ext-42")
        accounts = sessions(sts, clock)
        # the first ask comes from many threads at once: one AssumeRole, the same clients for all
        first = race(*[lambda: accounts.clients("prod", ACCOUNTS)] * 8)
        prod = first[0]
        assert isinstance(prod, Clients)
        assert all(c is prod for c in first)
        dr = accounts.clients("dr", ACCOUNTS)
        assert dr is not prod
        assert accounts.assumed_calls == 2
        # 54 minutes later (6 minutes before expiry) still cached; 56 minutes later refreshed
        clock.now = T0 + timedelta(minutes=54)
        assert accounts.clients("prod", ACCOUNTS) is prod
        clock.now = T0 + timedelta(minutes=56)
        assert accounts.clients("prod", ACCOUNTS) is not prod
        assert accounts.assumed_calls == 3
        stub.assert_no_pending_responses()
    # the target region is the account's, else ecspilot's
    assert prod.get("ecs").meta.region_name == "eu-west-1"
    assert dr.get("ecs").meta.region_name == "us-east-1"
    # ecspilot's own account needs no role
    assert accounts.clients(None, ACCOUNTS) is accounts.own


@pytest.mark.parametrize(("code", "retryable"), [("AccessDenied", False), ("Throttling", True)])
def test_a_refused_assume_role_is_one_typed_error_for_that_account(code: str, retryable: bool) -> None:
    sts = boto3.client("sts", region_name="us-east-1")
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", service_error_code=code, http_status_code=403)
        with pytest.raises(AccountAccessError) as info:
            sessions(sts, Clock()).clients("dr", ACCOUNTS)
    assert info.value.context["account"] == "dr"
    assert code in str(info.value)
    assert info.value.retryable is retryable


def test_an_unknown_account_is_refused_without_a_call() -> None:
    sts = boto3.client("sts", region_name="us-east-1")
    with Stubber(sts), pytest.raises(AccountAccessError, match="not configured"):
        sessions(sts, Clock()).clients("nope", ACCOUNTS)


def test_the_session_name_names_the_function_within_sts_limits() -> None:
    assert session_name("track_deployments") == "ecspilot-track_deployments"
    assert session_name("a b/c" * 30).startswith("ecspilot-a-b-c")
    assert len(session_name("x" * 100)) == 64
