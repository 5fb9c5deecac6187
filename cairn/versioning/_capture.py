"""A local folder captured as a dataset version: every file hashed and its bytes stored,
the files a stat cache knows unchanged not read again, symbolic links recorded as links.

A file is stamped (``lstat``) when the folder is walked and again after it is read; if
the two differ it changed while being captured, and the capture is refused naming it
(a version must hold the bytes its digest says, not a mix of two writes).
"""

from __future__ import annotations

import collections
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final, NamedTuple, Protocol, runtime_checkable

from cairn.core.digest import Digest, digest_bytes
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.objects import ObjectInfo, Progress
from cairn.core.validation import check_artifact_key
from cairn.core.versioning.blobs import Component, PathDataset
from cairn.files.statcache import Stamp, StatCache

__all__ = ["CaptureStore", "capture_folder"]

# Files up to this size are read whole and stored in batches (one call, or one request,
# for many); bigger ones stream one by one.
SMALL_FILE: Final = 1 << 20
_BATCH_FILES: Final = 2048
_BATCH_BYTES: Final = 16 << 20
# A name from a folder listing (never empty, '.', '..' or holding '/') below a checked
# folder needs the whole path rule only if it holds one of these (control characters,
# a backslash, a lone surrogate) or makes the path too long: one search, not the rule.
_SUSPECT: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff]")
_LONGEST: Final = 1024
# Threads that read and hash small files (system calls and BLAKE3 let go of the GIL), and
# how many batches they may read ahead of the store.
_READERS: Final = 2
_AHEAD: Final = 1
# Batches stored at once (each a store_many: its own writes and two flushes).
_STORERS: Final = 2


@runtime_checkable
class CaptureStore(Protocol):
    """What capturing needs of a backend's repositories part."""

    def store_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo: ...

    def store_many(self, items: Sequence[bytes]) -> list[ObjectInfo]: ...

    def missing_objects(self, digests: Iterable[str]) -> list[Digest]: ...


class _Found(NamedTuple):
    path: str  # relative, with '/'
    real: str  # where it is (the root's real path joined with path: links not followed)
    stamp: Stamp
    link: str | None


def capture_folder(
    root: str | os.PathLike[str],
    store: CaptureStore,
    stat_cache: StatCache | None = None,
    progress: Progress | None = None,
) -> PathDataset:
    """Every file under ``root`` (a folder, or one file) hashed and stored; the captured
    dataset blob. ``progress`` is told of the bytes of each file as it is taken.

    Small files are read and hashed by two threads a batch ahead of the store, which
    writes the batch before (its writes and the reads overlap); big ones stream one by
    one after them."""
    found = _walk(root)
    stamps = {f.real: f.stamp for f in found if f.link is None}
    base = os.path.realpath(root)
    known = stat_cache.lookup(stamps, base) if stat_cache is not None else {}
    lacking = set(store.missing_objects(sorted(set(known.values())))) if known else set()
    digests: dict[str, Digest] = {
        real: digest for real, digest in known.items() if digest not in lacking
    }
    read: list[tuple[str, Stamp, Digest, int]] = []
    small: list[_Found] = []
    big: list[_Found] = []
    for item in found:
        if item.link is not None or item.real in digests:
            if progress is not None and item.link is None and item.stamp.size:
                progress(item.stamp.size)
        elif item.stamp.size > SMALL_FILE:
            big.append(item)
        else:
            small.append(item)
    for batch, infos in _store_ahead(store, _read_ahead(_batches(small), progress)):
        for (item, _, digest, read_ns), info in zip(batch, infos, strict=True):
            if info.digest != digest:
                raise InvalidArgument(
                    "path", f"the store answered another digest for {item.path!r}"
                )
            digests[item.real] = digest
            read.append((item.real, item.stamp, digest, read_ns))
    for item in big:
        read_ns = time.time_ns()
        info = store.store_file(item.real, progress)
        _unchanged(item, os.lstat(item.real), info.size)
        digests[item.real] = info.digest
        read.append((item.real, item.stamp, info.digest, read_ns))
    if stat_cache is not None:
        stat_cache.remember(read)
    components = []
    for item in found:
        modified = item.stamp.mtime_ns // 1_000_000
        if item.link is None:
            components.append(Component(item.path, item.stamp.size, modified, digests[item.real]))
        else:
            target = item.link.encode()
            components.append(
                Component(item.path, len(target), modified, digest_bytes(target), item.link)
            )
    return PathDataset(components, captured=True)


_Read = tuple[_Found, bytes, Digest, int]  # the file, its bytes, their digest, read time


def _batches(items: Sequence[_Found]) -> Iterator[list[_Found]]:
    """Small files in batches for one ``store_many`` each (by count and by bytes)."""
    batch: list[_Found] = []
    held = 0
    for item in items:
        batch.append(item)
        held += item.stamp.size
        if len(batch) >= _BATCH_FILES or held >= _BATCH_BYTES:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _store_ahead(
    store: CaptureStore, batches: Iterator[list[_Read]]
) -> Iterator[tuple[list[_Read], list[ObjectInfo]]]:
    """Each batch stored (``store_many``), in order, up to :data:`_STORERS` at once: a
    batch's writes and flushes (or its request) overlap the next one's; each call keeps
    its own promise (all of its objects durable once it returns)."""
    with ThreadPoolExecutor(_STORERS, thread_name_prefix="cairn-capture-store") as storers:
        pending: collections.deque[tuple[list[_Read], Future[list[ObjectInfo]]]]
        pending = collections.deque()
        try:
            for batch in batches:
                items = [data for _, data, _, _ in batch]
                pending.append((batch, storers.submit(store.store_many, items)))
                if len(pending) >= _STORERS:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:
            for _, future in pending:
                future.cancel()


def _read_ahead(
    batches: Iterator[list[_Found]], progress: Progress | None
) -> Iterator[list[_Read]]:
    """Each batch read and hashed, in order, by a few threads; the next batches are read
    while the caller stores this one (at most :data:`_AHEAD` batches held in memory)."""

    def read_one(item: _Found) -> _Read:
        read_ns = time.time_ns()
        data = _read_small(item)  # by its module name: a test may wrap it
        if progress is not None and data:
            progress(len(data))
        return item, data, digest_bytes(data), read_ns

    def read_batch(batch: list[_Found]) -> list[_Read]:
        return list(readers.map(read_one, batch, chunksize=64))

    with (
        ThreadPoolExecutor(_READERS, thread_name_prefix="cairn-capture") as readers,
        ThreadPoolExecutor(1, thread_name_prefix="cairn-capture-batch") as batcher,
    ):
        pending: collections.deque[Future[list[_Read]]] = collections.deque()
        try:
            for batch in batches:
                pending.append(batcher.submit(read_batch, batch))
                if len(pending) > _AHEAD:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _read_small(item: _Found) -> bytes:
    """A small file's bytes, refused if it is not what the walk saw or changes while read."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(item.real, flags)
    except FileNotFoundError:
        raise _changed(item, "was removed") from None
    except OSError as exc:
        raise InvalidArgument("path", f"{item.path!r} cannot be read: {exc.strerror}") from None
    try:
        if Stamp.of(os.fstat(fd)) != item.stamp:
            raise _changed(item, "changed")
        chunks = []
        while chunk := os.read(fd, max(item.stamp.size, 1) + 1):
            chunks.append(chunk)
        data = b"".join(chunks)
        _unchanged(item, os.fstat(fd), len(data))
    finally:
        os.close(fd)
    return data


def _unchanged(item: _Found, now: os.stat_result, size: int) -> None:
    if Stamp.of(now) != item.stamp or size != item.stamp.size:
        raise _changed(item, "changed")


def _changed(item: _Found, what: str) -> InvalidArgument:
    return InvalidArgument(
        "path",
        f"{item.path!r} {what} while being captured: capture again once it is not written to",
    )


def _check_path(relative: str) -> None:
    try:
        check_artifact_key(relative, "file path")
    except InvalidArgument as exc:
        raise InvalidArgument("path", f"{relative!r} cannot be versioned: {exc}") from None


def _walk(root: str | os.PathLike[str]) -> list[_Found]:
    """Every file and link under ``root``, in path order; links are not followed, special
    files (FIFO, socket, device) refused naming them."""
    top = os.fspath(root)
    try:
        info = os.stat(top)  # the root itself may be a link: the caller named it
    except FileNotFoundError:
        raise NotFound(f"no file or folder at {top!r}", path=top) from None
    real_top = os.path.realpath(top)
    if stat.S_ISREG(info.st_mode):
        name = os.path.basename(real_top)
        return [_Found(name, real_top, Stamp.of(os.lstat(real_top)), None)]
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidArgument("path", f"{top!r} is not a file or a folder")
    # Depth first, each folder's entries in name order: path order with no sort at the end.
    found: list[_Found] = []
    stack = [("", _listing(real_top))]
    while stack:
        prefix, entries = stack[-1]
        for entry in entries:
            relative = f"{prefix}/{entry.name}" if prefix else entry.name
            if not prefix or len(relative) > _LONGEST or _SUSPECT.search(entry.name):
                _check_path(relative)  # the whole rule, for the exact error
            here = entry.stat(follow_symlinks=False)
            mode = here.st_mode
            if stat.S_ISREG(mode):
                stamp = Stamp(
                    here.st_dev, here.st_ino, here.st_size, here.st_mtime_ns, here.st_ctime_ns
                )
                found.append(_Found(relative, entry.path, stamp, None))
            elif stat.S_ISDIR(mode):
                stack.append((relative, _listing(entry.path)))
                break
            elif stat.S_ISLNK(mode):
                found.append(_Found(relative, entry.path, Stamp.of(here), os.readlink(entry.path)))
            else:
                raise InvalidArgument("path", f"{relative!r} is not a file, folder or link")
        else:
            stack.pop()
    return found


def _listing(folder: str) -> Iterator[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return iter(sorted(entries, key=lambda e: e.name))
