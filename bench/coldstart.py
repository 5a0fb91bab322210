"""Cold start: what each handler costs a fresh interpreter, against the floor of any boto3 Lambda.

For every ``functions/*/app.py`` (discovered, so handlers added later are
covered), the median over fresh processes of:

- importing the handler module (as Lambda does: the file, with the layer importable);
- creating the AWS clients it needs through ``ecspilot.aws.Clients`` (first invocation);
- loading and validating the shipped ``config/ecspilot.yaml`` (first invocation): shown
  apart and summed into "ready", so that moving an import from module level into
  the config loader cannot make the cold start look better than it is;

against the floor: ``import boto3`` plus ``boto3.client(...)`` for the same services.
The ratio is (handler import + clients) / floor; the target is 1.5x.
Interpreter start-up is the same for both and is not counted.
"""

from __future__ import annotations

import collections
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ecspilot.local import FUNCTIONS, LOCAL_AWS_ENV, REPO_ROOT

RUNS = 10
TARGET = 1.5
CONFIG = REPO_ROOT / "config" / "ecspilot.yaml"
# The clients each handler creates on its first invocation (template.yaml grants the same).
CLIENTS: dict[str, tuple[str, ...]] = {
    "deploy_on_push": ("ecs", "ecr", "dynamodb"),
    "run_job": ("ecs", "dynamodb"),
    "run_queued_jobs": ("ecs", "dynamodb", "sqs"),
    "reconcile": ("ecs", "dynamodb", "scheduler"),
    "track_deployments": ("ecs", "dynamodb"),
}
DEFAULT_CLIENTS = ("ecs", "dynamodb")

HANDLER_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t1 = time.perf_counter()
from ecspilot.aws import Clients
clients = Clients()
for name in sys.argv[3].split(","):
    clients.get(name)
t2 = time.perf_counter()
from ecspilot.config import load_config
load_config(sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "clients": t2 - t1, "config": t3 - t2}))
"""

FLOOR_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import boto3
t1 = time.perf_counter()
for name in sys.argv[1].split(","):
    boto3.client(name)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "clients": t2 - t1}))
"""


@dataclass(frozen=True)
class Row:
    handler: str
    clients: tuple[str, ...]
    handler_import: float
    handler_clients: float
    config: float
    floor_import: float
    floor_clients: float
    heaviest: str

    @property
    def handler_total(self) -> float:
        return self.handler_import + self.handler_clients

    @property
    def floor_total(self) -> float:
        return self.floor_import + self.floor_clients


def handlers() -> list[Path]:
    return sorted(FUNCTIONS.glob("*/app.py"))


def _env() -> dict[str, str]:
    import os  # noqa: PLC0415

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECSPILOT_"))}
    env.update(LOCAL_AWS_ENV)
    env.update(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="WARNING")
    return env


def _run(args: list[str], env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=True, cwd=REPO_ROOT
    )
    return {key: value * 1000 for key, value in json.loads(proc.stdout.splitlines()[-1]).items()}


def _probe_pair(first: list[str], second: list[str], runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Medians (ms) of each figure over ``runs`` fresh interpreters of each probe.

    The two probes alternate, so both see the same machine load (other work on a
    shared machine moves both, not one); one unmeasured run of each writes .pyc files.
    """
    env = _env()
    samples: tuple[dict[str, list[float]], dict[str, list[float]]] = (
        collections.defaultdict(list),
        collections.defaultdict(list),
    )
    for i in range(runs + 1):
        for args, into in ((first, samples[0]), (second, samples[1])):
            got = _run(args, env)
            if i:
                for key, value in got.items():
                    into[key].append(value)
    a, b = ({key: statistics.median(values) for key, values in s.items()} for s in samples)
    return a, b


def heaviest_packages(app: Path, top: int = 4) -> str:
    """Self import time by top-level package (one ``python -X importtime`` run), heaviest first."""
    script = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('app', sys.argv[1])\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", script, str(app)],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
        cwd=REPO_ROOT,
    )
    by_package: collections.Counter[str] = collections.Counter()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line[len("import time:") :].split("|")
        root = name.strip().split(".")[0]
        if root in ("botocore", "s3transfer", "urllib3", "jmespath", "dateutil"):
            root = "boto3"  # boto3 and what it cannot import without
        elif root in {"pydantic_core", "annotated_types", "typing_inspection"}:
            root = "pydantic"
        by_package[root] += int(self_us)
    return ", ".join(f"{pkg} {us / 1000:.0f}" for pkg, us in by_package.most_common(top))


def measure(app: Path) -> Row:
    name = app.parent.name
    clients = CLIENTS.get(name, DEFAULT_CLIENTS)
    handler, floor = _probe_pair(
        ["-c", HANDLER_PROBE, str(app), str(CONFIG), ",".join(clients)],
        ["-c", FLOOR_PROBE, ",".join(clients)],
        RUNS,
    )
    return Row(
        handler=name,
        clients=clients,
        handler_import=handler["import"],
        handler_clients=handler["clients"],
        config=handler["config"],
        floor_import=floor["import"],
        floor_clients=floor["clients"],
        heaviest=heaviest_packages(app),
    )


def main() -> list[Row]:
    rows = [measure(app) for app in handlers()]
    print("## Cold start: handler import + its clients vs `import boto3` + the same clients")
    print(
        f"median of {RUNS} fresh interpreters each (ms; .pyc present, interpreter start-up excluded); "
        f"target: within {TARGET}x of the floor\n"
    )
    print(
        "| handler | clients | handler import | + clients | = total | floor: import boto3 | + clients "
        "| = floor | total/floor | + config load | = ready | ready/floor | self import time by package (ms, one run) |"
    )
    print("| " + " | ".join(["---"] * 13) + " |")
    for r in rows:
        ratio = r.handler_total / r.floor_total
        flag = "" if ratio <= TARGET else " (over target)"
        print(
            f"| {r.handler} | {', '.join(r.clients)} | {r.handler_import:.0f} | {r.handler_clients:.0f} "
            f"| {r.handler_total:.0f} | {r.floor_import:.0f} | {r.floor_clients:.0f} | {r.floor_total:.0f} "
            f"| {ratio:.2f}x{flag} | {r.config:.0f} | {r.handler_total + r.config:.0f} "
            f"| {(r.handler_total + r.config) / r.floor_total:.2f}x | {r.heaviest} |"
        )
    print()
    return rows


if __name__ == "__main__":
    main()
