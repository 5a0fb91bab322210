"""An image's ECR managed signing status (``DescribeImageSigningStatus``, issue 27).

ECR answers one status per signing profile whose signing rule matched the image:
``{"signingProfileArn", "status": IN_PROGRESS | COMPLETE | FAILED, "failureCode",
"failureReason"}``. An image ECR does not know (``ImageNotFoundException``) has no status:
``[]``. Any other failure (throttled past botocore's retries, access denied, the network)
raises :class:`SignatureError`: the image is not deployed unchecked.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.errors import SignatureError, error_code


def signing_statuses(ecr: Any, repository: str, digest: str, registry_id: str = "") -> list[dict[str, Any]]:
    """The signing statuses of ``repository@digest`` (in ``registry_id``'s registry when given)."""
    kwargs: dict[str, Any] = {"repositoryName": repository, "imageId": {"imageDigest": digest}}
    if registry_id:
        kwargs["registryId"] = registry_id
    try:
        resp = ecr.describe_image_signing_status(**kwargs)
    except ClientError as exc:
        if error_code(exc) == "ImageNotFoundException":
            return []
        raise SignatureError(
            f"DescribeImageSigningStatus failed: {exc}", repository=repository, image_digest=digest
        ) from exc
    except BotoCoreError as exc:
        raise SignatureError(
            f"DescribeImageSigningStatus failed: {exc}", repository=repository, image_digest=digest
        ) from exc
    return [dict(s) for s in resp.get("signingStatuses", [])]


class Signatures:
    """One read per image per invocation (every gated service of a push shares it)."""

    def __init__(self, ecr: Any) -> None:
        self.ecr = ecr
        self._cache: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, repository: str, digest: str, registry_id: str = "") -> list[dict[str, Any]]:
        key = (registry_id, repository, digest)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        got = signing_statuses(self.ecr, repository, digest, registry_id)
        with self._lock:
            self._cache[key] = got
        return got
