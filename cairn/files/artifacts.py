"""Artifacts between local files and an object store: a file, a folder (as a tree
manifest), bytes or a stream in; a file or a folder out, verified and atomic.

The same functions run against the local object store (the embedded service) and against
the server's object routes (the HTTP client): each takes the small slice of an object
store it needs (:class:`ObjectSink`, :class:`ObjectSource`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Literal, Protocol, runtime_checkable

from cairn.core.digest import DIGEST_PATTERN, Digest, digest_bytes
from cairn.core.errors import CairnError, InvalidArgument
from cairn.core.objects import ObjectInfo, Progress
from cairn.core.settings import SYMLINKS_CHOICES
from cairn.core.tree import Tree, TreeEntry
from cairn.core.validation import check_artifact_key
from cairn.files.nofollow import check_folders, link_refused, make_folders
from cairn.files.statcache import Stamp, StatCache
from cairn.files.writing import fsync_dir, room_for, write_all

__all__ = [
    "ARTIFACT_KINDS",
    "ArtifactKind",
    "ArtifactSource",
    "BatchSource",
    "HashedSink",
    "ObjectSink",
    "ObjectSource",
    "ResolvedArtifact",
    "StoredArtifact",
    "place_artifact",
    "store_folder",
    "store_source",
]

ArtifactSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO
ArtifactKind = Literal["file", "tree"]
ARTIFACT_KINDS: tuple[ArtifactKind, ...] = ("file", "tree")


class ObjectSink(Protocol):
    """What storing an artifact's bytes needs: the put half of the object-store port."""

    def put_bytes(self, data: bytes) -> ObjectInfo: ...

    def put_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo: ...

    def put_stream(self, src: BinaryIO, progress: Progress | None = None) -> ObjectInfo: ...

    def missing(self, digests: Iterable[Digest]) -> list[Digest]: ...

    def put_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Store many small objects (a sink sends only those the store lacks)."""
        ...


class ObjectSource(Protocol):
    """What placing an artifact on disk needs: a verified, atomic copy of one object,
    and a verified read of a small one."""

    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int: ...

    def open(self, digest: Digest) -> BinaryIO: ...


@runtime_checkable
class HashedSink(Protocol):
    """A sink that takes small objects named by the digests the sender computed, and
    checks them itself (over HTTP: the server hashes each and refuses a mismatch), so
    they are not hashed a second time here."""

    def put_hashed(self, items: Sequence[tuple[Digest, bytes]]) -> None:
        """Store those of ``items`` (digest, bytes) the store lacks."""
        ...


@runtime_checkable
class BatchSource(Protocol):
    """A source that reads many small objects in one go (over HTTP: one request)."""

    def read_many(self, entries: Sequence[tuple[Digest, int]]) -> Iterator[tuple[Digest, bytes]]:
        """The bytes of each (digest, size), verified, each digest once, in any order."""
        ...


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """An artifact's bytes, stored: a file object or a tree manifest object."""

    kind: ArtifactKind
    digest: Digest
    size: int
    file_count: int


@dataclass(frozen=True, slots=True)
class ResolvedArtifact:
    """What a key names: one file (an artifact or a file in a tree), or a tree (an
    artifact or a folder in one) with paths relative to it. A file's one entry is
    named after the key's last segment."""

    kind: ArtifactKind
    entries: tuple[TreeEntry, ...]

    def file_digest(self, key: str) -> Digest:
        """The digest of the file the key names; a folder cannot be opened as one."""
        if self.kind == "tree":
            raise InvalidArgument("key", f"{key!r} is a folder: download it or open a file in it")
        return self.entries[0].digest


# -- bytes in -----------------------------------------------------------------------------
def store_source(
    objects: ObjectSink,
    source: ArtifactSource,
    progress: Progress | None = None,
    symlinks: str = "inside",
    stat_cache: StatCache | None = None,
) -> StoredArtifact:
    """Store a file, a folder (as a tree), bytes or a binary file object. ``progress``
    is told of the bytes of the source as they are stored (not of a tree's manifest).
    ``symlinks`` says what a link inside a folder is taken for (:func:`store_folder`);
    ``stat_cache`` spares reading a folder's unchanged files again."""
    if isinstance(source, bytes | bytearray | memoryview):
        ref = objects.put_bytes(bytes(source))
        if progress is not None:
            progress(ref.size)
        return StoredArtifact("file", ref.digest, ref.size, 1)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir():
            tree = store_folder(objects, path, progress, symlinks, stat_cache)
            ref = objects.put_bytes(tree.encode())
            return StoredArtifact("tree", ref.digest, tree.size, len(tree.entries))
        if path.is_file():
            ref = objects.put_file(path, progress)
            return StoredArtifact("file", ref.digest, ref.size, 1)
        raise InvalidArgument("source", f"{os.fspath(path)!r} is not a file or a folder")
    if hasattr(source, "read"):
        ref = objects.put_stream(source, progress)
        return StoredArtifact("file", ref.digest, ref.size, 1)
    raise InvalidArgument(
        "source", f"must be a path, bytes or a binary file object, got {type(source).__name__}"
    )


def store_folder(
    objects: ObjectSink,
    root: Path,
    progress: Progress | None = None,
    symlinks: str = "inside",
    stat_cache: StatCache | None = None,
) -> Tree:
    """Store every file under ``root``; the tree lists them by relative path.

    A symbolic link inside the folder is, by ``symlinks`` (the ``CAIRN_SYMLINKS``
    setting): ``inside``, stored as what it points to if that is inside ``root`` (a
    file, or a folder walked like any other), refused if it leaves ``root`` or is
    broken; ``refuse``, refused; ``follow``, followed wherever it points. A link that
    leads back into a folder being walked, and any special file (FIFO, socket, device),
    is refused. Every refusal names the path, before a byte of the folder is stored
    (the walk comes first, the uploads after). ``root`` itself may be a link: it is
    what the caller named. Empty folders are not kept.

    Files the ``stat_cache`` knows unchanged are not read, unless the store lacks
    their bytes (one ``missing`` question for all of them). Small files are read whole
    and go to the store in batches (``put_many``: one flush, or one request, for
    many), only those it lacks; big ones stream one by one. A file that changes while
    it is read (its stat before and after differ) is refused, naming it."""
    if symlinks not in SYMLINKS_CHOICES:
        raise InvalidArgument("symlinks", f"must be one of {', '.join(SYMLINKS_CHOICES)}")
    files = _walk(root, symlinks)
    stamps = {real: Stamp.of(info) for _, real, info in files}
    known = _cached(stat_cache, stamps, root)
    lacking = set(objects.missing(sorted(set(known.values())))) if known else set()
    found: dict[str, tuple[Digest, int]] = {}
    for real, digest in known.items():
        if digest not in lacking:
            found[real] = (digest, stamps[real].size)
            if progress is not None and stamps[real].size:
                progress(stamps[real].size)
    batch = _Batch()
    uploads = _Uploads(objects, progress)
    try:
        for relative, real, _ in files:
            if real in found or real in batch:
                continue  # cached, or a second link to a file already taken
            if stamps[real].size > SMALL_FILE:
                found[real] = _put_big(objects, real, progress)
            elif batch.add(real, _shown(root, relative)):
                uploads.send(batch.take(), found)
        uploads.send(batch.take(), found)
        uploads.finish(found)
    finally:
        uploads.close()
    if stat_cache is not None:
        stat_cache.remember(batch.read)
    # The walk named each path once and checked it (Tree.of would check all again, and
    # sort by comparing entries field by field): paths are unique, so by path alone.
    entries = [TreeEntry(relative, *found[real]) for relative, real, _ in files]
    return Tree(tuple(sorted(entries, key=_path_of)))


def _path_of(entry: TreeEntry) -> str:
    return entry.path


def _cached(
    stat_cache: StatCache | None, stamps: dict[str, Stamp], root: Path
) -> dict[str, Digest]:
    """The digests the cache vouches for (a damaged entry that is no digest is a miss)."""
    if stat_cache is None:
        return {}
    known = stat_cache.lookup(stamps, os.path.realpath(root))
    return {real: digest for real, digest in known.items() if _DIGEST.fullmatch(digest)}


# Files up to this size are read whole and stored in batches of up to _BATCH_FILES
# files or _BATCH_BYTES bytes (a bound on the memory a batch holds, and on a request),
# up to _IN_FLIGHT batches at once while the next is read: a batch's request, or its
# flush to disk, is a wait for this process, in which it reads and hashes the next.
SMALL_FILE: Final = 1 << 20
_BATCH_FILES: Final = 4096
_BATCH_BYTES: Final = 16 << 20
_IN_FLIGHT: Final = 2
_DIGEST: Final = re.compile(DIGEST_PATTERN)

# (real path, bytes, digest) of each file of a batch
_Held = list[tuple[str, bytes, Digest]]


class _Batch:
    """Small files read whole, waiting to be stored together."""

    def __init__(self) -> None:
        self._held: _Held = []
        self._taken: set[str] = set()  # every path read so far, in any batch
        self._bytes = 0
        # (real path, stamp before the read, digest, time before the read): for the cache
        self.read: list[tuple[str, Stamp, Digest, int]] = []

    def __contains__(self, real: str) -> bool:
        return real in self._taken

    def add(self, real: str, shown: str) -> bool:
        """Read one file; whether the batch is full."""
        read_ns = time.time_ns()
        data, stamp = _read_small(real, shown)
        digest = digest_bytes(data)
        self._held.append((real, data, digest))
        self._taken.add(real)
        self.read.append((real, stamp, digest, read_ns))
        self._bytes += len(data)
        return len(self._held) >= _BATCH_FILES or self._bytes >= _BATCH_BYTES

    def take(self) -> _Held:
        """The files read since the last take, to be sent."""
        held, self._held, self._bytes = self._held, [], 0
        return held


class _Uploads:
    """Batches on their way to the store, up to :data:`_IN_FLIGHT` at once, each sent by
    a worker thread; what a batch holds counts as found (and progress is told, on the
    caller's thread) once the store has it."""

    def __init__(self, objects: ObjectSink, progress: Progress | None) -> None:
        self._objects = objects
        self._progress = progress
        self._pool: ThreadPoolExecutor | None = None
        self._flying: deque[tuple[Future[None], _Held]] = deque()

    def send(self, held: _Held, found: dict[str, tuple[Digest, int]]) -> None:
        if not held:
            return
        while len(self._flying) >= _IN_FLIGHT:
            self._land(found)
        send: dict[Digest, bytes] = {}
        for _, data, digest in held:
            send.setdefault(digest, data)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_IN_FLIGHT, thread_name_prefix="cairn-batch")
        self._flying.append((self._pool.submit(_store_batch, self._objects, send), held))

    def finish(self, found: dict[str, tuple[Digest, int]]) -> None:
        """Wait for every batch; the first failure raises."""
        while self._flying:
            self._land(found)

    def close(self) -> None:
        """Wait for the batches still running (after a failure: none is left writing)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _land(self, found: dict[str, tuple[Digest, int]]) -> None:
        future, held = self._flying.popleft()
        future.result()
        for real, data, digest in held:
            found[real] = (digest, len(data))
            if self._progress is not None and data:
                self._progress(len(data))


def _store_batch(objects: ObjectSink, send: dict[Digest, bytes]) -> None:
    """Store what the store lacks of one batch (``send``: digest -> bytes)."""
    if isinstance(objects, HashedSink):
        objects.put_hashed(list(send.items()))  # the far side hashes them: no second hash
        return
    stored = objects.put_many(list(send.values()))
    if [info.digest for info in stored] != list(send):
        raise CairnError("the object store hashed a batch otherwise than its sender")


def _read_small(real: str, shown: str) -> tuple[bytes, Stamp]:
    """The whole bytes of a small file, and its stamp, refused if it changed meanwhile."""
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InvalidArgument(
            "source", f"{shown!r} cannot be read: {exc.strerror}", path=shown
        ) from None
    try:
        before = Stamp.of(os.fstat(fd))
        data = os.read(fd, before.size)
        if len(data) < before.size:  # a short read: the rest, to EOF
            parts = [data]
            while part := os.read(fd, 1 << 16):
                parts.append(part)
            data = b"".join(parts)
        # Bytes written or appended during the read change the stamp (size, mtime).
        after = Stamp.of(os.fstat(fd))
    finally:
        os.close(fd)
    if after != before or len(data) != before.size:
        raise _changed(shown)
    return data, before


def _put_big(objects: ObjectSink, real: str, progress: Progress | None) -> tuple[Digest, int]:
    """Stream one big file to the store (not cached: its stamp could change mid-read)."""
    ref = objects.put_file(real, progress)
    return ref.digest, ref.size


def _changed(shown: str) -> InvalidArgument:
    return InvalidArgument(
        "source",
        f"{shown!r} changed while it was being read: log the folder once it is written",
        path=shown,
    )


def _walk(root: Path, symlinks: str) -> list[tuple[str, str, os.stat_result]]:
    """(path in the tree, real path to read, its stat) of every file the folder holds,
    by the rules of :func:`store_folder`; the paths are checked as tree paths."""
    top = os.path.realpath(root)
    found: list[tuple[str, str, os.stat_result]] = []
    # (real folder, its path in the tree, the (device, inode) of it and of the folders
    # above it in this walk: a link back to one of them would loop forever)
    pending: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (top, "", frozenset({_identity(os.stat(top))}))
    ]
    while pending:
        folder, prefix, above = pending.pop()
        with os.scandir(folder) as listing:
            items = sorted(listing, key=lambda item: item.name)
        for item in items:
            relative = f"{prefix}{item.name}"
            check_artifact_key(relative, "file path in folder")
            real = item.path
            if item.is_symlink():
                real = _link_target(item.path, _shown(root, relative), top, symlinks)
            try:
                info = os.stat(real)
            except OSError as exc:  # gone meanwhile, or unreadable
                shown = _shown(root, relative)
                raise InvalidArgument(
                    "source", f"{shown!r} cannot be read: {exc.strerror}", path=shown
                ) from None
            if stat.S_ISREG(info.st_mode):
                found.append((relative, real, info))
            elif stat.S_ISDIR(info.st_mode):
                identity = _identity(info)
                if identity in above:
                    shown = _shown(root, relative)
                    raise InvalidArgument(
                        "source",
                        f"{shown!r} is a link back to a folder that holds it (a loop)",
                        path=shown,
                    )
                pending.append((real, f"{relative}/", above | {identity}))
            else:
                shown = _shown(root, relative)
                raise InvalidArgument(
                    "source",
                    f"{shown!r} is a {_special_kind(info.st_mode)}, not a file or a folder: "
                    "only files and folders can be logged",
                    path=shown,
                )
    return found


def _shown(root: Path, relative: str) -> str:
    """A file of the folder as the caller would name it (in messages)."""
    return os.path.join(os.fspath(root), *relative.split("/"))


def _link_target(link: str, shown: str, top: str, symlinks: str) -> str:
    """The real path a link inside the folder stands for, or why it is refused."""
    if symlinks == "refuse":
        raise InvalidArgument(
            "source",
            f"{shown!r} is a symbolic link, and links are refused (CAIRN_SYMLINKS=refuse)",
            path=shown,
        )
    target = os.path.realpath(link)
    if not os.path.exists(target):
        raise InvalidArgument(
            "source",
            f"{shown!r} is a broken symbolic link (to {os.readlink(link)!r})",
            path=shown,
        )
    if symlinks == "inside" and os.path.commonpath([top, target]) != top:
        raise InvalidArgument(
            "source",
            f"{shown!r} is a symbolic link to {target!r}, outside the folder: log that "
            "itself, copy it in, or set CAIRN_SYMLINKS=follow to follow links out of "
            "the folder",
            path=shown,
        )
    return target


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


# -- bytes out ----------------------------------------------------------------------------
def place_artifact(
    objects: ObjectSource,
    found: ResolvedArtifact,
    key: str,
    dest: str | os.PathLike[str],
    progress: Progress | None = None,
) -> Path:
    """Write a resolved artifact under ``dest``: into it if it is a folder (or ends in
    '/'), else at ``dest`` itself. Every file is verified and written atomically; a
    tree path that would leave the target is refused. A tree is written whole or not
    at all: its files are staged in a hidden folder beside the target first.

    Nothing is written through a symbolic link: a file replaces a link at its path (as
    it replaces a file), and a link where a tree needs a folder (the tree's own folder,
    or one inside it) is refused before anything is downloaded (``cairn.files.nofollow``).
    ``dest`` itself may be a link to a folder: the caller named it."""
    target = Path(dest)
    if target.is_dir() or os.fspath(dest).endswith(("/", os.sep)):
        target = target / key.rsplit("/", 1)[-1]
    with room_for(str(target), path=str(target)):
        target.parent.mkdir(parents=True, exist_ok=True)
        if found.kind == "file":
            objects.copy_to_file(found.entries[0].digest, target, progress)
            return target
        paths = [check_artifact_key(e.path, "file path in folder") for e in found.entries]
        _check_tree_target(target, paths)  # before a byte is downloaded
        staging = _new_folder(target.parent, f".{target.name[:100]}.")
        try:
            _fill(objects, staging, found.entries, paths, progress)
            _move_into(staging, target, paths)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already when renamed whole
    return target


def _fill(
    objects: ObjectSource,
    staging: Path,
    entries: Sequence[TreeEntry],
    paths: list[str],
    progress: Progress | None,
) -> None:
    """Write a tree's files into the new, hidden ``staging`` folder: big ones copied
    one by one, small ones read in batches (verified) and written straight to their
    paths (no temp file each: the staging folder is renamed or discarded whole)."""
    made: set[Path] = {staging}
    small: dict[Digest, list[Path]] = {}
    sizes: dict[Digest, int] = {}
    for entry, path in zip(entries, paths, strict=True):
        out = staging.joinpath(*path.split("/"))
        if out.parent not in made:
            out.parent.mkdir(parents=True, exist_ok=True)
            made.add(out.parent)
        if entry.size > SMALL_FILE:
            objects.copy_to_file(entry.digest, out, progress)
        else:
            small.setdefault(entry.digest, []).append(out)
            sizes[entry.digest] = entry.size
    for got in _fetched(objects, _slices(list(sizes.items()))):
        for digest, data in got:
            for out in small[digest]:
                _write_new(out, data)
                if progress is not None and data:
                    progress(len(data))


def _slices(wanted: list[tuple[Digest, int]]) -> list[list[tuple[Digest, int]]]:
    """Runs of up to :data:`_BATCH_FILES` objects and :data:`_BATCH_BYTES` bytes."""
    slices: list[list[tuple[Digest, int]]] = []
    held = 0
    for digest, size in wanted:
        if not slices or len(slices[-1]) == _BATCH_FILES or held + size > _BATCH_BYTES:
            slices.append([])
            held = 0
        slices[-1].append((digest, size))
        held += size
    return slices


def _fetched(
    objects: ObjectSource, slices: list[list[tuple[Digest, int]]]
) -> Iterator[list[tuple[Digest, bytes]]]:
    """The verified bytes of each slice, the next one read (a request in flight, or the
    store's reads) by a worker thread while the caller writes this one."""
    if not slices:
        return
    pool = ThreadPoolExecutor(1, thread_name_prefix="cairn-fetch")
    try:
        ahead = pool.submit(_read_all, objects, slices[0])
        for following in slices[1:]:
            got = ahead.result()
            ahead = pool.submit(_read_all, objects, following)
            yield got
        yield ahead.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # nothing left reading after a failure


def _read_all(
    objects: ObjectSource, wanted: Sequence[tuple[Digest, int]]
) -> list[tuple[Digest, bytes]]:
    return list(_read_many(objects, wanted))


def _read_many(
    objects: ObjectSource, wanted: Sequence[tuple[Digest, int]]
) -> Iterator[tuple[Digest, bytes]]:
    """The verified bytes of small objects: in one go from a batch source, else each
    through a verifying stream read to its end."""
    if isinstance(objects, BatchSource):
        yield from objects.read_many(wanted)
        return
    for digest, size in wanted:
        with objects.open(digest) as stream:
            data = stream.read(size + 1)
            if len(data) > size:
                stream.read()  # to the end: verified (CorruptObject if the bytes lie)
            if len(data) != size:
                raise CairnError(
                    f"object {digest} holds {len(data)} bytes where its tree says {size}",
                    digest=digest,
                )
        yield digest, data


def _write_new(path: Path, data: bytes) -> None:
    """A new file in the staging folder (never through a link: it is ours and new)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o666)  # the umask applies
    try:
        write_all(fd, memoryview(data))
    finally:
        os.close(fd)


def _check_tree_target(target: Path, paths: list[str]) -> None:
    """Refuse a tree's target that is a link or a file, and a link or a file where one
    of its folders goes."""
    if target.is_symlink():
        raise link_refused(target)
    if not target.exists():
        return
    if not target.is_dir():
        raise InvalidArgument(
            "dest", f"{os.fspath(target)!r} is a file: a folder artifact needs a folder"
        )
    folders = {tuple(path.split("/")[:-1]) for path in paths}
    for parts in sorted(folders):
        check_folders(target, parts)


def _move_into(staging: Path, target: Path, paths: list[str]) -> None:
    """Put the staged files at ``target``: one rename if it is new, else file by file
    (files of ``target`` that the tree does not name stay)."""
    if not target.exists() and not target.is_symlink():
        staging.rename(target)
        fsync_dir(target.parent)
        return
    touched: set[Path] = set()
    for path in paths:
        *folders, name = path.split("/")
        folder = make_folders(target, folders)  # never through a link
        os.replace(staging.joinpath(*path.split("/")), folder / name)
        touched.add(folder)
    for folder in touched:
        fsync_dir(folder)


def _new_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder with a random name; honours the umask (mkdtemp would not)."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(8)}.cairn-staging"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
