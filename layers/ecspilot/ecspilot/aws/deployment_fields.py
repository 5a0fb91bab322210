"""What an ECS service deployment says, on ecspilot's deployment record (the state table).

The tracker writes these fields on the one item of a deployment (``DEPLOYMENT#<ecs id>``):

========================  ====================================================================
field                     from
========================  ====================================================================
service_deployment_arn    the linked service deployment (``aws.service_deployments.link``)
ecs_status                its ``status`` (SUCCESSFUL, ROLLBACK_IN_PROGRESS, ...)
lifecycle_stage           its ``lifecycleStage`` (BAKE_TIME, PRODUCTION_TRAFFIC_SHIFT, ...)
stage_started_at          when the record first saw that stage (the deployment's ``updatedAt``)
strategy                  ``deploymentConfiguration.strategy`` (BLUE_GREEN, LINEAR, CANARY)
bake_minutes              ``bakeTimeInMinutes``
step_percent              ``linearConfiguration.stepPercent``
canary_percent            ``canaryConfiguration.canaryPercent``
production_weight         the target revision's ``requestedProductionTrafficWeight``
========================  ====================================================================

Only the tracker writes them, and only while the record is open (:func:`annotate`) or with its
final move; the deployer's upsert never names them, so neither overwrites the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ecspilot.aws.dynamo import conditional_update, set_expression
from ecspilot.aws.history import History


def annotate(
    history: History,
    key: Mapping[str, str],
    fields: Mapping[str, Any],
    while_status: Sequence[str] = ("IN_PROGRESS",),
) -> bool:
    """Set ``fields`` on the existing item at ``key`` while its status is one of
    ``while_status`` (one conditional UpdateItem): what a service deployment says about an open
    deployment never touches a closed one. True when written."""
    values = {k: _dynamo(v) for k, v in fields.items() if v is not None}
    connection = history.connection()
    if connection is None or not values:
        return False
    client, table = connection
    update = set_expression(values)
    statuses = {f":w{i}": s for i, s in enumerate(while_status)}
    written = conditional_update(
        client,
        table,
        key,
        update.expression,
        {**update.names, "#status": "status"},
        {**update.values, **statuses},
        f"#status IN ({', '.join(statuses)})",
        what="updating history",
    )
    return written is not None


def _dynamo(value: Any) -> Any:
    """DynamoDB takes no float: numbers go as their decimal text (serialize makes them N)."""
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def dynamo_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` ready for the state table (floats as Decimal, None left out)."""
    return {k: _dynamo(v) for k, v in fields.items() if v is not None}
