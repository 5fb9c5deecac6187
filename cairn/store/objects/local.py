"""Objects as files in a local folder.

Layout: ``root/objects/<2 hex>/<62 hex>`` for objects (fan-out keeps folders small),
``root/tmp/`` for writes in progress (same filesystem, so the final rename is atomic),
``root/quarantine/<digest>.<ns>`` for objects a read found corrupt, moved aside, and
``root/recipes/<2 hex>/<62 hex>`` for the recipes of chunked objects (``chunked.py``).
A write goes temp file -> fsync -> rename -> fsync of the folder, and the digest is
computed from the very bytes written, so a source changing under us cannot produce an
object whose name lies about its content. :meth:`LocalObjectStore.put_many` keeps that
order for a batch of small objects, with one flush of the file system for all their
bytes and one for all their renames instead of two fsyncs each.

Streaming copies run in 1 MiB chunks through a small buffer pool: the calling thread
reads and hashes, a worker thread writes, so hashing overlaps the write. Writeback to
disk is started chunk by chunk, which makes the final fsync nearly free. Every
streaming write path (``put_stream``, ``put_file``, ``open_writer``) goes through one
writer; ``put_bytes`` writes a small object in one call. A full disk or quota is
reported as ``StorageFull`` (:func:`room_for`), with nothing left behind.

A put always installs its own temp file, over a stored copy too: the temp file holds the
very bytes just hashed, so this heals a damaged copy for the price of a rename, never a
read of the old one (``put_bytes``, whose bytes are in memory, compares instead: a read
costs less than a write). Temp files that a killed process left are removed by
:meth:`LocalObjectStore.sweep`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO, Final

from cairn.core.digest import Digest, digest_bytes, new_hasher, parse_digest
from cairn.core.errors import InvalidArgument
from cairn.core.objects import ObjectInfo, Progress
from cairn.files.direct import start_read_ahead
from cairn.files.reading import RawSource, ReadInto, VerifyingReader, counting, open_source
from cairn.files.writing import (
    DIRECT_FROM,
    ChunkWriter,
    advise_sequential,
    close_or_remove,
    create_exclusive,
    discard,
    fsync_dir,
    mkdir_durable,
    readinto_of,
    room_for,
    sync_many,
    write_all,
    write_file_atomically,
)
from cairn.store.objects.port import (
    AbortingWriter,
    ClosingStore,
    Quarantined,
    StoredObject,
    check_expected_digest,
    missing_object,
    verify_each,
)

__all__ = ["LocalObjectStore", "LocalObjectWriter"]

log = logging.getLogger("cairn.objects")

_OBJECT_MODE: Final = 0o444  # objects are immutable; read-only guards against accidents
# Why a hard link cannot be made where a copy can: another file system, too many links
# to one file, a file system without links (or one refusing them to this user).
_NO_LINK: Final = frozenset(
    {errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP}
)
_COMPARE: Final = 1 << 20
# put_many writes objects up to this size through its shared flushes; bigger ones are
# written alone (their own fsync costs little beside their bytes).
_BATCHED_UP_TO: Final = 1 << 20
# A put or missing() that finds an object stored renews its time only when it is older
# than this (seconds), so gc's grace keeps it while the caller's row is on its way; a
# young one is left alone (20,000 fresh objects asked about cost no utime). gc is safe
# with writers going on only with a grace longer than this (the default is a day).
RENEW_AFTER: Final = 600.0


class _LiveTemps:
    """The temp files this process is writing, which a sweep leaves alone whatever their
    age (another process's are judged by age alone)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()

    def add(self, path: str) -> None:
        with self._lock:
            self._paths.add(path)

    def discard(self, path: str) -> None:
        with self._lock:
            self._paths.discard(path)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return path in self._paths


_live: Final = _LiveTemps()


class LocalObjectStore(ClosingStore):
    """Content-addressed objects in ``root``. Cheap to construct; folders appear on first put.

    With ``direct_io``, the bytes of an object past its first :data:`DIRECT_FROM` are
    written and read around the page cache (``O_DIRECT``, see
    :mod:`~cairn.files.direct`): less CPU per byte and no cache filled with big
    objects written once, at the price of reading them back from the disk. Either way
    every object can be read: the flag only picks the path.
    """

    def __init__(self, root: str | os.PathLike[str], *, direct_io: bool = False) -> None:
        self._root = os.path.abspath(os.fspath(root))
        self._objects = os.path.join(self._root, "objects")
        self._tmp = os.path.join(self._root, "tmp")
        self._quarantine = os.path.join(self._root, "quarantine")
        self._recipes = os.path.join(self._root, "recipes")
        self._direct_io = direct_io

    @property
    def root(self) -> str:
        return self._root

    @property
    def direct_io(self) -> bool:
        return self._direct_io

    def __repr__(self) -> str:
        direct = ", direct_io=True" if self._direct_io else ""
        return f"LocalObjectStore({self._root!r}{direct})"

    # -- writes ---------------------------------------------------------------

    def put_stream(self, src: BinaryIO, progress: Progress | None = None) -> ObjectInfo:
        return self._put_from(counting(readinto_of(src), progress))

    def put_bytes(self, data: bytes) -> ObjectInfo:
        if not isinstance(data, bytes):
            data = bytes(data)  # hash and write one immutable snapshot
        digest = digest_bytes(data)
        info = ObjectInfo(digest, len(data))
        if self._holds(digest, data) and self._renew(digest):
            return info  # already stored, intact: skip the write entirely
        if self._direct_io and len(data) > DIRECT_FROM:
            with self.open_writer() as writer:  # big: around the cache like the others
                writer.write(data)
                return writer.commit(digest)
        with room_for(_NEW_OBJECT):
            os.makedirs(self._tmp, exist_ok=True)
            tmp = self._write_temp(data, sync=True)
            try:
                self._install(tmp, digest)
            finally:
                _live.discard(tmp)
        return info

    def put_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Write every new object to a temp file, make them all durable with one flush,
        rename them into place, and make the renames durable with a second: two flushes
        for the batch instead of two fsyncs per object, and a crash at any point leaves
        each name either absent or naming its whole bytes (a rename is made durable only
        after the bytes it names are)."""
        infos: list[ObjectInfo] = []
        pending: dict[Digest, str] = {}  # new objects not yet installed -> temp file
        temps: list[str] = []
        left: set[str] = set()
        try:
            with room_for(_NEW_OBJECT):
                if items:
                    os.makedirs(self._tmp, exist_ok=True)
                for item in items:
                    data = item if isinstance(item, bytes) else bytes(item)
                    if len(data) > _BATCHED_UP_TO:
                        infos.append(self.put_bytes(data))  # big: alone, as ever
                        continue
                    digest = digest_bytes(data)
                    infos.append(ObjectInfo(digest, len(data)))
                    if digest not in pending and not (
                        self._holds(digest, data) and self._renew(digest)
                    ):
                        pending[digest] = tmp = self._write_temp(data)
                        temps.append(tmp)
                if pending:
                    self._install_many(pending)
        except BaseException:
            left = set(pending.values())
            raise
        finally:
            for tmp in temps:
                if tmp in left:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)  # not installed: an error on the way
                _live.discard(tmp)
        return infos

    def missing(self, digests: Iterable[Digest]) -> list[Digest]:
        # One stat each (a listing of the fan-out folders would grow with the store). An
        # old object said present is renewed: the caller will name it without writing it,
        # and gc must not take it before that row lands (see delete_unless_renewed).
        lacking, seen = [], set()
        for digest in map(parse_digest, digests):
            if digest not in seen:
                seen.add(digest)
                path = f"{self._objects}{os.sep}{digest[:2]}{os.sep}{digest[2:]}"
                if not _renew_file(path):  # absent, or taken by gc since the stat
                    lacking.append(digest)
        return lacking

    def delete_unless_renewed(self, digest: Digest, cutoff: float) -> bool:
        """Delete an object unless it was written or renewed after ``cutoff`` (seconds
        since the epoch); whether it was deleted. gc's last word: the object is first
        renamed aside, so a writer that asks after that finds it missing and writes it
        again, and one that renewed it before is seen in its time, and it is put back."""
        return _delete_unless_renewed(self._path(digest), cutoff)

    def put_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo:
        with open_source(path) as src:
            advise_sequential(src.fileno())
            return self._put_from(counting(src.readinto, progress))

    def open_writer(self) -> LocalObjectWriter:
        return LocalObjectWriter(self)

    def delete(self, digest: Digest) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(digest))

    # -- damage and leftovers ----------------------------------------------------

    def verify(self, digests: Iterable[Digest] | None = None) -> list[Digest]:
        return verify_each(self, self._digests() if digests is None else digests)

    def quarantined(self) -> list[Quarantined]:
        found = []
        for entry in _entries(self._quarantine):
            digest, _, since_ns = entry.name.partition(".")
            with contextlib.suppress(OSError, ValueError):
                size = entry.stat(follow_symlinks=False).st_size
                found.append(
                    Quarantined(parse_digest(digest), size, int(since_ns) / 1e9, entry.path)
                )
        return sorted(found, key=lambda q: q.since)

    def iter_objects(self) -> Iterator[StoredObject]:
        for fanout in _entries(self._objects):
            for entry in _entries(fanout.path):
                try:
                    digest = parse_digest(fanout.name + entry.name)
                    stat = entry.stat(follow_symlinks=False)
                except (InvalidArgument, FileNotFoundError):
                    continue  # not an object's name, or deleted since the listing
                yield StoredObject(digest, stat.st_size, stat.st_mtime)

    def sweep(self, grace: float) -> list[str]:
        """Remove temp files no write has touched for ``grace`` seconds, except those this
        process is writing; returns their paths. A killed process leaves its temp files
        behind; one that is still writing updates their time with every chunk."""
        cutoff = time.time() - grace
        removed = []
        for entry in _entries(self._tmp):
            if entry.path in _live:
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                    os.unlink(entry.path)
                    removed.append(entry.path)
        if removed:
            log.info("removed %d abandoned temp files from %s", len(removed), self._tmp)
        return removed

    # -- recipes (RecipeStore) ---------------------------------------------------

    def put_recipe(self, digest: Digest, data: bytes) -> None:
        """Written as an object is (temp file, fsync, rename, fsync of the folder) to
        ``recipes/<2 hex>/<62 hex>``."""
        final = self._recipe_path(digest)
        with room_for(_NEW_OBJECT):
            os.makedirs(self._tmp, exist_ok=True)
            tmp = self._write_temp(data, sync=True)
            try:
                _install_at(tmp, final)
            finally:
                _live.discard(tmp)

    def get_recipe(self, digest: Digest) -> bytes | None:
        try:
            with open(self._recipe_path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def get_recipes(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        return {d: data for d in digests if (data := self.get_recipe(d)) is not None}

    def delete_recipe(self, digest: Digest) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._recipe_path(digest))

    def iter_recipes(self) -> Iterator[StoredObject]:
        for fanout in _entries(self._recipes):
            for entry in _entries(fanout.path):
                try:
                    digest = parse_digest(fanout.name + entry.name)
                    stat = entry.stat(follow_symlinks=False)
                except (InvalidArgument, FileNotFoundError):
                    continue
                yield StoredObject(digest, stat.st_size, stat.st_mtime)

    def renew(self, digests: Iterable[Digest]) -> None:
        for digest in digests:
            self._renew(digest)

    def renew_recipes(self, digests: Iterable[Digest]) -> None:
        for digest in digests:
            _renew_file(self._recipe_path(digest))

    def delete_recipe_unless_renewed(self, digest: Digest, cutoff: float) -> bool:
        """:meth:`delete_unless_renewed` for a recipe: a chunked object stored again
        while gc deletes it keeps its recipe."""
        return _delete_unless_renewed(self._recipe_path(digest), cutoff)

    def _recipe_path(self, digest: Digest) -> str:
        digest = parse_digest(digest)
        return os.path.join(self._recipes, digest[:2], digest[2:])

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
            raise missing_object(digest, self._aside(digest), read=False) from None

    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        with self._reader(digest) as reader:
            return write_file_atomically(counting(reader.readinto, progress), dest)

    def link_to(self, digest: Digest, dest: str | os.PathLike[str]) -> bool:
        """A hard link at ``dest`` to the stored file, which is (made) read-only so the
        link cannot write into the store; False across file systems, past the file
        system's link limit, or where it has no hard links. The bytes are not read."""
        path = self._path(digest)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise missing_object(digest, self._aside(digest), read=True) from None
        if mode & 0o222:
            os.chmod(path, _OBJECT_MODE)  # stored writable by some older write: sealed now
        try:
            os.link(path, dest, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _NO_LINK:
                return False
            raise
        return True

    # -- lifecycle ------------------------------------------------------------

    # -- internals ------------------------------------------------------------

    def _path(self, digest: Digest) -> str:
        digest = parse_digest(digest)  # the only guard between a caller's string and a path
        return os.path.join(self._objects, digest[:2], digest[2:])

    def _reader(self, digest: Digest) -> VerifyingReader:
        path = self._path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise missing_object(digest, self._aside(digest), read=True) from None
        raw: RawSource | None = None
        try:
            stat = os.fstat(fd)
            size, identity = stat.st_size, (stat.st_dev, stat.st_ino)
            if self._direct_io and size > DIRECT_FROM:
                raw = start_read_ahead(fd, path, size, cached_until=DIRECT_FROM)
            if raw is None:  # small, no direct I/O, or readers enough at work
                advise_sequential(fd)
                raw = open(fd, "rb", buffering=0)  # noqa: SIM115 - owned by the reader
        except BaseException:
            os.close(fd)
            raise
        return VerifyingReader(
            raw, digest, size, on_corrupt=lambda: self._move_aside(digest, path, identity)
        )

    def _move_aside(self, digest: Digest, path: str, identity: tuple[int, int]) -> str:
        """Quarantine the corrupt file a reader opened (by ``identity``), unless a put has
        replaced it since; says what became of it, for the error's message."""
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return "it is no longer stored"
        if (stat.st_dev, stat.st_ino) != identity:
            return "a new copy has been stored since it was opened"
        aside = os.path.join(self._quarantine, f"{digest}.{time.time_ns()}")
        try:
            os.makedirs(self._quarantine, exist_ok=True)
            os.rename(path, aside)
            fsync_dir(os.path.dirname(path))
        except OSError as exc:
            log.error("object %s is corrupt and could not be moved aside: %s", digest, exc)
            return f"it could not be moved aside ({exc.strerror or exc})"
        log.warning("object %s is corrupt: moved aside to %s", digest, aside)
        return f"moved aside to {aside}; storing the same bytes again restores it"

    def _aside(self, digest: Digest) -> str | None:
        """Where the latest quarantined copy of ``digest`` lies, if there is one."""
        names = [n for n in _names(self._quarantine) if n.startswith(f"{digest}.")]
        if not names:
            return None
        return os.path.join(self._quarantine, max(names, key=lambda n: int(n.split(".")[1])))

    def _holds(self, digest: Digest, data: bytes) -> bool:
        """Whether the stored copy of ``digest`` is ``data``: sizes first, then bytes."""
        try:
            with open(self._path(digest), "rb", buffering=0) as stored:
                if os.fstat(stored.fileno()).st_size != len(data):
                    return False
                pos = 0
                while chunk := stored.read(_COMPARE):
                    # bytes against bytes is a memcmp; a memoryview compares item by item.
                    if data[pos : pos + len(chunk)] != chunk:
                        return False
                    pos += len(chunk)
                return pos == len(data)
        except FileNotFoundError:
            return False

    def _renew(self, digest: Digest) -> bool:
        """Mark a stored object as just written, so gc's grace period keeps it as it keeps
        a new one (a put that found it stored is about to reference it), if it is older
        than :data:`RENEW_AFTER`; False if it has gone meanwhile, and the put must write it."""
        return _renew_file(self._path(digest))

    def _digests(self) -> Iterator[Digest]:
        for fanout in _entries(self._objects):
            for entry in _entries(fanout.path):
                with contextlib.suppress(InvalidArgument):
                    yield parse_digest(fanout.name + entry.name)

    def _put_from(self, readinto: ReadInto) -> ObjectInfo:
        with self.open_writer() as writer:
            writer.fill(readinto)
            return writer.commit()

    def _new_temp(self) -> tuple[str, int]:
        """A new temp file, marked as this process's until :data:`_live` forgets it."""
        os.makedirs(self._tmp, exist_ok=True)
        tmp, fd = create_exclusive(self._tmp, "", ".tmp", 0o600)
        _live.add(tmp)
        return tmp, fd

    def _write_temp(self, data: bytes, *, sync: bool = False) -> str:
        """A new read-only temp file holding ``data`` (made read-only as it is created:
        the descriptor still writes), synced if ``sync`` (one object alone) or left for
        a batch's single flush; still marked live (the caller installs it, then discards
        the mark). Nothing is left if this fails."""
        tmp, fd = create_exclusive(self._tmp, "", ".tmp", _OBJECT_MODE)
        _live.add(tmp)
        try:
            write_all(fd, memoryview(data))
            if sync:
                os.fsync(fd)
        except BaseException:
            discard(fd, tmp)
            _live.discard(tmp)
            raise
        try:
            close_or_remove(fd, tmp)
        except BaseException:
            _live.discard(tmp)
            raise
        return tmp

    def _install_many(self, pending: dict[Digest, str]) -> None:
        """Sync the temp files, rename each to its object path (over a stored copy too,
        as :meth:`_install` does), then sync the renames."""
        sync_many(self._tmp, pending.values())
        folders: set[str] = set()
        for digest in list(pending):
            # Digests this store computed: no parsing; strings joined by hand (os.path.join
            # was a tenth of a 10,000-object batch's time).
            fanout = f"{self._objects}{os.sep}{digest[:2]}"
            final = f"{fanout}{os.sep}{digest[2:]}"
            if fanout not in folders:
                if not os.path.isdir(fanout):  # made durable by the flush below
                    os.makedirs(fanout, exist_ok=True)
                    folders.update((self._objects, self._root))
                folders.add(fanout)
            os.replace(pending.pop(digest), final)
        sync_many(self._objects, folders)

    def _install(self, tmp: str, digest: Digest) -> None:
        """Move a sealed temp file to its object path, over a stored copy too: that heals
        a damaged copy, and a racing writer of the same digest wrote the same bytes, so
        whichever rename wins, the object is right."""
        _install_at(tmp, self._path(digest))


class LocalObjectWriter(AbortingWriter):
    """One new object of a :class:`LocalObjectStore`, written piece by piece into a temp
    file (see :class:`~cairn.store.objects.port.ObjectWriter`)."""

    def __init__(self, store: LocalObjectStore) -> None:
        self._store = store
        with room_for(_NEW_OBJECT):
            self._tmp, self._fd = store._new_temp()
        try:
            direct_path = self._tmp if store._direct_io else None
            self._pipe = ChunkWriter(self._fd, new_hasher(), direct_path=direct_path)
        except BaseException:
            discard(self._fd, self._tmp)
            _live.discard(self._tmp)
            raise
        self._open = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        # Copied into the writer's own buffers and hashed from there, so the digest is
        # that of the bytes written even if ``data`` changes afterwards.
        self._check_open()
        try:
            with room_for(_NEW_OBJECT):
                self._pipe.append(memoryview(data).cast("B"))
        except BaseException:
            self.abort()
            raise

    def fill(self, readinto: ReadInto) -> None:
        """Append everything ``readinto`` gives until EOF, read straight into the buffers."""
        self._check_open()
        try:
            with room_for(_NEW_OBJECT):
                self._pipe.fill(readinto)
        except BaseException:
            self.abort()
            raise

    def commit(self, expected: Digest | None = None) -> ObjectInfo:
        self._check_open()
        self._open = False
        try:
            with room_for(_NEW_OBJECT):
                try:
                    self._pipe.finish()
                    digest = self._pipe.digest()
                    check_expected_digest(expected, digest)
                    _seal(self._fd)
                except BaseException:
                    discard(self._fd, self._tmp)
                    raise
                close_or_remove(self._fd, self._tmp)
                self._store._install(self._tmp, digest)
        finally:
            _live.discard(self._tmp)
        return ObjectInfo(digest, self._pipe.size)

    def abort(self) -> None:
        if self._open:
            self._open = False
            self._pipe.abort()
            discard(self._fd, self._tmp)
            _live.discard(self._tmp)

    def _check_open(self) -> None:
        if not self._open:
            raise ValueError("the object writer is already committed or aborted")


def _install_at(tmp: str, final: str) -> None:
    """Rename a sealed temp file to ``final`` (an object's or a recipe's path), durably;
    the temp file is removed if that fails."""
    fanout = os.path.dirname(final)
    try:
        mkdir_durable(fanout)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(fanout)  # the rename itself must survive a crash, not only the bytes


def _renew_file(path: str) -> bool:
    """Renew a stored file's time if it is older than :data:`RENEW_AFTER` (fresh ones
    cost no utime); False if it is gone."""
    try:
        if os.stat(path).st_mtime < time.time() - RENEW_AFTER:
            os.utime(path)
    except FileNotFoundError:
        return False
    return True


def _delete_unless_renewed(path: str, cutoff: float) -> bool:
    """Delete the object or recipe at ``path`` unless written or renewed after
    ``cutoff``; whether it went. It is renamed aside first, so a writer asking after
    that finds it missing and writes it again, and one that renewed it before is seen
    in its time and it is put back."""
    aside = f"{path}.gc-{os.getpid()}-{threading.get_ident()}"  # no digest: not listed
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # gone already
    try:
        if os.stat(aside).st_mtime <= cutoff:
            return True
        with contextlib.suppress(FileExistsError):  # else a writer stored it again
            os.link(aside, path)
        return False
    finally:
        os.unlink(aside)


def _seal(fd: int) -> None:
    os.fchmod(fd, _OBJECT_MODE)
    os.fsync(fd)


_NEW_OBJECT: Final = "a new object in the object store"


def _names(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def _entries(folder: str) -> list[os.DirEntry[str]]:
    """The entries of ``folder``; none if it does not exist (yet)."""
    try:
        with os.scandir(folder) as found:
            return list(found)
    except FileNotFoundError:
        return []
