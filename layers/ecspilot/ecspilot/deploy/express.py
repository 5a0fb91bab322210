"""Express Mode services (``express: true``): a push gives the service's primary container the
image pinned by digest with ``UpdateExpressGatewayService``; ECS then runs its own deployment
(canary by default), tracked like any other.

For each Express service a push matches:

1. ``DescribeExpressGatewayService``: the active configuration's primary container; already on
   the digest: ``unchanged``;
2. the digest FAILED or was ROLLED_BACK on the service: ``held`` (the state items, as for
   rolling services); the image scan gate (``gates.image_scan``): ``refused``;
3. ``UpdateExpressGatewayService`` with the primary container as it is but for ``image``;
4. the record: keyed by the ECS deployment id, as every other, read with ``DescribeServices``
   (the deployment of the new ``taskDefinitionArn``; UpdateExpressGatewayService returns the
   service revision, not a deployment id). When ECS lists no such deployment yet the record is
   keyed by the service revision ARN, and the tracker's first event for the service creates
   the deployment's own record (``external``).

The push's stale guard (a service running a newer push) is not applied here: an Express
service has no task definition ecspilot clones, so the update is the whole deployment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ecspilot.aws.express import current_configuration, deployment_of, service_arn, update_image
from ecspilot.aws.history import utc_now
from ecspilot.aws.notify import Notifier
from ecspilot.deploy.commit import DeployCommit
from ecspilot.deploy.result import PushResult, Target
from ecspilot.deploy.scan_gate import scan_gate
from ecspilot.domain.images import ImagePush
from ecspilot.errors import EcspilotError
from ecspilot.obs import logger


def deploy_express(
    deployer: DeployCommit,
    targets: Sequence[Target],
    push: ImagePush,
    result: PushResult,
    dry_run: bool,
    notifier: Notifier | None = None,
) -> None:
    """Deploy ``push`` to the Express services among ``targets``; see the module docstring."""
    if not targets:
        return
    ecs = deployer.clients.ecs
    region = str(ecs.meta.region_name)
    current: dict[str, tuple[str, dict[str, Any]]] = {}
    for t in targets:
        svc = t.config
        arn = service_arn(region, push.account, svc.cluster, svc.service_name)
        try:
            configuration = current_configuration(ecs, arn, svc.cluster, svc.service_name)
        except EcspilotError as exc:
            t.outcome.reason = str(exc)
            continue
        primary = configuration.get("primaryContainer") or {}
        t.outcome.from_task_definition = str(configuration.get("taskDefinitionArn", ""))
        if primary.get("image") == push.pinned:
            t.outcome.outcome, t.outcome.reason = "unchanged", "already runs this digest"
            continue
        t.outcome.outcome = "would-deploy"
        current[svc.name] = (arn, dict(primary))
    pending = [t for t in targets if t.outcome.outcome == "would-deploy"]
    deployer.hold_rolled_back(pending, push)
    scan_gate(pending, push, deployer.clients, notifier)
    if dry_run:
        return
    started_at = utc_now()
    records = []
    for t in (t for t in pending if t.outcome.outcome == "would-deploy"):
        svc, (arn, primary) = t.config, current[t.config.name]
        try:
            target = update_image(ecs, arn, primary, push.pinned, svc.cluster, svc.service_name)
        except EcspilotError as exc:
            t.outcome.outcome, t.outcome.reason = "failed", str(exc)
            continue
        new_arn = str(target.get("taskDefinitionArn", ""))
        try:
            deployment_id = deployment_of(ecs, svc.cluster, svc.service_name, new_arn)
        except EcspilotError as exc:  # updated all the same: recorded by its service revision
            logger.warning("express deployment id not read", extra={"error": str(exc)})
            deployment_id = ""
        key = deployment_id or str(target.get("serviceRevisionArn", ""))
        t.outcome.outcome, t.outcome.to_task_definition, t.outcome.deployment_id = "deployed", new_arn, key
        records.append(deployer.record(t, new_arn, key, push, started_at))
        logger.info(
            "express service updated",
            extra={"cluster": svc.cluster, "ecs_service": svc.service_name, "deployment_id": key},
        )
    if records:
        deployer.write_records(records, result)
