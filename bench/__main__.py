"""``make bench``: run every benchmark and print its tables.

Each benchmark is a module of this package with a ``main()`` that prints its
table(s); list new ones in ``BENCHMARKS``;
``python -m bench NAME ...`` runs only the named ones.
"""

import importlib
import os
import sys
import time

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

# Order matters a little: cold start first, while the machine is quiet.
BENCHMARKS = [
    "coldstart",  # handler import time vs import boto3 + clients (issue 7, part 2)
    "fanout",  # one push -> 1/10/50 services, ecspilot vs `ecs deploy` (issue 7, part 1)
    "queue_throughput",  # 100 batches of 10 through run_queued_jobs: messages/s, calls/message (7.3)
    "faults_queue",  # 50 messages, 30% of RunTask and DynamoDB calls failing: ran once/twice, lost, DLQ (issue 6-9)
    "reconcile",  # 50 clusters x 3 daemons, and catch-up of 50 services: first and in-sync run (7.4, 8)
    "faults_push",  # one push to 50 services with 30% of ECS calls failing, and Lambda's retries (11)
    "fault_windows",  # the last fault windows, forced on real threads: trials and broken count per case (23)
    "paced",  # one push to 100/500 shared and 60/500 distinct services behind ECS token buckets; continuation (18)
    "promotion",  # reconcile with 50 promoted services in sync, targets in another account: calls by account (13)
    "insights",  # the four DORA keys over 90 days of 50 services: figures vs the rates put in, requests, seconds
]


def main(argv: list[str]) -> None:
    names = argv or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; known: {BENCHMARKS}")
    started = time.perf_counter()
    for name in names:
        importlib.import_module(f"bench.{name}").main()
    print(f"(all benchmarks: {time.perf_counter() - started:.0f} s, {os.cpu_count()} cores)")


main(sys.argv[1:])
