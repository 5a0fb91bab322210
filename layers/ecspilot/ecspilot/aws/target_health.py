"""Load balancer reads for a service's health (``ecspilot status``): its target groups' health
checks (``elasticloadbalancing:DescribeTargetGroups``, 20 per call) and each group's targets
(``DescribeTargetHealth``). Read-only; the CLI makes them with the user's credentials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.errors import TargetHealthError

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

DESCRIBE_LIMIT = 20  # DescribeTargetGroups takes at most 20 ARNs


def target_groups(elbv2: ElasticLoadBalancingv2Client, arns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The target groups at ``arns`` that exist, by ARN."""
    wanted = sorted(set(arns))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), DESCRIBE_LIMIT):
        batch = wanted[start : start + DESCRIBE_LIMIT]
        try:
            resp = elbv2.describe_target_groups(TargetGroupArns=batch)
        except (ClientError, BotoCoreError) as exc:
            raise TargetHealthError(f"DescribeTargetGroups failed: {exc}", target_groups=len(batch)) from exc
        found.update({str(g["TargetGroupArn"]): dict(g) for g in resp.get("TargetGroups", [])})
    return found


def target_health(elbv2: ElasticLoadBalancingv2Client, arn: str) -> list[dict[str, Any]]:
    """Every registered target of a target group with its health (state, reason code)."""
    try:
        resp = elbv2.describe_target_health(TargetGroupArn=arn)
    except (ClientError, BotoCoreError) as exc:
        raise TargetHealthError(f"DescribeTargetHealth failed: {exc}", target_group=arn) from exc
    return [dict(d) for d in resp.get("TargetHealthDescriptions", [])]
