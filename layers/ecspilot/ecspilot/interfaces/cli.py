"""The ``ecspilot`` command line: validate, plan, and the verbs later flows add.

Exit codes and the AWS session are :mod:`ecspilot.interfaces.exits`'s, the same for every verb:
0 done (in sync), 1 an AWS or runtime failure (missing credentials too), 2 bad input or config,
3 ``plan --detailed-exitcode`` has changes. Every verb checks its input (the config, an event
file, its arguments) before its first AWS call; the region comes from ``--region``, then
``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then the profile. Every failure is one
``error: ...`` line on stderr (escaped), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ecspilot.errors import EcspilotError, EventError, InputError
from ecspilot.interfaces.cli_insights import run_insights  # a light module: its imports are lazy
from ecspilot.interfaces.cli_parser import build_parser
from ecspilot.interfaces.exits import (
    EXIT_CHANGES,
    EXIT_FAILED,
    EXIT_OK,
    aws_session,
    error_text,
    exit_code,
)
from ecspilot.interfaces.present import error

Command = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace) -> Any:
    from ecspilot.interfaces.settings import Settings  # noqa: PLC0415

    return Settings.from_env(**({"config_path": args.config} if args.config else {}))


def _runtime(
    args: argparse.Namespace, origin: bool = False, check: Callable[[Any], None] | None = None
) -> Any:
    """The CLI's runtime: the settings and the config first (bad input is found before any AWS
    call), then the session. ``origin``: also know the caller's account and region, which events
    must come from (a workstation may ask STS; the functions take them from their environment)."""
    import dataclasses  # noqa: PLC0415

    from ecspilot.aws.clients import Clients  # noqa: PLC0415
    from ecspilot.domain.config import load_config  # noqa: PLC0415
    from ecspilot.interfaces.runtime import Runtime  # noqa: PLC0415

    settings = _settings(args)
    config = load_config(settings.config_path)
    if check is not None:
        check(config)  # the verb's arguments against the config, still before any AWS call
    session = aws_session(args.region, args.profile, getattr(args, "session", None))
    settings = dataclasses.replace(settings, region=session.region_name)
    if origin:
        account = settings.account_id or session.client("sts").get_caller_identity()["Account"]
        settings = dataclasses.replace(settings, account_id=account)
    clients = Clients(session=session, max_workers=settings.max_workers)
    return Runtime.build(settings=settings, config=config, clients=clients)


def cmd_validate(args: argparse.Namespace) -> int:
    from ecspilot.domain.config import load_config  # noqa: PLC0415
    from ecspilot.interfaces.present import say  # noqa: PLC0415

    path = _settings(args).config_path
    config = load_config(path)
    counts = {"services": len(config.services), "jobs": len(config.jobs), "daemons": len(config.daemons)}
    if args.output == "json":
        from ecspilot.interfaces.present import as_json  # noqa: PLC0415

        as_json({"config": str(path), "valid": True, **counts})
        return 0
    say(
        f"{path}: valid ({counts['services']} service(s), {counts['jobs']} job(s), {counts['daemons']} daemon(s))"
    )
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """``ecspilot plan [--event FILE] [--detailed-exitcode]``: 0 in sync (or no change with
    ``--detailed-exitcode``), 3 changes (only with ``--detailed-exitcode``), 1 a part failed."""
    from ecspilot.interfaces.cli_plan import (  # noqa: PLC0415
        event_function,
        failures,
        plan_event,
        plan_reconcile,
        read_event,
    )

    event = read_event(args.event) if args.event else None
    if event is not None:
        event_function(event)  # an event no function handles is bad input, before any AWS call
    rt = _runtime(args, origin=event is not None)
    data, changed = (
        plan_event(rt, event, args.output) if event is not None else plan_reconcile(rt, args.output)
    )
    if failed_parts(failures(data), "part(s) of the plan"):
        return EXIT_FAILED
    return EXIT_CHANGES if changed and args.detailed_exitcode else EXIT_OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    """``ecspilot reconcile``: apply the plan; 1 when a part failed."""
    from ecspilot.interfaces.present import as_json, counted, say, table  # noqa: PLC0415
    from ecspilot.reconcile.runbook import reconcile  # noqa: PLC0415

    result = reconcile(_runtime(args))
    if args.output == "json":
        as_json(result.as_dict())
    else:
        say("reconcile applied")
        table([a.__dict__ for a in result.actions], ["kind", "target", "change", "detail"])
        say(counted(result.summary()) or "nothing to do")
    return EXIT_FAILED if failed_parts([a.__dict__ for a in result.by_change("error")]) else EXIT_OK


def failed_parts(errors: Sequence[dict[str, Any]], what: str = "reconcile part(s)") -> bool:
    """Say on stderr, in one line, which parts failed and why; True when any did."""
    if errors:
        why = "; ".join(f"{a['target']}: {a['detail']}" for a in errors)
        error(f"{len(errors)} {what} failed: {why}")
    return bool(errors)


def cmd_run(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_jobs import run  # noqa: PLC0415

    return run(args, _runtime(args))


def cmd_placement(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_jobs import placement  # noqa: PLC0415

    return placement(args, _runtime(args))


class DevToolsMissingError(EcspilotError):
    """``ecspilot demo`` without the development package (``ecspilot_dev``) or what it needs (moto)."""


def cmd_demo(args: argparse.Namespace) -> int:
    given = [
        f"--{k}" for k in ("output", "region", "profile", "config") if getattr(args, k) not in (None, "table")
    ]
    if given:
        raise InputError(f"demo runs on its own local AWS and config: it takes no {', '.join(given)}")
    try:
        # the demo lives in the development package, never in the Lambda layer; moto is its local AWS
        import moto.server  # noqa: F401, PLC0415

        from ecspilot_dev import demo  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        missing = (exc.name or "a module").partition(".")[0]
        raise DevToolsMissingError(
            f"`ecspilot demo` needs ecspilot's development tools ({missing} is not installed): "
            "in a checkout of the repository, run `make demo` (or `pip install -e '.[dev]'`)"
        ) from exc
    return demo.run(verbose=args.verbose)


COMMANDS: dict[str, Command] = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "reconcile": cmd_reconcile,
    "demo": cmd_demo,
    "run": cmd_run,
    "placement": cmd_placement,
}


def cmd_history(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_promote import history  # noqa: PLC0415 - a promoted service's, or cli_status's

    if not 1 <= args.limit <= 1000:
        raise InputError(f"--limit takes 1 to 1000, got {args.limit}")
    return history(args, _runtime(args))


def cmd_status(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_status import print_status  # noqa: PLC0415

    if args.html and args.service:
        raise InputError("--html writes the page of every service: give it without a SERVICE")
    return print_status(_runtime(args), output=args.output, html=args.html, service=args.service)


def cmd_promote(args: argparse.Namespace) -> int:
    from ecspilot.domain.images import DIGEST_RE  # noqa: PLC0415
    from ecspilot.errors import PromotionInputError  # noqa: PLC0415
    from ecspilot.interfaces.cli_promote import cmd_promote as promote  # noqa: PLC0415

    if not DIGEST_RE.fullmatch(args.digest):
        raise PromotionInputError(f"{args.digest!r} is not an image digest (sha256:<64 hex>)")

    def promoted(config: Any) -> None:
        if not any(s.name == args.target and s.promote is not None for s in config.services):
            known = ", ".join(s.name for s in config.services if s.promote) or "none"
            raise PromotionInputError(
                f"{args.target!r} is not a promoted service (promoted services: {known})"
            )

    return promote(args, _runtime(args, origin=True, check=promoted))


def cmd_rollback(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_rollback import run_rollback  # noqa: PLC0415

    return run_rollback(_runtime(args), args)


COMMANDS.update(history=cmd_history, status=cmd_status, promote=cmd_promote, rollback=cmd_rollback)
COMMANDS["insights"] = lambda args: run_insights(_runtime(args), args)


def cmd_enqueue(args: argparse.Namespace) -> int:
    """``ecspilot enqueue JOB --set KEY=VALUE``: validate locally with the handler's rules, then send."""
    from ecspilot.domain.config import load_config  # noqa: PLC0415
    from ecspilot.errors import SettingsError  # noqa: PLC0415
    from ecspilot.interfaces.present import as_json, say  # noqa: PLC0415
    from ecspilot.queue.request import build_body, parse_request  # noqa: PLC0415

    pairs: dict[str, str] = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EventError(f"--set takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    settings = _settings(args)
    body = build_body(args.job, pairs, count=args.count, idempotency_key=args.idempotency_key)
    parse_request(body, load_config(settings.config_path))  # the same rules as run_queued_jobs
    queue_url = args.queue_url or settings.jobs_queue_url
    if not queue_url:
        raise SettingsError(
            "no jobs queue: give --queue-url or set ECSPILOT_JOBS_QUEUE_URL (the stack's JobsQueueUrl output)"
        )
    sqs = _runtime(args).clients.sqs
    message_id = sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
    if args.output == "json":
        as_json({"message_id": message_id, "body": json.loads(body)})
    else:
        say(f"enqueued {args.job} as message {message_id}: {body}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_adopt import cmd_init as init  # noqa: PLC0415

    return init(args, lambda: aws_session(args.region, args.profile, args.session))


def cmd_import(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_adopt import cmd_import_copilot  # noqa: PLC0415

    return cmd_import_copilot(args)


def cmd_answer_hook(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_promote import answer  # noqa: PLC0415 - a paused deployment, or a promotion

    return answer(args, _runtime(args))


def cmd_freeze(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_freeze import run  # noqa: PLC0415 - freeze, unfreeze, freezes (issue 25)

    return run(args, _runtime(args))


COMMANDS.update(approve=cmd_answer_hook, reject=cmd_answer_hook, init=cmd_init, enqueue=cmd_enqueue)
COMMANDS.update({"import": cmd_import, "freeze": cmd_freeze, "unfreeze": cmd_freeze, "freezes": cmd_freeze})


def error_line(exc: BaseException, args: argparse.Namespace) -> str:
    """The one line a failure prints (no traceback)."""
    import yaml  # noqa: PLC0415

    from ecspilot.errors import ConfigError  # noqa: PLC0415

    cause = exc.__cause__
    if isinstance(exc, ConfigError) and isinstance(cause, yaml.MarkedYAMLError) and cause.problem_mark:
        # PyYAML names the text it parsed "<unicode string>": name the file, line and column
        path = args.config or _settings(args).config_path
        mark = cause.problem_mark
        return f"{path}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {cause.problem}"
    if isinstance(exc, ConfigError) and isinstance(cause, FileNotFoundError):
        from pathlib import Path  # noqa: PLC0415

        from ecspilot.interfaces.settings import DEFAULT_CONFIG_PATH  # noqa: PLC0415

        default = not args.config and _settings(args).config_path == DEFAULT_CONFIG_PATH
        if default and Path("config/ecspilot.yaml").is_file():  # the repository root: its example config
            return f"{error_text(exc)} (here, give --config config/ecspilot.yaml or set ECSPILOT_CONFIG)"
    return error_text(exc)


def main(argv: Sequence[str] | None = None, session: Any = None) -> int:
    """Entry point of the ``ecspilot`` command. ``session``: the boto3 session to use instead of
    one made from ``--profile``/``--region`` (tests record its calls). The exit code of a failure
    is the table's (:mod:`ecspilot.interfaces.exits`)."""
    args = build_parser().parse_args(argv)
    args.session = session
    logging.getLogger().setLevel(logging.WARNING)
    from ecspilot.obs import logger  # noqa: PLC0415

    level = logger.log_level
    if level < logging.CRITICAL:  # the CLI prints results and one error line, not JSON logs
        logger.setLevel("CRITICAL")
    try:
        return COMMANDS[args.command](args)
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise  # a bug: the traceback is what to report
        error(error_line(exc, args))
        return code
    finally:
        logger.setLevel(level)  # main() called in a process that goes on (tests, the demo)


if __name__ == "__main__":
    sys.exit(main())
