"""The ``ecspilot`` command line: validate, plan, and the verbs later flows add.

Region and profile come from the usual AWS places (``AWS_REGION``, ``AWS_PROFILE``, ``--region``,
``--profile``). Exit codes, the same for every verb: 0 done (in sync), 1 the action failed, 2 bad
input (config, event, unknown job or service, arguments, settings), 3 ``plan --detailed-exitcode``
has changes. Every failure is one ``error: ...`` line on stderr (escaped), never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound

from ecspilot.errors import (
    AdoptionInputError,
    ConfigError,
    CopilotImportError,
    EcspilotError,
    EventError,
    InvalidMessageError,
    SettingsError,
    UnknownJobError,
)
from ecspilot.interfaces.cli_parser import EXIT_BAD_INPUT, EXIT_CHANGES, EXIT_FAILED, EXIT_OK, build_parser
from ecspilot.interfaces.present import error

Command = Callable[[argparse.Namespace], int]
BAD_INPUT = (
    AdoptionInputError,
    ConfigError,
    CopilotImportError,
    EventError,
    InvalidMessageError,
    SettingsError,
    UnknownJobError,
)
NO_REGION = "no AWS region: give --region, set AWS_REGION, or use a profile that has one"


def _runtime(args: argparse.Namespace, origin: bool = False) -> Any:
    """The CLI's runtime. ``origin``: also know the caller's account and region, which events
    must come from (a workstation may ask STS; the functions take them from their environment)."""
    import dataclasses  # noqa: PLC0415

    import boto3  # noqa: PLC0415 - the CLI's AWS session is made only for verbs that need it

    from ecspilot.aws.clients import Clients  # noqa: PLC0415
    from ecspilot.interfaces.runtime import Runtime  # noqa: PLC0415
    from ecspilot.interfaces.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env(**({"config_path": args.config} if args.config else {}))
    session = getattr(args, "session", None) or boto3.Session(
        profile_name=args.profile, region_name=args.region
    )
    if not session.region_name:
        raise SettingsError(NO_REGION)
    settings = dataclasses.replace(settings, region=session.region_name)
    if origin:
        account = settings.account_id or session.client("sts").get_caller_identity()["Account"]
        settings = dataclasses.replace(settings, account_id=account)
    clients = Clients(session=session, max_workers=settings.max_workers)
    return Runtime.build(settings=settings, clients=clients)


def cmd_validate(args: argparse.Namespace) -> int:
    from ecspilot.domain.config import load_config  # noqa: PLC0415
    from ecspilot.interfaces.present import say  # noqa: PLC0415
    from ecspilot.interfaces.settings import Settings  # noqa: PLC0415

    path = args.config or Settings.from_env().config_path
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
    from ecspilot.interfaces.cli_plan import plan_event, plan_reconcile, read_event  # noqa: PLC0415

    event = read_event(args.event) if args.event else None
    rt = _runtime(args, origin=event is not None)
    data, changed = (
        plan_event(rt, event, args.output) if event is not None else plan_reconcile(rt, args.output)
    )
    if failed_parts([a for a in data.get("actions", []) if a.get("change") == "error"]):
        return EXIT_FAILED
    return EXIT_CHANGES if changed and args.detailed_exitcode else EXIT_OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    """``ecspilot reconcile``: apply the plan; 1 when a part failed."""
    from ecspilot.interfaces.present import as_json, say, table  # noqa: PLC0415
    from ecspilot.reconcile.runbook import reconcile  # noqa: PLC0415

    result = reconcile(_runtime(args))
    if args.output == "json":
        as_json(result.as_dict())
    else:
        say("reconcile applied")
        table([a.__dict__ for a in result.actions], ["kind", "target", "change", "detail"])
        say(", ".join(f"{n} {change}" for change, n in sorted(result.summary().items())) or "nothing to do")
    return EXIT_FAILED if failed_parts([a.__dict__ for a in result.by_change("error")]) else EXIT_OK


def failed_parts(errors: Sequence[dict[str, Any]]) -> bool:
    """Say on stderr, in one line, which reconcile parts failed and why; True when any did."""
    if errors:
        why = "; ".join(f"{a['target']}: {a['detail']}" for a in errors)
        error(f"{len(errors)} reconcile part(s) failed: {why}")
    return bool(errors)


def cmd_run(args: argparse.Namespace) -> int:
    """``ecspilot run JOB [--dry-run]``: the run_job core path, trigger ``manual``."""
    from ecspilot.errors import JobError  # noqa: PLC0415
    from ecspilot.interfaces.present import as_json, say, table  # noqa: PLC0415
    from ecspilot.jobs.handler import find_job, run_job  # noqa: PLC0415

    rt = _runtime(args)
    job = find_job(rt.config, args.job)
    try:
        result = run_job(job, rt.clients, rt.history, "manual", dry_run=args.dry_run)
    except JobError as exc:
        if exc.result is not None and args.output == "json":
            as_json(exc.result.as_dict())
        raise
    if args.output == "json":
        as_json(result.as_dict())
        return 0
    td = result.task_definition.rsplit("/", 1)[-1]
    say(f"job {job.name} on {job.cluster}: {result.outcome} ({td}, concurrency {job.concurrency})")
    if result.reason:
        say(f"  {result.reason}")
    for arn in result.stopped:
        say(f"  {'would stop' if result.dry_run else 'stopped'} {arn.rsplit('/', 1)[-1]} (replace)")
    if result.dry_run and result.requests:
        table(
            [
                {"call": i + 1, "count": r["count"], "started_by": r["startedBy"]}
                for i, r in enumerate(result.requests)
            ],
            ["call", "count", "started_by"],
        )
    for arn in result.task_arns:
        say(f"  started {arn.rsplit('/', 1)[-1]}")
    return 0


def _label(reason: str, labels: dict[str, str]) -> str:
    for prefix, label in labels.items():
        if reason.startswith(prefix):
            return label + reason.removeprefix(prefix)
    return reason


def cmd_placement(args: argparse.Namespace) -> int:
    """``ecspilot placement check JOB``: which container instances satisfy the job's constraints."""
    from ecspilot.interfaces.present import as_json, say, table  # noqa: PLC0415
    from ecspilot.jobs.handler import find_job  # noqa: PLC0415
    from ecspilot.jobs.placement_check import check_job_placement  # noqa: PLC0415

    rt = _runtime(args)
    report = check_job_placement(find_job(rt.config, args.job), rt.clients)
    by_arn = {str(i.get("containerInstanceArn")): i for i in report.instances}
    labels = {f"memberOf {c['expression']}: ": f"[{n}] " for n, c in enumerate(report.constraints, 1)}
    rows = []
    for check in report.checks:
        attributes = {a["name"]: a.get("value") for a in by_arn[check.instance_arn].get("attributes", [])}
        rows.append(
            {
                "instance": check.ec2_instance_id or check.instance_arn.rsplit("/", 1)[-1],
                "zone": attributes.get("ecs.availability-zone", ""),
                "type": attributes.get("ecs.instance-type", ""),
                "matches": "yes" if check.matched else "no",
                "why not": "; ".join(_label(reason, labels) for reason in check.reasons),
                "notes": "; ".join(check.notes),
            }
        )
    rows.sort(key=lambda r: (r["zone"], r["instance"]))
    if args.output == "json":
        as_json(
            {
                "job": report.job,
                "cluster": report.cluster,
                "constraints": report.constraints,
                "strategy": report.strategy,
                "instances": rows,
            }
        )
        return 0
    say(f"job {report.job} on cluster {report.cluster}")
    for n, c in enumerate(report.constraints, 1):
        say(f"  [{n}] constraint {c['type']}" + (f" {c['expression']}" if c.get("expression") else ""))
    for st in report.strategy:
        say(
            f"  strategy (best effort, not checked): {st['type']}"
            + (f" {st['field']}" if st.get("field") else "")
        )
    if not report.constraints:
        say("  no placement constraints: every instance qualifies")
    columns = ["instance", "zone", "type", "matches", "why not"]
    if any(r["notes"] for r in rows):
        columns.append("notes")
    table(rows, columns)
    matched = sum(1 for c in report.checks if c.matched)
    say(f"{matched} of {len(report.checks)} container instance(s) satisfy the constraints")
    return 0 if matched or not report.checks else 1


class DevToolsMissingError(EcspilotError):
    """``ecspilot demo`` without the development package (``ecspilot_dev``) or what it needs (moto)."""


def cmd_demo(args: argparse.Namespace) -> int:
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

    return history(args, _runtime(args))


def cmd_status(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_status import print_status  # noqa: PLC0415

    return print_status(_runtime(args), output=args.output, html=args.html, service=args.service)


def cmd_promote(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_promote import cmd_promote as promote  # noqa: PLC0415

    return promote(args, _runtime(args, origin=True))


COMMANDS.update({"history": cmd_history, "status": cmd_status, "promote": cmd_promote})


def cmd_rollback(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_rollback import run_rollback  # noqa: PLC0415

    return run_rollback(_runtime(args), args)


COMMANDS["rollback"] = cmd_rollback


def cmd_enqueue(args: argparse.Namespace) -> int:
    """``ecspilot enqueue JOB --set KEY=VALUE``: validate locally with the handler's rules, then send."""
    from ecspilot.domain.config import load_config  # noqa: PLC0415
    from ecspilot.interfaces.present import as_json, say  # noqa: PLC0415
    from ecspilot.interfaces.settings import Settings  # noqa: PLC0415
    from ecspilot.queue.request import build_body, parse_request  # noqa: PLC0415

    pairs: dict[str, str] = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EventError(f"--set takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    settings = Settings.from_env(**({"config_path": args.config} if args.config else {}))
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


COMMANDS["enqueue"] = cmd_enqueue


def _session(args: argparse.Namespace) -> Any:
    """The AWS session of a verb that needs no config (``init``): the test's, or the profile's."""
    import boto3  # noqa: PLC0415

    session = getattr(args, "session", None) or boto3.Session(
        profile_name=args.profile, region_name=args.region
    )
    if not session.region_name:
        raise SettingsError(NO_REGION)
    return session


def cmd_init(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_adopt import cmd_init as init  # noqa: PLC0415

    return init(args, _session(args))


def cmd_import(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_adopt import cmd_import_copilot  # noqa: PLC0415

    return cmd_import_copilot(args)


COMMANDS.update({"init": cmd_init, "import": cmd_import})


def cmd_answer_hook(args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_promote import answer  # noqa: PLC0415 - a paused deployment, or a promotion

    return answer(args, _runtime(args))


COMMANDS.update({"approve": cmd_answer_hook, "reject": cmd_answer_hook})  # pause hooks (issue 14)


def error_line(exc: BaseException, args: argparse.Namespace) -> str:
    """The one line a failure prints (no traceback)."""
    import yaml  # noqa: PLC0415

    cause = exc.__cause__
    if isinstance(exc, ConfigError) and isinstance(cause, yaml.MarkedYAMLError) and cause.problem_mark:
        # PyYAML names the text it parsed "<unicode string>": name the file, line and column
        from ecspilot.interfaces.settings import Settings  # noqa: PLC0415

        path = args.config or Settings.from_env().config_path
        mark = cause.problem_mark
        return f"{path}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {cause.problem}"
    return str(exc)


def main(argv: Sequence[str] | None = None, session: Any = None) -> int:
    """Entry point of the ``ecspilot`` command. ``session``: the boto3 session to use instead of
    one made from ``--profile``/``--region`` (tests record its calls)."""
    args = build_parser().parse_args(argv)
    args.session = session
    logging.getLogger().setLevel(logging.WARNING)
    from ecspilot.obs import logger  # noqa: PLC0415

    level = logger.log_level
    if level < logging.CRITICAL:  # the CLI prints results and one error line, not JSON logs
        logger.setLevel("CRITICAL")
    try:
        return COMMANDS[args.command](args)
    except BAD_INPUT as exc:
        error(f"{error_line(exc, args)}")
        return EXIT_BAD_INPUT
    except NoRegionError:
        error(f"{NO_REGION}")
        return EXIT_BAD_INPUT
    except (ProfileNotFound, NoCredentialsError) as exc:
        error(f"{exc}")
        return EXIT_BAD_INPUT
    except EcspilotError as exc:
        error(f"{exc}")
        return EXIT_FAILED
    except (ClientError, BotoCoreError) as exc:  # an AWS call outside a flow's typed errors
        error(f"{exc}")
        return EXIT_FAILED
    finally:
        logger.setLevel(level)  # main() called in a process that goes on (tests, the demo)


if __name__ == "__main__":
    sys.exit(main())
