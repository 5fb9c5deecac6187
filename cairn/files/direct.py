"""Direct I/O for big objects: page-aligned buffers, ``O_DIRECT`` descriptors and a
read-ahead reader.

Why: writing a new byte through the page cache costs the CPU a copy into a freshly
allocated page, which on a virtual machine is the dearest thing a big upload does
(measured: most of the server's kernel time for a 256 MiB object). ``O_DIRECT`` hands the
buffer to the disk instead. A file written that way is not in the page cache, so reading
it back goes to the disk too: :class:`ReadAhead` keeps the disk a few blocks ahead of the
reader. Everything falls back to plain buffered I/O where the system or the file system
has no direct I/O (macOS, some FUSE file systems), or refuses it for a file.
"""

from __future__ import annotations

import errno
import mmap
import os
import queue
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "CHUNK",
    "Buffers",
    "ReadAhead",
    "chunks",
    "open_direct",
    "pwrite_direct",
    "start_read_ahead",
]

# Measured on a 256 MiB file: 1 MiB chunks with four buffers beat 2, 4 and 8 MiB chunks;
# bigger chunks only delay the overlap between hashing and writing.
CHUNK: Final = 1 << 20
_ALIGN: Final = 4096  # O_DIRECT wants offsets and lengths in whole logical blocks
_O_DIRECT: Final = getattr(os, "O_DIRECT", 0)
# Reads ahead: three blocks of 4 MiB. One direct read of 4 MiB ran at 1.5-1.7 GB/s here,
# of 1 MiB at 1.1-1.2 GB/s.
_BLOCK: Final = 4 << 20
_DEPTH: Final = 3
# Readers with a thread and 12 MiB each, at most; more downloads at once read buffered.
_READERS: Final = 8
_PRIVATE_MAP: Final = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)


class Buffers:
    """Page-aligned buffers of ``size`` bytes (anonymous maps, as ``O_DIRECT`` wants
    them), kept for reuse so that their memory stays warm: touching fresh pages is what
    costs most on a virtual machine.

    The maps are private, so a forked child writes into copies of its own, and a child
    starts with an empty pool (the parent's buffers may be in use as it forks).
    """

    def __init__(self, size: int, keep: int) -> None:
        self._size = size
        self._keep = keep
        self._lock = threading.Lock()
        self._free: list[memoryview] = []
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def take(self) -> memoryview:
        with self._lock:
            if self._free:
                return self._free.pop()
        if _PRIVATE_MAP:
            return memoryview(mmap.mmap(-1, self._size, flags=_PRIVATE_MAP))
        return memoryview(mmap.mmap(-1, self._size))  # Windows: private already

    def give_back(self, buffer: memoryview) -> None:
        with self._lock:
            if len(self._free) < self._keep:
                self._free.append(buffer)

    def _forget(self) -> None:
        self._lock = threading.Lock()  # a thread of the parent may have held it
        self._free = []


chunks: Final = Buffers(CHUNK, keep=8)  # for writers: two at a time stay warm
_blocks: Final = Buffers(_BLOCK, keep=_DEPTH)  # for readers: one at a time stays warm


class _ReaderSlots:
    """How many more :class:`ReadAhead` may start; a forked child starts with all free
    (the parent's readers have no threads there)."""

    def __init__(self) -> None:
        self.reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.free = threading.BoundedSemaphore(_READERS)


_readers: Final = _ReaderSlots()


def open_direct(path: str, flags: int) -> int | None:
    """A descriptor of ``path`` with ``O_DIRECT`` added to ``flags``, or None if there is
    none to have (no direct I/O here, or any error opening it: the caller then goes
    through the page cache, which works wherever the file does)."""
    if not _O_DIRECT:
        return None
    try:
        return os.open(path, flags | _O_DIRECT | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


def pwrite_direct(fd: int, view: memoryview, offset: int) -> int:
    """Write what ``O_DIRECT`` takes of ``view`` at ``offset``; 0 if it refuses this
    alignment (the caller writes through the page cache instead)."""
    try:
        return os.pwrite(fd, view, offset)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return 0
        raise


def start_read_ahead(fd: int, path: str, size: int, cached_until: int) -> ReadAhead | None:
    """A :class:`ReadAhead` of the open file ``fd`` (found at ``path``), or None if none
    can be had now: no direct I/O for this file, or :data:`_READERS` at work already."""
    slots = _readers.free
    if not slots.acquire(blocking=False):
        return None
    # The very file of ``fd``, even if its name has gone meanwhile (Linux's /proc).
    proc = f"/proc/self/fd/{fd}"
    direct = open_direct(proc if os.path.exists(proc) else path, os.O_RDONLY)
    if direct is None:
        slots.release()
        return None
    try:
        return ReadAhead(fd, direct, size, cached_until, slots)  # owns the slot, even if it fails
    except BaseException:
        os.close(direct)
        raise


class ReadAhead:
    """A file of known size read from its start, in order, by a worker thread that stays
    up to :data:`_DEPTH` blocks ahead of :meth:`readinto`.

    Bytes from ``cached_until`` on are read with ``O_DIRECT`` (``direct``, a second
    descriptor of the file): straight from the disk, so that a big object read once does
    not fill the page cache (the kernel writes back any cached changes first, so what
    is read is always current). Bytes before it, written through the cache, are read
    through it. A raw source for :class:`~cairn.store.objects.port.VerifyingReader`, used
    by one thread at a time; it owns both descriptors, which the worker closes once the
    reader is closed. Build it with :func:`start_read_ahead`.
    """

    def __init__(
        self, fd: int, direct: int, size: int, cached_until: int, slots: threading.Semaphore
    ) -> None:
        self._fd = fd
        self._slots = slots  # released when the worker stops
        self._direct: int | None = direct
        self._size = size
        self._cached_until = cached_until
        self._free: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        self._ready: queue.SimpleQueue[tuple[memoryview, int] | BaseException | None] = (
            queue.SimpleQueue()
        )
        self._owned: list[memoryview] = []
        self._current: memoryview | None = None
        self._start = 0  # next byte of _current to hand out
        self._end = 0  # bytes in _current
        self._eof = False
        self._error: BaseException | None = None  # raised again by every later read
        self._closed = False
        self._closing = threading.Event()
        try:
            for _ in range(_DEPTH):
                self._owned.append(_blocks.take())
                self._free.put(self._owned[-1])
            threading.Thread(target=self._run, name="cairn-read-ahead", daemon=True).start()
        except BaseException:
            self._release()  # the caller closes fd and direct
            raise

    def readinto(self, dest: WriteableBuffer, /) -> int:
        if self._closed:
            raise ValueError("read of a closed object")
        if self._error is not None:
            raise self._error
        view = memoryview(dest).cast("B")
        if self._current is None:
            if self._eof:
                return 0
            item = self._ready.get()
            if item is None:
                self._eof = True
                return 0
            if isinstance(item, BaseException):
                self._error = item
                raise item
            self._current, self._end = item
            self._start = 0
        n = min(len(view), self._end - self._start)
        view[:n] = self._current[self._start : self._start + n]
        self._start += n
        if self._start == self._end:
            self._free.put(self._current)
            self._current = None
        return n

    def close(self) -> None:
        # Does not wait: the worker may be in the middle of a disk read, and this may run
        # on an event loop. The worker releases the descriptors and buffers as it stops.
        if not self._closed:
            self._closed = True
            self._closing.set()
            self._free.put(None)  # wakes the worker if it waits for a buffer

    def _run(self) -> None:
        try:
            self._read_all()
        finally:
            self._closing.wait()  # until then the reader may be copying out of a buffer
            for fd in (self._fd, self._direct):
                if fd is not None:
                    os.close(fd)
            self._release()

    def _release(self) -> None:
        for buffer in self._owned:
            _blocks.give_back(buffer)
        self._owned.clear()
        self._slots.release()

    def _read_all(self) -> None:
        offset = 0
        try:
            while offset < self._size:
                buffer = self._free.get()
                if buffer is None or self._closing.is_set():
                    break  # closed
                n = self._read(buffer, min(_BLOCK, self._size - offset), offset)
                if n == 0:
                    break  # shorter than its size: the reader's check reports it
                self._ready.put((buffer, n))
                offset += n
        except BaseException as exc:  # handed to the reading thread
            self._ready.put(exc)
            return
        self._ready.put(None)

    def _read(self, buffer: memoryview, want: int, offset: int) -> int:
        """Up to ``want`` bytes at ``offset`` into ``buffer`` (a whole aligned block)."""
        if offset < self._cached_until:
            want = min(want, self._cached_until - offset)
        elif self._direct is not None and offset % _ALIGN == 0:
            whole_blocks = buffer[: -(-want // _ALIGN) * _ALIGN]  # may reach past EOF
            try:
                return min(os.preadv(self._direct, [whole_blocks], offset), want)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                os.close(self._direct)
                self._direct = None  # refused: buffered from now on
        return os.preadv(self._fd, [buffer[:want]], offset)
