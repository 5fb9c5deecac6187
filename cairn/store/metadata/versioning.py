"""Rows of versioning: repositories, versioned objects (blobs, tree nodes), commits, refs
and the links of runs to commits."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from cairn.core.digest import Digest
from cairn.core.errors import CorruptObject
from cairn.core.versioning.commit import Commit, RefKind
from cairn.core.versioning.info import CommitInfo, RefInfo, RepositoryInfo, RunCommitInfo
from cairn.store.metadata import dialect
from cairn.store.metadata.named import ProjectNamed
from cairn.store.metadata.schema import (
    commits,
    refs,
    repositories,
    run_captures,
    run_commits,
    runs,
    version_objects,
)

__all__ = ["VersioningRows"]

_CHUNK = 500  # ids per IN (...): under every database's bound-parameter limit


def _repository(row: Row[Any]) -> RepositoryInfo:
    m = row._mapping
    return RepositoryInfo(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        description=m["description"],
        owner=m["owner"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


# The commit columns in the order _commit reads them.
_COMMIT_COLUMNS: Final = (
    commits.c.digest,
    commits.c.repository_id,
    commits.c.root,
    commits.c.parents,
    commits.c.message,
    commits.c.author,
    commits.c.time,
)


def _commit(row: Sequence[Any]) -> CommitInfo:
    # by position, and parents by split: a log reads every commit of a repository
    digest, repository_id, root, parents, message, author, time = row
    return CommitInfo(digest, repository_id, root, tuple(parents.split()), message, author, time)


class VersioningRows:
    def __init__(self, conn: Connection, engine: Engine) -> None:
        self._conn = conn
        self._engine = engine
        self._repositories = ProjectNamed(conn, repositories, _repository)

    # -- repositories -------------------------------------------------------------------
    def repository(self, repository_id: str) -> RepositoryInfo | None:
        return self._repositories.by_id(repository_id)

    def repository_by_name(self, project_id: str, name: str) -> RepositoryInfo | None:
        return self._repositories.by_name(project_id, name)

    def repositories(self, project_id: str) -> list[RepositoryInfo]:
        return self._repositories.in_project(project_id)

    # -- objects ------------------------------------------------------------------------
    def put_objects(self, objects: Iterable[tuple[Digest, str, bytes]]) -> None:
        """Store the objects (digest, kind, canonical bytes) that are not stored yet (large
        bodies compressed)."""
        rows = [{"digest": d, "kind": k, "body": _pack(b)} for d, k, b in objects]
        if rows:
            self._conn.execute(dialect.insert_ignore(self._engine, version_objects), rows)

    def objects(self, digests: Iterable[Digest]) -> dict[Digest, tuple[str, bytes]]:
        """The stored objects among ``digests``: digest -> (kind, canonical bytes)."""
        wanted = list(set(digests))
        found: dict[Digest, tuple[str, bytes]] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk: Sequence[str] = wanted[start : start + _CHUNK]
            rows = self._conn.execute(
                select(
                    version_objects.c.digest, version_objects.c.kind, version_objects.c.body
                ).where(version_objects.c.digest.in_(chunk))
            )
            for digest, kind, body in rows:
                found[Digest(digest)] = (kind, _unpack(digest, bytes(body)))
        return found

    def kinds(self, digests: Iterable[Digest]) -> dict[Digest, str]:
        """The stored objects among ``digests``: digest -> kind (no bodies read)."""
        wanted = list(set(digests))
        found: dict[Digest, str] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk: Sequence[str] = wanted[start : start + _CHUNK]
            rows = self._conn.execute(
                select(version_objects.c.digest, version_objects.c.kind).where(
                    version_objects.c.digest.in_(chunk)
                )
            )
            found.update((Digest(digest), kind) for digest, kind in rows)
        return found

    # -- commits ------------------------------------------------------------------------
    def put_commit(self, repository_id: str, commit: Commit) -> CommitInfo:
        info = CommitInfo.of(repository_id, commit)
        self._conn.execute(
            dialect.insert_ignore(self._engine, commits),
            {
                "repository_id": repository_id,
                "digest": info.id,
                "root": commit.root,
                "parents": " ".join(commit.parents),
                "message": commit.message,
                "author": commit.author,
                "time": commit.time,
            },
        )
        return info

    def commit(self, repository_id: str, digest: str) -> CommitInfo | None:
        row = self._conn.execute(
            select(*_COMMIT_COLUMNS).where(
                commits.c.repository_id == repository_id, commits.c.digest == digest
            )
        ).first()
        return None if row is None else _commit(row)

    def commits_with_prefix(self, repository_id: str, prefix: str, limit: int = 2) -> list[Digest]:
        """Commit ids that start with ``prefix`` (to tell whether a short id is unique)."""
        rows = self._conn.execute(
            select(commits.c.digest)
            .where(commits.c.repository_id == repository_id, commits.c.digest.startswith(prefix))
            .limit(limit)
        )
        return [Digest(r[0]) for r in rows]

    def all_commits(self, repository_id: str) -> dict[Digest, CommitInfo]:
        """Every commit of the repository, in one query (a log walks them in memory)."""
        rows = self._conn.execute(
            select(*_COMMIT_COLUMNS).where(commits.c.repository_id == repository_id)
        )
        return {info.id: info for info in map(_commit, rows)}

    # -- refs ---------------------------------------------------------------------------
    def ref(self, repository_id: str, kind: RefKind, name: str) -> Digest | None:
        row = self._conn.execute(
            select(refs.c.commit).where(
                refs.c.repository_id == repository_id, refs.c.kind == kind, refs.c.name == name
            )
        ).first()
        return None if row is None else Digest(row[0])

    def refs(self, repository_id: str) -> list[RefInfo]:
        rows = self._conn.execute(
            select(refs.c.name, refs.c.kind, refs.c.commit)
            .where(refs.c.repository_id == repository_id)
            .order_by(refs.c.kind, refs.c.name)
        )
        return [RefInfo(name, kind, Digest(commit)) for name, kind, commit in rows]

    def create_ref(
        self, repository_id: str, kind: RefKind, name: str, commit: Digest, now: int
    ) -> bool:
        """Create a ref; False if one of that kind and name exists already."""
        result = self._conn.execute(
            dialect.insert_ignore(self._engine, refs),
            {
                "repository_id": repository_id,
                "kind": kind,
                "name": name,
                "commit": commit,
                "updated_at": now,
            },
        )
        return int(result.rowcount) == 1

    def move_ref(
        self, repository_id: str, kind: RefKind, name: str, expected: Digest, new: Digest, now: int
    ) -> bool:
        """Compare-and-swap: move the ref from ``expected`` to ``new``; False if it named
        another commit (someone moved it meanwhile) or does not exist."""
        result = self._conn.execute(
            update(refs)
            .where(
                refs.c.repository_id == repository_id,
                refs.c.kind == kind,
                refs.c.name == name,
                refs.c.commit == expected,
            )
            .values(commit=new, updated_at=now)
        )
        return int(result.rowcount) == 1

    def delete_ref(self, repository_id: str, kind: RefKind, name: str, expected: Digest) -> bool:
        result = self._conn.execute(
            delete(refs).where(
                refs.c.repository_id == repository_id,
                refs.c.kind == kind,
                refs.c.name == name,
                refs.c.commit == expected,
            )
        )
        return int(result.rowcount) == 1

    # -- runs and commits ------------------------------------------------------------------
    def lock_run(self, run_id: str) -> None:
        """Hold the run's row until the transaction ends, so that two writers of one run's
        link or capture (delete, then insert) take turns. (SQLite's writers always do.)"""
        self._conn.execute(select(runs.c.id).where(runs.c.id == run_id).with_for_update())

    def link_run(
        self,
        run_id: str,
        repository_id: str,
        commit: Digest,
        key_paths: Mapping[str, str],
        now: int,
    ) -> None:
        """Link a run to a commit, replacing a link to the same commit (more keys)."""
        self._conn.execute(delete(run_commits).where(run_commits.c.run_id == run_id))
        self._conn.execute(
            insert(run_commits),
            {
                "run_id": run_id,
                "repository_id": repository_id,
                "commit": commit,
                "key_paths": json.dumps(dict(key_paths), sort_keys=True),
                "created_at": now,
            },
        )

    def run_link(self, run_id: str) -> RunCommitInfo | None:
        row = self._conn.execute(select(run_commits).where(run_commits.c.run_id == run_id)).first()
        if row is None:
            return None
        m = row._mapping
        return RunCommitInfo(
            m["run_id"], m["repository_id"], Digest(m["commit"]), json.loads(m["key_paths"])
        )

    def runs_of_commit(
        self, repository_id: str, commit: Digest, *, include_deleted: bool
    ) -> list[str]:
        query = (
            select(run_commits.c.run_id)
            .join(runs, runs.c.id == run_commits.c.run_id)
            .where(run_commits.c.repository_id == repository_id, run_commits.c.commit == commit)
            .order_by(run_commits.c.run_id)
        )
        if not include_deleted:
            query = query.where(runs.c.deleted_at.is_(None))
        return [r[0] for r in self._conn.execute(query)]

    # -- what runs captured -----------------------------------------------------------------
    def set_captures(self, run_id: str, captured: Mapping[str, tuple[str, Digest]]) -> None:
        """What a run captured: path -> (blob kind, digest), replacing what it had."""
        self._conn.execute(delete(run_captures).where(run_captures.c.run_id == run_id))
        if captured:
            self._conn.execute(
                insert(run_captures),
                [
                    {"run_id": run_id, "path": path, "kind": kind, "digest": digest}
                    for path, (kind, digest) in captured.items()
                ],
            )

    def captures(self, run_id: str) -> dict[str, tuple[str, Digest]]:
        rows = self._conn.execute(
            select(run_captures.c.path, run_captures.c.kind, run_captures.c.digest)
            .where(run_captures.c.run_id == run_id)
            .order_by(run_captures.c.path)
        )
        return {path: (kind, Digest(digest)) for path, kind, digest in rows}


# How a body is kept: one byte saying how, then the bytes. Large bodies (tree nodes of big
# folders, long requirement lists) are compressed; small ones are not, as compressing
# 100 bytes costs some 50 µs and saves nothing.
_RAW: Final = b"\x00"
_ZLIB: Final = b"\x01"
_COMPRESS_FROM: Final = 512


def _pack(body: bytes) -> bytes:
    if len(body) >= _COMPRESS_FROM:
        packed = zlib.compress(body, 6)
        if len(packed) < len(body):
            return _ZLIB + packed
    return _RAW + body


def _unpack(digest: str, stored: bytes) -> bytes:
    how, body = stored[:1], stored[1:]
    if how == _RAW:
        return body
    if how == _ZLIB:
        try:
            return zlib.decompress(body)
        except zlib.error:
            pass
    raise CorruptObject(f"versioned object {digest} is not readable", digest=digest)
