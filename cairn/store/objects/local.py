"""Objects as files in a local folder.

Layout: ``root/objects/<2 hex>/<62 hex>`` for objects (fan-out keeps folders small) and
``root/tmp/`` for writes in progress (same filesystem, so the final rename is atomic).
A write goes temp file -> fsync -> rename -> fsync of the folder, and the digest is
computed from the very bytes written, so a source changing under us cannot produce an
object whose name lies about its content.

Streaming copies run in 1 MiB chunks through a small buffer pool: the calling thread
reads and hashes, a worker thread writes, so hashing overlaps the write. Writeback to
disk is started chunk by chunk, which makes the final fsync nearly free. Every write
path (``put_stream``, ``put_file``, ``open_writer``) goes through one writer.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import secrets
import threading
from types import TracebackType
from typing import BinaryIO, Final, Self

from cairn.core.digest import Digest, Hasher, digest_bytes, new_hasher, parse_digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.store.objects.port import (
    ClosingStore,
    ObjectInfo,
    Progress,
    ReadInto,
    VerifyingReader,
    check_expected_digest,
    counting,
    open_source,
)

__all__ = ["LocalObjectStore", "LocalObjectWriter", "fsync_dir", "write_file_atomically"]

# Measured on a 256 MiB file: 1 MiB chunks with four buffers beat 2, 4 and 8 MiB chunks;
# bigger chunks only delay the overlap between hashing and writing.
_CHUNK: Final = 1 << 20
_BUFFERS: Final = 4
_QUEUED_MIN: Final = 64 << 10  # smaller pieces of bytes are written inline: not worth a hop
_OBJECT_MODE: Final = 0o444  # objects are immutable; read-only guards against accidents


class LocalObjectStore(ClosingStore):
    """Content-addressed objects in ``root``. Cheap to construct; folders appear on first put."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = os.path.abspath(os.fspath(root))
        self._objects = os.path.join(self._root, "objects")
        self._tmp = os.path.join(self._root, "tmp")

    @property
    def root(self) -> str:
        return self._root

    def __repr__(self) -> str:
        return f"LocalObjectStore({self._root!r})"

    # -- writes ---------------------------------------------------------------

    def put_stream(self, src: BinaryIO, progress: Progress | None = None) -> ObjectInfo:
        return self._put_from(counting(_readinto_of(src), progress))

    def put_bytes(self, data: bytes) -> ObjectInfo:
        if not isinstance(data, bytes):
            data = bytes(data)  # hash and write one immutable snapshot
        digest = digest_bytes(data)
        info = ObjectInfo(digest, len(data))
        if os.path.exists(self._path(digest)):
            return info  # already stored: skip the write entirely
        tmp, fd = self._new_temp()
        try:
            _write_all(fd, memoryview(data))
            _seal(fd)
        except BaseException:
            _discard(fd, tmp)
            raise
        os.close(fd)
        self._install(tmp, digest)
        return info

    def put_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo:
        with open_source(path) as src:
            _advise_sequential(src.fileno())
            return self._put_from(counting(src.readinto, progress))

    def open_writer(self) -> LocalObjectWriter:
        return LocalObjectWriter(self)

    def delete(self, digest: Digest) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(digest))

    # -- reads ----------------------------------------------------------------

    def open(self, digest: Digest) -> BinaryIO:
        # Big reads bypass the buffer, so a small one serves short reads well.
        return io.BufferedReader(self._reader(digest), buffer_size=64 * 1024)

    def exists(self, digest: Digest) -> bool:
        return os.path.exists(self._path(digest))

    def size(self, digest: Digest) -> int:
        path = self._path(digest)
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            raise _not_found(digest) from None

    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        with self._reader(digest) as reader:
            return write_file_atomically(counting(reader.readinto, progress), dest)

    # -- lifecycle ------------------------------------------------------------

    # -- internals ------------------------------------------------------------

    def _path(self, digest: Digest) -> str:
        digest = parse_digest(digest)  # the only guard between a caller's string and a path
        return os.path.join(self._objects, digest[:2], digest[2:])

    def _reader(self, digest: Digest) -> VerifyingReader:
        path = self._path(digest)
        try:
            raw = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the reader
        except FileNotFoundError:
            raise _not_found(digest) from None
        try:
            size = os.fstat(raw.fileno()).st_size
            _advise_sequential(raw.fileno())
        except BaseException:
            raw.close()
            raise
        return VerifyingReader(raw, digest, size)

    def _put_from(self, readinto: ReadInto) -> ObjectInfo:
        with self.open_writer() as writer:
            writer.fill(readinto)
            return writer.commit()

    def _new_temp(self) -> tuple[str, int]:
        os.makedirs(self._tmp, exist_ok=True)
        return _create_exclusive(self._tmp, "", ".tmp", 0o600)

    def _install(self, tmp: str, digest: Digest) -> None:
        """Move a sealed temp file to its object path, unless the object is there already."""
        final = self._path(digest)
        if os.path.exists(final):
            # Stored once. A racing writer of the same digest wrote the same bytes, so
            # whichever rename wins below, the object is the same.
            os.unlink(tmp)
            return
        fanout = os.path.dirname(final)
        try:
            _mkdir_durable(fanout)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(fanout)  # the rename itself must survive a crash, not only the bytes


class LocalObjectWriter:
    """One new object of a :class:`LocalObjectStore`, written piece by piece into a temp
    file (see :class:`~cairn.store.objects.port.ObjectWriter`)."""

    def __init__(self, store: LocalObjectStore) -> None:
        self._store = store
        self._tmp, self._fd = store._new_temp()
        self._pipe = _Writer(self._fd)
        self._hasher = new_hasher()
        self._size = 0
        self._open = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        # Hashed here, from ``data`` itself: no copy. A mutable buffer is written before
        # returning, so nothing of it is kept; immutable ``bytes`` go to the worker
        # thread, so the caller hashes its next piece while the disk takes this one.
        # (``fill`` reads into our own buffers instead, so a source that changes cannot
        # make the digest lie.)
        self._check_open()
        view = memoryview(data).cast("B")
        try:
            self._hasher.update(view)
            if isinstance(data, bytes) and len(view) >= _QUEUED_MIN:
                self._pipe.submit_owned(view)
            else:
                self._pipe.write_now(view)
        except BaseException:
            self.abort()
            raise
        self._size += len(view)

    def fill(self, readinto: ReadInto) -> None:
        """Append everything ``readinto`` gives until EOF, read straight into the buffers."""
        self._check_open()
        try:
            self._size += _pump(readinto, self._pipe, self._hasher)
        except BaseException:
            self.abort()
            raise

    def commit(self, expected: Digest | None = None) -> ObjectInfo:
        self._check_open()
        self._open = False
        try:
            self._pipe.finish()
            digest = Digest(self._hasher.hexdigest())
            check_expected_digest(expected, digest)
            _seal(self._fd)
        except BaseException:
            _discard(self._fd, self._tmp)
            raise
        os.close(self._fd)
        self._store._install(self._tmp, digest)
        return ObjectInfo(digest, self._size)

    def abort(self) -> None:
        if self._open:
            self._open = False
            self._pipe.abort()
            _discard(self._fd, self._tmp)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _check_open(self) -> None:
        if not self._open:
            raise ValueError("the object writer is already committed or aborted")


def write_file_atomically(readinto: ReadInto, dest: str | os.PathLike[str]) -> int:
    """Copy ``readinto`` to EOF into ``dest``: temp file in dest's folder, then rename.

    If ``readinto`` raises (a verifying reader raises ``CorruptObject`` at the end), the
    temp file is removed and ``dest`` is left as it was. Returns the number of bytes.
    A download is a copy the object store can always make again, so it is atomic but
    not fsynced (like ``cp``): forcing it to disk halved download speed for nothing.
    """
    dest = os.path.abspath(os.fspath(dest))
    folder, name = os.path.split(dest)
    if os.path.isdir(dest):
        raise InvalidArgument("dest", f"{dest!r} is a folder, not a file path")
    try:
        # Honour the umask like any new file (mkstemp would force 0o600).
        tmp, fd = _create_exclusive(folder, f".{name[:100]}.", ".cairn-tmp", 0o666)
    except FileNotFoundError:
        raise NotFound(f"folder {folder!r} does not exist", path=folder) from None
    pipe = _Writer(fd, durable=False)
    try:
        size = _pump(readinto, pipe, None)
        pipe.finish()
    except BaseException:
        pipe.abort()
        _discard(fd, tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return size


# -- streaming ------------------------------------------------------------------


def _readinto_of(src: BinaryIO) -> ReadInto:
    """The fastest way to fill our buffers from ``src``: its own readinto if it has one."""
    readinto: ReadInto | None = getattr(src, "readinto", None)
    if readinto is not None:
        return readinto

    def copy_in(buffer: memoryview) -> int:
        data = src.read(len(buffer))
        if not isinstance(data, bytes | bytearray):
            raise InvalidArgument("src", "must be a binary stream (read() returned no bytes)")
        buffer[: len(data)] = data
        return len(data)

    return copy_in


def _pump(readinto: ReadInto, pipe: _Writer, hasher: Hasher | None) -> int:
    """Copy from ``readinto`` into ``pipe`` until EOF, hashing each chunk before it is
    queued. The caller finishes or aborts the pipe."""
    size = 0
    while True:
        buffer = pipe.take_buffer()
        n = readinto(buffer)
        if n is None:
            raise InvalidArgument("src", "non-blocking streams are not supported")
        if n == 0:
            pipe.release(buffer)
            return size
        if hasher is not None:
            hasher.update(buffer[:n])
        pipe.submit(buffer, n)
        size += n


class _Writer:
    """Writes chunks to ``fd`` on a worker thread, in order.

    Two kinds of chunk: our own reusable buffers (``take_buffer``/``submit``, a few of
    them, recycled once written) and caller's immutable bytes (``submit_owned``, at most
    :data:`_BUFFERS` queued at once). The first buffer is written inline: most objects
    fit in one chunk, and they should not pay for a thread.
    """

    def __init__(self, fd: int, *, durable: bool = True) -> None:
        self._durable = durable
        self._fd = fd
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        self._allocated = 0
        self._owned = threading.Semaphore(_BUFFERS)
        self._todo: queue.SimpleQueue[tuple[memoryview, int, bool] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._offset = 0
        self._error: BaseException | None = None

    def take_buffer(self) -> memoryview:
        if self._error is not None:
            raise self._error
        try:
            buffer = self._free.get_nowait()
        except queue.Empty:
            if self._allocated < _BUFFERS:
                self._allocated += 1
                return memoryview(bytearray(_CHUNK))
            buffer = self._free.get()  # wait for the worker to finish one
        if self._error is not None:
            raise self._error
        return buffer

    def submit(self, buffer: memoryview, n: int) -> None:
        if self._thread is None and self._offset == 0:
            self._write(buffer, n)
            self._free.put(buffer)
            return
        self._queue(buffer, n, False)

    def submit_owned(self, view: memoryview) -> None:
        """Queue ``view`` (of immutable bytes) to be written; waits while too many are."""
        if self._error is not None:
            raise self._error
        self._owned.acquire()
        self._queue(view, len(view), True)

    def write_now(self, view: memoryview) -> None:
        """Write ``view`` on the calling thread, after every chunk queued before it."""
        self._stop()
        if self._error is not None:
            raise self._error
        self._write(view, len(view))

    def release(self, buffer: memoryview) -> None:
        """Give back a buffer that was taken but not submitted."""
        self._free.put(buffer)

    def finish(self) -> None:
        self._stop()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._stop()

    def _queue(self, buffer: memoryview, n: int, owned: bool) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cairn-object-writer")
            self._thread.start()
        self._todo.put((buffer, n, owned))

    def _stop(self) -> None:
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            buffer, n, owned = item
            if self._error is None:
                try:
                    self._write(buffer, n)
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc
            if owned:
                self._owned.release()
            else:
                self._free.put(buffer)

    def _write(self, buffer: memoryview, n: int) -> None:
        _write_all(self._fd, buffer[:n])
        if self._durable:
            _start_writeback(self._fd, self._offset, n)
        self._offset += n


# -- small filesystem helpers ---------------------------------------------------


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _seal(fd: int) -> None:
    os.fchmod(fd, _OBJECT_MODE)
    os.fsync(fd)


def _discard(fd: int, path: str) -> None:
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(path)


def _create_exclusive(folder: str, prefix: str, suffix: str, mode: int) -> tuple[str, int]:
    """A new file with a random name in ``folder``; never reuses an existing one."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        path = os.path.join(folder, f"{prefix}{secrets.token_hex(8)}{suffix}")
        try:
            return path, os.open(path, flags, mode)
        except FileExistsError:
            continue


def _mkdir_durable(path: str) -> None:
    """Create ``path`` (and parents) if missing, fsyncing each parent that gained an entry."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    _mkdir_durable(parent)
    try:
        os.mkdir(path)
    except FileExistsError:
        return  # another writer created it; they fsync the parent
    fsync_dir(parent)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a folder's entries (a new name, a rename) survive a crash."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _advise_sequential(fd: int) -> None:
    # Only a hint (bigger read-ahead); pipes and some filesystems refuse it.
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    # On Linux, POSIX_FADV_DONTNEED on freshly written (dirty) pages starts their writeback
    # now and leaves them cached (dirty pages are not dropped). The disk then works while
    # we hash the next chunk, and the closing fsync has little left to wait for: measured
    # 2x faster durable writes than a plain write + fsync.
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _not_found(digest: Digest) -> NotFound:
    return NotFound(f"no object {digest}", digest=digest)
