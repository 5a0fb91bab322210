"""The command line's exit codes and its AWS session, the same for every verb.

One table (:data:`EXIT_CODES`, README "Exit codes") and one classifier (:func:`exit_code`): a verb
returns 0 or 3 itself and raises for the rest, and ``main`` turns what it raised into one
``error: ...`` line and the code of the table. The region and credentials resolve as the AWS CLI
resolves them (:func:`aws_session`): ``--region``, then ``AWS_REGION``, then ``AWS_DEFAULT_REGION``,
then the profile's (``--profile``, else ``AWS_PROFILE``); credentials from boto3's usual chain.
Only the standard library is imported here: boto3 and botocore are imported when a verb asks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

#: the exit codes of every verb
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CHANGES = 0, 1, 2, 3
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "done; for plan, in sync (or, without --detailed-exitcode, any successful plan)",
    EXIT_FAILED: "an AWS or runtime failure: an AWS call (missing credentials too), a part that "
    "failed, nothing awaiting an answer, a gate that holds a promotion",
    EXIT_BAD_INPUT: "bad input or config: arguments, the config, an event file, an unknown job or "
    "service, a missing setting, region or profile",
    EXIT_CHANGES: "plan --detailed-exitcode only: the plan has changes",
}
NO_REGION = "no AWS region: give --region, set AWS_REGION, or use a profile that has one"
NO_CREDENTIALS = (
    "no AWS credentials: set AWS_PROFILE (or give --profile), or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or run where a role provides them"
)


def _bad_input() -> tuple[type[BaseException], ...]:
    from ecspilot.errors import (  # noqa: PLC0415
        AdoptionInputError,
        ConfigError,
        CopilotImportError,
        EventError,
        InputError,
        InvalidMessageError,
        PromotionInputError,
        SettingsError,
        UnknownJobError,
    )

    return (
        AdoptionInputError,
        ConfigError,
        CopilotImportError,
        EventError,
        InputError,
        InvalidMessageError,
        PromotionInputError,
        SettingsError,
        UnknownJobError,
    )


def exit_code(exc: BaseException) -> int | None:
    """The table's code for a failure ``exc``; None for what is not a failure the CLI knows (a bug)."""
    from botocore.exceptions import (  # noqa: PLC0415
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    from ecspilot.errors import EcspilotError  # noqa: PLC0415

    if isinstance(exc, (*_bad_input(), NoRegionError, ProfileNotFound)):
        return EXIT_BAD_INPUT
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return EXIT_FAILED
    if isinstance(exc, EcspilotError | ClientError | BotoCoreError):
        return EXIT_FAILED
    return None


def error_text(exc: BaseException) -> str:
    """What the one error line says for ``exc`` (without the ``error: `` prefix)."""
    from botocore.exceptions import NoCredentialsError, NoRegionError  # noqa: PLC0415

    if isinstance(exc, NoRegionError):
        return NO_REGION
    if isinstance(exc, NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc.__cause__, NoCredentialsError):  # a flow's typed error around it
        return f"{exc} ({NO_CREDENTIALS})"
    return str(exc)


def region_of(explicit: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The region given on the command line, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``;
    None leaves it to the profile (boto3 reads the profile's ``region``)."""
    env = os.environ if env is None else env
    return explicit or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def aws_session(region: str | None, profile: str | None, session: Any = None) -> Any:
    """The verb's boto3 session (``session``: a test's, used as it is), with a region or
    :class:`~ecspilot.errors.SettingsError` (exit 2) naming where to give one. A profile that does
    not exist is ``ProfileNotFound`` (exit 2)."""
    from ecspilot.errors import SettingsError  # noqa: PLC0415

    if session is None:
        import boto3  # noqa: PLC0415 - only verbs that call AWS make a session

        session = boto3.Session(profile_name=profile or None, region_name=region_of(region))
    if not session.region_name:
        raise SettingsError(NO_REGION)
    return session
