"""The one ECS read layer: DescribeServices in batches, DescribeTaskDefinition once per name.

- :func:`service_batches` and :func:`describe_service_batch`: any number of services, 10 per
  DescribeServices call per cluster, found services and ECS's ``failures[]`` by name; every flow
  that reads services (deploy, catch-up, daemons, status) goes through them;
- :class:`TaskDefinitions`: DescribeTaskDefinition once per name per invocation (thread-safe),
  with tags when asked; the botocore error is raised as it is, each flow types it;
- :class:`DeployReads`: the deploy's reads, cached per invocation (services, task definitions,
  image push times): a read that several services share is made once, and its failure fails
  only the services that need it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.aws.fanout import bounded_map, chunks
from ecspilot.aws.revisions import Revisions, TaskDefinition
from ecspilot.domain.taskdef import family_of, family_revision
from ecspilot.errors import DeployError, EcspilotError, error_code, is_transient
from ecspilot.obs import logger

T = TypeVar("T")
R = TypeVar("R")
DESCRIBE_SERVICES_BATCH = 10


def aware(at: datetime | None) -> datetime | None:
    """Timestamps compared across ECR, ECS and events: naive ones are UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def once_more(fn: Callable[[T], R]) -> Callable[[T], R]:
    """``fn``, tried a second time (after a short jittered pause) when it fails with a transient
    AWS error that botocore's retries did not absorb: a shared read failing would fail every
    service that needs it, and the retry of the invocation costs a whole run."""

    def call(item: T) -> R:
        try:
            return fn(item)
        except DeployError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ClientError | BotoCoreError) or not is_transient(cause):
                raise
            time.sleep(0.2 + random.random() * 0.3)
            return fn(item)

    return call


def service_batches(keys: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """``(cluster, names)`` batches of at most 10 distinct names, for DescribeServices."""
    by_cluster: dict[str, list[str]] = {}
    for cluster, name in sorted(set(keys)):
        by_cluster.setdefault(cluster, []).append(name)
    return [
        (cluster, list(chunk))
        for cluster, names in by_cluster.items()
        for chunk in chunks(names, DESCRIBE_SERVICES_BATCH)
    ]


def describe_service_batch(
    ecs: Any, cluster: str, names: Sequence[str], *, tags: bool = False
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """One DescribeServices call (at most 10 names): the services found by name, and ECS's
    ``failures[]`` by name (``MISSING``...). Raises the botocore error: callers type it."""
    kwargs: dict[str, Any] = {"cluster": cluster, "services": list(names)}
    if tags:
        kwargs["include"] = ["TAGS"]
    resp = ecs.describe_services(**kwargs)
    found = {str(svc["serviceName"]): dict(svc) for svc in resp.get("services", [])}
    failures = {
        str(f.get("arn", "")).rsplit("/", 1)[-1]: str(f.get("reason", "unknown"))
        for f in resp.get("failures", [])
    }
    return found, failures


class TaskDefinitions:
    """DescribeTaskDefinition once per (name, tags) per invocation, shared by threads. A failure
    is not cached (the botocore error is raised as it is: each flow types it its own way)."""

    def __init__(self, ecs: Any) -> None:
        self.ecs = ecs
        self._cache: dict[tuple[str, bool], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, *, tags: bool = False) -> dict[str, Any]:
        """The DescribeTaskDefinition reply (``taskDefinition``, and ``tags`` when asked)."""
        with self._lock:
            cached = self._cache.get((name, tags)) or (self._cache.get((name, True)) if not tags else None)
        if cached is not None:
            return cached
        kwargs: dict[str, Any] = {"taskDefinition": name}
        if tags:
            kwargs["include"] = ["TAGS"]
        resp = dict(self.ecs.describe_task_definition(**kwargs))
        with self._lock:
            self._cache[(name, tags)] = resp
        return resp


class DeployReads:
    """The reads of one invocation of the deploy core, on a bounded pool."""

    def __init__(self, clients: Clients, max_workers: int = 8) -> None:
        self.clients = clients
        self.max_workers = max_workers
        self.revisions = Revisions(clients)
        self._task_definitions: dict[str, TaskDefinition | DeployError] = {}
        self._pushed_at: dict[tuple[str, str], datetime | None] = {}
        self._image_tags: dict[tuple[str, str], list[str]] = {}  # the same DescribeImages reads
        self._services: dict[tuple[str, str], dict[str, Any] | str] = {}
        self._lock = threading.Lock()

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | EcspilotError]:
        """Run ``fn`` over ``items`` on the bounded pool; an item's failure is returned, not raised."""
        return bounded_map(fn, items, self.max_workers)

    def _describe_services(
        self, batch: tuple[str, Sequence[str]]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        cluster, names = batch
        try:
            return describe_service_batch(self.clients.ecs, cluster, names)
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"DescribeServices failed: {exc}", cluster=cluster) from exc

    def task_definition(self, name: str) -> TaskDefinition:
        """DescribeTaskDefinition (with tags) once per name per invocation.

        A failure is tried once more, then remembered for the invocation: the services and jobs
        sharing that task definition fail, the others go on (and Lambda's retry tries again).
        """
        cached = self._task_definitions.get(name)
        if isinstance(cached, DeployError):
            raise DeployError(cached.message, **cached.context) from cached
        if cached is not None:
            return cached
        try:
            try:
                got = self.revisions.describe(name)
            except (ClientError, BotoCoreError) as first:
                if not is_transient(first):
                    raise
                logger.warning(
                    "DescribeTaskDefinition failed, trying once more",
                    extra={"task_definition": name, "error": str(first)},
                )
                got = self.revisions.describe(name)
        except (ClientError, BotoCoreError) as exc:
            error = DeployError(f"DescribeTaskDefinition failed: {exc}", task_definition=name)
            error.__cause__ = exc
            with self._lock:
                self._task_definitions[name] = error
            raise error from exc
        with self._lock:
            self._task_definitions[name] = got
            self._task_definitions.setdefault(str(got[0]["taskDefinitionArn"]), got)
        return got

    def source(self, arn: str) -> TaskDefinition:
        """The revision a service runs. Its family's latest ACTIVE revision is described first:
        usually it is this very revision (one call), and registering needs it anyway."""
        family = family_of(arn)
        if family != family_revision(arn):
            try:
                latest = self.task_definition(family)
                if latest[0]["taskDefinitionArn"] == arn:
                    return latest
            except DeployError:
                pass  # no ACTIVE revision, or unknown: the revision itself is what decides
        return self.task_definition(arn)

    def know_pushed_at(self, repository: str, images: Iterable[Mapping[str, Any]]) -> None:
        """Seed the stale guard from an image listing already in hand (catch-up lists them)."""
        for image in images:
            self._pushed_at[(repository, str(image["imageDigest"]))] = image.get("imagePushedAt")
            self._image_tags[(repository, str(image["imageDigest"]))] = list(image.get("imageTags") or [])

    def pushed_at(self, repository: str, digest: str) -> datetime | None:
        """ECR's imagePushedAt of a digest (None when the image is gone)."""
        key = (repository, digest)
        if key not in self._pushed_at:
            try:
                resp = self.clients.ecr.describe_images(
                    repositoryName=repository, imageIds=[{"imageDigest": digest}]
                )
                details = resp.get("imageDetails", [])
                self._pushed_at[key] = details[0].get("imagePushedAt") if details else None
                self._image_tags[key] = list(details[0].get("imageTags") or []) if details else []
            except ClientError as exc:
                if error_code(exc) != "ImageNotFoundException":
                    raise DeployError(f"DescribeImages failed: {exc}", repository=repository) from exc
                self._pushed_at[key] = None
            except BotoCoreError as exc:
                raise DeployError(f"DescribeImages failed: {exc}", repository=repository) from exc
        return aware(self._pushed_at[key])

    def image_tags(self, repository: str, digest: str) -> list[str]:
        """ECR's tags of a digest now (``[]`` when the image is gone or untagged): the same read
        as :meth:`pushed_at`, made once."""
        self.pushed_at(repository, digest)
        return self._image_tags.get((repository, digest), [])

    def describe_services(self, keys: Iterable[tuple[str, str]]) -> None:
        """Describe (cluster, service) pairs not yet known, 10 per call per cluster, into the
        invocation's cache: the service, or why it cannot be deployed to."""
        batches = service_batches(k for k in keys if k not in self._services)
        described = self._map(once_more(self._describe_services), batches)
        for (cluster, names), got in zip(batches, described, strict=True):
            if isinstance(got, EcspilotError):
                for name in names:
                    self._services[(cluster, name)] = str(got)
                continue
            found, failures = got
            for name in names:
                if name in found:
                    self._services[(cluster, name)] = found[name]
                else:
                    self._services[(cluster, name)] = f"service not found ({failures.get(name, 'MISSING')})"

    def described(self, cluster: str, service: str) -> dict[str, Any] | str:
        """A service :meth:`describe_services` read, or why it cannot be deployed to."""
        return self._services.get((cluster, service), "service not described")
