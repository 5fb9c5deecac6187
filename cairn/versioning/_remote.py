"""Dataset sources that are not local files: an S3 prefix, listed (not downloaded), and a
query, recorded as what was asked of which database."""

from __future__ import annotations

import os
import time
from typing import Any

from cairn.capture.secrets import redact_urls
from cairn.core.errors import CairnError, InvalidArgument
from cairn.core.versioning.blobs import Blob, QueryDataset, S3Dataset, S3Object

__all__ = ["S3", "Query"]


class S3:
    """The objects under ``s3://BUCKET/PREFIX``: each one's key, size, ETag, version id
    (in a bucket that keeps versions) and last-modified, listed with boto3, never
    downloaded. The endpoint is ``endpoint_url``, else the ``CAIRN_S3_ENDPOINT_URL``
    setting, else AWS's; credentials are AWS's usual ones (variables, profile, role)."""

    def __init__(self, uri: str, *, endpoint_url: str | None = None) -> None:
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise InvalidArgument("uri", f"must be s3://BUCKET/PREFIX, got {uri!r}")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise InvalidArgument("uri", f"names no bucket: {uri!r}")
        self.uri, self.bucket, self.prefix = uri, bucket, prefix
        self.endpoint_url = endpoint_url

    def __repr__(self) -> str:
        return f"S3({self.uri!r})"

    def resolve(self, store: object) -> Blob:
        settings = getattr(store, "settings", None)
        endpoint = (
            self.endpoint_url
            or getattr(settings, "s3_endpoint_url", None)
            or os.environ.get("CAIRN_S3_ENDPOINT_URL")
        )
        return S3Dataset(self.uri, self.list(endpoint))

    def list(self, endpoint_url: str | None = None) -> list[S3Object]:
        """Every object under the prefix (the latest version of each, delete markers
        skipped)."""
        import boto3  # type: ignore[import-untyped]
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        client = boto3.client("s3", endpoint_url=endpoint_url or self.endpoint_url)
        found: list[S3Object] = []
        try:
            pages = client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Versions", []):
                    if item.get("IsLatest", True):
                        found.append(self._object(item))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise CairnError(
                f"S3 refused listing {self.uri}: {error.get('Code')}: {error.get('Message')}",
                uri=self.uri,
            ) from None
        except BotoCoreError as exc:
            raise CairnError(f"S3 could not list {self.uri}: {exc}", uri=self.uri) from None
        return found

    def _object(self, item: dict[str, Any]) -> S3Object:
        key: str = item["Key"]
        relative = key[len(self.prefix) :] if key.startswith(self.prefix) else key
        version = item.get("VersionId")
        modified = int(item["LastModified"].timestamp() * 1000)
        return S3Object(
            relative or key,
            int(item["Size"]),
            str(item.get("ETag", "")),
            modified,
            None if version in (None, "null") else str(version),
        )


class Query:
    """A dataset that is a query's answer: ``Query("select ...", source="postgresql://db/x",
    row_count=1234)``. The source is kept without its password; ``executed_at`` (ms since
    the epoch) defaults to now, ``duration_ms`` to unknown. Nothing is run."""

    def __init__(
        self,
        text: str,
        *,
        source: str,
        row_count: int | None = None,
        executed_at: int | None = None,
        duration_ms: int | None = None,
    ) -> None:
        self.blob = QueryDataset(
            text=text,
            source=redact_urls(source) if isinstance(source, str) else source,
            executed_at=time.time_ns() // 1_000_000 if executed_at is None else executed_at,
            duration_ms=duration_ms,
            row_count=row_count,
        )

    def __repr__(self) -> str:
        return f"Query({self.blob.text!r}, source={self.blob.source!r})"

    def resolve(self, store: object) -> Blob:
        return self.blob
