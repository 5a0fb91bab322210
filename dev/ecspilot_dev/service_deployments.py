"""ECS service deployments for local runs: moto implements none of ListServiceDeployments,
DescribeServiceDeployments and StopServiceDeployment.

:class:`OperationStubber` is botocore's Stubber (every request validated against the API model,
every queued response too) answering only those operations of a client, so the same client
still talks to moto for everything else (DescribeServices, UpdateService, ...). Tests and the
demo queue the answers AWS would give, in order, with the builders below (shaped after the API
reference's response syntax).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.stub import Stubber

OPERATIONS = ("ListServiceDeployments", "DescribeServiceDeployments", "StopServiceDeployment")


class OperationStubber(Stubber):
    """A Stubber for some operations of a client only; the client's other calls go through.

    It reuses the Stubber's own queue and checks (private in botocore, hence ``_inner``)."""

    def __init__(self, client: Any, operations: Sequence[str] = OPERATIONS) -> None:
        super().__init__(client)
        self.operations = tuple(operations)
        self._service = client.meta.service_model.service_id.hyphenize()

    @property
    def _inner(self) -> Any:
        return self

    def _events(self) -> list[tuple[str, Any, bool]]:
        out: list[tuple[str, Any, bool]] = []
        for op in self.operations:
            out.append((f"before-parameter-build.{self._service}.{op}", self._check_params, True))
            out.append((f"before-call.{self._service}.{op}", self._inner._get_response_handler, False))
        return out

    def _unique(self, event: str) -> str:
        return f"{self._inner._event_id}-{event}"

    def activate(self) -> None:
        for event, handler, first in self._events():
            register = self.client.meta.events.register_first if first else self.client.meta.events.register
            register(event, handler, unique_id=self._unique(event))

    def deactivate(self) -> None:
        for event, handler, _ in self._events():
            self.client.meta.events.unregister(event, handler, unique_id=self._unique(event))

    def _check_params(self, model: Any, params: Any, context: Any, **kwargs: Any) -> None:
        # nothing queued: let the call reach ``before-call``, where an injected fault (tests/faults.py,
        # registered first) answers it, or the Stubber refuses it as unexpected
        if self._inner._queue:
            self._inner._assert_expected_params(model, params, context, **kwargs)

    @property
    def pending(self) -> int:
        """Responses queued and not yet asked for."""
        return len(self._inner._queue)


# --- the API's shapes -----------------------------------------------------------------------------


def deployment_arn(region: str, account: str, cluster: str, service: str, ident: str) -> str:
    return f"arn:aws:ecs:{region}:{account}:service-deployment/{cluster}/{service}/{ident}"


def revision_arn(region: str, account: str, cluster: str, service: str, deployment_id: str) -> str:
    """The service revision a deployment targets: it carries the deployment id's number."""
    number = deployment_id.rsplit("/", 1)[-1]
    return f"arn:aws:ecs:{region}:{account}:service-revision/{cluster}/{service}/{number}"


def brief(arn: str, status: str, target_revision: str, created_at: datetime) -> dict[str, Any]:
    """One ``serviceDeployments[]`` entry of ListServiceDeployments."""
    service_arn = arn.replace(":service-deployment/", ":service/").rsplit("/", 1)[0]
    cluster = service_arn.split(":service/", 1)[1].split("/", 1)[0]
    return {
        "serviceDeploymentArn": arn,
        "serviceArn": service_arn,
        "clusterArn": service_arn.split(":service/", 1)[0] + f":cluster/{cluster}",
        "createdAt": created_at,
        "startedAt": created_at,
        "targetServiceRevisionArn": target_revision,
        "status": status,
    }


def strategy_configuration(
    strategy: str, bake_minutes: int = 30, step_percent: float = 20.0, canary_percent: float = 10.0
) -> dict[str, Any]:
    """A service's ``deploymentConfiguration`` for a built-in strategy."""
    conf: dict[str, Any] = {"strategy": strategy, "bakeTimeInMinutes": bake_minutes}
    if strategy == "LINEAR":
        conf["linearConfiguration"] = {"stepPercent": step_percent, "stepBakeTimeInMinutes": 5}
    if strategy == "CANARY":
        conf["canaryConfiguration"] = {"canaryPercent": canary_percent, "canaryBakeTimeInMinutes": 10}
    return conf


def described(
    arn: str,
    status: str,
    stage: str,
    target_revision: str,
    configuration: dict[str, Any],
    *,
    created_at: datetime,
    updated_at: datetime,
    weight: float | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """One ``serviceDeployments[]`` entry of DescribeServiceDeployments."""
    base = brief(arn, status, target_revision, created_at)
    target: dict[str, Any] = {"arn": target_revision, "requestedTaskCount": 2, "runningTaskCount": 2}
    if weight is not None:
        target["requestedProductionTrafficWeight"] = weight
    out: dict[str, Any] = {
        **{k: v for k, v in base.items() if k != "targetServiceRevisionArn"},
        "updatedAt": updated_at,
        "targetServiceRevision": target,
        "lifecycleStage": stage,
        "deploymentConfiguration": {
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            **configuration,
        },
    }
    if reason:
        out["statusReason"] = reason
    if status.startswith("ROLLBACK"):
        out["rollback"] = {"reason": reason or "rollback requested", "startedAt": updated_at}
    return out


def expect_paused_images(
    stub: Stubber, deployment: str, revision: str, images: Sequence[tuple[str, str, str]]
) -> None:
    """Queue what ECS answers when a paused deployment's images are read (the hook gates'
    DescribeServiceDeployments then DescribeServiceRevisions): ``images`` are
    ``(container, digest, image)`` of the target revision."""
    stub.add_response(
        "describe_service_deployments",
        {
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": deployment,
                    "status": "IN_PROGRESS",
                    "lifecycleStage": "POST_SCALE_UP",
                    "targetServiceRevision": {"arn": revision, "requestedTaskCount": 2},
                }
            ],
            "failures": [],
        },
        {"serviceDeploymentArns": [deployment]},
    )
    containers = [{"containerName": c, "imageDigest": d, "image": i} for c, d, i in images]
    stub.add_response(
        "describe_service_revisions",
        {
            "serviceRevisions": [{"serviceRevisionArn": revision, "containerImages": containers}],
            "failures": [],
        },
        {"serviceRevisionArns": [revision]},
    )


def expect_hooks(
    stub: Stubber,
    deployment: str,
    revision: str,
    hooks: Sequence[tuple[str, str]],
    *,
    in_progress: bool = True,
    stage: str = "POST_TEST_TRAFFIC_SHIFT",
    timeout_action: str = "ROLLBACK",
    expires_at: datetime | None = None,
    listed: bool = True,
) -> None:
    """Queue what ECS answers when ecspilot looks for paused hooks (issue 22): ListServiceDeployments
    ``status=[IN_PROGRESS]`` (the deployment, or none when not ``in_progress``), then, when
    listed, DescribeServiceDeployments with ``lifecycleHookDetails`` = ``hooks`` as ``(hookId,
    status)`` PAUSE hooks. ``listed=False`` queues only the Describe (a hook read by its ARN)."""
    cluster, service = deployment.split(":service-deployment/", 1)[1].split("/")[:2]
    at = expires_at or datetime(2026, 3, 5, 16, 4, 41)
    if listed:
        found = [brief(deployment, "IN_PROGRESS", revision, at)] if in_progress else []
        stub.add_response(
            "list_service_deployments",
            {"serviceDeployments": found},
            {"cluster": cluster, "service": service, "maxResults": 20, "status": ["IN_PROGRESS"]},
        )
        if not in_progress:
            return
    details = [
        {"hookId": h, "targetType": "PAUSE", "status": s, "expiresAt": at, "timeoutAction": timeout_action}
        for h, s in hooks
    ]
    stub.add_response(
        "describe_service_deployments",
        {
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": deployment,
                    "status": "IN_PROGRESS" if in_progress else "SUCCESSFUL",
                    "lifecycleStage": stage,
                    "targetServiceRevision": {"arn": revision, "requestedTaskCount": 2},
                    "lifecycleHookDetails": details,
                }
            ],
            "failures": [],
        },
        {"serviceDeploymentArns": [deployment]},
    )
