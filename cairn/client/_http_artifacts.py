"""Artifact transfer over HTTP: bytes stream between disk and the server's object routes.

The logic of what to store (a file, a folder as a tree, bytes, a stream) and where
to place a download is the service's own (:mod:`cairn.service.artifacts`), run here
against :class:`RemoteObjects`, which speaks the object routes:

* up: hash the source (BLAKE3, in big chunks), ``HEAD`` to skip what the server has,
  then ``PUT`` it from disk in chunks; the server hashes it again and refuses a
  mismatch. A file above :data:`MULTIPART_THRESHOLD` goes as parts of
  :data:`PART_SIZE` (each an object, each retried alone, present ones skipped) that
  ``POST /objects/compose`` joins, so a dropped connection costs one part and a
  re-run resumes.
* down: ``GET`` streams into a temp file beside the destination, hashed on the way;
  a mismatch raises ``CorruptObject`` and leaves nothing; then fsync and rename.

Nothing holds a whole file in memory.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Protocol, TypeVar

import httpx

from cairn.client._transport import _RETRY_STATUS, Transport, decode_error
from cairn.core.digest import Digest, digest_bytes, new_hasher, parse_digest
from cairn.core.errors import (
    CairnError,
    InvalidArgument,
    NotFound,
    SchemaOutOfDate,
    StoreUnavailable,
)
from cairn.core.model import ArtifactInfo
from cairn.core.settings import Settings
from cairn.core.tree import TreeEntry
from cairn.core.validation import check_artifact_key, check_entity_id
from cairn.service.artifacts import (
    ArtifactSource,
    ResolvedArtifact,
    place_artifact,
    store_source,
)
from cairn.store.objects.local import write_file_atomically
from cairn.store.objects.port import ObjectInfo, VerifyingReader

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["MULTIPART_THRESHOLD", "PART_SIZE", "HttpArtifacts", "RemoteObjects"]

MiB: Final = 1 << 20
# Files above the threshold go as parts of PART_SIZE: one dropped connection costs one
# part. Read at call time, so tests may shrink them.
PART_SIZE = 64 * MiB
MULTIPART_THRESHOLD = 256 * MiB
_CHUNK: Final = 4 * MiB  # reads from disk and pieces of a request body
_RESPONSE_BUFFER: Final = MiB
_SLOWEST_DISK: Final = 20 * MiB  # bytes/s a server copies at, at worst (for timeouts)
_OCTETS: Final = {"content-type": "application/octet-stream"}

T = TypeVar("T")


class _Transient(Exception):
    """A response worth retrying (502/503/504), carrying the error it decoded to."""

    def __init__(self, error: CairnError) -> None:
        super().__init__(str(error))
        self.error = error


def _check(response: httpx.Response) -> httpx.Response:
    """The response if it succeeded; else the server's error (``_Transient`` if retryable)."""
    if response.status_code < 400:
        return response
    if not response.is_closed:
        response.read()
    error = decode_error(response)
    if response.status_code in _RETRY_STATUS and not isinstance(error, SchemaOutOfDate):
        raise _Transient(error)
    raise error


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


# -- what an upload reads from ----------------------------------------------------------------
class _Source(Protocol):
    def readinto_at(self, offset: int, buffer: memoryview) -> int: ...

    def read_at(self, offset: int, size: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _FileSource:
    """An open file, read by offset (``pread``: no shared position to get wrong)."""

    fd: int

    def readinto_at(self, offset: int, buffer: memoryview) -> int:
        return os.preadv(self.fd, [buffer], offset)

    def read_at(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, size, offset)


@dataclass(frozen=True, slots=True)
class _StreamSource:
    """A seekable binary stream, from the position it had when we got it."""

    stream: BinaryIO
    base: int

    def readinto_at(self, offset: int, buffer: memoryview) -> int:
        data = self.read_at(offset, len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read_at(self, offset: int, size: int) -> bytes:
        self.stream.seek(self.base + offset)
        data = self.stream.read(size)
        if not isinstance(data, bytes | bytearray):
            raise InvalidArgument("src", "must be a binary stream (read() returned no bytes)")
        return bytes(data)


def _chunks(source: _Source, offset: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``source`` from ``offset``, as request-body pieces. Each is a
    new ``bytes`` read straight from the source: it goes to the socket without a copy."""
    end = offset + length
    while offset < end:
        chunk = source.read_at(offset, min(_CHUNK, end - offset))
        if not chunk:
            raise InvalidArgument("source", "shrank while it was being uploaded")
        offset += len(chunk)
        yield chunk


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to send: the object's digest and, for a big one, its parts (offset, size, digest)."""

    digest: Digest
    size: int
    parts: tuple[tuple[int, int, Digest], ...]


def _plan(source: _Source, size: int) -> _Plan:
    """Hash ``size`` bytes of ``source`` once, and each part too if it is big."""
    multipart = size > MULTIPART_THRESHOLD
    part_size = PART_SIZE if multipart else max(size, 1)
    whole = new_hasher()
    parts: list[tuple[int, int, Digest]] = []
    buffer = memoryview(bytearray(min(_CHUNK, max(size, 1))))
    offset = 0
    while offset < size:
        part, start = new_hasher(), offset
        end = min(size, offset + part_size)
        while offset < end:
            n = source.readinto_at(offset, buffer[: min(len(buffer), end - offset)])
            if n <= 0:
                raise InvalidArgument("source", "shrank while it was being read")
            whole.update(buffer[:n])
            if multipart:
                part.update(buffer[:n])
            offset += n
        parts.append((start, end - start, Digest(part.hexdigest())))
    digest = Digest(whole.hexdigest())
    return _Plan(digest, size, tuple(parts) if multipart else ())


# -- downloads ------------------------------------------------------------------------------
class _ResponseReader:
    """The body of a streamed response as a raw ``readinto`` source, in big fills."""

    def __init__(
        self, response: httpx.Response, on_broken: Callable[[], None] | None = None
    ) -> None:
        self._response = response
        self._chunks = response.iter_raw()
        self._pending = memoryview(b"")
        self._on_broken = on_broken

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        try:
            while filled < len(view):
                if not self._pending:
                    chunk = next(self._chunks, None)
                    if chunk is None:
                        break
                    self._pending = memoryview(chunk)
                n = min(len(self._pending), len(view) - filled)
                view[filled : filled + n] = self._pending[:n]
                self._pending = self._pending[n:]
                filled += n
        except httpx.TransportError as exc:
            if self._on_broken is None:
                raise
            self._on_broken()  # raises CorruptObject if the server's copy is bad
            raise StoreUnavailable(
                f"lost the connection while reading from {self._response.url}: {exc}",
                url=str(self._response.url),
            ) from exc
        return filled

    def close(self) -> None:
        self._response.close()


class RemoteObjects:
    """The object-store calls artifacts need (put, copy out, open), over HTTP."""

    def __init__(self, http: httpx.Client, retry_timeout: float) -> None:
        self._http = http
        self._retry_timeout = retry_timeout

    # -- up -----------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> ObjectInfo:
        data = bytes(data)
        digest = digest_bytes(data)
        if not self.exists(digest):
            self._retrying(
                lambda: _check(self._http.put(f"/objects/{digest}", content=data, headers=_OCTETS))
            )
        return ObjectInfo(digest, len(data))

    def put_file(self, path: str | os.PathLike[str]) -> ObjectInfo:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise NotFound(f"no file at {os.fspath(path)!r}", path=os.fspath(path)) from None
        try:
            if os.path.isdir(path):
                raise InvalidArgument("path", f"{os.fspath(path)!r} is a folder, not a file")
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            return self._upload(_FileSource(fd), os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def put_stream(self, src: BinaryIO) -> ObjectInfo:
        seekable = getattr(src, "seekable", None)
        if callable(seekable) and seekable():
            base = src.tell()
            size = src.seek(0, os.SEEK_END) - base
            src.seek(base)
            return self._upload(_StreamSource(src, base), size)
        # A pipe or socket: spooled to a temp file first (to hash it, and to re-send it).
        with tempfile.TemporaryFile(prefix="cairn-upload-") as spool:
            while chunk := src.read(_CHUNK):
                if not isinstance(chunk, bytes | bytearray):
                    raise InvalidArgument(
                        "src", "must be a binary stream (read() returned no bytes)"
                    )
                spool.write(chunk)
            spool.flush()
            return self._upload(_FileSource(spool.fileno()), spool.tell())

    def exists(self, digest: Digest) -> bool:
        def head() -> bool:
            response = self._http.head(f"/objects/{digest}")
            if response.status_code == 404:
                return False
            _check(response)
            return True

        return self._retrying(head)

    def _upload(self, source: _Source, size: int) -> ObjectInfo:
        plan = _plan(source, size)
        if self.exists(plan.digest):
            return ObjectInfo(plan.digest, size)
        if not plan.parts:
            self._put(source, plan.digest, 0, size)
        else:
            for offset, length, digest in plan.parts:
                if not self.exists(digest):
                    self._put(source, digest, offset, length)
            body = {"parts": [d for _, _, d in plan.parts], "digest": plan.digest}
            # The server copies every byte before it answers: allow for a slow disk.
            timeout = max(self._http.timeout.read or 0.0, size / _SLOWEST_DISK)
            self._retrying(
                lambda: _check(self._http.post("/objects/compose", json=body, timeout=timeout))
            )
        return ObjectInfo(plan.digest, size)

    def _put(self, source: _Source, digest: Digest, offset: int, length: int) -> None:
        """Send one object (or part) from ``source``; a retry re-sends just this one."""

        def send() -> None:
            _check(
                self._http.put(
                    f"/objects/{digest}",
                    content=_chunks(source, offset, length),
                    headers={**_OCTETS, "content-length": str(length)},
                )
            )

        try:
            self._retrying(send)
        except InvalidArgument as exc:
            if exc.details.get("field") == "digest":
                exc.add_note("cairn: the source changed while it was being uploaded")
            raise

    # -- down ---------------------------------------------------------------------------
    def copy_to_file(self, digest: Digest, dest: str | os.PathLike[str]) -> int:
        digest = parse_digest(digest)
        return self._retrying(lambda: self._download(digest, dest))

    def _download(self, digest: Digest, dest: str | os.PathLike[str]) -> int:
        with self._http.stream("GET", f"/objects/{digest}") as response:
            _check(response)
            reader = VerifyingReader(_ResponseReader(response), digest, _content_length(response))
            try:
                return write_file_atomically(reader.readinto, dest)
            except httpx.TransportError:
                self.verify(digest)  # a broken body: the server's copy may be corrupt
                raise  # it is not: try again

    def open(self, digest: Digest, size: int | None = None) -> BinaryIO:
        digest = parse_digest(digest)

        def start() -> httpx.Response:
            request = self._http.build_request("GET", f"/objects/{digest}")
            response = self._http.send(request, stream=True)
            try:
                return _check(response)
            except BaseException:
                response.close()
                raise

        response = self._retrying(start)
        raw = _ResponseReader(response, on_broken=lambda: self.verify(digest))
        expected = size if size is not None else _content_length(response)
        return io.BufferedReader(
            VerifyingReader(raw, digest, expected), buffer_size=_RESPONSE_BUFFER
        )

    def verify(self, digest: Digest) -> None:
        """Have the server check its copy: ``CorruptObject`` if it is bad."""
        self._retrying(lambda: _check(self._http.get(f"/objects/{digest}/verify")))

    # -- retries --------------------------------------------------------------------------
    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt``, again on transport failures and 502/503/504, with jittered
        exponential backoff for up to ``retry_timeout`` seconds (as every request)."""
        deadline = time.monotonic() + self._retry_timeout
        delay = 0.05
        while True:
            try:
                return attempt()
            except _Transient as exc:
                failure: Exception = exc.error
            except httpx.TransportError as exc:
                failure = exc
            if time.monotonic() + delay > deadline:
                if isinstance(failure, CairnError):
                    raise failure
                raise StoreUnavailable(
                    f"cannot reach the Cairn server at {self._http.base_url}: {failure}",
                    url=str(self._http.base_url),
                ) from failure
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


class HttpArtifacts:
    """The artifact calls of the HTTP backend (mixed into ``HttpBackend``)."""

    settings: Settings
    _t: Transport

    @cached_property
    def _objects(self) -> RemoteObjects:
        return RemoteObjects(self._t.http, self._t.retry_timeout)

    def log_artifact(self, entity_id: str, key: str, source: ArtifactSource) -> ArtifactInfo:
        """Log a file, a folder (kept as a tree), bytes or a binary file object."""
        check_artifact_key(key)
        self.list_artifacts(entity_id)  # fail fast, before moving any bytes
        stored = store_source(self._objects, source)
        body = {"key": key, "kind": stored.kind, "digest": stored.digest}
        return ArtifactInfo(**self._t.post(f"/entities/{entity_id}/artifacts", body))

    def list_artifacts(self, entity_id: str) -> list[ArtifactInfo]:
        check_entity_id(entity_id, "entity_id")
        return [ArtifactInfo(**a) for a in self._t.get(f"/entities/{entity_id}/artifacts")]

    def list_artifact_files(self, entity_id: str, key: str) -> list[TreeEntry]:
        """The files of an artifact (a tree lists each; a file lists itself)."""
        return list(self._resolve(entity_id, key).entries)

    def open_artifact(self, entity_id: str, key: str) -> BinaryIO:
        """A verifying read stream of a file artifact, or of a file inside a tree."""
        found = self._resolve(entity_id, key)
        return self._objects.open(found.file_digest(key), found.entries[0].size)

    def download_artifact(self, entity_id: str, key: str, dest: str | os.PathLike[str]) -> Path:
        """Write an artifact under ``dest``: into it if it is a folder (or ends in '/'),
        else at ``dest`` itself. Every file is verified and written atomically."""
        return place_artifact(self._objects, self._resolve(entity_id, key), key, dest)

    def _resolve(self, entity_id: str, key: str) -> ResolvedArtifact:
        check_entity_id(entity_id, "entity_id")
        check_artifact_key(key)
        found: dict[str, Any] = self._t.get(f"/entities/{entity_id}/artifact-files", key=key)
        entries = tuple(
            TreeEntry(str(e["path"]), parse_digest(e["digest"]), int(e["size"]))
            for e in found["entries"]
        )
        kind = found["kind"]
        if kind not in ("file", "tree") or (kind == "file" and len(entries) != 1):
            raise CairnError(f"the server resolved {key!r} to an invalid answer", key=key)
        return ResolvedArtifact(kind, entries)
