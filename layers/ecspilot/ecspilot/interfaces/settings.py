"""Settings, read once from the environment into a frozen object.

The core never reads the environment itself: handlers and the CLI build a
:class:`Settings` and pass it in. An explicit argument beats a variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace

from ecspilot.aws.limiter import parse_rates
from ecspilot.errors import SettingsError
from ecspilot.records import dataclass

DEFAULT_CONFIG_PATH = "ecspilot.yaml"


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything a handler needs besides the event and the AWS clients."""

    config_path: str = DEFAULT_CONFIG_PATH
    table_name: str | None = None
    region: str | None = None
    # the function's own account (ECSPILOT_ACCOUNT_ID, set by the template): events from other
    # accounts are ignored (ecspilot.interfaces.origins); unset, no event origin is trusted
    account_id: str | None = None
    max_workers: int = 8
    retention_days: int = 90
    schedule_group: str = "ecspilot"
    run_job_arn: str | None = None
    scheduler_role_arn: str | None = None
    scheduler_dlq_arn: str | None = None
    jobs_queue_url: str | None = None
    jobs_dlq_url: str | None = None
    notify_topic_arn: str | None = None
    # issue 18: raised ECS limits (``UpdateService=100/10,...``: burst/per second) over the
    # documented ones; the queue where deploy_on_push continues what one invocation cannot finish;
    # the seconds kept in hand at the end of an invocation (records, the continuation message)
    ecs_rates: str = ""
    continuation_queue_url: str | None = None
    # issue 24: continuations are taken only from this queue (the SQS records' eventSourceARN);
    # unset, it is derived from continuation_queue_url
    continuation_queue_arn: str | None = None
    time_margin_seconds: int = 20
    # issue 13: the reconcile function, the target of a promotion's one-time bake timer
    reconcile_arn: str | None = None
    # the chat channels' IAM roles allowed to invoke the chat answer path (ECSPILOT_CHAT_ROLE_ARNS,
    # comma-separated): its resource policy names the same ones; its audit record names them
    chat_role_arns: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``); keyword overrides win."""
        env = os.environ if env is None else env
        settings = cls(
            config_path=env.get("ECSPILOT_CONFIG") or DEFAULT_CONFIG_PATH,
            table_name=env.get("ECSPILOT_TABLE") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            account_id=env.get("ECSPILOT_ACCOUNT_ID") or None,
            max_workers=_int(env, "ECSPILOT_MAX_WORKERS", 8),
            retention_days=_int(env, "ECSPILOT_RETENTION_DAYS", 90),
            schedule_group=env.get("ECSPILOT_SCHEDULE_GROUP") or "ecspilot",
            run_job_arn=env.get("ECSPILOT_RUN_JOB_ARN") or None,
            scheduler_role_arn=env.get("ECSPILOT_SCHEDULER_ROLE_ARN") or None,
            scheduler_dlq_arn=env.get("ECSPILOT_SCHEDULER_DLQ_ARN") or None,
            jobs_queue_url=env.get("ECSPILOT_JOBS_QUEUE_URL") or None,
            jobs_dlq_url=env.get("ECSPILOT_JOBS_DLQ_URL") or None,
            notify_topic_arn=env.get("ECSPILOT_NOTIFY_TOPIC_ARN") or None,
            ecs_rates=env.get("ECSPILOT_ECS_RATES") or "",
            chat_role_arns=tuple(
                a.strip() for a in (env.get("ECSPILOT_CHAT_ROLE_ARNS") or "").split(",") if a.strip()
            ),
            continuation_queue_url=env.get("ECSPILOT_CONTINUATION_QUEUE_URL") or None,
            continuation_queue_arn=env.get("ECSPILOT_CONTINUATION_QUEUE_ARN") or None,
            time_margin_seconds=_int(env, "ECSPILOT_TIME_MARGIN_SECONDS", 20),
            reconcile_arn=env.get("ECSPILOT_RECONCILE_ARN") or None,
        )
        settings = replace(settings, **overrides) if overrides else settings  # type: ignore[arg-type]
        if settings.account_id is not None and not re.fullmatch(r"[0-9]{12}", settings.account_id):
            raise SettingsError(f"ECSPILOT_ACCOUNT_ID must be 12 digits, got {settings.account_id!r}")
        parse_rates(settings.ecs_rates)  # fails fast on a malformed entry
        return settings

    def require(self, name: str) -> str:
        """Return a setting that this code path cannot do without, or fail saying which."""
        value = getattr(self, name)
        if not value:
            env_name = "ECSPILOT_" + name.upper()
            raise SettingsError(f"setting {name} is required here: set {env_name}")
        return str(value)
