"""The image scan edge: ECR's scan findings of one image (basic or enhanced scanning).

``DescribeImageScanFindings`` answers both: basic scanning lists ``findings``, enhanced scanning
(Amazon Inspector) ``enhancedFindings``; both carry ``findingSeverityCounts``, the one thing the
gate reads (one page, ``maxResults=1``: the counts come with every page). An image never
scanned answers ``ScanNotFoundException``: status ``NOT_FOUND``. Any other failure raises
:class:`ScanError`: the caller deploys nothing unchecked.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.domain.gates import ScanResult
from ecspilot.errors import ScanError, error_code, is_transient
from ecspilot.obs import logger

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient


def image_scan(ecr: ECRClient, repository: str, digest: str) -> ScanResult:
    """The scan status and severity counts of ``repository@digest``."""
    try:
        resp: Any = ecr.describe_image_scan_findings(
            repositoryName=repository, imageId={"imageDigest": digest}, maxResults=1
        )
    except ClientError as exc:
        if error_code(exc) == "ScanNotFoundException":
            return ScanResult(repository, digest, "NOT_FOUND")
        error = ScanError(f"reading the scan findings failed: {exc}", repository=repository, digest=digest)
        error.retryable = is_transient(exc)
        raise error from exc
    except BotoCoreError as exc:
        error = ScanError(f"reading the scan findings failed: {exc}", repository=repository, digest=digest)
        error.retryable = is_transient(exc)
        raise error from exc
    status = resp.get("imageScanStatus", {})
    counts = resp.get("imageScanFindings", {}).get("findingSeverityCounts", {}) or {}
    result = ScanResult(
        repository,
        digest,
        str(status.get("status", "")),
        {str(k): int(v) for k, v in counts.items()},
        str(status.get("description", "")),
    )
    logger.info(
        "image scan read",
        extra={
            "repository": repository,
            "image_digest": digest[:19],
            "status": result.status,
            "counts": counts,
        },
    )
    return result


class Scans:
    """Scan reads cached for one invocation (many services share one pushed image)."""

    def __init__(self, ecr: ECRClient) -> None:
        self._ecr = ecr
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], ScanResult] = {}

    def get(self, repository: str, digest: str) -> ScanResult:
        with self._lock:
            known = self._cache.get((repository, digest))
        if known is not None:
            return known
        result = image_scan(self._ecr, repository, digest)
        with self._lock:
            self._cache[(repository, digest)] = result
        return result
