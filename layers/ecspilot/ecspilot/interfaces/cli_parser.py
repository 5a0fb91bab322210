"""The ``ecspilot`` command line's arguments: global options, one subcommand per verb.

Only argparse here (no AWS, no config): the verbs live in :mod:`ecspilot.interfaces.cli`.
The global options (``--output``, ``--region``, ``--profile``, ``--config``) are accepted before
or after the subcommand, as the AWS CLI accepts them; every subcommand's ``--help`` has a
one-line description and an example.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ecspilot import __version__
from ecspilot.insights.keys import parse_since
from ecspilot.interfaces.exits import EXIT_BAD_INPUT, EXIT_CHANGES, EXIT_CODES, EXIT_FAILED, EXIT_OK

#: exit codes, the same for every verb: the table is :mod:`ecspilot.interfaces.exits`
__all__ = ["EXIT_BAD_INPUT", "EXIT_CHANGES", "EXIT_FAILED", "EXIT_OK", "build_parser"]

GLOBALS: dict[str, tuple[str, dict[str, Any]]] = {
    "--config": ("config file (default: $ECSPILOT_CONFIG or ./ecspilot.yaml)", {}),
    "--region": ("AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)", {}),
    "--profile": ("AWS profile (default: AWS_PROFILE)", {}),
    "--output": ("table (default) or json", {"choices": ["table", "json"]}),
}
DEFAULTS = {"config": None, "region": None, "profile": None, "output": "table"}


def _global_options(defaults: bool, without: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """The global options; after a subcommand they are SUPPRESSed unless given, so a value given
    before the subcommand is kept. ``without``: flags a verb gives its own meaning."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options (before or after the subcommand)")
    for flag, (text, extra) in GLOBALS.items():
        if flag in without:
            continue
        default = DEFAULTS[flag[2:]] if defaults else argparse.SUPPRESS
        group.add_argument(flag, help=text, default=default, **extra)
    return parent


def _verb(sub: Any, name: str, summary: str, example: str, common: argparse.ArgumentParser) -> Any:
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="example:\n  " + example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )


def build_parser() -> argparse.ArgumentParser:
    common = _global_options(defaults=False)
    parser = argparse.ArgumentParser(
        prog="ecspilot",
        description="Run Amazon ECS workloads hands-off.",
        epilog="exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"ecspilot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _verb(sub, "validate", "validate the config file", "ecspilot validate --config ecspilot.yaml", common)
    plan = _verb(
        sub,
        "plan",
        "dry run: what reconcile would change, or what a function would do with an event",
        "ecspilot plan --event events/ecr_push.json --output json",
        common,
    )
    plan.add_argument(
        "--event",
        help="an event file: ECR push, ECS deployment or task state change, Scheduler payload, "
        "SQS batch, CloudTrail or other reconcile trigger",
    )
    plan.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 3 when the plan has changes (0: in sync)"
    )
    _verb(
        sub,
        "reconcile",
        "apply the reconcile plan (daemons, schedules, catch-up) from a workstation",
        "ecspilot reconcile --region eu-west-1",
        common,
    )
    run = _verb(
        sub,
        "run",
        "run a job now (trigger manual), through run_job's core path",
        "ecspilot run nightly-report --dry-run",
        common,
    )
    run.add_argument("job", help="the job's name in the config")
    run.add_argument("--dry-run", action="store_true", help="show what would run, change nothing")
    placement = _verb(sub, "placement", "placement tools", "ecspilot placement check nightly-report", common)
    placement_sub = placement.add_subparsers(dest="placement_command", required=True, metavar="COMMAND")
    check = _verb(
        placement_sub,
        "check",
        "which container instances of the job's cluster satisfy its constraints, and why not",
        "ecspilot placement check nightly-report --output json",
        common,
    )
    check.add_argument("job", help="the job's name in the config")
    demo = _verb(
        sub,
        "demo",
        "run ecspilot's flows against a local AWS (moto) with its own config, narrated "
        "(--output, --region, --profile and --config are refused: it uses none)",
        "ecspilot demo --verbose",
        common,
    )
    demo.add_argument("--verbose", action="store_true", help="show the handlers' structured logs too")
    add_tracking_parsers(sub, common)
    add_rollback_parser(sub, common)
    add_promotion_parsers(sub, common)
    add_adoption_parsers(sub, common)
    add_hook_parsers(sub, common)
    add_insights_parser(sub, common)
    add_freeze_parsers(sub, common)
    enqueue = _verb(
        sub,
        "enqueue",
        "send a job request to the jobs queue, validated locally first",
        "ecspilot enqueue render --set command='render --fast' --queue-url https://sqs.../ecspilot-jobs",
        common,
    )
    enqueue.add_argument("job", help="the job's name in the config (it needs a queue section)")
    enqueue.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="an override: command='render --fast', environment.NAME=value, cpu=256, memory=512, container=app",
    )
    enqueue.add_argument("--count", type=int, default=1, help="tasks to start (default 1)")
    enqueue.add_argument("--idempotency-key", help="deduplicate on this key instead of the message id")
    enqueue.add_argument("--queue-url", help="the jobs queue (default: $ECSPILOT_JOBS_QUEUE_URL)")
    return parser


def add_tracking_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """``history`` and ``status``."""
    history = _verb(
        sub,
        "history",
        "latest deployments of a service, or runs of a job",
        "ecspilot history web --limit 5",
        common,
    )
    history.add_argument("name", help="a configured service or job, or CLUSTER/SERVICE")
    history.add_argument("--limit", type=int, default=20, help="how many, newest first (1-1000, default 20)")
    status = _verb(
        sub,
        "status",
        "what each service runs, how it went and its health; each job's last run",
        "ecspilot status web   (or: ecspilot status --html status.html)",
        common,
    )
    status.add_argument(
        "--html", metavar="FILE", help="also write a self-contained HTML page with a timeline"
    )
    status.add_argument(
        "service",
        nargs="?",
        help="one service in detail: tasks, target health, health check, replaced tasks "
        "(a configured service, or CLUSTER/SERVICE of the config)",
    )


def add_rollback_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``rollback``."""
    rollback = _verb(
        sub,
        "rollback",
        "roll a service back: stop its running ECS deployment with ROLLBACK, or redeploy the "
        "previous COMPLETED revision; the digest rolled away from is held",
        "ecspilot rollback web --reason 'p99 latency' --dry-run",
        common,
    )
    rollback.add_argument("service", help="a configured service (name, ECS name or CLUSTER/SERVICE)")
    rollback.add_argument("--dry-run", action="store_true", help="say what it would do, change nothing")
    rollback.add_argument("--reason", help="why, kept on the deployment record")


def add_promotion_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """``promote`` (issue 13)."""
    promote = _verb(
        sub,
        "promote",
        "promote a digest its source COMPLETED to a promoted service, through its gates (or --force)",
        "ecspilot promote web-prod --digest sha256:0123...cdef --dry-run",
        common,
    )
    promote.add_argument("target", help="a promoted service (one with promote: in the config)")
    promote.add_argument("--digest", required=True, help="the image digest, sha256:<64 hex>")
    promote.add_argument(
        "--force",
        action="store_true",
        help="skip the gates (bake, source runs it, alarms, approval); not a hold",
    )
    promote.add_argument("--dry-run", action="store_true", help="show the gates' verdict, change nothing")
    # `approve SERVICE` (add_hook_parsers) also approves the release a promoted service waits for


def _write_options(verb: Any) -> None:
    verb.add_argument(
        "--file", "-f", dest="output_file", metavar="FILE", help="write the config to FILE (default: stdout)"
    )
    verb.add_argument("--force", action="store_true", help="overwrite FILE when it exists")


def add_adoption_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """``init`` and ``import copilot``: the config goes to ``--file FILE`` (stdout by default), as
    YAML with comments, or as JSON with ``--output json``."""
    init = _verb(
        sub,
        "init",
        "write a config from what runs: services, daemons, and ECS targets of schedules",
        "ecspilot init --cluster prod --cluster batch --file ecspilot.yaml",
        common,
    )
    init.add_argument(
        "--cluster",
        action="append",
        metavar="C",
        help="read this cluster (repeatable; default: every cluster)",
    )
    _write_options(init)
    imports = _verb(
        sub, "import", "write a config from another tool's files", "ecspilot import copilot .", common
    )
    imports_sub = imports.add_subparsers(dest="import_command", required=True, metavar="COMMAND")
    copilot = _verb(
        imports_sub,
        "copilot",
        "write a config from an AWS Copilot workspace (copilot/*/manifest.yml); unsupported fields on stderr",
        "ecspilot import copilot ~/src/shop --file ecspilot.yaml",
        common,
    )
    copilot.add_argument("dir", help="the workspace: the directory that holds copilot/")
    copilot.add_argument(
        "--env", dest="environment", help="the environment whose overrides apply (default: the first, sorted)"
    )
    copilot.add_argument("--cluster", dest="copilot_cluster", help="the ECS cluster (default: <app>-<env>)")
    _write_options(copilot)


def add_freeze_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """``freeze``, ``unfreeze`` and ``freezes`` (issue 25): stop the robot."""
    freeze = _verb(
        sub,
        "freeze",
        "stop automated changes (pushes, catch-up, promotions, daemon updates) to services, or to "
        "everything with --all (the kill switch); rollbacks and job runs still work",
        "ecspilot freeze web api --reason 'bad release, investigating' --for 2h",
        common,
    )
    freeze.add_argument(
        "services", nargs="*", metavar="SERVICE", help="config names or globs of services and daemons"
    )
    freeze.add_argument("--all", action="store_true", help="every service and daemon: the kill switch")
    freeze.add_argument("--reason", required=True, help="why (shown in every deferral and notification)")
    until = freeze.add_mutually_exclusive_group()
    until.add_argument(
        "--until",
        metavar="TIME",
        help="when it ends: ISO 8601, such as 2026-12-14T09:00:00+01:00 (UTC when no zone)",
    )
    until.add_argument("--for", dest="duration", metavar="DURATION", help="how long: 30m, 2h, 1d, 1h30m")
    unfreeze = _verb(
        sub,
        "unfreeze",
        "lift the CLI freezes of services (or every one with --all); what they deferred deploys at the next reconcile",
        "ecspilot unfreeze --all",
        common,
    )
    unfreeze.add_argument(
        "services", nargs="*", metavar="SERVICE", help="config names of services and daemons"
    )
    unfreeze.add_argument("--all", action="store_true", help="every CLI freeze")
    _verb(
        sub,
        "freezes",
        "the active and scheduled freezes (config, CLI, incident) with who, when and why, and closed windows",
        "ecspilot freezes --output json",
        common,
    )


def add_hook_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """``approve`` and ``reject``: answer a paused deployment (pause hooks, issue 14)."""
    approve = _verb(
        sub,
        "approve",
        "continue a deployment paused at a pause hook that waits for approval; else, for a "
        "promoted service, approve the release it waits for (promote.approval: true)",
        "ecspilot approve web  |  ecspilot approve web --digest sha256:...",
        common,
    )
    approve.add_argument("service", help="the service's name in the config")
    approve.add_argument(
        "--digest", help="deploy this version that awaits approval (release policies: allow, conflict)"
    )
    reject = _verb(
        sub,
        "reject",
        "roll back a deployment paused at a pause hook that waits for approval",
        "ecspilot reject web",
        common,
    )
    reject.add_argument("service", help="the service's name in the config")
    reject.add_argument("--digest", help="refuse this version that awaits approval (release policies)")


def _since(text: str) -> datetime:
    """``--since``: a duration before now (30d, 12w, 48h) or an ISO date; anything else exits 2."""
    try:
        return parse_since(text, datetime.now(UTC))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_insights_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``insights``: the four DORA keys from the state table."""
    insights = _verb(
        sub,
        "insights",
        "delivery insights: deployment frequency, lead time, change failure rate and time to "
        "restore per service and promotion chain, with their DORA performance bands",
        "ecspilot insights --since 12w --service web --html insights.html",
        common,
    )
    insights.add_argument(
        "--since", type=_since, default="30d", help="the period: 30d, 12w, 48h or an ISO date (default 30d)"
    )
    insights.add_argument(
        "--service",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="only these services and their chains (--service a b, or repeated)",
    )
    insights.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page with charts")
