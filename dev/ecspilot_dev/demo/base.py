"""The demo's shared state: the configs chapters start from, the sandbox, the narration, and the
checks that make the narration true (a step whose outcome differs from what it says fails the demo)."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.errors import EcspilotError
from ecspilot.interfaces.present import say
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox

TABLE = "ecspilot-demo-state"

DEMO_CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "rollback": True,
        },
        {
            "name": "web-canary",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
        },
    ],
    "jobs": [],
    "daemons": [],
}
EMPTY_CONFIG: dict[str, Any] = {"version": 1, "services": [], "jobs": [], "daemons": []}


#: a step whose text names one of these as ``ecspilot VERB`` must show that command's real output
NARRATED = re.compile(
    r"\becspilot (validate|plan|reconcile|run|placement|status|history|rollback|promote|approve|reject|"
    r"enqueue|init|import|freezes|freeze|unfreeze|insights)\b"
)


class DemoCheckError(EcspilotError):
    """What the demo narrated did not happen: a guarantee broke, or a step was told wrongly."""


class Demo:
    """Shared state of the chapters: the sandbox, a call recorder, the narration, the checks.

    Every numbered step must be checked (:meth:`check`) before the next one starts or the chapter
    ends (:meth:`end_chapter`): a step that only narrates fails the demo.
    """

    def __init__(self) -> None:
        import boto3  # noqa: PLC0415

        self.recorder = CallRecorder()
        session = boto3.Session()
        self.recorder.attach(session)
        self.clients = Clients(session=session)
        self.sandbox = Sandbox(self.clients)
        self.step_no = 0
        self.quiet = False
        self._step = ""
        self._checks = 0
        self._narrated: set[str] = set()  # the verbs the current step's text names
        self._ran: set[str] = set()  # the verbs it ran through :meth:`cli`

    def step(self, text: str) -> None:
        self._require_checked()
        self._step, self._checks = text, 0
        self._narrated, self._ran = set(NARRATED.findall(text)), set()
        if not self.quiet:
            self.step_no += 1
            say(f"\n[{self.step_no}] {text}")

    def check(self, condition: bool, what: str) -> None:
        """Assert one narrated outcome of the current step; the demo stops with an error if not."""
        self._checks += 1
        if not condition:
            raise DemoCheckError(f"check failed: {what} (step: {self._step})")

    def end_chapter(self) -> None:
        self._require_checked()
        self._step, self._checks = "", 0

    def _require_checked(self) -> None:
        if self._step and not self._checks:
            raise DemoCheckError(f"step not checked: {self._step}")
        missing = sorted(self._narrated - self._ran)
        if self._step and missing:
            # narrated as `ecspilot plan` must mean plan's real output, not a look-alike
            raise DemoCheckError(f"step narrated as `ecspilot {missing[0]}` without running it: {self._step}")

    @contextlib.contextmanager
    def silenced(self) -> Iterator[None]:
        """Run chapters without narration (their checks still hold): a prelude building a world."""
        self.quiet = True
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        finally:
            self.quiet = False

    def cli(self, argv: Sequence[str]) -> tuple[int, str]:
        """``ecspilot ARGV`` as a user would run it: its own process, this process's environment
        (the local AWS, the config, the table); its output is shown and returned with the exit
        code. The demo never imports the CLI: it shows the CLI."""
        sys.stdout.flush()
        self._ran.update(a for a in argv if not a.startswith("-"))
        done = subprocess.run(
            [sys.executable, "-m", "ecspilot", *argv], check=False, capture_output=True, text=True
        )
        say(done.stdout.rstrip("\n"))
        if done.stderr.strip():
            say(done.stderr.rstrip("\n"))
        return done.returncode, done.stdout

    def ran_in_process(self, verb: str) -> None:
        """The verb's own function ran in this process and printed its real output: where the
        command needs an API moto lacks (stubbed here), which a subprocess could not see."""
        self._ran.add(verb)

    def plan(self, expect: dict[str, str], argv: Sequence[str] = ("plan",)) -> str:
        """``ecspilot plan`` as a user runs it (its real output shown); each ``target: change`` of
        ``expect`` must be a row of its table, under its header and above its summary line."""
        code, out = self.cli(argv)
        self.check(code == 0, f"plan exits 0, got {code}")
        self.check(out.startswith("dry run: what reconcile would change"), "plan's header")
        for target, change in expect.items():
            row = re.search(rf"(^|\s){re.escape(target)}\s+{re.escape(change)}(\s|$)", out, re.MULTILINE)
            self.check(row is not None, f"plan shows {target} {change}")
        return out

    def note(self, text: str) -> None:
        say(f"    {text}")

    def service_images(self, cluster: str, services: list[str]) -> list[dict[str, str]]:
        rows = []
        for svc in self.clients.ecs.describe_services(cluster=cluster, services=services)["services"]:
            td = self.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])[
                "taskDefinition"
            ]
            app = next(c for c in td["containerDefinitions"] if c["name"] == "app")
            rows.append(
                {
                    "service": svc["serviceName"],
                    "task_definition": f"{td['family']}:{td['revision']}",
                    "app image": app["image"].rsplit("/", 1)[-1][:40],
                }
            )
        return rows

    def calls_line(self) -> str:
        """Every AWS call the handler made since the recorder's reset, each operation with its count."""
        calls = ", ".join(f"{op} x{self.recorder.count(op)}" for op in dict.fromkeys(self.recorder.ops()))
        return f"AWS calls: {calls or 'none'}"

    def push_and_deploy(
        self, tag: str, expect: str, event: dict[str, Any] | None = None, services: int = 2
    ) -> dict[str, Any]:
        """Push web:TAG (or deliver ``event``) through deploy_on_push; check that ``services``
        services (web and web-canary) each had the outcome ``expect``."""
        event = event or self.sandbox.push("web", tag)
        self.recorder.reset()
        result: dict[str, Any] = invoke("deploy_on_push", event)
        for svc in result.get("services", []):
            detail = svc["reason"] or f"-> {svc['to_task_definition'].rsplit('/', 1)[-1]}"
            self.note(f"{svc['service']:<12} {svc['outcome']:<10} {detail}")
        self.note(self.calls_line())
        outcomes = [svc["outcome"] for svc in result.get("services", [])]
        self.check(outcomes == [expect] * services, f"{services} service(s) {expect}, got {outcomes}")
        return result
