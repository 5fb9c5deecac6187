"""Artifact transfer over HTTP: bytes stream between disk and the server's object routes.

The logic of what to store (a file, a folder as a tree, bytes, a stream) and where to
place a download is shared with the embedded service (:mod:`cairn.files.artifacts`), run
here against :class:`RemoteObjects`, which speaks the object routes:

* up: hash the source (BLAKE3, in big chunks), ``HEAD`` to skip what the server has,
  then ``PUT`` it; the server hashes it again and refuses a mismatch. From
  :data:`STREAM_THRESHOLD` up, hashing and sending overlap instead: ``POST /objects``
  names the bytes by the digest the server computed, which must be the one a second
  thread computed meanwhile. A file above :data:`MULTIPART_THRESHOLD` goes as parts of
  :data:`PART_SIZE` (each an object, each retried alone, present ones skipped) that
  ``POST /objects/compose`` joins, so a dropped connection costs one part and a re-run
  resumes. A body is read from the source piece by piece as urllib3 sends it, and
  rewound when urllib3 tries again.
* down: ``GET`` streams into a temp file beside the destination, hashed on the way; a
  mismatch raises ``CorruptObject`` and leaves nothing; then rename.
* many small objects (a folder's files up to 1 MiB): ``POST /objects/missing`` asks
  which the server lacks, ``POST /objects/batch`` sends those framed, many per request
  (:mod:`cairn.core.frames`), and ``POST /objects/batch/read`` brings a folder's small
  files down the same way, each checked against its digest here.

Nothing holds a whole file in memory.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Protocol

import urllib3

from cairn.client._http_chunks import upload_chunked
from cairn.client._transport import NETWORK_ERRORS, Response, Transport, check
from cairn.core import frames
from cairn.core.digest import Digest, digest_bytes, new_hasher, parse_digest
from cairn.core.errors import (
    CairnError,
    CorruptObject,
    InvalidArgument,
    StoreUnavailable,
)
from cairn.core.model import ArtifactInfo
from cairn.core.objects import ObjectInfo, Progress
from cairn.core.settings import Settings
from cairn.core.tree import TreeEntry
from cairn.core.validation import check_artifact_key, check_entity_id
from cairn.files.artifacts import (
    ARTIFACT_KINDS,
    ArtifactSource,
    ResolvedArtifact,
    place_artifact,
    store_source,
)
from cairn.files.reading import VerifyingReader, open_source
from cairn.files.statcache import open_stat_cache
from cairn.files.writing import write_file_atomically

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "STREAM_THRESHOLD",
    "HttpArtifacts",
    "RemoteObjects",
]

MiB: Final = 1 << 20
# Files above the threshold go as parts of PART_SIZE: one dropped connection costs one
# part, but the server then copies the parts into the whole (a second write of every
# byte: 1 GiB of new bytes went up at 236-258 MB/s in parts, 590-814 MB/s in one
# stream), hence a high threshold. From STREAM_THRESHOLD up to it, a file is hashed
# while it is sent (hashing first took as long as sending). Read at call time, so tests
# may change them.
PART_SIZE = 64 * MiB
MULTIPART_THRESHOLD = 1024 * MiB
STREAM_THRESHOLD = 8 * MiB
_CHUNK: Final = 4 * MiB  # reads from disk, for hashing
_RESPONSE_BUFFER: Final = MiB
_SLOWEST_DISK: Final = 20 * MiB  # bytes/s a server copies at, at worst (for timeouts)
_OCTETS: Final = {"content-type": "application/octet-stream"}
# Small objects go up and down framed, many a request (cairn/core/frames.py), within
# the server's bounds: digests per question, objects and bytes per batch.
_ASK_AT_ONCE: Final = 50_000
_FRAMED_UP_TO: Final = 1 * MiB
_FRAMED_OBJECTS: Final = 4096
_FRAMED_BYTES: Final = 16 * MiB


def _content_length(response: urllib3.BaseHTTPResponse) -> int | None:
    value = response.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


# -- progress ---------------------------------------------------------------------------------
# Told how far one transfer has got (bytes from its start); a retry starts again from 0.
_Sent = Callable[[int], None]


class _Meter:
    """Tells ``progress`` of the bytes of one object as they move, each byte once: a
    transfer retried from its start reports only what goes beyond the earlier attempts."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._reached: dict[int, int] = {}

    def skipped(self, size: int) -> None:
        """Bytes the server has already: done without moving."""
        if self._progress is not None and size:
            self._progress(size)

    def at(self, offset: int) -> _Sent:
        """The callback of the transfer of the part at ``offset`` (0 for a whole object)."""

        def sent(position: int) -> None:
            before = self._reached.get(offset, 0)
            if position > before and self._progress is not None:
                self._reached[offset] = position
                self._progress(position - before)

        return sent


# -- what an upload reads from ----------------------------------------------------------------
class _Source(Protocol):
    def readinto_at(self, offset: int, buffer: memoryview) -> int: ...

    def read_at(self, offset: int, size: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _FileSource:
    """An open file, read by offset (``pread``: no shared position to get wrong; the
    server hashes what arrives, so a file changed since it was hashed is refused)."""

    file: io.FileIO

    def readinto_at(self, offset: int, buffer: memoryview) -> int:
        return os.preadv(self.file.fileno(), [buffer], offset)

    def read_at(self, offset: int, size: int) -> bytes:
        return os.pread(self.file.fileno(), size, offset)


class _StreamSource:
    """A seekable binary stream, from the position it had when we got it. Each read is a
    seek then a read under a lock: a hashing thread and a sending one may share it."""

    def __init__(self, stream: BinaryIO, base: int) -> None:
        self.stream = stream
        self.base = base
        self._lock = threading.Lock()

    def readinto_at(self, offset: int, buffer: memoryview) -> int:
        data = self.read_at(offset, len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read_at(self, offset: int, size: int) -> bytes:
        with self._lock:
            self.stream.seek(self.base + offset)
            data = self.stream.read(size)
        if not isinstance(data, bytes | bytearray):
            raise InvalidArgument("src", "must be a binary stream (read() returned no bytes)")
        return bytes(data)


class _Body:
    """``length`` bytes of a source from ``offset``, as the file-like request body urllib3
    reads piece by piece (and rewinds with ``seek`` to try again); tells ``sent`` how far
    it has got."""

    def __init__(self, source: _Source, offset: int, length: int, sent: _Sent) -> None:
        self._source = source
        self._offset = offset
        self._length = length
        self._sent = sent
        self._at = 0

    def read(self, size: int = -1, /) -> bytes:
        left = self._length - self._at
        wanted = left if size < 0 else min(size, left)
        if wanted <= 0:
            return b""
        data = self._source.read_at(self._offset + self._at, wanted)
        if not data:
            raise InvalidArgument("source", "shrank while it was being uploaded")
        self._at += len(data)
        self._sent(self._at)
        return data

    def tell(self) -> int:
        return self._at

    def seek(self, position: int, whence: int = os.SEEK_SET, /) -> int:
        if whence != os.SEEK_SET:
            raise io.UnsupportedOperation("an upload body seeks from its start only")
        self._at = position
        return position


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
    """The body of a streamed response as a raw ``readinto`` source. ``on_broken`` runs
    when the connection breaks mid-body (it asks the server whether its copy is
    corrupt); the connection goes back to the pool once the body is read to its end."""

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        url: str,
        on_broken: Callable[[], None] | None = None,
        received: _Sent | None = None,
    ) -> None:
        self._response = response
        self._url = url
        self._on_broken = on_broken
        self._received = received
        self._position = 0
        self._ended = False

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        try:
            n = self._response.readinto(memoryview(buffer).cast("B"))
        except NETWORK_ERRORS as exc:
            if self._on_broken is None:
                raise
            self._on_broken()  # raises CorruptObject if the server's copy is bad
            raise StoreUnavailable(
                f"lost the connection while reading from {self._url}: {exc!r}", url=self._url
            ) from exc
        if n:
            self._position += n
            if self._received is not None:
                self._received(self._position)
        else:
            self._ended = True
        return n

    def close(self) -> None:
        if not self._ended:
            self._response.close()  # a body left unread: the connection cannot be reused
        self._response.release_conn()


class RemoteObjects:
    """The object-store calls artifacts need (put, copy out, open), over HTTP."""

    def __init__(
        self, transport: Transport, entity: str | None = None, key: str | None = None
    ) -> None:
        """``entity`` and ``key``: the artifact the uploads are for (the server checks its
        project's quota before it writes a byte)."""
        self._t = transport
        hint = {"entity": entity, "key": key} if entity is not None else {}
        self._for = {name: value for name, value in hint.items() if value is not None} or None

    # -- up -----------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> ObjectInfo:
        data = bytes(data)
        digest = digest_bytes(data)
        if not self.exists(digest):
            path = f"/objects/{digest}"
            self._t.request("PUT", path, params=self._for, content=data, headers=_OCTETS)
        return ObjectInfo(digest, len(data))

    def put_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo:
        with open_source(path) as file:
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            return self._upload(_FileSource(file), os.fstat(file.fileno()).st_size, progress)

    def put_stream(self, src: BinaryIO, progress: Progress | None = None) -> ObjectInfo:
        seekable = getattr(src, "seekable", None)
        if callable(seekable) and seekable():
            base = src.tell()
            size = src.seek(0, os.SEEK_END) - base
            src.seek(base)
            return self._upload(_StreamSource(src, base), size, progress)
        # A pipe or socket: spooled to a temp file first (to hash it, and to re-send it).
        with tempfile.TemporaryFile(prefix="cairn-upload-", buffering=0) as spool:
            while chunk := src.read(_CHUNK):
                if not isinstance(chunk, bytes | bytearray):
                    raise InvalidArgument(
                        "src", "must be a binary stream (read() returned no bytes)"
                    )
                spool.write(chunk)
            assert isinstance(spool, io.FileIO)
            return self._upload(_FileSource(spool), spool.tell(), progress)

    def missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """Those of ``digests`` the server lacks: one ``POST /objects/missing`` for up
        to :data:`_ASK_AT_ONCE` of them."""
        asked = list(dict.fromkeys(parse_digest(d) for d in digests))
        lacking: list[Digest] = []
        for start in range(0, len(asked), _ASK_AT_ONCE):
            body = {"digests": asked[start : start + _ASK_AT_ONCE]}
            answer = self._t.request("POST", "/objects/missing", json=body).json()
            lacking.extend(parse_digest(d) for d in answer["missing"])
        return lacking

    def put_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Store small objects: ask which the server lacks, send those framed, many
        per ``POST /objects/batch`` (each checked there; bigger ones one by one)."""
        infos = [ObjectInfo(digest_bytes(item), len(item)) for item in items]
        self.put_hashed([(info.digest, item) for info, item in zip(infos, items, strict=True)])
        return infos

    def put_hashed(self, items: Sequence[tuple[Digest, bytes]]) -> None:
        """Store small objects named by the digests hashed here already: those the
        server lacks go framed (the server hashes each again and refuses a batch with
        one that does not match its digest)."""
        lacking = set(self.missing(digest for digest, _ in items))
        batch: list[tuple[Digest, bytes]] = []
        held = 0
        for digest, item in items:
            if digest not in lacking:
                continue
            lacking.discard(digest)  # sent once
            if len(item) > _FRAMED_UP_TO:
                self.put_bytes(bytes(item))
                continue
            if batch and (len(batch) == _FRAMED_OBJECTS or held + len(item) > _FRAMED_BYTES):
                self._send_batch(batch)
                batch, held = [], 0
            batch.append((digest, bytes(item)))
            held += len(item)
        if batch:
            self._send_batch(batch)

    def _send_batch(self, batch: list[tuple[Digest, bytes]]) -> None:
        self._t.request(
            "POST",
            "/objects/batch",
            params=self._for,
            content=frames.encode(batch),
            headers=_OCTETS,
        )

    def read_many(self, entries: Sequence[tuple[Digest, int]]) -> Iterator[tuple[Digest, bytes]]:
        """The bytes of small objects, many per ``POST /objects/batch/read``, each
        checked against its digest here (``CorruptObject`` if one does not match)."""
        wanted = list(dict.fromkeys((parse_digest(d), size) for d, size in entries))
        start = 0
        while start < len(wanted):
            end, held = start, 0
            while end < len(wanted) and end - start < _FRAMED_OBJECTS:
                if end > start and held + wanted[end][1] > _FRAMED_BYTES:
                    break
                held += wanted[end][1]
                end += 1
            digests = [digest for digest, _ in wanted[start:end]]
            yield from self._read_batch(digests)
            start = end

    def _read_batch(self, digests: list[Digest]) -> list[tuple[Digest, bytes]]:
        answer = self._t.request("POST", "/objects/batch/read", json={"digests": digests})
        got = frames.decode(answer.content)
        if [digest for digest, _ in got] != digests:
            raise CairnError("the server answered a batch read with other objects")
        out = []
        for digest, data in got:
            actual = digest_bytes(data)
            if actual != digest:
                raise CorruptObject(
                    f"object {digest} arrived corrupt: its bytes hash to {actual}",
                    digest=digest,
                    actual=actual,
                )
            out.append((digest, bytes(data)))
        return out

    def exists(self, digest: Digest, size: int | None = None) -> bool:
        """The server has the object (of ``size`` bytes, if given: a stored copy of
        another size is damaged, and sending the bytes heals it)."""
        path = f"/objects/{digest}"
        response = self._t.open("HEAD", path)
        if response.status == 404:
            return False
        check(Response(response.status, response.headers, response.data, self._t.url(path)))
        length = response.headers.get("Content-Length")
        return size is None or length is None or int(length) == size

    def _upload(self, source: _Source, size: int, progress: Progress | None) -> ObjectInfo:
        # A big file the server has a version of: only the chunks it lacks (_http_chunks).
        chunked = upload_chunked(self._t, self._for, source, size, progress)
        if chunked is not None:
            return chunked
        meter = _Meter(progress)
        if STREAM_THRESHOLD <= size <= MULTIPART_THRESHOLD:
            return self._send_while_hashing(source, size, meter)
        plan = _plan(source, size)
        if self.exists(plan.digest, size):
            meter.skipped(size)
            return ObjectInfo(plan.digest, size)
        if not plan.parts:
            self._put(source, plan.digest, 0, size, meter)
        else:
            for offset, length, digest in plan.parts:
                if self.exists(digest, length):
                    meter.skipped(length)
                else:
                    self._put(source, digest, offset, length, meter)
            body = {"parts": [d for _, _, d in plan.parts], "digest": plan.digest}
            # The server copies every byte before it answers: allow for a slow disk.
            timeout = max(self._t.timeout, size / _SLOWEST_DISK)
            self._t.request(
                "POST", "/objects/compose", params=self._for, json=body, timeout=timeout
            )
        return ObjectInfo(plan.digest, size)

    def _send_while_hashing(self, source: _Source, size: int, meter: _Meter) -> ObjectInfo:
        """``POST /objects`` the source while a second thread hashes it; the server
        answers with the digest of what it received, which must be ours. (Without a
        digest first there is no ``HEAD`` to skip bytes the server has: they are sent
        again, and stored once.)"""
        hashed: list[Digest | BaseException] = []

        def hash_source() -> None:
            try:
                hashed.append(_plan(source, size).digest)
            except BaseException as exc:  # re-raised on the caller's thread
                hashed.append(exc)

        hashing = threading.Thread(target=hash_source, name="cairn-upload-hash", daemon=True)
        hashing.start()
        try:
            stored: dict[str, Any] = self._t.request(
                "POST",
                "/objects",
                params=self._for,
                content=_Body(source, 0, size, meter.at(0)),
                headers={**_OCTETS, "content-length": str(size)},
            ).json()
        finally:
            hashing.join()
        ours = hashed[0]
        if isinstance(ours, BaseException):
            raise ours
        if (stored.get("digest"), stored.get("size")) != (ours, size):
            raise InvalidArgument(
                "source",
                "changed while it was being uploaded: it hashes to "
                f"{ours} ({size} bytes), the server received {stored.get('digest')} "
                f"({stored.get('size')} bytes)",
            )
        return ObjectInfo(ours, size)

    def _put(
        self, source: _Source, digest: Digest, offset: int, length: int, meter: _Meter
    ) -> None:
        """Send one object (or part) from ``source``; a retry re-sends just this one."""
        body = _Body(source, offset, length, meter.at(offset))
        headers = {**_OCTETS, "content-length": str(length)}
        try:
            path = f"/objects/{digest}"
            self._t.request("PUT", path, params=self._for, content=body, headers=headers)
        except InvalidArgument as exc:
            if exc.details.get("field") == "digest":
                exc.add_note("cairn: the source changed while it was being uploaded")
            raise

    # -- down ---------------------------------------------------------------------------
    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        digest = parse_digest(digest)
        received = _Meter(progress).at(0)  # a retry starts again from 0: counted once
        return self._t.retrying(lambda: self._download(digest, dest, received))

    def _download(self, digest: Digest, dest: str | os.PathLike[str], received: _Sent) -> int:
        response = self._get(digest)
        reader = _ResponseReader(response, self._t.url(f"/objects/{digest}"), received=received)
        verified = VerifyingReader(reader, digest, _content_length(response))
        try:
            return write_file_atomically(verified.readinto, dest)
        except NETWORK_ERRORS:
            self.verify(digest)  # a broken body: the server's copy may be corrupt
            raise  # it is not: try again
        finally:
            reader.close()

    def _get(self, digest: Digest) -> urllib3.BaseHTTPResponse:
        """The streamed answer to ``GET /objects/{digest}`` (an error answer raises)."""
        path = f"/objects/{digest}"
        response = self._t.open("GET", path, preload=False)
        if response.status >= 400:
            try:  # a small error body: read whole, so the connection can be reused
                check(Response(response.status, response.headers, response.data, self._t.url(path)))
            finally:
                response.release_conn()
        return response

    def open(self, digest: Digest, size: int | None = None) -> BinaryIO:
        digest = parse_digest(digest)
        response = self._get(digest)
        raw = _ResponseReader(
            response, self._t.url(f"/objects/{digest}"), on_broken=lambda: self.verify(digest)
        )
        expected = size if size is not None else _content_length(response)
        return io.BufferedReader(
            VerifyingReader(raw, digest, expected), buffer_size=_RESPONSE_BUFFER
        )

    def verify(self, digest: Digest) -> None:
        """Have the server check its copy: ``CorruptObject`` if it is bad."""
        self._t.request("GET", f"/objects/{digest}/verify")


class HttpArtifacts:
    """Files and folders logged against entities (the
    :class:`~cairn.service.contracts.Artifacts` part of the HTTP backend)."""

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self._t = transport
        self.settings = settings
        self._objects = RemoteObjects(transport)

    def log_artifact(
        self,
        entity_id: str,
        key: str,
        source: ArtifactSource,
        progress: Progress | None = None,
    ) -> ArtifactInfo:
        """Log a file, a folder (kept as a tree), bytes or a binary file object;
        ``progress`` is told of the bytes as they are stored."""
        check_artifact_key(key)
        self.list_artifacts(entity_id)  # fail fast, before moving any bytes
        cache = open_stat_cache(self.settings.stat_cache)
        objects = RemoteObjects(self._t, entity_id, key)  # uploads name what they are for
        stored = store_source(objects, source, progress, self.settings.symlinks, cache)
        return self.record_artifact(entity_id, key, stored.kind, stored.digest)

    def record_artifact(self, entity_id: str, key: str, kind: str, digest: str) -> ArtifactInfo:
        """Record objects that are already stored as an artifact (checked, never trusted)."""
        check_entity_id(entity_id, "entity_id")
        check_artifact_key(key)
        if kind not in ARTIFACT_KINDS:
            raise InvalidArgument("kind", f"must be 'file' or 'tree', got {kind!r}")
        body = {"key": key, "kind": kind, "digest": parse_digest(digest)}
        return ArtifactInfo(**self._t.post(f"/entities/{entity_id}/artifacts", body))

    def list_artifacts(self, entity_id: str) -> list[ArtifactInfo]:
        check_entity_id(entity_id, "entity_id")
        return [ArtifactInfo(**a) for a in self._t.get(f"/entities/{entity_id}/artifacts")]

    def list_artifact_files(self, entity_id: str, key: str) -> list[TreeEntry]:
        """The files of an artifact (a tree lists each; a file lists itself)."""
        return list(self.resolve_artifact(entity_id, key).entries)

    def resolve_artifact(self, entity_id: str, key: str) -> ResolvedArtifact:
        """What a key names: an artifact, a file inside a tree, or a folder of one."""
        check_entity_id(entity_id, "entity_id")
        check_artifact_key(key)
        found: dict[str, Any] = self._t.get(f"/entities/{entity_id}/artifact-files", key=key)
        entries = tuple(
            TreeEntry(str(e["path"]), parse_digest(e["digest"]), int(e["size"]))
            for e in found["entries"]
        )
        kind = found["kind"]
        if kind not in ARTIFACT_KINDS or (kind == "file" and len(entries) != 1):
            raise CairnError(f"the server resolved {key!r} to an invalid answer", key=key)
        return ResolvedArtifact(kind, entries)

    def open_artifact(self, entity_id: str, key: str) -> BinaryIO:
        """A verifying read stream of a file artifact, or of a file inside a tree."""
        found = self.resolve_artifact(entity_id, key)
        return self._objects.open(found.file_digest(key), found.entries[0].size)

    def download_artifact(
        self,
        entity_id: str,
        key: str,
        dest: str | os.PathLike[str],
        progress: Progress | None = None,
    ) -> Path:
        """Write an artifact under ``dest``: into it if it is a folder (or ends in '/'),
        else at ``dest`` itself. Every file is verified and written atomically."""
        found = self.resolve_artifact(entity_id, key)
        return place_artifact(self._objects, found, key, dest, progress)
