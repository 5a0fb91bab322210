"""The composition root stays at the edges of the jobs and queue packages: only their
``handler.py`` modules know the process runtime, and their fan-out is the one bounded pool
(:func:`ecspilot.aws.fanout.bounded_map`), never a thread pool of their own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.test_structure import CORE, import_graph, modules_of

PACKAGES = ("ecspilot.jobs", "ecspilot.queue")
RUNTIME = "ecspilot.interfaces.runtime"


def runtime_importers(root: Path, packages: tuple[str, ...]) -> list[str]:
    """Modules of ``packages`` that import the runtime, other than their ``handler`` modules."""
    return sorted(
        name
        for name, targets in import_graph(root).items()
        if name.startswith(packages) and RUNTIME in targets
        if not name.endswith(".handler")
    )


def own_pools(root: Path, packages: tuple[str, ...]) -> list[str]:
    """Modules of ``packages`` that make a thread pool themselves."""
    found = []
    for name, path in modules_of(root).items():
        if not name.startswith(packages):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(
            isinstance(node, ast.Name | ast.Attribute)
            and (node.id if isinstance(node, ast.Name) else node.attr) == "ThreadPoolExecutor"
            for node in ast.walk(tree)
        ):
            found.append(name)
    return sorted(found)


def test_only_the_handlers_of_jobs_and_queue_import_the_runtime() -> None:
    assert runtime_importers(CORE, PACKAGES) == []


def test_jobs_and_queue_fan_out_only_through_bounded_map() -> None:
    assert own_pools(CORE, PACKAGES) == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "ecspilot"
    for name, text in {
        "__init__.py": "",
        "interfaces/__init__.py": "",
        "interfaces/runtime.py": "",
        **files,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("files", "importers", "pools"),
    [
        pytest.param(
            {"jobs/__init__.py": "", "jobs/handler.py": "from ecspilot.interfaces.runtime import Runtime\n"},
            [],
            [],
            id="a handler may",
        ),
        pytest.param(
            {
                "jobs/__init__.py": "",
                "jobs/runbook.py": "def f():\n    from ecspilot.interfaces import runtime\n",
            },
            ["ecspilot.jobs.runbook"],
            [],
            id="a runbook may not, even lazily",
        ),
        pytest.param(
            {
                "queue/__init__.py": "",
                "queue/batch.py": "import concurrent.futures\nP = concurrent.futures.ThreadPoolExecutor\n",
            },
            [],
            ["ecspilot.queue.batch"],
            id="a pool of its own",
        ),
    ],
)
def test_the_checks_catch_what_they_forbid(
    tmp_path: Path, files: dict[str, str], importers: list[str], pools: list[str]
) -> None:
    root = _package(tmp_path, files)
    assert runtime_importers(root, PACKAGES) == importers
    assert own_pools(root, PACKAGES) == pools
