"""The pause-hook edge: which images a service deployment rolls out, the answer to its paused
hook (``ContinueServiceDeployment``) and the hook's status at ECS. moto implements none of them:
the tests answer with botocore's Stubber on a real ECS client (it validates every request
against the API model).

An answer is sent once: ContinueServiceDeployment goes through a client without botocore's
retries (a lost reply resent by botocore, then by EventBridge's retry, answered a hook up to 4
times). After any error the caller reads the hook's status (:func:`hook_status`) before it
answers again. What ECS answers to a second answer of the same hook is not documented (its API
model lists ``ClientException`` and ``InvalidParameterException`` for a bad request): an error
whose message says "already" is taken as "ECS already took an answer" (:func:`already_answered`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.errors import HookError, error_code, is_transient

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

Answer = Literal["CONTINUE", "ROLLBACK"]
HookStatus = Literal["AWAITING_ACTION", "TAKEN"]


def _error(action: str, exc: ClientError | BotoCoreError, arn: str) -> HookError:
    error = HookError(f"{action} failed: {exc}", service_deployment=arn, code=error_code(exc) or None)
    error.retryable = is_transient(exc)
    return error


def already_answered(exc: BaseException) -> bool:
    """Whether ContinueServiceDeployment's error says the hook was answered already (pure)."""
    cause = exc.__cause__ if isinstance(exc, HookError) and exc.__cause__ is not None else exc
    message = (
        str(cause.response.get("Error", {}).get("Message", "")) if isinstance(cause, ClientError) else ""
    )
    return "already" in message.lower() or "already" in (error_code(cause) or "").lower()


def answer_hook(ecs: ECSClient, deployment_arn: str, hook_id: str, action: Answer) -> None:
    """``ContinueServiceDeployment``: CONTINUE to the next stage, or ROLLBACK to the previous
    service revision, sent once (``ecs`` is a single-attempt client: ``Clients.single_attempt``).
    Raises :class:`HookError`."""
    try:
        ecs.continue_service_deployment(serviceDeploymentArn=deployment_arn, hookId=hook_id, action=action)
    except (ClientError, BotoCoreError) as exc:
        raise _error("ContinueServiceDeployment", exc, deployment_arn) from exc


def hook_status(ecs: ECSClient, deployment_arn: str, hook_id: str) -> HookStatus:
    """Whether the hook still awaits an answer at ECS (DescribeServiceDeployments,
    ``lifecycleHookDetails``): ``AWAITING_ACTION``, or ``TAKEN`` when ECS lists it in another
    status (an answer was taken, or it timed out) or no longer lists it in a deployment that
    moved on. Raises :class:`HookError` when ECS cannot say (the caller must not answer)."""
    try:
        resp: Any = ecs.describe_service_deployments(serviceDeploymentArns=[deployment_arn])
    except (ClientError, BotoCoreError) as exc:
        raise _error("reading the hook's status", exc, deployment_arn) from exc
    found = resp.get("serviceDeployments") or []
    if not found:
        raise HookError("service deployment not found", service_deployment=deployment_arn)
    hooks = [h for h in found[0].get("lifecycleHookDetails") or [] if h.get("hookId") == hook_id]
    if hooks:
        return "AWAITING_ACTION" if hooks[0].get("status") == "AWAITING_ACTION" else "TAKEN"
    if found[0].get("status") in ("PENDING", "IN_PROGRESS") and not found[0].get("lifecycleHookDetails"):
        # the hook is not listed and nothing says the deployment moved past it: cannot tell
        raise HookError("the hook is not listed in its service deployment", service_deployment=deployment_arn)
    return "TAKEN"


def deployment_images(ecs: ECSClient, deployment_arn: str) -> list[dict[str, str]]:
    """The container images (``containerName``, ``imageDigest``, ``image``) of the service
    revision the deployment rolls out: DescribeServiceDeployments, then DescribeServiceRevisions."""
    try:
        resp: Any = ecs.describe_service_deployments(serviceDeploymentArns=[deployment_arn])
        found = resp.get("serviceDeployments") or []
        if not found:
            raise HookError("service deployment not found", service_deployment=deployment_arn)
        revision = str((found[0].get("targetServiceRevision") or {}).get("arn", ""))
        if not revision:
            raise HookError("service deployment has no target revision", service_deployment=deployment_arn)
        resp = ecs.describe_service_revisions(serviceRevisionArns=[revision])
    except (ClientError, BotoCoreError) as exc:
        raise _error("reading the service deployment", exc, deployment_arn) from exc
    revisions = resp.get("serviceRevisions") or []
    if not revisions:
        raise HookError("service revision not found", service_deployment=deployment_arn)
    return [
        {k: str(v) for k, v in image.items() if k in ("containerName", "imageDigest", "image")}
        for image in revisions[0].get("containerImages") or []
    ]
