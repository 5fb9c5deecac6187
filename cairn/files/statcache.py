"""The stat cache: which files are unchanged since they were last hashed, without reading
them again (logging a folder again reads only what changed).

A small SQLite file maps a file's real path to what ``stat`` said when it was hashed
(device, inode, size, mtime_ns, ctime_ns) and its BLAKE3 digest. A file is taken for
unchanged only if all five are the same now, and only if its timestamps were already
older than :data:`RACY_NS` when it was stat'ed before that read (git's *racy clean*
rule): a write in the same clock tick as the read would leave the timestamps as they
were, so a file that was that young when read is read again every time until it is
not. ``touch -d`` or a restore that puts the old size and mtime back still changes the
ctime (no call sets it), so that is caught too; a write that changes no timestamp at
all (a raw device write, an mmap without msync) is not, as git and rsync do not catch it.

The digest only says what bytes a file held; whether a store has them is asked of the
store (a cached digest the store lacks is read and sent again). The cache is advisory:
any error opening, reading or writing it (corrupt, locked, read-only, full disk) makes
it a miss, never a failure; entries of other files are never removed (a file under a
path that was deleted simply fails to match).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, NamedTuple

from cairn.core.digest import Digest

__all__ = ["RACY_NS", "Stamp", "StatCache", "default_path", "open_stat_cache"]

log = logging.getLogger("cairn.files")

# How much older than the moment it is read a file's timestamps must be for its digest
# to be trusted later: above the timestamp granularity of any local file system (FAT's
# 2 s is the coarsest; Linux file systems stamp at the kernel clock tick, a few ms).
RACY_NS: Final = 2_000_000_000
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, "
    "size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, digest TEXT, read_ns INTEGER) "
    "WITHOUT ROWID"
)


_Row = tuple[str, int, int, int, int, int, str, int]


class Stamp(NamedTuple):
    """What ``stat`` says of a file that changes when its bytes do."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> Stamp:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def default_path() -> str:
    """``$XDG_CACHE_HOME/cairn/stat-cache.sqlite`` (``~/.cache/cairn/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cairn", "stat-cache.sqlite")


def open_stat_cache(setting: str | None) -> StatCache | None:
    """The cache the ``stat_cache`` setting names: unset is the default path, ``off`` none."""
    if setting == "off":
        return None
    return StatCache(setting or default_path())


class StatCache:
    """Digests of files by path, trusted only while their stat is unchanged (see module)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def lookup(self, stamps: Mapping[str, Stamp], under: str | None = None) -> dict[str, Digest]:
        """The digests of those of ``stamps`` (real path -> stamp now) that are unchanged;
        ``under``, the real folder that holds most of them, reads them in one scan."""
        if not stamps:
            return {}
        rows = self._rows(stamps, under)
        found: dict[str, Digest] = {}
        for path, dev, ino, size, mtime_ns, ctime_ns, digest, read_ns in rows:
            stamp = stamps.get(path)
            if stamp is None or stamp != (dev, ino, size, mtime_ns, ctime_ns):
                continue
            if max(mtime_ns, ctime_ns) >= read_ns - RACY_NS:
                continue  # racy: changed in the tick it was read in, maybe
            found[path] = Digest(digest)
        return found

    def remember(self, hashed: Iterable[tuple[str, Stamp, Digest, int]]) -> None:
        """Record (real path, stamp taken before the read, digest, wall time in ns
        before the read) for each file read."""
        rows = [(path, *stamp, digest, read_ns) for path, stamp, digest, read_ns in hashed]
        if not rows:
            return
        with self._connected() as db:
            if db is not None:
                db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?)", rows)

    def _rows(self, stamps: Mapping[str, Stamp], under: str | None) -> Sequence[_Row]:
        rows: list[_Row] = []
        with self._connected() as db:
            if db is None:
                return []
            # One range scan of the folder (its files are contiguous in the primary key),
            # then one lookup each for paths outside it.
            low = None
            if under is not None:
                low, high = (
                    under.rstrip(os.sep) + os.sep,
                    under.rstrip(os.sep) + chr(ord(os.sep) + 1),
                )
                rows += db.execute(
                    "SELECT * FROM files WHERE path >= ? AND path < ?", (low, high)
                ).fetchall()
            if len(rows) < len(stamps):
                seen = {row[0] for row in rows}
                for path in stamps:
                    if path not in seen and (low is None or not path.startswith(low)):
                        rows += db.execute("SELECT * FROM files WHERE path = ?", (path,)).fetchall()
        return rows

    @contextlib.contextmanager
    def _connected(self) -> Iterator[sqlite3.Connection | None]:
        """A connection in a transaction, or None if the cache cannot be used now."""
        with self._lock:
            try:
                db = self._open()
            except (sqlite3.Error, OSError) as exc:
                log.debug("stat cache %s unusable: %s", self.path, exc)
                if _damaged(exc):
                    self._discard()
                yield None
                return
            try:
                with db:
                    yield db
            except sqlite3.DatabaseError as exc:
                log.debug("stat cache %s failed: %s", self.path, exc)
                if _damaged(exc):
                    self._discard()
            finally:
                db.close()

    def _open(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level="DEFERRED")
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a lost entry is a miss, never wrong
            db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _discard(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(self.path + suffix)


def _damaged(exc: BaseException) -> bool:
    """A cache file SQLite cannot read: removed, for a new one (it is only a cache)."""
    text = str(exc)
    return isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text
    )
