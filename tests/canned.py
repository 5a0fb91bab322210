"""Canned AWS answers for what moto cannot produce (RunTask ``failures[]``), injected through a
botocore ``before-call`` hook on the real client: the request never reaches moto, the response
goes through botocore's parser like any other."""

from __future__ import annotations

from typing import Any

from botocore.awsrequest import AWSResponse

from ecspilot.aws.clients import Clients


class CannedRunTask:
    """Answers RunTask with canned responses (one per call, the last one repeats) instead of moto."""

    def __init__(self, clients: Clients, *responses: dict[str, Any]) -> None:
        self.responses = list(responses)
        self.clients = clients
        # RunTask goes through the single-attempt ECS client (ecspilot.jobs.tasks.start_tasks); hook both
        self.targets = [clients.ecs, clients.single_attempt("ecs")]
        for client in self.targets:
            client.meta.events.register("before-call.ecs.RunTask", self)

    def __call__(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        return AWSResponse("https://ecs.local", 200, {}, None), {"tasks": [], "failures": [], **body}

    def remove(self) -> None:
        for client in self.targets:
            client.meta.events.unregister("before-call.ecs.RunTask", self)


def failure(reason: str, detail: str = "", cluster: str = "batchfarm") -> dict[str, str]:
    return {
        "arn": f"arn:aws:ecs:us-east-1:123456789012:container-instance/{cluster}/x",
        "reason": reason,
        "detail": detail,
    }
