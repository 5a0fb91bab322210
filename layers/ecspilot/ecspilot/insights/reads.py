"""The records the insights read: each service's deployment records of the period, one Query
per service on the state table's ``gsi1`` (never a Scan).

The key condition is ``gsi1pk = SERVICE#<cluster>#<service>`` and ``gsi1sk BETWEEN
DEPLOY#<since> AND DEPLOY#~`` (``~`` sorts after every time), so DynamoDB reads only the
period's records of that service. A Query returns at most 1 MB: a deployment record is under
1 KB, so one request reads a service's period up to about a thousand records, and a longer
history pages on (``LastEvaluatedKey``). The requests are one per service plus one per further
1 MB page: for 1,000 records about one to two requests, whatever the table holds besides.

The first stage of a promotion chain is read :data:`CHAIN_LOOKBACK` further back: a release
promoted to the last stage in the period may have been pushed (and recorded with its push time
in the first stage) before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import deserialize
from ecspilot.aws.fanout import bounded_map
from ecspilot.aws.history import History, service_pk
from ecspilot.errors import AwsError, EcspilotError
from ecspilot.insights.report import iso
from ecspilot.records import dataclass

CHAIN_LOOKBACK = timedelta(days=14)
#: a deployment started before the period may complete in it: read from a day earlier
MARGIN = timedelta(days=1)
MAX_PAGES = 1000  # 1 GB of one service's records: far beyond any retention


@dataclass
class Reads:
    """What the reading cost: Query requests and records read (the README states them)."""

    queries: int = 0
    records: int = 0
    per_service: dict[str, int] = field(default_factory=dict)


def service_records(
    history: History, cluster: str, service: str, since: datetime
) -> tuple[list[dict[str, Any]], int]:
    """``(the service's deployment records started at or after since, Query requests made)``."""
    connection = history.connection()
    if connection is None:
        return [], 0
    client, table = connection
    kwargs: dict[str, Any] = {
        "TableName": table,
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to",
        "ExpressionAttributeValues": {
            ":pk": {"S": service_pk(cluster, service)},
            ":from": {"S": f"DEPLOY#{iso(since)}"},
            ":to": {"S": "DEPLOY#~"},
        },
    }
    items: list[dict[str, Any]] = []
    for page in range(1, MAX_PAGES + 1):
        try:
            resp = client.query(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(
                f"reading the deployment records failed: {exc}", cluster=cluster, service=service
            ) from exc
        items += [deserialize(i) for i in resp.get("Items", [])]
        last = resp.get("LastEvaluatedKey")
        if not last:
            return items, page
        kwargs["ExclusiveStartKey"] = last
    return items, MAX_PAGES


def read_period(
    history: History,
    keys: Mapping[str, tuple[str, str]],
    names: Sequence[str],
    since: datetime,
    first_stages: Sequence[str] = (),
    max_workers: int = 8,
) -> tuple[dict[str, list[dict[str, Any]]], Reads]:
    """Each named service's records (``keys``: its ``(cluster, service)`` in the state table),
    read in parallel; the first failure is raised (a partial report would mislead)."""

    def one(name: str) -> tuple[list[dict[str, Any]], int]:
        start = since - (CHAIN_LOOKBACK if name in first_stages else MARGIN)
        return service_records(history, *keys[name], start)

    results = bounded_map(one, list(names), max_workers)
    out: dict[str, list[dict[str, Any]]] = {}
    reads = Reads()
    for name, result in zip(names, results, strict=True):
        if isinstance(result, EcspilotError):
            raise result
        items, queries = result
        out[name] = items
        reads.queries += queries
        reads.records += len(items)
        reads.per_service[name] = queries
    return out, reads
