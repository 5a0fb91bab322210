"""``ecspilot demo``: ecspilot's main flows against a local AWS (moto's server, in-process).

Each chapter builds what it needs through public AWS APIs, invokes the real
handlers with the events AWS would send, narrates what happened and checks it:
a step whose outcome differs from its narration fails the demo (exit 1).
Nothing here touches a real account: credentials are fake and every client
points at moto on loopback. One module per flow; :data:`CHAPTERS` is the
running order.

Chapters are independent worlds: each starts on an empty local AWS, a new state
table, the environment the demo started with and its own config. A chapter that
continues another's story (tracking closes the push chapter's deployments)
replays that chapter first, silently (its checks still hold), so no chapter
sees what an unrelated one left behind, and any chapter runs alone.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ecspilot.errors import EcspilotError
from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say
from ecspilot_dev.demo.base import DEMO_CONFIG, EMPTY_CONFIG, TABLE, Demo, DemoCheckError
from ecspilot_dev.demo.daemons import chapter_daemons_everywhere
from ecspilot_dev.demo.gates import GATES_CONFIG, chapter_gates
from ecspilot_dev.demo.hardening import chapter_hardening
from ecspilot_dev.demo.health import HEALTH_CONFIG, chapter_health
from ecspilot_dev.demo.insights import chapter_insights
from ecspilot_dev.demo.jobs import (
    JOBS_CONFIG,
    chapter_jobs,
    chapter_jobs_follow_pushes,
    chapter_placement_check,
)
from ecspilot_dev.demo.promotion import PROMOTION_CONFIG, chapter_promotion
from ecspilot_dev.demo.push import chapter_catch_up, chapter_deploy_on_push
from ecspilot_dev.demo.queue import chapter_queue
from ecspilot_dev.demo.rollback import ROLLBACK_CONFIG, chapter_rollback
from ecspilot_dev.demo.stops import STOPS_CONFIG, chapter_stops
from ecspilot_dev.demo.tracking import chapter_tracking
from ecspilot_dev.demo.versions import VERSIONS_CONFIG, chapter_versions
from ecspilot_dev.local import ecs_deployment_per_update, local_aws, moto_api
from ecspilot_dev.sandbox import create_state_table


@dataclass(frozen=True)
class Chapter:
    """A chapter: what it plays, the config its world starts with, the chapter it continues."""

    name: str
    play: Callable[[Demo], None]
    config: dict[str, Any] = field(default_factory=lambda: EMPTY_CONFIG)
    after: Chapter | None = None

    def lineage(self) -> list[Chapter]:
        """The chapters to play in a fresh world, oldest first, this one last."""
        return [*(self.after.lineage() if self.after else []), self]


PUSH = Chapter("push", chapter_deploy_on_push, DEMO_CONFIG)
TRACKING = Chapter("tracking", chapter_tracking, after=PUSH)
JOBS = Chapter("jobs", chapter_jobs, JOBS_CONFIG)
CHAPTERS: list[Chapter] = [
    PUSH,
    TRACKING,
    Chapter("catch-up", chapter_catch_up, after=TRACKING),
    JOBS,
    Chapter("jobs-follow-pushes", chapter_jobs_follow_pushes, after=JOBS),
    Chapter("placement", chapter_placement_check, after=JOBS),
    Chapter("queue", chapter_queue),
    Chapter("daemons", chapter_daemons_everywhere),
    Chapter("hardening", chapter_hardening),
    Chapter("promotion", chapter_promotion, PROMOTION_CONFIG),
    Chapter("gates", chapter_gates, GATES_CONFIG),
    Chapter("rollback", chapter_rollback, ROLLBACK_CONFIG),
    Chapter("health", chapter_health, HEALTH_CONFIG),
    Chapter("versions", chapter_versions, VERSIONS_CONFIG),  # issue 27
    Chapter("stops", chapter_stops, STOPS_CONFIG),
    Chapter("insights", chapter_insights, after=TRACKING),  # the last word: the story's four keys
]


def new_world(demo: Demo, config: dict[str, Any], environment: dict[str, str]) -> None:
    """An empty local AWS (moto reset), a new state table, ``environment`` back as it was, and
    ``config`` written where ``ECSPILOT_CONFIG`` points; the handlers' runtime rebuilt on it."""
    os.environ.clear()
    os.environ.update(environment)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    moto_api(endpoint, "reset", {})
    # moto moves a task towards STOPPED on every DescribeTasks; real tasks keep running
    moto_api(
        endpoint,
        "state-manager/set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
    )
    create_state_table(demo.clients, TABLE)
    Path(os.environ["ECSPILOT_CONFIG"]).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    # the handlers build their runtime from the environment, as in Lambda; only the
    # clients are shared with the demo so that it can count the handlers' AWS calls
    runtime.reset(runtime.Runtime.build(clients=demo.clients))


def play(demo: Demo, chapter: Chapter, environment: dict[str, str]) -> None:
    """Play ``chapter`` in a world of its own: the chapters it continues silently, then itself."""
    *before, _ = lineage = chapter.lineage()
    new_world(demo, lineage[0].config, environment)
    with demo.silenced():
        for earlier in before:
            earlier.play(demo)
            demo.end_chapter()
    chapter.play(demo)
    demo.end_chapter()


@contextlib.contextmanager
def local_demo(verbose: bool = False) -> Iterator[tuple[Demo, dict[str, str]]]:
    """A local AWS, a config file and a :class:`Demo` on them; yields the demo and the environment
    each world starts from. The process's environment and runtime are restored on exit."""
    saved = dict(os.environ)
    from ecspilot.obs import logger  # noqa: PLC0415

    level = logger.log_level
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO" if verbose else "ERROR"
    # the narration says what happened; --verbose adds the handlers' structured logs
    logger.setLevel("INFO" if verbose else "ERROR")
    try:
        # ecs_deployment_per_update: ECS gives every deployment its own id, moto keeps one per service
        with local_aws() as endpoint, tempfile.TemporaryDirectory() as tmp, ecs_deployment_per_update():
            say(f"local AWS: moto server at {endpoint} (fake credentials; nothing leaves this machine)")
            os.environ["ECSPILOT_CONFIG"] = str(Path(tmp) / "ecspilot.yaml")
            os.environ["ECSPILOT_TABLE"] = TABLE
            yield Demo(), dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        logger.setLevel(level)
        runtime.reset()


def run(verbose: bool = False, chapters: Sequence[Chapter] = CHAPTERS) -> int:
    """Run ``chapters`` (by default every one), each in a world of its own; return an exit code:
    0 when every narrated outcome happened, 1 at the first that did not."""
    with local_demo(verbose) as (demo, environment):
        try:
            for chapter in chapters:
                play(demo, chapter, environment)
        except EcspilotError as exc:
            say(f"\ndemo failed: {exc}")
            return 1
    say("\nDemo complete.")
    return 0


__all__ = [
    "CHAPTERS",
    "JOBS",
    "PUSH",
    "TRACKING",
    "Chapter",
    "Demo",
    "DemoCheckError",
    "local_demo",
    "new_world",
    "play",
    "run",
]
