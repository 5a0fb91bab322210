"""The stack's custom resource always answers CloudFormation: a broken config, any exception, a
Delete that cannot reconcile, a PUT that fails. Answers are read from a local HTTP server standing
in for the pre-signed ResponseURL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecspilot.errors import CustomResourceError, EventError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.reconcile.custom_resource import response_url_refusal
from ecspilot.reconcile.handler import handle_reconcile_event
from ecspilot_dev.local import RESPONSE_URL, answers_to_loopback, free_port, invoke
from tests.functional.cloudformation import CloudFormationStandIn, custom_resource_event

BROKEN = "version: 1\nservices:\n  - name: web\n    cluster: prod\n    containers: {app: {tags: ['v 1']}}\n"


@pytest.fixture
def cloudformation() -> Iterator[CloudFormationStandIn]:
    stand_in = CloudFormationStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture
def broken_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto: None) -> Path:
    """The function's environment points at an invalid config: building the runtime fails."""
    path = tmp_path / "ecspilot.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    return path


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_a_deploy_with_a_broken_config_answers_failed_with_the_reason(
    request_type: str, broken_config: Path, cloudformation: CloudFormationStandIn
) -> None:
    # GIVEN a config that does not validate (the runtime is built inside the handler)
    # WHEN CloudFormation sends Create/Update to the real handler
    result = invoke("reconcile", custom_resource_event(request_type, cloudformation.url))
    # THEN the stack gets FAILED at once, with the validation problem as the reason
    [answer] = cloudformation.responses
    assert answer["Status"] == "FAILED"
    assert "ConfigError" in answer["Reason"]
    assert "services[0].containers.app" in answer["Reason"]
    assert (answer["StackId"], answer["RequestId"]) == (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/ecspilot/1",
        "req-1",
    )
    assert result["status"] == "FAILED"


def test_deleting_the_stack_succeeds_even_with_a_broken_config(
    broken_config: Path, cloudformation: CloudFormationStandIn
) -> None:
    # GIVEN a broken config WHEN the stack is deleted
    result = invoke("reconcile", custom_resource_event("Delete", cloudformation.url))
    # THEN Delete answers SUCCESS (nothing is built, nothing reconciled)
    assert [a["Status"] for a in cloudformation.responses] == ["SUCCESS"]
    assert cloudformation.responses[0]["PhysicalResourceId"] == "ecspilot-reconcile"
    assert result == {"custom_resource": "Delete", "status": "SUCCESS"}


def test_delete_never_builds_the_runtime(cloudformation: CloudFormationStandIn) -> None:
    built: list[str] = []

    def cannot_build() -> Runtime:
        built.append("called")
        raise RuntimeError("no runtime here")

    handle_reconcile_event(custom_resource_event("Delete", cloudformation.url), cannot_build)
    assert built == []
    assert [a["Status"] for a in cloudformation.responses] == ["SUCCESS"]


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("boom"), KeyError("settings"), MemoryError("out of memory")],
    ids=["runtime-error", "key-error", "memory-error"],
)
def test_any_exception_answers_failed_with_its_type_and_message(
    failure: BaseException, cloudformation: CloudFormationStandIn
) -> None:
    def explode() -> Runtime:
        raise failure

    result = handle_reconcile_event(custom_resource_event("Update", cloudformation.url), explode)
    [answer] = cloudformation.responses
    assert answer["Status"] == "FAILED"
    assert type(failure).__name__ in answer["Reason"]
    assert result["status"] == "FAILED"


def test_a_failed_put_is_retried_until_cloudformation_gets_the_answer(
    broken_config: Path,
) -> None:
    # GIVEN the ResponseURL answers 503, then 500, then accepts
    stand_in = CloudFormationStandIn(fail_with=[503, 500])
    try:
        invoke("reconcile", custom_resource_event("Delete", stand_in.url))
    finally:
        stand_in.close()
    # THEN the answer was sent three times and arrived once
    assert stand_in.attempts == 3
    assert [a["Status"] for a in stand_in.responses] == ["SUCCESS"]


def test_an_answer_that_never_arrives_raises_after_the_retries(
    broken_config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN nothing listens at the ResponseURL (connection refused on every attempt)
    started = time.monotonic()
    # WHEN the handler answers THEN it tries 4 times, logs each failure, and raises a typed error
    # (Lambda's own retry then tries once more)
    with answers_to_loopback(free_port()), pytest.raises(CustomResourceError, match="after 4 attempt"):
        invoke("reconcile", custom_resource_event("Delete", RESPONSE_URL))
    assert time.monotonic() - started < 10
    failures = [r for r in caplog.records if r.getMessage() == "custom resource answer failed"]
    assert len(failures) == 4


def test_a_client_error_from_the_response_url_is_not_retried(broken_config: Path) -> None:
    # GIVEN the pre-signed URL has expired (403): trying again cannot help
    stand_in = CloudFormationStandIn(fail_with=[403, 403, 403, 403])
    try:
        with pytest.raises(CustomResourceError, match="after 1 attempt"):
            invoke("reconcile", custom_resource_event("Delete", stand_in.url))
    finally:
        stand_in.close()
    assert stand_in.attempts == 1


@pytest.mark.parametrize("missing", ["ResponseURL", "StackId", "RequestId", "LogicalResourceId"])
def test_a_request_missing_what_an_answer_needs_is_an_event_error(
    missing: str, cloudformation: CloudFormationStandIn
) -> None:
    event: dict[str, Any] = custom_resource_event("Create", cloudformation.url)
    del event[missing]
    with pytest.raises(EventError) as info:
        handle_reconcile_event(event, lambda: pytest.fail("no runtime for a malformed request"))
    assert missing in str(info.value)
    assert cloudformation.responses == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("RequestType", "Replace"), ("ResponseURL", "file:///etc/passwd"), ("StackId", "")],
)
def test_a_request_with_a_bad_field_is_an_event_error(
    field: str, value: str, cloudformation: CloudFormationStandIn
) -> None:
    event = custom_resource_event("Create", cloudformation.url, **{field: value})
    with pytest.raises(EventError, match=field):
        handle_reconcile_event(event, lambda: pytest.fail("no runtime for a malformed request"))
    assert cloudformation.responses == []


@pytest.mark.parametrize(
    "url",
    [
        "http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x?sig=1",  # not https
        "https://169.254.169.254/latest/meta-data/",  # the instance metadata service
        "https://attacker.example/cloudformation-custom-resource-response-useast1/x",
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com.attacker.example/x",
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:8443/x",
        "https://user@cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
        "https://s3.amazonaws.com/some-other-bucket/x",
        "https://evil.s3.amazonaws.com/x",
        "https://127.0.0.1/cloudformation-custom-resource-response-useast1/x",
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x\r\nHost: evil",
    ],
)
def test_an_answer_is_never_sent_anywhere_but_cloudformations_response_bucket(
    url: str, cloudformation: CloudFormationStandIn
) -> None:
    # GIVEN a direct invoke whose ResponseURL points elsewhere (SSRF)
    event = custom_resource_event("Create", url)
    # WHEN the reconcile function takes it THEN it refuses: nothing runs, nothing is sent
    with pytest.raises(EventError, match="ResponseURL"):
        handle_reconcile_event(event, lambda: pytest.fail("nothing runs for a refused request"))
    assert cloudformation.attempts == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn/x?X-Amz-Signature=a",
        "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/arn/x?s=1",
        "https://cloudformation-custom-resource-response-uswest2.s3-us-west-2.amazonaws.com/arn/x",
        "https://s3.amazonaws.com/cloudformation-custom-resource-response-useast1/arn/x?s=1",
        "https://s3.eu-central-1.amazonaws.com/cloudformation-custom-resource-response-eucentral1/arn",
        "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/arn",
    ],
)
def test_cloudformations_response_urls_are_taken(url: str) -> None:
    assert response_url_refusal(url) is None
