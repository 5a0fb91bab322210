"""The ``ecspilot`` command line: validate, plan, and the verbs later flows add.

Region and profile come from the usual AWS places (``AWS_REGION``,
``AWS_PROFILE``, ``--region``, ``--profile``). Exit codes: 0 ok, 1 the action
failed, 2 bad input (config, event, arguments).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ecspilot.errors import ConfigError, EcspilotError, EventError, InvalidMessageError, SettingsError
from ecspilot.interfaces.cli_parser import build_parser

Command = Callable[[argparse.Namespace], int]


def _runtime(args: argparse.Namespace, origin: bool = False) -> Any:
    """The CLI's runtime. ``origin``: also know the caller's account and region, which events
    must come from (a workstation may ask STS; the functions take them from their environment)."""
    import dataclasses  # noqa: PLC0415

    import boto3  # noqa: PLC0415 - the CLI's AWS session is made only for verbs that need it

    from ecspilot.aws.clients import Clients  # noqa: PLC0415
    from ecspilot.interfaces.runtime import Runtime  # noqa: PLC0415
    from ecspilot.interfaces.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env()
    if args.config:
        settings = Settings.from_env(config_path=args.config)
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    if origin:
        account = settings.account_id or session.client("sts").get_caller_identity()["Account"]
        settings = dataclasses.replace(settings, account_id=account, region=session.region_name)
    clients = Clients(session=session, max_workers=settings.max_workers)
    return Runtime.build(settings=settings, clients=clients)


def cmd_validate(args: argparse.Namespace) -> int:
    from ecspilot.domain.config import load_config  # noqa: PLC0415
    from ecspilot.interfaces.present import say  # noqa: PLC0415
    from ecspilot.interfaces.settings import Settings  # noqa: PLC0415

    path = args.config or Settings.from_env().config_path
    config = load_config(path)
    say(
        f"{path}: valid ({len(config.services)} service(s), {len(config.jobs)} job(s), "
        f"{len(config.daemons)} daemon(s))"
    )
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from ecspilot.deploy.handler import handle_push_event  # noqa: PLC0415
    from ecspilot.interfaces.present import as_json, say, table  # noqa: PLC0415

    if not args.event:
        return _reconcile(args, dry_run=True)
    try:
        event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EventError(f"cannot read event {args.event}: {exc}") from exc
    result = handle_push_event(event, _runtime(args, origin=True), dry_run=True)
    if args.output == "json":
        as_json(result)
        return 0
    if "ignored" in result:
        say(f"event ignored: {result['ignored']}")
        return 0
    say(f"dry run: push {result['repository']}:{result['tag']} ({result['digest'][:19]})")
    rows = [
        {**s, "from": s["from_task_definition"].rsplit("/", 1)[-1], "containers": ",".join(s["containers"])}
        for s in result["services"]
    ]
    table(rows, ["name", "cluster", "service", "containers", "outcome", "from", "reason"])
    return 0


def _reconcile(args: argparse.Namespace, dry_run: bool) -> int:
    from ecspilot.interfaces.present import as_json, say, table  # noqa: PLC0415
    from ecspilot.reconcile.runbook import reconcile  # noqa: PLC0415

    result = reconcile(_runtime(args), dry_run=dry_run)
    if args.output == "json":
        as_json(result.as_dict())
    else:
        say("dry run: what reconcile would change" if dry_run else "reconcile applied")
        table([a.__dict__ for a in result.actions], ["kind", "target", "change", "detail"])
        say(", ".join(f"{n} {change}" for change, n in sorted(result.summary().items())) or "nothing to do")
    return 1 if result.by_change("error") else 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    return _reconcile(args, dry_run=False)


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


def print_history(rt: Any, name: str, limit: int = 20, output: str = "table") -> int:
    """``ecspilot history NAME``: the newest deployments of a service, or runs of a job."""
    from ecspilot.interfaces.present import as_json, say, table  # noqa: PLC0415
    from ecspilot.interfaces.status import history_rows, resolve  # noqa: PLC0415

    kind, rows = history_rows(rt.config, rt.history, name, limit)
    if output == "json":
        as_json([r["record"] for r in rows])
        return 0
    _, cluster, target = resolve(rt.config, name)
    if kind == "job":
        say(f"job {target} (cluster {cluster}): last {len(rows)} run(s), newest first")
        table(rows, ["started", "status", "trigger", "task", "exit", "duration", "reason"])
    else:
        say(f"service {cluster}/{target}: last {len(rows)} deployment(s), newest first")
        table(rows, ["started", "status", "trigger", "tag", "digest", "to", "duration", "reason"])
    return 0


def print_status(rt: Any, output: str = "table") -> int:
    """``ecspilot status``: what each configured service runs and how its last deployment went,
    and each job's last run."""
    from ecspilot.domain.images import short_digest  # noqa: PLC0415
    from ecspilot.interfaces.present import as_json, say, table  # noqa: PLC0415
    from ecspilot.interfaces.status import job_status, service_status  # noqa: PLC0415

    services, jobs = service_status(rt.config, rt.clients.ecs, rt.history), job_status(rt.config, rt.history)
    if output == "json":
        as_json({"services": [s.as_dict() for s in services], "jobs": [j.as_dict() for j in jobs]})
        return 0
    say("services")
    table(
        [
            {
                "service": f"{s.cluster}/{s.service}",
                "task def": s.task_definition or "-",
                "image": ", ".join(f"{c}={t}" for c, t in s.images.items()) or "-",
                "digest": ", ".join(short_digest(d) for d in s.digests.values()) or "-",
                "last deployment": s.last_deployment
                + (f" ({s.last_deployment_tag})" if s.last_deployment_tag else ""),
                "at": s.last_deployment_at,
                "note": s.problem or (s.last_deployment_reason if s.last_deployment != "COMPLETED" else ""),
            }
            for s in services
        ],
        ["service", "task def", "image", "digest", "last deployment", "at", "note"],
    )
    say("jobs")
    table(
        [
            {
                "job": j.name,
                "last run": j.last_run,
                "at": j.last_run_at,
                "trigger": j.trigger,
                "exit": ",".join(f"{k}={v}" for k, v in j.exit_codes.items()),
                "note": j.reason if j.last_run not in ("SUCCEEDED", "-") else "",
            }
            for j in jobs
        ],
        ["job", "last run", "at", "trigger", "exit", "note"],
    )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    return print_history(_runtime(args), args.name, limit=args.limit, output=args.output)


def cmd_status(args: argparse.Namespace) -> int:
    return print_status(_runtime(args), output=args.output)


COMMANDS.update({"history": cmd_history, "status": cmd_status})


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
    queue_url = args.queue_url or settings.require("jobs_queue_url")
    sqs = _runtime(args).clients.sqs
    message_id = sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
    if args.output == "json":
        as_json({"message_id": message_id, "body": json.loads(body)})
    else:
        say(f"enqueued {args.job} as message {message_id}: {body}")
    return 0


COMMANDS["enqueue"] = cmd_enqueue


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ecspilot`` command."""
    args = build_parser().parse_args(argv)
    logging.getLogger().setLevel(logging.WARNING)
    from ecspilot.obs import logger  # noqa: PLC0415

    if logger.log_level < logging.WARNING:  # the CLI prints results; logs only for problems
        logger.setLevel("WARNING")
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, EventError, InvalidMessageError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EcspilotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
