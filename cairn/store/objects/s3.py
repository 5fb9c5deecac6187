"""Objects in an S3 bucket (AWS, or any S3-compatible server: Swift, MinIO, Ceph).

Layout under ``prefix`` in ``bucket``: ``objects/<2 hex>/<62 hex>`` for objects,
``quarantine/<digest>.<ns>`` for objects a read found corrupt, moved aside, and
``recipes/<2 hex>/<62 hex>`` for the recipes of chunked objects, as in the local folder.
Bytes move through obstore (Rust ``object_store``; chosen over boto3 by
``benchmarks/s3_clients.py``: docs/benchmarks.md); credentials come from boto3's chain
(environment, ``~/.aws`` files, profiles, instance roles) when boto3 is installed, else
from the environment.

The key is the digest, so the digest must be known before a byte is sent, and it must be
the digest of the bytes sent:

- up to ``part_size`` bytes are hashed in memory and sent in one PUT;
- a bigger file is hashed once, then sent as a multipart upload whose parts are hashed
  again as they are read: if the file changed in between, the upload is aborted before
  it completes, so the key never names other bytes;
- a stream (``put_stream``, ``open_writer``) past ``part_size`` is spooled to an unnamed
  temp file (gone with the process) while it is hashed, then sent like a file.

A PUT is atomic on S3: an object is whole or absent, never a temp name renamed into
place. A put of bytes already stored heals a damaged copy as the local store does for
objects up to ``part_size`` (they are always sent again: a PUT costs the request a HEAD
would); a bigger object already stored at the same size is not sent again (S3 keeps what
it was sent; a copy changed by another writer is found by the verified read, moved
aside, and the next put restores it).

S3 errors become Cairn's: a missing bucket, refused credentials or an endpoint that does
not answer (after the retries with backoff of obstore's own retry config) are
``StoreUnavailable`` naming the bucket and key; a server that says it has no room is
``StorageFull``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO, Final, NoReturn

import obstore
from obstore.exceptions import NotFoundError, PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from cairn.core.digest import Digest, digest_bytes, new_hasher, parse_digest
from cairn.core.errors import (
    CairnError,
    InvalidArgument,
    StorageFull,
    StoreUnavailable,
)
from cairn.core.objects import ObjectInfo, Progress
from cairn.files.reading import ReadInto, VerifyingReader, counting, open_source
from cairn.files.writing import readinto_of, write_file_atomically
from cairn.store.objects.port import (
    AbortingWriter,
    ClosingStore,
    Quarantined,
    StoredObject,
    check_expected_digest,
    fill_by_writes,
    missing_object,
    verify_each,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["S3ObjectStore", "S3ObjectWriter", "parse_s3_uri"]

log = logging.getLogger("cairn.objects")

PART_SIZE: Final = 8 << 20  # one PUT up to here; multipart parts of this size beyond
CONCURRENCY: Final = 8  # parts in flight at once per upload
_READ_CHUNK: Final = 1 << 20
# A refusal that obstore reports as a generic error (listings, for one).
_DENIED_SIGNS: Final = (
    "403 Forbidden",
    "AccessDenied",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
)
_DENIED: Final = (
    "access denied: check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
    "AWS_PROFILE, ~/.aws) and the bucket's policy"
)
# What obstore raises for a missing key: its own type, or (from get and head) the builtin.
_MISSING: Final = (NotFoundError, FileNotFoundError)
# What S3-compatible servers answer when they have no room (AWS has no such error; Swift,
# MinIO and Ceph have quotas and disks).
_FULL_SIGNS: Final = (
    "QuotaExceeded",
    "XMinioStorageFull",
    "Insufficient Storage",
    "507",
    "EntityTooLarge",
)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes at its ends)."""
    if not uri.startswith("s3://"):
        raise InvalidArgument("objects_uri", f"{uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidArgument("objects_uri", f"{uri!r} names no bucket (s3://bucket/prefix)")
    return bucket, prefix.strip("/")


class _Uploads:
    """The keys this process is uploading, which a sweep leaves alone whatever their age."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, int] = {}

    @contextlib.contextmanager
    def holding(self, key: str) -> Iterator[None]:
        with self._lock:
            self._keys[key] = self._keys.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._keys[key] -= 1
                if not self._keys[key]:
                    del self._keys[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._keys


_uploads: Final = _Uploads()


class S3ObjectStore(ClosingStore):
    """Content-addressed objects under ``prefix`` in an S3 ``bucket``.

    Cheap to construct: the bucket is first checked (one LIST) by :meth:`check` or by
    the first call that needs it, which then fails with ``StoreUnavailable`` naming what
    is wrong.
    ``retry_timeout``: seconds obstore keeps retrying a request that failed for a reason
    worth retrying (5xx, throttling, a dropped connection), with exponential backoff.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = PART_SIZE,
        concurrency: int = CONCURRENCY,
        retry_timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if part_size < 5 << 20:
            raise InvalidArgument("part_size", "must be at least 5 MiB (S3's smallest part)")
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._endpoint = endpoint_url
        self._part = part_size
        self._concurrency = concurrency
        self._checked = False
        self._admin: Any = None  # a boto3 client, made on the first sweep
        self._threads: ThreadPoolExecutor | None = None  # for the batch calls, made on use
        self._pool_lock = threading.Lock()
        credentials, session_region = _boto3_credentials()
        self._region = region or session_region or os.environ.get("AWS_REGION") or "us-east-1"
        config: dict[str, Any] = {"region": self._region}
        if endpoint_url:
            config["endpoint"] = endpoint_url
            config["virtual_hosted_style_request"] = False  # path style: any server answers it
        self._store = S3Store(
            bucket,
            prefix=self._prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options={
                "allow_http": bool(endpoint_url and endpoint_url.startswith("http://")),
                "connect_timeout": f"{connect_timeout}s",
            },
            retry_config={
                "max_retries": 10,
                "retry_timeout": dt.timedelta(seconds=retry_timeout),
                "backoff": {
                    "init_backoff": dt.timedelta(milliseconds=100),
                    "max_backoff": dt.timedelta(seconds=15),
                    "base": 2,
                },
            },
            credential_provider=credentials,
        )

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def uri(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    def __repr__(self) -> str:  # credentials never appear
        endpoint = f", endpoint_url={self._endpoint!r}" if self._endpoint else ""
        return f"S3ObjectStore({self._bucket!r}, {self._prefix!r}{endpoint})"

    # -- writes ---------------------------------------------------------------

    def put_bytes(self, data: bytes) -> ObjectInfo:
        if not isinstance(data, bytes):
            data = bytes(data)  # hash and send one immutable snapshot
        digest = digest_bytes(data)
        self._send_memory(digest, data)
        return ObjectInfo(digest, len(data))

    def put_stream(self, src: BinaryIO, progress: Progress | None = None) -> ObjectInfo:
        with self.open_writer() as writer:
            writer.fill(counting(readinto_of(src), progress))
            return writer.commit()

    def put_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo:
        with open_source(path) as src:
            head = _read_up_to(src, self._part + 1)
            if len(head) <= self._part:  # small: hashed and sent from memory
                digest = digest_bytes(head)
                self._send_memory(digest, head)
                if progress is not None and head:
                    progress(len(head))
                return ObjectInfo(digest, len(head))
            hasher = new_hasher()
            hasher.update(head)
            size = len(head)
            while chunk := src.read(_READ_CHUNK * 4):
                hasher.update(chunk)
                size += len(chunk)
            digest = Digest(hasher.hexdigest())
            what = f"the file {os.fspath(path)!r}"
            self._send_big(digest, size, src, progress, what)
            return ObjectInfo(digest, size)

    def open_writer(self) -> S3ObjectWriter:
        return S3ObjectWriter(self)

    def put_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Many small objects, ``concurrency`` PUTs in flight at once (S3 has no batched
        put; each PUT is durable once answered)."""
        return list(self._pool().map(self.put_bytes, items))

    def missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """One HEAD per digest, ``concurrency`` in flight at once; in the order given."""
        unique = list(dict.fromkeys(map(parse_digest, digests)))
        present = self._pool().map(self.exists, unique)
        return [digest for digest, there in zip(unique, present, strict=True) if not there]

    def close(self) -> None:
        with self._pool_lock:
            pool, self._threads = self._threads, None
        if pool is not None:
            pool.shutdown(wait=True)

    def delete(self, digest: Digest) -> None:
        key = self._key(digest)
        with self._errors(key):
            obstore.delete(self._store, key)

    # -- recipes (RecipeStore) ---------------------------------------------------

    def put_recipe(self, digest: Digest, data: bytes) -> None:
        key = self._recipe_key(digest)
        self.check()
        with self._errors(key):
            obstore.put(self._store, key, bytes(data), use_multipart=False)

    def get_recipe(self, digest: Digest) -> bytes | None:
        key = self._recipe_key(digest)
        self.check()
        try:
            with self._errors(key):
                return bytes(obstore.get(self._store, key).bytes())
        except _MISSING:
            return None

    def get_recipes(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        """``concurrency`` GETs in flight at once."""
        found = self._pool().map(self.get_recipe, digests)
        return {d: data for d, data in zip(digests, found, strict=True) if data is not None}

    def delete_recipe(self, digest: Digest) -> None:
        key = self._recipe_key(digest)
        with self._errors(key):
            obstore.delete(self._store, key)

    def iter_recipes(self) -> Iterator[StoredObject]:
        for meta in self._list("recipes/"):
            _, fanout, name = meta["path"].rsplit("/", 2)
            try:
                digest = parse_digest(fanout + name)
            except InvalidArgument:
                continue
            yield StoredObject(digest, int(meta["size"]), meta["last_modified"].timestamp())

    def renew_recipes(self, digests: Iterable[Digest]) -> None:
        """Nothing, as :meth:`renew`."""

    def renew(self, digests: Iterable[Digest]) -> None:
        """Nothing: S3 keeps an object's time as it was written (a copy onto itself would
        renew it, at the price of a request per object)."""

    def _recipe_key(self, digest: Digest) -> str:
        digest = parse_digest(digest)
        return f"recipes/{digest[:2]}/{digest[2:]}"

    # -- reads ----------------------------------------------------------------

    def open(self, digest: Digest) -> BinaryIO:
        return io.BufferedReader(self._reader(digest), buffer_size=64 * 1024)

    def exists(self, digest: Digest) -> bool:
        return self._head(self._key(digest)) is not None

    def size(self, digest: Digest) -> int:
        key = self._key(digest)
        meta = self._head(key)
        if meta is None:
            raise missing_object(digest, self._aside(digest), f" in {self.uri}", read=False)
        return int(meta["size"])

    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        with self._reader(digest) as reader:
            return write_file_atomically(counting(reader.readinto, progress), dest)

    # -- damage and leftovers ------------------------------------------------------

    def verify(self, digests: Iterable[Digest] | None = None) -> list[Digest]:
        return verify_each(self, self._digests() if digests is None else digests)

    def quarantined(self) -> list[Quarantined]:
        found = []
        for meta in self._list("quarantine/"):
            name = meta["path"].rpartition("/")[2]
            digest, _, since_ns = name.partition(".")
            with contextlib.suppress(InvalidArgument, ValueError):
                found.append(
                    Quarantined(
                        parse_digest(digest),
                        int(meta["size"]),
                        int(since_ns) / 1e9,
                        f"{self.uri}/{meta['path']}",
                    )
                )
        return sorted(found, key=lambda q: q.since)

    def iter_objects(self) -> Iterator[StoredObject]:
        for meta in self._list("objects/"):
            _, fanout, name = meta["path"].rsplit("/", 2)
            try:
                digest = parse_digest(fanout + name)
            except InvalidArgument:
                continue  # not an object's name
            yield StoredObject(digest, int(meta["size"]), meta["last_modified"].timestamp())

    def sweep(self, grace: float) -> list[str]:
        """Abort the multipart uploads under this prefix that no part has been added to
        for ``grace`` seconds (a process killed mid-upload leaves them, and S3 keeps, and
        bills, their parts), except those this process is sending; returns them as
        ``s3://bucket/key#upload-id``. Needs boto3 (obstore cannot list uploads)."""
        admin = self._admin_client()
        if admin is None:
            return []
        cutoff = time.time() - grace
        removed = []
        full = self._full("objects/")
        with self._errors(full):
            pages = admin.get_paginator("list_multipart_uploads")
            for page in pages.paginate(Bucket=self._bucket, Prefix=full):
                for upload in page.get("Uploads", []):
                    key, upload_id = upload["Key"], upload["UploadId"]
                    if key in _uploads:
                        continue
                    if _last_touched(admin, self._bucket, upload) > cutoff:
                        continue
                    with contextlib.suppress(admin.exceptions.NoSuchUpload):
                        admin.abort_multipart_upload(
                            Bucket=self._bucket, Key=key, UploadId=upload_id
                        )
                    removed.append(f"s3://{self._bucket}/{key}#{upload_id}")
        if removed:
            log.info("aborted %d abandoned multipart uploads in %s", len(removed), self.uri)
        return removed

    # -- internals ------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    self._concurrency * 2, thread_name_prefix="cairn-s3"
                )
            return self._threads

    def _key(self, digest: Digest) -> str:
        digest = parse_digest(digest)  # the only guard between a caller's string and a key
        return f"objects/{digest[:2]}/{digest[2:]}"

    def _full(self, key: str) -> str:
        """The key in the bucket (with the prefix)."""
        return f"{self._prefix}/{key}" if self._prefix else key

    def _where(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._full(key)}".rstrip("/")

    def check(self) -> None:
        """Once per store: the bucket is there and the credentials open it (a HEAD of a
        missing bucket's key is a plain 404, which would read as a missing object);
        ``StoreUnavailable`` saying what is wrong otherwise. Every call does it first."""
        if self._checked:
            return
        with self._errors(""):
            next(iter(obstore.list(self._store, "objects/", chunk_size=1)), None)
        self._checked = True

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """S3's failures as Cairn's errors, naming the bucket and key."""
        try:
            yield
        except CairnError:
            raise
        except _MISSING as exc:
            if "NoSuchBucket" in str(exc):
                self._raise_unavailable(key, f"the bucket {self._bucket!r} does not exist", exc)
            raise
        except (PermissionDeniedError, UnauthenticatedError) as exc:
            self._raise_unavailable(key, _DENIED, exc)
        except Exception as exc:
            if not _is_s3_error(exc):
                raise
            text = str(exc)
            if any(sign in text for sign in _FULL_SIGNS):
                raise StorageFull(
                    f"the S3 store {self._where(key)} has no room: {_first_line(text)}",
                    bucket=self._bucket,
                    key=key,
                ) from None
            if "NoSuchBucket" in text:
                self._raise_unavailable(key, f"the bucket {self._bucket!r} does not exist", exc)
            if any(sign in text for sign in _DENIED_SIGNS):
                self._raise_unavailable(key, _DENIED, exc)
            if "error sending request" in text or "connect" in text.lower():
                self._raise_unavailable(
                    key, f"the endpoint {self._endpoint or 'of AWS S3'} does not answer", exc
                )
            self._raise_unavailable(key, "the request failed", exc)

    def _raise_unavailable(self, key: str, why: str, exc: BaseException) -> NoReturn:
        raise StoreUnavailable(
            f"S3 object store {self._where(key)}: {why} ({_first_line(str(exc))})",
            bucket=self._bucket,
            key=key,
            endpoint=self._endpoint,
        ) from None

    def _head(self, key: str) -> dict[str, Any] | None:
        self.check()
        try:
            with self._errors(key):
                return dict(obstore.head(self._store, key))
        except _MISSING:
            return None

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        self.check()
        with self._errors(prefix):
            for batch in obstore.list(self._store, prefix, chunk_size=1000):
                yield from (dict(meta) for meta in batch)

    def _digests(self) -> Iterator[Digest]:
        for meta in self._list("objects/"):
            _, fanout, name = meta["path"].rsplit("/", 2)
            with contextlib.suppress(InvalidArgument):
                yield parse_digest(fanout + name)

    def _send_memory(self, digest: Digest, data: bytes | memoryview) -> None:
        """Send bytes already in memory and hashed: one PUT, or multipart if big."""
        if len(data) > self._part:
            self._send_big(digest, len(data), io.BytesIO(data), None, "the bytes")
            return
        key = self._key(digest)
        self.check()
        with self._errors(key):
            obstore.put(self._store, key, data, use_multipart=False)

    def _send_big(
        self, digest: Digest, size: int, src: BinaryIO, progress: Progress | None, what: str
    ) -> None:
        """A multipart upload of ``src`` from its start, whose bytes must hash to
        ``digest`` again as they are sent (else the upload is aborted); skipped if an
        object of that size is stored already."""
        key = self._key(digest)
        meta = self._head(key)
        if meta is not None and int(meta["size"]) == size:
            if progress is not None and size:
                progress(size)
            return
        src.seek(0)
        with _uploads.holding(self._full(key)), self._errors(key):
            obstore.put(
                self._store,
                key,
                _checked_parts(src, self._part, digest, size, progress, what),
                chunk_size=self._part,
                max_concurrency=self._concurrency,
            )

    def _reader(self, digest: Digest) -> VerifyingReader:
        key = self._key(digest)
        self.check()
        try:
            with self._errors(key):
                got = obstore.get(self._store, key)
        except _MISSING:
            raise missing_object(
                digest, self._aside(digest), f" in {self.uri}", read=True
            ) from None
        meta = got.meta
        etag = meta.get("e_tag")
        stream = got.stream(min_chunk_size=_READ_CHUNK)
        return VerifyingReader(
            _StreamSource(stream, lambda: self._errors(key)),
            digest,
            int(meta["size"]),
            on_corrupt=lambda: self._move_aside(digest, etag),
        )

    def _move_aside(self, digest: Digest, etag: str | None) -> str:
        """Quarantine the corrupt copy a reader read (by its ETag), unless a put has
        replaced it since; says what became of it, for the error's message. S3 has no
        conditional delete: a put landing between the ETag check and the delete loses
        its copy, which then reads as missing and is sent again by the next upload."""
        key = self._key(digest)
        aside = f"quarantine/{digest}.{time.time_ns()}"
        try:
            meta = self._head(key)
            if meta is None:
                return "it is no longer stored"
            if etag is not None and meta.get("e_tag") != etag:
                return "a new copy has been stored since it was opened"
            with self._errors(key):
                obstore.copy(self._store, key, aside)
                obstore.delete(self._store, key)
        except (CairnError, *_MISSING) as exc:
            log.error("object %s is corrupt and could not be moved aside: %s", digest, exc)
            return f"it could not be moved aside ({exc})"
        log.warning("object %s is corrupt: moved aside to %s", digest, self._where(aside))
        return f"moved aside to {self._where(aside)}; storing the same bytes again restores it"

    def _aside(self, digest: Digest) -> str | None:
        """Where the latest quarantined copy of ``digest`` lies, if there is one."""
        # obstore lists by folder (a prefix is a path), so the whole quarantine: it is small.
        mark = f"/{digest}."
        names = [m["path"] for m in self._list("quarantine/") if mark in m["path"]]
        if not names:
            return None
        latest = max(names, key=lambda p: int(p.rpartition(".")[2]))
        return f"{self.uri}/{latest}"

    def _admin_client(self) -> Any:
        if self._admin is None:
            try:
                import boto3  # type: ignore[import-untyped]
                from botocore.config import Config  # type: ignore[import-untyped]
            except ImportError:
                log.warning("sweep of %s skipped: listing multipart uploads needs boto3", self.uri)
                return None
            self._admin = boto3.client(
                "s3",
                endpoint_url=self._endpoint,
                region_name=self._region,
                config=Config(retries={"mode": "standard", "max_attempts": 5}),
            )
        return self._admin


class S3ObjectWriter(AbortingWriter):
    """One new object of an :class:`S3ObjectStore`, written piece by piece: held in
    memory up to the part size, spooled to an unnamed temp file beyond it, sent at
    ``commit``."""

    def __init__(self, store: S3ObjectStore) -> None:
        self._store = store
        self._hasher = new_hasher()
        self._memory: bytearray | None = bytearray()
        self._spool: BinaryIO | None = None
        self._size = 0
        self._open = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        try:
            view = memoryview(data).cast("B")
            self._hasher.update(view)
            self._size += len(view)
            if self._memory is not None:
                self._memory += view  # a private copy: the caller may reuse its buffer
                if len(self._memory) > self._store._part:
                    self._spill()
            else:
                assert self._spool is not None
                self._spool.write(view)
        except BaseException:
            self.abort()
            raise

    def fill(self, readinto: ReadInto) -> None:
        """Append everything ``readinto`` gives until EOF."""
        fill_by_writes(self.write, readinto, _READ_CHUNK)

    def commit(self, expected: Digest | None = None) -> ObjectInfo:
        self._check_open()
        self._open = False
        try:
            digest = Digest(self._hasher.hexdigest())
            check_expected_digest(expected, digest)
            if self._memory is not None:
                self._store._send_memory(digest, memoryview(self._memory))
            else:
                assert self._spool is not None
                self._spool.flush()
                self._store._send_big(digest, self._size, self._spool, None, "the spooled bytes")
        finally:
            self._release()
        return ObjectInfo(digest, self._size)

    def abort(self) -> None:
        if self._open:
            self._open = False
            self._release()

    def _spill(self) -> None:
        assert self._memory is not None
        self._spool = tempfile.TemporaryFile(prefix="cairn-s3-")  # noqa: SIM115 - ours until release
        self._spool.write(self._memory)
        self._memory = None

    def _release(self) -> None:
        self._memory = None
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _check_open(self) -> None:
        if not self._open:
            raise ValueError("the object writer is already committed or aborted")


class _StreamSource:
    """A :class:`~cairn.files.reading.RawSource` over obstore's stream of byte chunks."""

    def __init__(
        self, stream: Any, errors: Callable[[], contextlib.AbstractContextManager[None]]
    ) -> None:
        self._stream = stream
        self._errors = errors
        self._chunk = memoryview(b"")

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if not self._chunk:
            with self._errors():
                nxt = next(self._stream, None)
            if nxt is None:
                return 0
            self._chunk = memoryview(nxt).cast("B")
        n = min(len(view), len(self._chunk))
        view[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n

    def close(self) -> None:
        self._chunk = memoryview(b"")
        self._stream = iter(())


def _checked_parts(
    src: BinaryIO, part: int, digest: Digest, size: int, progress: Progress | None, what: str
) -> Iterator[bytes]:
    """``src``'s parts as a multipart upload sends them, hashed again: bytes that no
    longer hash to ``digest`` raise before the last part goes, and obstore then aborts
    the upload (nothing is stored)."""
    hasher = new_hasher()
    sent = 0
    while chunk := src.read(part):
        hasher.update(chunk)
        sent += len(chunk)
        if sent >= size and (sent != size or hasher.hexdigest() != digest):
            break
        if progress is not None:
            progress(len(chunk))
        yield chunk
    if sent != size or hasher.hexdigest() != digest:
        raise InvalidArgument(
            "path",
            f"{what} changed while it was being stored (it hashed to {digest} before the "
            "upload and otherwise during it): nothing was stored",
        )


def _read_up_to(src: io.FileIO, n: int) -> bytes:
    """``n`` bytes of ``src``, fewer only at its end (one read may return less)."""
    data = bytearray()
    while len(data) < n and (chunk := src.read(n - len(data))):
        data += chunk
    return bytes(data)


def _boto3_credentials() -> tuple[Any, str | None]:
    """boto3's credential chain as obstore's provider, and the session's region; (None,
    None) without boto3 or credentials (obstore then reads the environment itself)."""
    try:
        import boto3
        from obstore.auth.boto3 import Boto3CredentialProvider
    except ImportError:
        return None, None
    session = boto3.Session()
    if session.get_credentials() is None:
        return None, session.region_name
    return Boto3CredentialProvider(session), session.region_name


def _last_touched(admin: Any, bucket: str, upload: dict[str, Any]) -> float:
    """When a multipart upload last got a part (or was started, if it has none)."""
    latest = upload["Initiated"].timestamp()
    pages = admin.get_paginator("list_parts")
    with contextlib.suppress(admin.exceptions.NoSuchUpload):
        for page in pages.paginate(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]):
            for part in page.get("Parts", []):
                latest = max(latest, part["LastModified"].timestamp())
    return float(latest)


def _is_s3_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("obstore", "botocore", "boto3")) or isinstance(
        exc, ConnectionError | TimeoutError
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else text
