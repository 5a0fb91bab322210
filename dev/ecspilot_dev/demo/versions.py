"""Release policies (issue 27): with ``order: semver`` a hotfix of an older line pushed last is
``stale``, a major jump waits for ``ecspilot approve --digest``; with ``gates.signature`` an image
still being signed is deferred, re-checked by a one-time Scheduler timer and deployed once its
signature is COMPLETE, and an image whose signing FAILED is refused.

moto lacks ECR's DescribeImageSigningStatus: botocore's Stubber answers that one operation of
the handlers' ECR client (every request and answer validated against botocore's model), as
ECR would; everything else is the local AWS.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say
from ecspilot_dev.demo.base import Demo
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION

PROFILE = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/release"
VERSIONS_CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"], "order": "semver", "allow": "minor"}},
        },
        {
            "name": "api",
            "cluster": "prod",
            "containers": {"app": {"repository": "api", "tags": ["v*"]}},
            "gates": {"signature": {"profiles": [PROFILE]}},
        },
    ],
    "jobs": [],
    "daemons": [],
}


def _push(demo: Demo, repository: str, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Deliver the push of ``repository:tag`` to deploy_on_push; the event and the one service's outcome."""
    event = demo.sandbox.push(repository, tag)
    result = invoke("deploy_on_push", event)
    [svc] = result["services"]
    demo.note(f"{svc['service']:<6} {svc['outcome']:<18} {svc['reason'] or 'deployed'}")
    return event, svc


def _running(demo: Demo, service: str) -> str:
    [row] = demo.service_images("prod", [service])
    return row["app image"]


def _signing(stub: Any, digest: str, status: str, **extra: str) -> None:
    stub.add_response(
        "describe_image_signing_status",
        {"signingStatuses": [{"signingProfileArn": PROFILE, "status": status, **extra}]},
        {"repositoryName": "api", "imageId": {"imageDigest": digest}, "registryId": ACCOUNT},
    )


def chapter_versions(demo: Demo) -> None:
    """A hotfix stays behind, a major jump waits for approval, an unsigned image never runs."""
    say("\n=== Versions and signatures: versions never go backwards, big jumps wait, unsigned never runs ===")
    sb = demo.sandbox
    sb.cluster("prod")
    for repository in ("web", "api"):
        sb.repository(repository)
        sb.service(
            "prod", repository, sb.task_definition(repository, {"app": sb.image(repository, "v1.2.3")})
        )
    demo.note(
        "config: web app {tags: [v*], order: semver, allow: minor}; api gates.signature: [release profile]"
    )

    demo.step("Push web:v1.3.0: a minor step from v1.2.3, deployed")
    _, svc = _push(demo, "web", "v1.3.0")
    demo.check(svc["outcome"] == "deployed", f"deployed, got {svc['outcome']}")

    demo.step("Push the hotfix web:v1.2.4 last: the newest push, but a lower version: stale")
    _, svc = _push(demo, "web", "v1.2.4")
    demo.check(svc["outcome"] == "stale", f"stale, got {svc['outcome']}")
    demo.check("@sha256" in _running(demo, "web"), "web still on v1.3.0's digest")

    demo.step(
        "Push web:v2.0.0: a major jump beyond allow: minor waits for approval (recorded, notified once)"
    )
    event, svc = _push(demo, "web", "v2.0.0")
    demo.check(svc["outcome"] == "awaiting approval", f"awaiting approval, got {svc['outcome']}")
    digest = event["detail"]["image-digest"]

    demo.step("ecspilot approve web --digest <v2.0.0>: that version, and only it, is deployed")
    code, out = demo.cli(["approve", "web", "--digest", digest])
    demo.check(code == 0 and "deployed web v2.0.0" in out, f"exit 0 and deployed, got {code}")
    demo.check(digest[7:25] in _running(demo, "web"), "web runs v2.0.0's digest")
    _signatures(demo)


def _signatures(demo: Demo) -> None:
    """The signature gate's part of the chapter: deferred, re-checked by a timer, refused."""
    from ecspilot_dev.service_deployments import OperationStubber  # noqa: PLC0415

    sb = demo.sandbox

    # the push function's environment names reconcile and the timer role, as template.yaml does
    os.environ["ECSPILOT_RECONCILE_ARN"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-Reconcile"
    os.environ["ECSPILOT_SCHEDULER_ROLE_ARN"] = f"arn:aws:iam::{ACCOUNT}:role/ecspilot-PromotionTimerRole"
    os.environ["ECSPILOT_SCHEDULE_GROUP"] = "ecspilot"
    demo.clients.scheduler.create_schedule_group(Name="ecspilot")
    runtime.reset(runtime.Runtime.build(clients=demo.clients))
    with OperationStubber(demo.clients.ecr, ("DescribeImageSigningStatus",)) as stub:
        demo.step("Push api:v1.3.0 while ECR still signs it (IN_PROGRESS): deferred, two re-check timers set")
        event = sb.push("api", "v1.3.0")
        digest = event["detail"]["image-digest"]
        _signing(stub, digest, "IN_PROGRESS")
        result = invoke("deploy_on_push", event)
        [svc] = result["services"]
        demo.note(f"api    {svc['outcome']:<18} {svc['reason']}")
        schedules = demo.clients.scheduler.list_schedules(GroupName="ecspilot")["Schedules"]
        demo.note(f"Scheduler: {', '.join(sorted(s['Name'] for s in schedules))}")
        demo.check(svc["outcome"] == "deferred", f"deferred, got {svc['outcome']}")
        demo.check(len(schedules) == 2, f"2 one-time schedules, got {len(schedules)}")

        demo.step(
            "A timer fires (the demo sends its input to reconcile); the signature is COMPLETE: deployed"
        )
        detail = demo.clients.scheduler.get_schedule(GroupName="ecspilot", Name=schedules[0]["Name"])
        _signing(stub, digest, "COMPLETE")
        fired = invoke("reconcile", json.loads(detail["Target"]["Input"]))
        [svc] = fired["services"]
        demo.note(f"api    {svc['outcome']}")
        demo.check(svc["outcome"] == "deployed", f"deployed, got {svc['outcome']}")

        demo.step("Push api:v1.4.0 whose signing FAILED: refused with ECR's reason, nothing registered")
        event = sb.push("api", "v1.4.0")
        _signing(
            stub,
            event["detail"]["image-digest"],
            "FAILED",
            failureCode="SIGNING_PROFILE_REVOKED",
            failureReason="the signing profile was revoked",
        )
        result = invoke("deploy_on_push", event)
        [svc] = result["services"]
        demo.note(f"api    {svc['outcome']:<18} {svc['reason']}")
        demo.check(svc["outcome"] == "refused", f"refused, got {svc['outcome']}")
        demo.check("revoked" in svc["reason"], "the reason is ECR's")
        demo.check(digest[7:25] in _running(demo, "api"), "api still runs v1.3.0")
