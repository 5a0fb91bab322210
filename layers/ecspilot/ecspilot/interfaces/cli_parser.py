"""The ``ecspilot`` command line's arguments: global options, one subcommand per verb.

Only argparse here (no AWS, no config): the verbs live in :mod:`ecspilot.interfaces.cli`.
"""

from __future__ import annotations

import argparse
from typing import Any


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
    run = sub.add_parser("run", help="run a job now (trigger manual), through run_job's core path")
    run.add_argument("job", help="the job's name in the config")
    run.add_argument("--dry-run", action="store_true", help="show what would run, change nothing")
    placement = sub.add_parser("placement", help="placement tools")
    placement_sub = placement.add_subparsers(dest="placement_command", required=True)
    check = placement_sub.add_parser(
        "check", help="which container instances of the job's cluster satisfy its constraints, and why not"
    )
    check.add_argument("job", help="the job's name in the config")
    demo = sub.add_parser("demo", help="run ecspilot's flows against a local AWS (moto), narrated")
    demo.add_argument("--verbose", action="store_true", help="show the handlers' structured logs too")
    add_tracking_parsers(sub)
    enqueue = sub.add_parser("enqueue", help="send a job request to the jobs queue, validated locally first")
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


def add_tracking_parsers(sub: Any) -> None:
    """``history`` and ``status``; ``--output`` is also accepted after the verb."""
    history = sub.add_parser("history", help="latest deployments of a service, or runs of a job")
    history.add_argument("name", help="a configured service or job, or CLUSTER/SERVICE")
    history.add_argument("--limit", type=int, default=20, help="how many, newest first (default 20)")
    history.add_argument("--output", choices=["table", "json"], default=argparse.SUPPRESS)
    status = sub.add_parser("status", help="what each service runs and how it went; each job's last run")
    status.add_argument("--output", choices=["table", "json"], default=argparse.SUPPRESS)
