"""``ecspilot approve SERVICE`` / ``ecspilot reject SERVICE``: answer a deployment paused at a
pause hook that waits for a person (``gates.approval``, or gates that could not decide).

approve -> ContinueServiceDeployment CONTINUE, reject -> ROLLBACK, on the service's newest
waiting hook (:func:`ecspilot.tracking.hooks.approve_paused`). Nothing waiting: one error line,
exit 1; a service the config does not name: exit 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ecspilot.aws.hooks import Answer
from ecspilot.interfaces.cli_parser import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from ecspilot.interfaces.present import as_json, say


def answer_command(args: argparse.Namespace, rt: Any) -> int:
    """Run ``approve`` or ``reject`` with the CLI's runtime ``rt``."""
    from ecspilot.tracking.hooks import approve_paused  # noqa: PLC0415

    action: Answer = "CONTINUE" if args.command == "approve" else "ROLLBACK"
    if not any(s.name == args.service for s in rt.config.services):
        say(f"error: no service named {args.service} in the config", out=sys.stderr)
        return EXIT_BAD_INPUT
    if not rt.history.enabled:
        say("error: no state table (ECSPILOT_TABLE): paused deployments are recorded there", out=sys.stderr)
        return EXIT_BAD_INPUT
    answered = approve_paused(rt.config, rt.clients, rt.history, args.service, action)
    if answered is None:
        say(f"error: no paused deployment of {args.service} awaits an answer", out=sys.stderr)
        return EXIT_FAILED
    if args.output == "json":
        as_json(answered)
    else:
        verb = "continued" if action == "CONTINUE" else "rolled back"
        stage = answered.get("lifecycle_stage") or "its pause hook"
        say(f"{verb} {args.service}: the deployment paused at {stage} ({answered['service_deployment_arn']})")
    return EXIT_OK
