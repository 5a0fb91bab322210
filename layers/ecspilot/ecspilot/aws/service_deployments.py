"""The edge to ECS service deployments: ``ListServiceDeployments``, ``DescribeServiceDeployments``
and ``StopServiceDeployment``, with typed results.

ECS records every deployment of a service (90 days) as a service deployment, ARN
``arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/ID``. Its target service revision
(``arn:...:service-revision/CLUSTER/SERVICE/NUMBER``) carries the number of the ECS deployment
id the service's ``deployments[]`` and the ``ECS Deployment State Change`` events name
(``ecs-svc/NUMBER``): :func:`link` matches on it, and falls back to the newest service deployment
created no later than the event when none matches (the one ECS was running then).

moto implements none of these calls: tests answer them with botocore's Stubber on a real client,
which validates every request and response against the API model. Every failure raises
:class:`~ecspilot.errors.ServiceDeploymentError` from the botocore error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.domain.service_deployments import ACTIVE_STATUSES
from ecspilot.errors import ServiceDeploymentError
from ecspilot.records import dataclass

DESCRIBE_LIMIT = 20  # DescribeServiceDeployments takes at most 20 ARNs
LIST_PAGE = 20


@dataclass(frozen=True)
class ServiceDeploymentBrief:
    """One row of ListServiceDeployments."""

    arn: str
    status: str
    target_revision_arn: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status_reason: str = ""

    @property
    def active(self) -> bool:
        """Still running: it can be stopped or rolled back."""
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class ServiceDeployment:
    """A service deployment as DescribeServiceDeployments tells it, in the fields ecspilot uses."""

    arn: str
    status: str
    lifecycle_stage: str = ""
    strategy: str = ""
    bake_minutes: int | None = None
    step_percent: float | None = None
    canary_percent: float | None = None
    production_weight: float | None = None  # requested weight to the target revision, percent
    target_revision_arn: str = ""
    status_reason: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    rollback_reason: str = ""

    def fields(self) -> dict[str, Any]:
        """The record fields this service deployment sets (:mod:`ecspilot.aws.history`)."""
        return {
            "service_deployment_arn": self.arn,
            "ecs_status": self.status,
            "lifecycle_stage": self.lifecycle_stage or None,
            "strategy": self.strategy or None,
            "bake_minutes": self.bake_minutes,
            "step_percent": self.step_percent,
            "canary_percent": self.canary_percent,
            "production_weight": self.production_weight,
        }


def revision_number(arn: str) -> str:
    """The trailing number of a service revision ARN (or of an ``ecs-svc/NUMBER`` id)."""
    return arn.rsplit("/", 1)[-1]


def _brief(raw: Mapping[str, Any]) -> ServiceDeploymentBrief:
    return ServiceDeploymentBrief(
        arn=str(raw.get("serviceDeploymentArn", "")),
        status=str(raw.get("status", "")),
        target_revision_arn=str(raw.get("targetServiceRevisionArn", "")),
        created_at=raw.get("createdAt"),
        started_at=raw.get("startedAt"),
        finished_at=raw.get("finishedAt"),
        status_reason=str(raw.get("statusReason", "")),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_service_deployment(raw: Mapping[str, Any]) -> ServiceDeployment:
    """A DescribeServiceDeployments entry as a :class:`ServiceDeployment` (pure)."""
    conf: Mapping[str, Any] = raw.get("deploymentConfiguration") or {}
    target: Mapping[str, Any] = raw.get("targetServiceRevision") or {}
    bake = conf.get("bakeTimeInMinutes")
    return ServiceDeployment(
        arn=str(raw.get("serviceDeploymentArn", "")),
        status=str(raw.get("status", "")),
        lifecycle_stage=str(raw.get("lifecycleStage", "")),
        strategy=str(conf.get("strategy", "")),
        bake_minutes=None if bake is None else int(bake),
        step_percent=_float((conf.get("linearConfiguration") or {}).get("stepPercent")),
        canary_percent=_float((conf.get("canaryConfiguration") or {}).get("canaryPercent")),
        production_weight=_float(target.get("requestedProductionTrafficWeight")),
        target_revision_arn=str(target.get("arn", "")),
        status_reason=str(raw.get("statusReason", "")),
        created_at=raw.get("createdAt"),
        updated_at=raw.get("updatedAt"),
        finished_at=raw.get("finishedAt"),
        rollback_reason=str((raw.get("rollback") or {}).get("reason", "")),
    )


def list_service_deployments(
    ecs: Any, cluster: str, service: str, statuses: Sequence[str] = (), limit: int = LIST_PAGE
) -> list[ServiceDeploymentBrief]:
    """The service's service deployments (with ``statuses``: only those), newest first, at most
    ``limit`` (pages followed until then)."""
    kwargs: dict[str, Any] = {"cluster": cluster, "service": service, "maxResults": min(limit, 100)}
    if statuses:
        kwargs["status"] = list(statuses)
    out: list[ServiceDeploymentBrief] = []
    try:
        while True:
            page = ecs.list_service_deployments(**kwargs)
            out += [_brief(raw) for raw in page.get("serviceDeployments", [])]
            token = page.get("nextToken")
            if not token or len(out) >= limit:
                break
            kwargs["nextToken"] = token
    except (ClientError, BotoCoreError) as exc:
        raise ServiceDeploymentError(
            f"ListServiceDeployments failed: {exc}", cluster=cluster, service=service
        ) from exc
    out.sort(key=_created, reverse=True)
    return out[:limit]


def raw_service_deployments(ecs: Any, arns: Sequence[str]) -> list[dict[str, Any]]:
    """DescribeServiceDeployments of ``arns`` as ECS answers them (20 ARNs per call); ones ECS
    does not find are left out (its ``failures``)."""
    out: list[dict[str, Any]] = []
    wanted = list(dict.fromkeys(a for a in arns if a))
    for start in range(0, len(wanted), DESCRIBE_LIMIT):
        batch = wanted[start : start + DESCRIBE_LIMIT]
        try:
            resp = ecs.describe_service_deployments(serviceDeploymentArns=batch)
        except (ClientError, BotoCoreError) as exc:
            raise ServiceDeploymentError(
                f"DescribeServiceDeployments failed: {exc}", service_deployment=batch[0]
            ) from exc
        out += resp.get("serviceDeployments") or []
    return out


def describe_service_deployments(ecs: Any, arns: Sequence[str]) -> dict[str, ServiceDeployment]:
    """The service deployments at ``arns`` by ARN (20 per call); ones ECS does not find are left
    out (its ``failures``)."""
    parsed = [parse_service_deployment(raw) for raw in raw_service_deployments(ecs, arns)]
    return {p.arn: p for p in parsed}


def stop_service_deployment(ecs: Any, arn: str, stop_type: str = "ROLLBACK") -> str:
    """Stop a running service deployment (``ROLLBACK``: ECS returns the service to the source
    revision; ``ABORT``: it stops where it is). Returns the ARN ECS names."""
    try:
        resp = ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType=stop_type)
    except (ClientError, BotoCoreError) as exc:
        raise ServiceDeploymentError(
            f"StopServiceDeployment ({stop_type}) failed: {exc}", service_deployment=arn
        ) from exc
    return str(resp.get("serviceDeploymentArn") or arn)


def link(
    briefs: Sequence[ServiceDeploymentBrief], deployment_id: str, at: datetime | None
) -> ServiceDeploymentBrief | None:
    """The service deployment of the ECS deployment ``deployment_id`` (pure): the one whose target
    revision carries its number; else the newest created no later than ``at`` (when known)."""
    number = revision_number(deployment_id)
    for brief in briefs:
        if brief.target_revision_arn and revision_number(brief.target_revision_arn) == number:
            return brief
    dated = [b for b in briefs if b.created_at is not None]
    if at is not None:
        dated = [b for b in dated if b.created_at is not None and b.created_at <= at]
    if not dated:
        return None
    return max(dated, key=_created)


def _created(brief: ServiceDeploymentBrief) -> float:
    return brief.created_at.timestamp() if brief.created_at else 0.0
