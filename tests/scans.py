"""ECR scan findings in moto (in-process): what a scan of an image found, set by the test.

moto answers DescribeImageScanFindings only for an image a scan was started on
(``ScanNotFoundException`` otherwise), from results queued on its backend; a result is kept per
request shape (``imageId``), so :func:`scanned` clears the image's earlier one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecspilot_dev.sandbox import ACCOUNT, REGION


def scanned(
    ecr: Any,
    repository: str,
    digest: str,
    counts: Mapping[str, int] | None = None,
    status: str = "COMPLETE",
    enhanced: bool = False,
) -> None:
    """Make ECR report ``status`` and ``counts`` for ``repository@digest`` (basic scanning's
    shape, or enhanced scanning's with ``enhancedFindings``)."""
    from moto.ecr.models import ecr_backends  # noqa: PLC0415

    backend = ecr_backends[ACCOUNT][REGION]
    image = backend._get_repository(repository, ACCOUNT)._get_image(None, digest)
    if not image.last_scan:  # moto allows one scan per image a day, as ECR does
        ecr.start_image_scan(repositoryName=repository, imageId={"imageDigest": digest})
    image.scan_finding_results.clear()
    image.scan_finding_results_queue.clear()
    findings: dict[str, Any] = {"findingSeverityCounts": dict(counts or {})}
    findings["enhancedFindings" if enhanced else "findings"] = []
    backend.scan_finding_results.append(
        {
            "registryId": ACCOUNT,
            "repositoryName": repository,
            "imageId": {"imageDigest": digest},
            "imageScanStatus": {"status": status, "description": f"scan {status.lower()}"},
            "imageScanFindings": findings,
        }
    )
