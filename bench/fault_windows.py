"""The last fault windows (issue 23): each forced interleaving or fault, run for a few trials,
with the number of trials that broke a promise.

Each case is one of the scenarios of ``tests/functional/test_fault_windows_*.py`` (the same
function, run here outside pytest): real handlers on moto (``mock_aws``) with real boto3 clients,
faults from :mod:`tests.faults` (errors beyond retries, 500s, pauses that force an order on real
threads), botocore Stubbers where moto lacks the hook APIs. A trial is *broken* when the
scenario's end state breaks its promise (an assertion fails): the rolled-back digest running
again, a service off its newest claim with every invocation ok, a second revision, a started
run dead-lettered or unrecorded, invalid Unicode run, a hook answered twice or left RETRY.

``python -m bench fault_windows`` runs every case ``TRIALS`` times; the push cases use 10
services (the tests use 4).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

TRIALS = int(os.environ.get("ECSPILOT_BENCH_TRIALS", "5"))


@dataclass
class World:
    """What a scenario gets: the conftest fixtures, built by hand."""

    clients: Any
    faults: Any
    recorder: Any
    sandbox: Any
    session: Any

    def make_runtime(self, config: Any, table: bool = True, **settings: Any) -> Any:
        from ecspilot.domain.config import EcspilotConfig, parse_config  # noqa: PLC0415
        from ecspilot.interfaces import runtime  # noqa: PLC0415
        from ecspilot.interfaces.runtime import Runtime  # noqa: PLC0415
        from ecspilot.interfaces.settings import Settings  # noqa: PLC0415
        from ecspilot_dev.sandbox import ACCOUNT, REGION, create_state_table  # noqa: PLC0415
        from tests.conftest import TABLE  # noqa: PLC0415

        if table:
            create_state_table(self.clients, TABLE)
        parsed = config if isinstance(config, EcspilotConfig) else parse_config(config)
        rt = Runtime.build(
            settings=Settings(
                **{
                    "table_name": TABLE if table else None,
                    "region": REGION,
                    "account_id": ACCOUNT,
                    **settings,
                }
            ),
            config=parsed,
            clients=self.clients,
        )
        runtime.reset(rt)
        self.recorder.reset()
        return rt


@contextlib.contextmanager
def aws(frozen: bool = False) -> Iterator[World]:
    """moto, ECS's deployment ids, atomic DynamoDB writes, and a session with faults (conftest)."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from ecspilot.aws.clients import Clients  # noqa: PLC0415
    from ecspilot.interfaces import runtime  # noqa: PLC0415
    from ecspilot.queue import redrive  # noqa: PLC0415
    from ecspilot_dev.local import CallRecorder  # noqa: PLC0415
    from ecspilot_dev.sandbox import REGION, Sandbox  # noqa: PLC0415
    from tests.faults import Faults  # noqa: PLC0415
    from tests.moto_state import atomic_dynamodb_writes, new_deployment_per_update  # noqa: PLC0415

    runtime.reset()
    redrive._redrive_cache.clear()
    with mock_aws(), new_deployment_per_update(), atomic_dynamodb_writes():
        from moto.moto_api import state_manager  # noqa: PLC0415

        if frozen:
            state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
        session = boto3.Session(region_name=REGION)
        faults, recorder = Faults().attach(session), CallRecorder().attach(session)
        clients = Clients(session=session, region=REGION)
        try:
            yield World(clients, faults, recorder, Sandbox(clients), session)
        finally:
            if frozen:
                state_manager.unset_transition("ecs::task")
            runtime.reset()


def _deploy(name: str, **kwargs: Any) -> Callable[[], None]:
    def run() -> None:
        from tests.functional import test_fault_windows_deploy as t  # noqa: PLC0415

        t.SERVICES = [f"web-{i}" for i in range(10)]
        with aws() as w:
            getattr(t, name)(t.build_world(w.sandbox), w.make_runtime, w.faults, **kwargs)

    return run


def _deploy_seeded(name: str) -> Callable[[], None]:
    """A randomized case: each trial draws its faults from the next seed."""
    seeds = iter(range(1, 10**6))

    def run() -> None:
        from tests.functional import test_fault_windows_deploy as t  # noqa: PLC0415

        t.SERVICES = [f"web-{i}" for i in range(10)]
        with aws() as w:
            getattr(t, name)(t.build_world(w.sandbox), w.make_runtime, w.faults, seed=next(seeds))

    return run


def _queue(name: str, *args: Any) -> Callable[[], None]:
    def run() -> None:
        from tests.functional import test_fault_windows_queue as t  # noqa: PLC0415
        from tests.functional.test_run_queued_jobs import CLUSTER, Queue, render_job  # noqa: PLC0415

        with aws(frozen=True) as w:
            w.sandbox.cluster(CLUSTER, instances_per_zone=2)
            w.sandbox.task_definition("render", {"app": w.sandbox.image("render", "v1")})
            q = Queue(w.clients)
            w.make_runtime({"version": 1, "jobs": [render_job(max_running=3)]}, jobs_dlq_url=q.dlq_url)
            fn = getattr(t, name)
            params = fn.__code__.co_varnames[: fn.__code__.co_argcount]
            given = {"queue": q, "clients": w.clients, "faults": w.faults, "recorder": w.recorder}
            fn(*[given[p] for p in params if p in given], *args)

    return run


def _hooks(name: str, *args: Any) -> Callable[[], None]:
    def run() -> None:
        from tests.functional import test_fault_windows_hooks as t  # noqa: PLC0415

        with aws() as w:
            world = t.World(w.session)
            with world.reads:
                try:
                    fn = getattr(t, name)
                    params = fn.__code__.co_varnames[: fn.__code__.co_argcount]
                    fn(world, *([w.faults] if "faults" in params else []), *args)
                    assert world.reads.pending == 0
                finally:
                    if world._answers is not None:
                        world._answers.deactivate()

    return run


CASES: list[tuple[str, Callable[[], None]]] = [
    (
        "1. tracker's hold lands after a redelivered push read holds, before its claim",
        _deploy(
            "test_the_trackers_hold_landing_inside_a_redelivered_push_never_puts_the_rolled_back_digest_back",
            hold_lands_before="TransactWriteItems",
        ),
    ),
    (
        "1. tracker's hold lands after the push's claim, before its UpdateService",
        _deploy(
            "test_the_trackers_hold_landing_inside_a_redelivered_push_never_puts_the_rolled_back_digest_back",
            hold_lands_before="UpdateService",
        ),
    ),
    (
        "1. same, and the push's verify read fails (its retry undoes)",
        _deploy("test_a_retry_after_a_failed_verify_read_undoes_a_held_digest_put_back"),
    ),
    (
        "2. racing pushes, 10 services: the older lands last, its verify read fails",
        _deploy("test_a_failed_verify_read_of_the_older_push_fails_it_and_its_retry_applies_the_newer_image"),
    ),
    (
        "2. racing pushes, 10 services: re-apply of the newer revision fails once",
        _deploy(
            "test_a_failed_reapply_fails_the_older_push_and_its_retry_checks_the_claims_not_the_running_digest"
        ),
    ),
    (
        "2. older push loses its claims to a newer image not applied yet",
        _deploy(
            "test_an_older_push_losing_its_claim_to_a_newer_image_not_applied_yet_never_ends_ok_before_it_is"
        ),
    ),
    (
        "2. racing pushes, 10 services, 15% of ECS and DynamoDB calls failing beyond retries, "
        "Lambda's retries (a seed per trial)",
        _deploy_seeded("test_racing_pushes_under_faults_beyond_retries_never_end_ok_off_the_newest_claim"),
    ),
    (
        "3. lost RegisterTaskDefinition reply, then a throttled look-up",
        _deploy("test_a_lost_register_reply_then_a_failed_lookup_registers_nothing_more", lookup="error"),
    ),
    (
        "3. lost RegisterTaskDefinition reply, then a network error on the look-up",
        _deploy("test_a_lost_register_reply_then_a_failed_lookup_registers_nothing_more", lookup="network"),
    ),
    (
        "4. queue: task look-up fails on a started run's last delivery",
        _queue("test_a_task_lookup_failing_on_the_last_delivery_requeues_the_message_never_dead_letters_it"),
    ),
    (
        "4. queue: a retry's task look-up fails (claim released, run recorded next)",
        _queue(
            "test_a_retry_whose_task_lookup_fails_releases_the_claim_and_the_next_delivery_records_the_run"
        ),
    ),
    (
        '4. queue: lone surrogate ("\\udc80") in a command override',
        _queue(
            "test_invalid_unicode_anywhere_in_a_body_is_dead_lettered_with_a_reason_and_never_run",
            '{"job": "render", "overrides": {"command": ["render", "\\udc80"]}}',
        ),
    ),
    (
        "4. queue: the claim gone, the redelivery's RunTask carries the same clientToken",
        _queue("test_no_double_run_rests_on_the_claim_and_on_one_client_token_per_request"),
    ),
    (
        "5. hook: ContinueServiceDeployment's reply lost (500) on every attempt",
        _hooks("test_a_continue_whose_reply_is_lost_is_sent_once_and_ends_the_hook_answered"),
    ),
    (
        "5. hook: the answer refused as already given",
        _hooks(
            "test_an_answer_refused_as_already_given_ends_the_hook_answered",
            "InvalidParameterException",
            "The hook has already been completed.",
        ),
    ),
    (
        "5. hook: the final write fails, the event comes again after the hold",
        _hooks("test_a_failed_final_write_never_lets_a_later_delivery_answer_again"),
    ),
]


def run_case(case: Callable[[], None], trials: int) -> tuple[int, float]:
    """Broken trials, and seconds per trial."""
    broken = 0
    started = time.perf_counter()
    for _ in range(trials):
        try:
            case()
        except Exception as exc:  # an assertion of the scenario, or anything it did not survive
            broken += 1
            print(f"    broken: {type(exc).__name__}: {str(exc)[:200]}")
    return broken, (time.perf_counter() - started) / max(trials, 1)


def main(only: str = "", trials: int = TRIALS) -> None:
    import logging  # noqa: PLC0415

    from bench.harness import check  # noqa: PLC0415
    from ecspilot.obs import logger, metrics  # noqa: PLC0415

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    logger.setLevel("CRITICAL")  # the scenarios inject faults on purpose: the table is the narration
    logging.getLogger("botocore").setLevel(logging.CRITICAL)
    print("\n## Faults, the last windows (issue 23): forced interleavings and faults beyond retries\n")
    print("| case | trials | broken | s/trial |")
    print("| --- | --- | --- | --- |")
    total = 0
    for name, case in CASES:
        if only and only not in name:
            continue
        broken, seconds = run_case(case, trials)
        metrics.clear_metrics()
        total += broken
        print(f"| {name} | {trials} | {broken} | {seconds:.1f} |")
    check(total == 0, f"{total} trial(s) broke a promise")


if __name__ == "__main__":
    main()
