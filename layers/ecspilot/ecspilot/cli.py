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

from ecspilot.errors import ConfigError, EcspilotError, EventError, SettingsError

Command = Callable[[argparse.Namespace], int]


def _runtime(args: argparse.Namespace) -> Any:
    import boto3  # noqa: PLC0415 - the CLI's AWS session is made only for verbs that need it

    from ecspilot.aws import Clients  # noqa: PLC0415
    from ecspilot.runtime import Runtime  # noqa: PLC0415
    from ecspilot.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env()
    if args.config:
        settings = Settings.from_env(config_path=args.config)
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    clients = Clients(session=session, max_workers=settings.max_workers)
    return Runtime.build(settings=settings, clients=clients)


def cmd_validate(args: argparse.Namespace) -> int:
    from ecspilot.config import load_config  # noqa: PLC0415
    from ecspilot.present import say  # noqa: PLC0415
    from ecspilot.settings import Settings  # noqa: PLC0415

    path = args.config or Settings.from_env().config_path
    config = load_config(path)
    say(
        f"{path}: valid ({len(config.services)} service(s), {len(config.jobs)} job(s), "
        f"{len(config.daemons)} daemon(s))"
    )
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from ecspilot.deploy import handle_push_event  # noqa: PLC0415
    from ecspilot.present import as_json, say, table  # noqa: PLC0415

    if not args.event:
        return _reconcile(args, dry_run=True)
    try:
        event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EventError(f"cannot read event {args.event}: {exc}") from exc
    result = handle_push_event(event, _runtime(args), dry_run=True)
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
    from ecspilot.present import as_json, say, table  # noqa: PLC0415
    from ecspilot.reconcile import reconcile  # noqa: PLC0415

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


def cmd_demo(args: argparse.Namespace) -> int:
    from ecspilot import demo  # noqa: PLC0415 - needs moto, a dev dependency

    return demo.run(verbose=args.verbose)


COMMANDS: dict[str, Command] = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "reconcile": cmd_reconcile,
    "demo": cmd_demo,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecspilot", description="Run Amazon ECS workloads hands-off.")
    parser.add_argument("--config", help="config file (default: $ECSPILOT_CONFIG or ./ecspilot.yaml)")
    parser.add_argument("--region", help="AWS region (default: the usual AWS places)")
    parser.add_argument("--profile", help="AWS profile")
    parser.add_argument("--output", choices=["table", "json"], default="table")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help="validate the config file")
    plan = sub.add_parser("plan", help="dry run: what an event (or a reconcile) would do")
    plan.add_argument("--event", help="an event JSON file, e.g. events/ecr_push.json")
    sub.add_parser("reconcile", help="apply the reconcile plan (daemons, schedules) from a workstation")
    demo = sub.add_parser("demo", help="run ecspilot's flows against a local AWS (moto), narrated")
    demo.add_argument("--verbose", action="store_true", help="show the handlers' structured logs too")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ecspilot`` command."""
    args = build_parser().parse_args(argv)
    logging.getLogger().setLevel(logging.WARNING)
    from ecspilot.obs import logger  # noqa: PLC0415

    logger.setLevel("WARNING")
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, EventError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EcspilotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
