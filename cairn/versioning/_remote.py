"""Dataset sources that are not local files: an S3 prefix, listed (and, when asked,
downloaded into the object store), and a query, recorded as what was asked of which
database."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from cairn.capture.secrets import redact_urls
from cairn.core.digest import digest_bytes
from cairn.core.errors import CairnError, Conflict, InvalidArgument, NotFound, PermissionDenied
from cairn.core.objects import Progress
from cairn.core.versioning.blobs import Blob, Component, QueryDataset, S3Dataset, S3Object
from cairn.versioning._capture import CaptureStore

__all__ = ["S3", "Query"]


_Listed = list[tuple[str, S3Object]]  # (full key, object); S3.list hides the builtin


class S3:
    """The objects under ``s3://BUCKET/PREFIX``: each one's key, size, ETag, version id
    (in a bucket that keeps versions) and last-modified, listed with boto3. By default
    nothing is downloaded; ``capture=True`` downloads each object (the version listed)
    into the object store, streamed and checked against its listed size and ETag, so the
    version checks out to a folder; with ``since`` (an earlier captured version of the
    prefix, or its blob), an object listed with the same key, size, ETag and version id as
    there is not downloaded again while the store still holds its bytes. The endpoint is
    ``endpoint_url``, else the ``CAIRN_S3_ENDPOINT_URL`` setting, else AWS's; credentials
    are AWS's usual ones (variables, profile, role). S3's refusals (no such bucket,
    access denied) and an endpoint that does not answer are errors naming the bucket and
    prefix (or key)."""

    def __init__(
        self,
        uri: str,
        *,
        endpoint_url: str | None = None,
        capture: bool = False,
        since: object = None,
        progress: Progress | None = None,
    ) -> None:
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise InvalidArgument("uri", f"must be s3://BUCKET/PREFIX, got {uri!r}")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise InvalidArgument("uri", f"names no bucket: {uri!r}")
        if not isinstance(capture, bool):
            raise InvalidArgument("capture", f"must be true or false, got {capture!r}")
        self.since: S3Dataset | None = None
        if since is not None:
            earlier = getattr(since, "blob", since)  # a DatasetVersion, or its blob
            if not (isinstance(earlier, S3Dataset) and earlier.captured):
                raise InvalidArgument("since", "must be a captured S3 version (or its blob)")
            self.since = earlier
        self.uri, self.bucket, self.prefix = uri, bucket, prefix
        self.endpoint_url = endpoint_url
        self.capture = capture
        self.progress = progress

    def __repr__(self) -> str:
        return f"S3({self.uri!r}, capture={self.capture})"

    def resolve(self, store: object) -> Blob:
        settings = getattr(store, "settings", None)
        endpoint = (
            self.endpoint_url
            or getattr(settings, "s3_endpoint_url", None)
            or os.environ.get("CAIRN_S3_ENDPOINT_URL")
        )
        client = _client(endpoint)
        listed = self._list(client)
        if not self.capture:
            return S3Dataset(self.uri, [o for _, o in listed])
        if not isinstance(store, CaptureStore):
            raise InvalidArgument("store", "cannot capture a dataset's bytes")
        return S3Dataset(self.uri, _capture(self, client, listed, store), captured=True)

    def list(self, endpoint_url: str | None = None) -> list[S3Object]:
        """Every object under the prefix (the latest version of each, delete markers
        skipped)."""
        return [o for _, o in self._list(_client(endpoint_url or self.endpoint_url))]

    def _list(self, client: Any) -> _Listed:
        """(full key, object) of each object under the prefix."""
        found: _Listed = []
        with self._errors("list"):
            pages = client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Versions", []):
                    if item.get("IsLatest", True):
                        found.append((item["Key"], self._object(item)))
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

    @contextlib.contextmanager
    def _errors(self, doing: str, key: str | None = None) -> Iterator[None]:
        """boto3's errors as Cairn's, naming the bucket and prefix (or the key)."""
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        where = self.uri if key is None else f"s3://{self.bucket}/{key}"
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            text = f"S3 refused to {doing} {where}: {code}: {error.get('Message')}"
            if code in ("NoSuchBucket", "NoSuchKey", "NoSuchVersion") or status == 404:
                raise NotFound(text, uri=where, code=code) from None
            if code in _DENIED or status == 403:
                raise PermissionDenied(text, uri=where, code=code) from None
            raise CairnError(text, uri=where, code=code) from None
        except BotoCoreError as exc:
            raise CairnError(f"S3 could not {doing} {where}: {exc}", uri=where) from None


_DENIED = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
)
_SMALL = 4 << 20  # objects up to this size are read whole and stored in batches
_BATCH_BYTES = 64 << 20  # the bytes of small objects held at once
_WORKERS = 8  # downloads at once: S3 answers each request slowly, not each byte
_BLOCK = 1 << 20


def _client(endpoint_url: str | None) -> Any:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    # An endpoint that does not answer is an error in seconds, not minutes of retries.
    config = Config(connect_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    # A session of its own: boto3's default one keeps the first credentials it found for
    # the life of the process.
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def _capture(
    source: S3, client: Any, listed: list[tuple[str, S3Object]], store: CaptureStore
) -> list[S3Object]:
    """Each listed object with the digest of its bytes, now in the object store."""
    for key, item in listed:
        if item.key.endswith("/"):  # a folder marker checks out to nothing
            continue
        try:  # a path a checkout can write: refused before any download
            Component(item.key, item.size, item.modified, digest_bytes(b""))
        except InvalidArgument as exc:
            raise InvalidArgument(
                "uri",
                f"s3://{source.bucket}/{key} cannot be captured: its key is no file path ({exc})",
            ) from None
    digests = _unchanged(source, listed, store)
    todo = [pair for pair in listed if pair[1].key not in digests]
    small = [pair for pair in todo if pair[1].size <= _SMALL]
    large = [pair for pair in todo if pair[1].size > _SMALL]
    with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
        for group in _groups(small):
            datas = list(pool.map(lambda pair: _read(source, client, *pair), group))
            found = [digest_bytes(data) for data in datas]
            lacking = set(store.missing_objects(found))
            send = {d: data for d, data in zip(found, datas, strict=True) if d in lacking}
            if send:
                store.store_many(list(send.values()))
            for (_, item), small_digest in zip(group, found, strict=True):
                digests[item.key] = small_digest
        with tempfile.TemporaryDirectory(prefix="cairn-s3-") as folder:

            def big(pair: tuple[str, S3Object]) -> str:
                path = _download(source, client, *pair, folder)
                try:
                    return store.store_file(path).digest
                finally:
                    os.unlink(path)

            for (_, item), digest in zip(large, pool.map(big, large), strict=True):
                digests[item.key] = digest
    return [dataclasses.replace(item, digest=digests[item.key]) for _, item in listed]


def _unchanged(source: S3, listed: _Listed, store: CaptureStore) -> dict[str, str]:
    """key -> digest of the objects listed as they were in ``source.since`` whose bytes the
    store still holds (asking renews them, so gc keeps them for this version's row)."""
    if source.since is None:
        return {}
    before = {(o.key, o.size, o.etag, o.version): o.digest for o in source.since.entries}
    same = {
        item.key: digest
        for _, item in listed
        if (digest := before.get((item.key, item.size, item.etag, item.version))) is not None
    }
    gone = set(store.missing_objects(list(dict.fromkeys(same.values()))))
    return {key: digest for key, digest in same.items() if digest not in gone}


def _groups(pairs: list[tuple[str, S3Object]]) -> Iterator[list[tuple[str, S3Object]]]:
    group: list[tuple[str, S3Object]] = []
    held = 0
    for pair in pairs:
        if group and held + pair[1].size > _BATCH_BYTES:
            yield group
            group, held = [], 0
        group.append(pair)
        held += pair[1].size
    if group:
        yield group


def _body(source: S3, client: Any, key: str, item: S3Object) -> Any:
    """The streamed body of the listed version of ``key``, refused if it is not the one
    listed (another ETag: the object was replaced since)."""
    extra = {} if item.version is None else {"VersionId": item.version}
    answer = client.get_object(Bucket=source.bucket, Key=key, **extra)
    etag = str(answer.get("ETag", ""))
    if item.etag and etag and etag != item.etag:
        raise Conflict(
            f"s3://{source.bucket}/{key} changed while captured "
            f"(ETag {item.etag} when listed, {etag} now): capture again",
            uri=f"s3://{source.bucket}/{key}",
        )
    return answer["Body"]


def _checked(source: S3, key: str, item: S3Object, got: int) -> None:
    if got != item.size:
        raise Conflict(
            f"s3://{source.bucket}/{key} gave {got} bytes, listed as {item.size}: "
            "it changed while captured (capture again)",
            uri=f"s3://{source.bucket}/{key}",
        )


def _read(source: S3, client: Any, key: str, item: S3Object) -> bytes:
    with source._errors("read", key):
        body = _body(source, client, key, item)
        try:
            data: bytes = body.read()
        finally:
            body.close()
    _checked(source, key, item, len(data))
    if source.progress is not None:
        source.progress(len(data))
    return data


def _download(source: S3, client: Any, key: str, item: S3Object, folder: str) -> str:
    """The object streamed to a file of ``folder`` (never whole in memory); its path."""
    fd, path = tempfile.mkstemp(dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, source._errors("read", key):
            body = _body(source, client, key, item)
            got = 0
            try:
                for block in body.iter_chunks(_BLOCK):
                    out.write(block)
                    got += len(block)
                    if source.progress is not None:
                        source.progress(len(block))
            finally:
                body.close()
        _checked(source, key, item, got)
    except BaseException:
        os.unlink(path)
        raise
    return path


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
