"""The pause-hook edge: which images a service deployment rolls out, and the answer to its
paused hook (``ContinueServiceDeployment``). moto implements neither: the tests answer with
botocore's Stubber on a real ECS client (it validates every request against the API model)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.errors import HookError, error_code, is_transient

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

Answer = Literal["CONTINUE", "ROLLBACK"]


def _error(action: str, exc: ClientError | BotoCoreError, arn: str) -> HookError:
    error = HookError(f"{action} failed: {exc}", service_deployment=arn, code=error_code(exc) or None)
    error.retryable = is_transient(exc)
    return error


def answer_hook(ecs: ECSClient, deployment_arn: str, hook_id: str, action: Answer) -> None:
    """``ContinueServiceDeployment``: CONTINUE to the next stage, or ROLLBACK to the previous
    service revision. Raises :class:`HookError` (after botocore's retries)."""
    try:
        ecs.continue_service_deployment(serviceDeploymentArn=deployment_arn, hookId=hook_id, action=action)
    except (ClientError, BotoCoreError) as exc:
        raise _error("ContinueServiceDeployment", exc, deployment_arn) from exc


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
