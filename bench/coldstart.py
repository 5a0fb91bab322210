"""Cold start on what ships: each handler of ``sam build``'s output against the floor of any boto3 Lambda.

``sam build`` builds the template into a bench-only directory (``.aws-sam/bench``), with the
layer's dependencies as wheels for *this* machine's architecture (``LAYER_PLATFORM``, honoured by
``layers/ecspilot/Makefile``; the deployed layer is arm64). Then, for every function of the
template, fresh ``python3.12 -S -B`` interpreters with only the built function directory and the
layer's ``python/`` directory on ``sys.path`` (as Lambda's ``/var/task`` and ``/opt/python``;
``-S``: no site-packages of this machine, ``-B``: no .pyc written, as on Lambda's read-only
file systems, so the .pyc files the layer ships are the only ones there are) time:

- **import**: ``import app``, the handler module, as Lambda does;
- **config**: ``runtime.current()``, what the first invocation builds before any AWS call:
  settings, the config (``bench/coldstart.yaml``: services, jobs with a schedule, placement
  expressions and a queue, daemons) and the history. As ``make build`` ships it, the config comes
  with its compact form, validated at build time (``ecspilot.domain.config.compact``): here the
  built layer itself validates a copy of the config and writes it, before any probe; the benchmark
  fails if a probe read the YAML instead (PyYAML imported);
- **clients**: the AWS clients the function uses;

"ready" is their sum, against the **floor**: ``import boto3`` and ``boto3.client(...)`` for the same
services in the same kind of interpreter with the same layer. Interpreter start-up is the same for
both and is not counted. Then the probe invokes the handler once with its sample event against a
moto server (the outcome does not matter: nothing is built there) and counts the modules that
first invocation imports beyond "ready": lazy imports show there.

Without the SAM CLI (``make build`` installs it) or a python3.12 on PATH, the benchmark says so
and skips.
"""

from __future__ import annotations

import collections
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.server import moto_server
from ecspilot_dev.local import LOCAL_AWS_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNS = 10
TARGET = 1.25
CONFIG = Path(__file__).resolve().parent / "coldstart.yaml"
SAM = REPO_ROOT / ".venv-sam" / "bin" / "sam"
BUILD_DIR = REPO_ROOT / ".aws-sam" / "bench"
CACHE_DIR = REPO_ROOT / ".aws-sam" / "bench-cache"  # apart: the cache key ignores LAYER_PLATFORM
LAYER = "EcspilotLayer"
# The clients each function creates on its first invocation (template.yaml grants the same).
CLIENTS: dict[str, tuple[str, ...]] = {
    "chat_answer": ("ecs", "dynamodb"),
    "deploy_on_push": ("ecs", "ecr", "dynamodb"),
    "run_job": ("ecs", "dynamodb"),
    "run_queued_jobs": ("ecs", "dynamodb", "sqs"),
    "reconcile": ("ecs", "dynamodb", "scheduler"),
    "track_deployments": ("ecs", "dynamodb"),
}
DEFAULT_CLIENTS = ("ecs", "dynamodb")
# The sample event of each function's first invocation (events/NAME.json, or inline).
EVENTS: dict[str, str | dict[str, Any]] = {
    "deploy_on_push": "ecr_push",
    "run_job": "scheduler_run_job",
    "run_queued_jobs": "sqs_jobs_batch",
    "track_deployments": "ecs_deployment_completed",
    "reconcile": "eventbridge_scheduled_event",  # AWS's published Scheduled Event (events/README.md)
}
COMPACT_PROBE = """
import sys
sys.path[:0] = [sys.argv[1]]
from ecspilot.domain.config.compact import write_compact
write_compact(sys.argv[2])
print("{}")
"""
WHEEL_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}

HANDLER_PROBE = """
import json, sys, time
function_dir, layer_dir, event_json, client_names, invoke = sys.argv[1:6]
sys.path[:0] = [function_dir, layer_dir]
before = set(sys.modules)
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
from ecspilot.interfaces import runtime
rt = runtime.current()
t2 = time.perf_counter()
for name in client_names.split(","):
    rt.clients.get(name)
t3 = time.perf_counter()
ready = set(sys.modules)

class Context:
    function_name = "coldstart"
    memory_limit_in_mb = 512
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:coldstart"
    aws_request_id = "coldstart"
    log_group_name = log_stream_name = "coldstart"
    def get_remaining_time_in_millis(self):
        return 60_000

outcome = "not invoked"
if invoke == "1":
    try:
        app.lambda_handler(json.loads(event_json), Context())
        outcome = "ok"
    except Exception as exc:  # the world is empty: only the imports matter here
        outcome = type(exc).__name__
later = sorted(set(sys.modules) - ready)
print(json.dumps({"import": t1 - t0, "config": t2 - t1, "clients": t3 - t2,
                  "ready_modules": len(ready - before), "later": later, "outcome": outcome,
                  "yaml_at_ready": "yaml" in ready}))
"""

FLOOR_PROBE = """
import json, sys, time
sys.path[:0] = [sys.argv[1]]
t0 = time.perf_counter()
import boto3
t1 = time.perf_counter()
for name in sys.argv[2].split(","):
    boto3.client(name)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "clients": t2 - t1}))
"""

IMPORTTIME_PROBE = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
from ecspilot.interfaces import runtime
rt = runtime.current()
for name in sys.argv[3].split(","):
    rt.clients.get(name)
"""


@dataclass(frozen=True)
class Built:
    python: str
    layer: Path
    functions: dict[str, Path]  # functions/<name> -> its built directory
    config: Path  # a copy of CONFIG with its compact form beside it, written by the built layer


@dataclass(frozen=True)
class Row:
    handler: str
    clients: tuple[str, ...]
    handler_import: float
    config: float
    handler_clients: float
    floor_import: float
    floor_clients: float
    ready_modules: int
    later: tuple[str, ...]
    outcome: str
    heaviest: str

    @property
    def ready(self) -> float:
        return self.handler_import + self.config + self.handler_clients

    @property
    def floor(self) -> float:
        return self.floor_import + self.floor_clients


def python312() -> str | None:
    """A python3.12 that runs (pyenv's shim exists on PATH even when no 3.12 is selected)."""
    found = shutil.which("python3.12")
    if found is None:
        return None
    ok = subprocess.run([found, "--version"], capture_output=True, check=False).returncode == 0
    return found if ok else None


class _CfnLoader(yaml.SafeLoader):
    """Reads template.yaml with its intrinsic-function tags (!Ref, !GetAtt, ...) as plain values."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def function_dirs(build_dir: Path) -> dict[str, Path]:
    """``functions/<name>`` of each function in template.yaml -> its directory in the build."""
    template = yaml.load((REPO_ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=_CfnLoader)
    dirs = {}
    for logical_id, resource in template["Resources"].items():
        code = (resource.get("Properties") or {}).get("CodeUri") or ""
        if resource["Type"] == "AWS::Serverless::Function" and code.startswith("functions/"):
            dirs[Path(code).name] = build_dir / logical_id
    return dict(sorted(dirs.items()))


def uncompiled(layer: Path, tag: str = "cpython-312") -> list[str]:
    """The layer's modules without a .pyc that Python uses as it is, unchecked, after zipping: the
    header's flags (bytes 4-8) are 0b01 for "hash-based, do not check the source"."""
    missing = []
    for source in sorted(layer.rglob("*.py")):
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if not pyc.exists() or int.from_bytes(pyc.read_bytes()[4:8], "little") != 1:
            missing.append(str(source.relative_to(layer)))
    return missing


def build() -> Built | str:
    """``sam build`` for this machine's architecture into BUILD_DIR; a reason to skip if it cannot."""
    python = python312()
    if python is None:
        return "no python3.12 on PATH (the runtime's version, needed by sam build and the probes)"
    if not SAM.exists():
        return f"no SAM CLI at {SAM.relative_to(REPO_ROOT)} (`make build` installs it)"
    wheels = WHEEL_PLATFORMS.get(platform.machine())
    if wheels is None:
        return f"no wheel platform known for {platform.machine()}"
    env = dict(os.environ, LAYER_PLATFORM=wheels, SAM_CLI_TELEMETRY="0")
    env["PATH"] = f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}"
    argv = [str(SAM), "build", "--template", "template.yaml", "--build-dir", str(BUILD_DIR)]
    argv += ["--cache-dir", str(CACHE_DIR), "--cached"]
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{proc.stdout}{proc.stderr}")
    layer = BUILD_DIR / LAYER / "python"
    missing = uncompiled(layer)
    if missing:
        raise RuntimeError(
            f"{len(missing)} module(s) of the layer without an unchecked-hash .pyc: {missing[:5]}"
        )
    config = BUILD_DIR / "coldstart-config" / "ecspilot.yaml"
    config.parent.mkdir(exist_ok=True)
    shutil.copyfile(CONFIG, config)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    _run(python, ["-c", COMPACT_PROBE, str(layer), str(config)], clean)  # as `make build` does
    return Built(python=python, layer=layer, functions=function_dirs(BUILD_DIR), config=config)


def _env(endpoint: str, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECSPILOT_", "PYTHON"))}
    env.update(LOCAL_AWS_ENV)
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        ECSPILOT_CONFIG=str(config),
        ECSPILOT_TABLE="ecspilot-coldstart",
        ECSPILOT_RUN_JOB_ARN="arn:aws:lambda:us-east-1:123456789012:function:run-job",
        ECSPILOT_SCHEDULER_ROLE_ARN="arn:aws:iam::123456789012:role/scheduler",
        ECSPILOT_JOBS_DLQ_URL=f"{endpoint}/123456789012/ecspilot-jobs-dlq",
        POWERTOOLS_SERVICE_NAME="ecspilot",
        POWERTOOLS_METRICS_NAMESPACE="ecspilot",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="CRITICAL",
    )
    return env


def _run(python: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [python, "-S", "-B", *args], capture_output=True, text=True, env=env, check=False, cwd=REPO_ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def _probe_pair(
    python: str, handler: list[str], floor: list[str], env: dict[str, str]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Medians (ms) of each timing over RUNS fresh interpreters of each probe, the probes alternating
    so that both see the same load of a shared machine. Only the last handler run invokes the handler
    (after its timings), and gives the module counts."""
    times: tuple[dict[str, list[float]], dict[str, list[float]]] = (
        collections.defaultdict(list),
        collections.defaultdict(list),
    )
    last: dict[str, Any] = {}
    for i in range(RUNS):
        for args, into in ((handler, times[0]), (floor, times[1])):
            invoke = ["1" if i == RUNS - 1 else "0"] if args is handler else []
            got = _run(python, [*args, *invoke], env)
            for key in ("import", "config", "clients"):
                if key in got:
                    into[key].append(got[key] * 1000)
            if args is handler:
                last = got
    medians = [{key: statistics.median(values) for key, values in t.items()} for t in times]
    if last.get("yaml_at_ready"):
        raise RuntimeError("a probe parsed the YAML config: its compact form was not used")
    return {**last, **medians[0]}, medians[1]


def heaviest_packages(python: str, args: list[str], env: dict[str, str], top: int = 5) -> str:
    """Self import time by top-level package up to "ready" (one ``-X importtime`` run), heaviest first."""
    proc = subprocess.run(
        [python, "-S", "-B", "-X", "importtime", "-c", IMPORTTIME_PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=REPO_ROOT,
    )
    by_package: collections.Counter[str] = collections.Counter()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line[len("import time:") :].split("|")
        root = name.strip().split(".")[0]
        if root in ("botocore", "s3transfer", "urllib3", "jmespath", "dateutil", "six"):
            root = "boto3"  # boto3 and what it cannot import without
        elif root in {"pydantic_core", "annotated_types", "typing_inspection"}:
            root = "pydantic"  # typing_extensions stays itself: Powertools imports it without pydantic
        elif root.startswith("_") or root in sys.stdlib_module_names:
            root = "stdlib"
        by_package[root] += int(self_us)
    return ", ".join(f"{pkg} {us / 1000:.0f}" for pkg, us in by_package.most_common(top))


def _later_summary(later: tuple[str, ...]) -> str:
    """The first invocation's imports, by top-level package (ecspilot's by module)."""
    by_root = collections.Counter(m.split(".")[0] for m in later if not m.startswith("ecspilot"))
    own = [m.removeprefix("ecspilot.") for m in later if m.startswith("ecspilot.")]
    parts = [f"ecspilot: {', '.join(own)}"] if own else []
    parts += [f"{root} {n}" for root, n in by_root.most_common(4)]
    return f"{len(later)} ({'; '.join(parts)})" if later else "0"


def measure(built: Built, name: str, function_dir: Path, env: dict[str, str]) -> Row:
    clients = CLIENTS.get(name, DEFAULT_CLIENTS)
    sample = EVENTS.get(name, {})
    event = (
        sample
        if isinstance(sample, dict)
        else json.loads((REPO_ROOT / "events" / f"{sample}.json").read_text())
    )
    handler, floor = _probe_pair(
        built.python,
        ["-c", HANDLER_PROBE, str(function_dir), str(built.layer), json.dumps(event), ",".join(clients)],
        ["-c", FLOOR_PROBE, str(built.layer), ",".join(clients)],
        env,
    )
    return Row(
        handler=name,
        clients=clients,
        handler_import=handler["import"],
        config=handler["config"],
        handler_clients=handler["clients"],
        floor_import=floor["import"],
        floor_clients=floor["clients"],
        ready_modules=handler["ready_modules"],
        later=tuple(handler["later"]),
        outcome=handler["outcome"],
        heaviest=heaviest_packages(
            built.python, [str(function_dir), str(built.layer), ",".join(clients)], env
        ),
    )


def main() -> list[Row]:
    print("## Cold start of the built artifact: handler ready vs `import boto3` + the same clients")
    built = build()
    if isinstance(built, str):
        print(f"SKIPPED: {built}.\n")
        return []
    with moto_server() as server:
        env = _env(server.endpoint, built.config)
        rows = [measure(built, name, path, env) for name, path in built.functions.items()]
    version = subprocess.run([built.python, "--version"], capture_output=True, text=True, check=True).stdout
    print(
        f"`sam build` output ({BUILD_DIR.relative_to(REPO_ROOT)}, layer wheels for {platform.machine()}), "
        f"{version.strip()} -S -B with only the function and layer directories on sys.path; median of "
        f"{RUNS} fresh interpreters each (ms, interpreter start-up excluded); config: "
        f"{CONFIG.relative_to(REPO_ROOT)} from its compact form (validated by the built layer); target: ready within {TARGET}x of the floor\n"
    )
    print(
        "| handler | clients | import | + config | + clients | = ready | floor: import boto3 | + clients "
        "| = floor | ready/floor | modules at ready | + first invocation imports | self import time by package "
        "(ms, one run) |"
    )
    print("| " + " | ".join(["---"] * 13) + " |")
    for r in rows:
        ratio = r.ready / r.floor
        flag = "" if ratio <= TARGET else " (over target)"
        print(
            f"| {r.handler} | {', '.join(r.clients)} | {r.handler_import:.0f} | {r.config:.0f} "
            f"| {r.handler_clients:.0f} | {r.ready:.0f} | {r.floor_import:.0f} | {r.floor_clients:.0f} "
            f"| {r.floor:.0f} | {ratio:.2f}x{flag} | {r.ready_modules} | {_later_summary(r.later)} "
            f"| {r.heaviest} |"
        )
    print()
    return rows


if __name__ == "__main__":
    main()
