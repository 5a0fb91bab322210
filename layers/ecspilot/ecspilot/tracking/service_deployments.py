"""The tracker's reading of ECS service deployments: for a service whose strategy is BLUE_GREEN,
LINEAR or CANARY, the service deployment says how a deployment really stands.

For each deployment event (``ECS Deployment State Change``):

1. the strategy: the record's (a later event of the same deployment), else DescribeServices'
   ``deploymentConfiguration.strategy``; ROLLING (or none) stops here: its events are the truth;
2. the service deployment: the record's ``service_deployment_arn``, else ListServiceDeployments
   on the service, linked by the deployment id (``aws.service_deployments.link``);
3. DescribeServiceDeployments: its ``status``, ``lifecycleStage`` and configuration.

The status the record takes is then the service deployment's
(:func:`ecspilot.domain.service_deployments.reconciled_status`): a ``SERVICE_DEPLOYMENT_COMPLETED``
event while the deployment still bakes leaves it IN_PROGRESS.

A read that fails (throttled past botocore's retries, AccessDenied, a network error) never loses
the event: it is recorded from what it says, the failure logged and counted
(``ServiceDeploymentReadErrors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.ecs_reads import describe_service_batch
from ecspilot.aws.service_deployments import (
    ServiceDeployment,
    describe_service_deployments,
    link,
    list_service_deployments,
)
from ecspilot.domain.events import EcsDeploymentStateChangeEvent
from ecspilot.domain.service_deployments import is_tracked
from ecspilot.errors import EcspilotError, ServiceDeploymentError, error_code
from ecspilot.obs import count, logger
from ecspilot.records import dataclass
from ecspilot.tracking.decisions import iso, parse_service_arn


@dataclass(frozen=True)
class Observation:
    """What the tracker learnt about one deployment from ECS's service deployments."""

    strategy: str = ""
    deployment: ServiceDeployment | None = None
    error: str = ""
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def ecs_status(self) -> str | None:
        return self.deployment.status if self.deployment else None


def strategy_of(service: Mapping[str, Any]) -> str:
    """A described service's deployment strategy (ROLLING when it names none)."""
    return str((service.get("deploymentConfiguration") or {}).get("strategy") or "ROLLING")


def observation_of(
    found: ServiceDeployment, strategy: str, record: Mapping[str, Any], at: datetime | None
) -> Observation:
    """What ``found`` says about the deployment ``record`` (its fields so far): the stage's start
    is kept while the stage is the same, else the service deployment's ``updatedAt`` (or ``at``).
    The tracker's events and reconcile's open deployments both read a service deployment so."""
    fields = found.fields()
    fields["strategy"] = found.strategy or strategy
    if found.lifecycle_stage and found.lifecycle_stage == record.get("lifecycle_stage"):
        fields["stage_started_at"] = record.get("stage_started_at")
    elif found.lifecycle_stage:
        fields["stage_started_at"] = iso(found.updated_at or at)
    return Observation(strategy=fields["strategy"], deployment=found, fields=fields)


class ServiceDeploymentReader:
    """Reads the service deployment of a deployment event; see the module docstring."""

    def __init__(self, ecs: Any) -> None:
        self.ecs = ecs

    def observe(self, event: EcsDeploymentStateChangeEvent, record: Mapping[str, Any]) -> Observation:
        """The service deployment behind ``event`` (``record``: the deployment's record so far,
        ``{}`` when none); an empty observation for a ROLLING service or a failed read."""
        cluster, service = parse_service_arn(event.service_arn)
        log = {"cluster": cluster, "ecs_service": service, "deployment_id": event.detail.deployment_id}
        strategy = str(record.get("strategy") or "")
        try:
            if not strategy:
                strategy = self._strategy(cluster, service)
            if not is_tracked(strategy):
                return Observation(strategy=strategy)
            arn = str(record.get("service_deployment_arn") or "")
            if not arn:
                briefs = list_service_deployments(self.ecs, cluster, service)
                linked = link(briefs, event.detail.deployment_id, event.at)
                if linked is None:
                    logger.warning("no service deployment for this deployment", extra=log)
                    count("ServiceDeploymentReadErrors")
                    return Observation(strategy=strategy, error="no service deployment found")
                arn = linked.arn
            found = describe_service_deployments(self.ecs, [arn]).get(arn)
        except EcspilotError as exc:
            # never lose the event: it is recorded from what it says
            logger.warning(
                "service deployment not read: the event is recorded as it says",
                extra={**log, "error": str(exc), "error_code": error_code(exc)},
            )
            count("ServiceDeploymentReadErrors")
            return Observation(strategy=strategy, error=str(exc))
        if found is None:
            count("ServiceDeploymentReadErrors")
            return Observation(strategy=strategy, error=f"{arn} not found")
        logger.info(
            "service deployment read",
            extra={**log, "ecs_status": found.status, "lifecycle_stage": found.lifecycle_stage},
        )
        return observation_of(found, strategy, record, event.at)

    def _strategy(self, cluster: str, service: str) -> str:
        try:
            found, _ = describe_service_batch(self.ecs, cluster, [service])
        except (ClientError, BotoCoreError) as exc:
            raise ServiceDeploymentError(
                f"DescribeServices failed: {exc}", cluster=cluster, service=service
            ) from exc
        described = found.get(service)
        return strategy_of(described) if described else "ROLLING"
