"""Registering task definition revisions exactly once: the AWS edge of the deploy's step 5.

A retried deploy must not add a revision: Lambda retries an invocation that failed part-way,
and a RegisterTaskDefinition whose reply was lost was still applied. So:

- before registering, the family's latest ACTIVE revision (DescribeTaskDefinition by family,
  with tags) is compared with the clone; when every registered field is identical, it is reused;
- RegisterTaskDefinition goes through a client without botocore's retries: on a failed or lost
  reply ecspilot looks for the identical latest revision again before registering again, with
  its own bounded backoff for throttling;
- "not there" is decided on a positive answer only: ECS saying the family has no ACTIVE
  revision (``ClientException``), or the latest revision differing. A look-up that fails
  (throttled, a network error, access denied) after a registration whose reply may be lost
  fails the service for Lambda's retry: registering again could add a second revision.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.domain.taskdef import clone_with_images, family_revision, same_registration
from ecspilot.errors import DeployError, error_code, is_transient, is_uncertain
from ecspilot.obs import logger

TaskDefinition = tuple[dict[str, Any], list[dict[str, str]]]


def tags_of(resp: Mapping[str, Any]) -> list[dict[str, str]]:
    """The tags of a DescribeTaskDefinition reply as RegisterTaskDefinition takes them."""
    return [{"key": str(t.get("key", "")), "value": str(t.get("value", ""))} for t in resp.get("tags", [])]


class Revisions:
    """Finds or registers the revision for a set of RegisterTaskDefinition arguments."""

    def __init__(
        self,
        clients: Clients,
        attempts: int = 6,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clients = clients
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep

    def accepted(self) -> Collection[str] | None:
        """The parameters RegisterTaskDefinition takes (from botocore's model)."""
        shape = self.clients.ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape
        return shape.members if shape is not None else None

    def describe(self, name: str) -> TaskDefinition:
        """DescribeTaskDefinition (an ARN, ``family:revision`` or a family: its latest ACTIVE)."""
        resp = self.clients.ecs.describe_task_definition(taskDefinition=name, include=["TAGS"])
        return dict(resp["taskDefinition"]), tags_of(resp)

    def identical(self, latest: TaskDefinition, params: Mapping[str, Any]) -> bool:
        """True when ``latest`` registers exactly what ``params`` would."""
        task_definition, tags = latest
        if task_definition.get("status", "ACTIVE") != "ACTIVE":
            return False
        return same_registration(clone_with_images(task_definition, {}, tags, self.accepted()), params)

    def ensure(self, params: Mapping[str, Any], latest: TaskDefinition | None) -> tuple[str, bool]:
        """The ARN of a revision registering ``params``, and whether it already existed.

        ``latest`` is the family's latest ACTIVE revision as already described (None: unknown,
        described here). Raises :class:`DeployError` when no attempt succeeded.
        """
        family = str(params["family"])
        if latest is None:
            latest = self._latest(family)
        if latest is not None and self.identical(latest, params):
            return str(latest[0]["taskDefinitionArn"]), True
        register = self.clients.single_attempt("ecs")
        maybe_applied = False  # an earlier attempt may have registered it (its reply lost)
        for attempt in range(1, self.attempts + 1):
            try:
                resp = register.register_task_definition(**params)
                return str(resp["taskDefinition"]["taskDefinitionArn"]), False
            except (ClientError, BotoCoreError) as exc:
                if not is_transient(exc) or attempt == self.attempts:
                    raise DeployError(
                        f"RegisterTaskDefinition failed: {exc}", task_definition=family, attempts=attempt
                    ) from exc
                maybe_applied = maybe_applied or is_uncertain(exc)
                logger.warning(
                    "RegisterTaskDefinition failed, looking for the revision before trying again",
                    extra={"task_definition": family, "attempt": attempt, "error": str(exc)},
                )
                # exponential backoff with jitter (about 15 s over 6 attempts): RegisterTaskDefinition
                # refills at 1 call per second per account once its burst of 20 is spent
                self.sleep(self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))
                # the request may have been applied and only its reply lost: look before registering
                # again; when the look-up itself fails, register again only if nothing can have been
                # applied (a throttle, a connection never made), else fail for the retry to look
                try:
                    found = self._latest(family, strict=maybe_applied)
                except DeployError:
                    if maybe_applied:
                        raise
                    continue
                if found is not None and self.identical(found, params):
                    logger.info(
                        "the lost registration was applied: reusing it",
                        extra={"task_definition": family_revision(str(found[0]["taskDefinitionArn"]))},
                    )
                    return str(found[0]["taskDefinitionArn"]), True
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _latest(self, family: str, strict: bool = False) -> TaskDefinition | None:
        """The family's latest ACTIVE revision; None when ECS says it has none. When it cannot be
        known (throttled, network, any other error), registering could duplicate: an error. With
        ``strict`` (a registration may have been applied), the error says so."""
        try:
            return self.describe(family)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return None  # ECS's positive answer: no ACTIVE revision in the family
            cause: ClientError | BotoCoreError = exc
        except BotoCoreError as exc:
            cause = exc
        if strict:
            raise DeployError(
                f"RegisterTaskDefinition's reply was lost and looking for the revision failed: {cause}; "
                "not registering again (the retry looks first)",
                task_definition=family,
            ) from cause
        raise DeployError(f"DescribeTaskDefinition failed: {cause}", task_definition=family) from cause


# what ECS answers DescribeTaskDefinition for a family without an ACTIVE revision
NOT_FOUND = ("ClientException",)
