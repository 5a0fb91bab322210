"""The Express Mode edge: read an Express service's primary container, give it a new image, and
find the ECS deployment that update started. moto implements none of the Express Gateway API:
the tests answer with botocore's Stubber (the real API model)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.errors import DeployError, is_transient

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient


def _error(action: str, exc: ClientError | BotoCoreError, cluster: str, service: str) -> DeployError:
    error = DeployError(f"{action} failed: {exc}", cluster=cluster, service=service)
    error.retryable = is_transient(exc)
    return error


def service_arn(region: str, account: str, cluster: str, service: str) -> str:
    """An ECS service's ARN (the long format every Express service has)."""
    return f"arn:aws:ecs:{region}:{account}:service/{cluster}/{service}"


def current_configuration(ecs: ECSClient, arn: str, cluster: str, service: str) -> dict[str, Any]:
    """The Express service's active configuration (its ``primaryContainer``, ``taskDefinitionArn``);
    ``{}`` when it has none yet."""
    try:
        resp: Any = ecs.describe_express_gateway_service(serviceArn=arn)
    except (ClientError, BotoCoreError) as exc:
        raise _error("DescribeExpressGatewayService", exc, cluster, service) from exc
    svc = resp.get("service", {})
    status = svc.get("status", {}).get("statusCode")
    if status not in (None, "ACTIVE"):
        raise DeployError(f"Express service is {status}", cluster=cluster, service=service)
    configurations = svc.get("activeConfigurations") or []
    return dict(configurations[0]) if configurations else {}


def update_image(
    ecs: ECSClient, arn: str, primary: Mapping[str, Any], image: str, cluster: str, service: str
) -> dict[str, Any]:
    """UpdateExpressGatewayService with the primary container as it is, but for ``image``: the
    container's other settings (port, command, environment, secrets, logs) are sent back
    unchanged, so the update changes the image only. Returns the new ``targetConfiguration``."""
    container = {k: v for k, v in primary.items() if v is not None}
    container["image"] = image
    try:
        resp: Any = ecs.update_express_gateway_service(serviceArn=arn, primaryContainer=container)  # type: ignore[arg-type]
    except (ClientError, BotoCoreError) as exc:
        raise _error("UpdateExpressGatewayService", exc, cluster, service) from exc
    return dict(resp.get("service", {}).get("targetConfiguration", {}))


def deployment_of(ecs: ECSClient, cluster: str, service: str, task_definition: str) -> str:
    """The id of the service's ECS deployment of ``task_definition`` (what the tracker's
    ``ECS Deployment State Change`` events name), or ``""`` when ECS lists none yet."""
    try:
        resp: Any = ecs.describe_services(cluster=cluster, services=[service])
    except (ClientError, BotoCoreError) as exc:
        raise _error("DescribeServices", exc, cluster, service) from exc
    for svc in resp.get("services", []):
        for deployment in svc.get("deployments", []):
            if task_definition and deployment.get("taskDefinition") == task_definition:
                return str(deployment.get("id", ""))
    return ""
