"""The peer: ``ecs deploy`` from the ``ecs-deploy`` package on PyPI, in its own virtual environment.

The environment lives in ``bench/.peer-venv`` (gitignored), created on the first
run with the pinned version; the project's ``.venv`` is never touched.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PEER_SPEC = "ecs-deploy==1.17.0"
PEER_VENV = Path(__file__).resolve().parent / ".peer-venv"
STAMP = PEER_VENV / ".installed"


def ensure_peer() -> Path:
    """Create the peer's virtual environment if missing (or built for another pin); return ``ecs``."""
    ecs = PEER_VENV / "bin" / "ecs"
    if not (ecs.exists() and STAMP.exists() and STAMP.read_text(encoding="utf-8").strip() == PEER_SPEC):
        print(f"(creating {PEER_VENV.name} with {PEER_SPEC}: once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
        pip = [str(PEER_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", PEER_SPEC]
        proc = subprocess.run(pip, capture_output=True, text=True, check=False)
        if proc.returncode != 0:  # pip's output only when it failed: it is noise otherwise
            raise RuntimeError(f"installing {PEER_SPEC} failed:\n{proc.stdout}{proc.stderr}")
        STAMP.write_text(PEER_SPEC + "\n", encoding="utf-8")
    return ecs


@dataclass(frozen=True)
class PeerRun:
    returncode: int
    wall: float
    output: str


# Fire and forget (no waiting for the rollout), and no deregistration of the previous task
# definition revision: ecs-deploy deregisters it by default, work ecspilot does not do.
DEPLOY_FLAGS = ("--timeout", "-1", "--no-deregister")


def deploy(ecs: Path, cluster: str, service: str, container: str, image: str, env: dict[str, str]) -> PeerRun:
    """One ``ecs deploy CLUSTER SERVICE -i CONTAINER IMAGE --timeout -1 --no-deregister`` process."""
    argv = [str(ecs), "deploy", cluster, service, "-i", container, image, *DEPLOY_FLAGS]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return PeerRun(proc.returncode, time.perf_counter() - t0, proc.stdout + proc.stderr)


def version(ecs: Path) -> str:
    proc = subprocess.run([str(ecs), "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).strip()
