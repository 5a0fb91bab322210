"""``ecspilot run JOB`` and ``ecspilot placement check JOB``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ecspilot.interfaces.exits import EXIT_FAILED, EXIT_OK


def run(args: argparse.Namespace, rt: Any) -> int:
    """``ecspilot run JOB [--dry-run]``: the run_job core path, trigger ``manual``."""
    from ecspilot.errors import JobError  # noqa: PLC0415
    from ecspilot.interfaces.present import as_json, say, table  # noqa: PLC0415
    from ecspilot.jobs.handler import find_job, run_job  # noqa: PLC0415

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


def placement(args: argparse.Namespace, rt: Any) -> int:
    """``ecspilot placement check JOB``: which container instances satisfy the job's constraints."""
    from ecspilot.interfaces.present import as_json, say, table  # noqa: PLC0415
    from ecspilot.jobs.handler import find_job  # noqa: PLC0415
    from ecspilot.jobs.placement_check import check_job_placement  # noqa: PLC0415

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
        return _placed(report, sum(1 for c in report.checks if c.matched))
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
    if report.checks:
        say(f"{matched} of {len(report.checks)} container instance(s) satisfy the constraints")
    else:
        say(f"cluster {report.cluster} has no container instances: none can place the job")
    return _placed(report, matched)


def _placed(report: Any, matched: int) -> int:
    """0 when an instance qualifies; else one error line and 1 (README: "exits 1 when no instance
    qualifies"), a cluster without container instances too."""
    if matched:
        return EXIT_OK
    from ecspilot.interfaces.present import say  # noqa: PLC0415

    say(f"error: no container instance of {report.cluster} can place job {report.job}", out=sys.stderr)
    return EXIT_FAILED
