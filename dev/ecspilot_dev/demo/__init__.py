"""``ecspilot demo``: ecspilot's main flows against a local AWS (moto's server, in-process).

Each chapter builds what it needs through public AWS APIs, invokes the real
handlers with the events AWS would send, and narrates what happened. Nothing
here touches a real account: credentials are fake and every client points at
moto on loopback. One module per flow; :data:`CHAPTERS` is the running order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from ecspilot.errors import EcspilotError
from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say
from ecspilot_dev.demo.base import DEMO_CONFIG, TABLE, Demo
from ecspilot_dev.demo.daemons import chapter_daemons_everywhere
from ecspilot_dev.demo.hardening import chapter_hardening
from ecspilot_dev.demo.jobs import chapter_jobs, chapter_jobs_follow_pushes, chapter_placement_check
from ecspilot_dev.demo.push import chapter_catch_up, chapter_deploy_on_push
from ecspilot_dev.demo.queue import chapter_queue
from ecspilot_dev.demo.tracking import chapter_tracking
from ecspilot_dev.local import ecs_deployment_per_update, local_aws
from ecspilot_dev.sandbox import create_state_table

CHAPTERS: list[Callable[[Demo], None]] = [
    chapter_deploy_on_push,
    chapter_tracking,
    chapter_catch_up,
    chapter_jobs,
    chapter_jobs_follow_pushes,
    chapter_placement_check,
    chapter_queue,
    chapter_daemons_everywhere,
    chapter_hardening,
]


def run(verbose: bool = False) -> int:
    """Run every chapter against a fresh local AWS; return an exit code."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO" if verbose else "ERROR"
    from ecspilot.obs import logger  # noqa: PLC0415

    # the narration says what happened; --verbose adds the handlers' structured logs
    logger.setLevel("INFO" if verbose else "ERROR")
    # ecs_deployment_per_update: ECS gives every deployment its own id, moto keeps one per service
    with local_aws() as endpoint, tempfile.TemporaryDirectory() as tmp, ecs_deployment_per_update():
        say(f"local AWS: moto server at {endpoint} (fake credentials; nothing leaves this machine)")
        config_path = Path(tmp) / "ecspilot.yaml"
        config_path.write_text(yaml.safe_dump(DEMO_CONFIG, sort_keys=False), encoding="utf-8")
        os.environ["ECSPILOT_CONFIG"] = str(config_path)
        os.environ["ECSPILOT_TABLE"] = TABLE
        demo = Demo()
        create_state_table(demo.clients, TABLE)
        # the handlers build their runtime from the environment, as in Lambda; only the
        # clients are shared with the demo so that it can count the handlers' AWS calls
        runtime.reset(runtime.Runtime.build(clients=demo.clients))
        try:
            for chapter in CHAPTERS:
                chapter(demo)
        except EcspilotError as exc:
            say(f"\ndemo failed: {exc}")
            return 1
    say("\nDemo complete.")
    return 0
