"""Artifacts: files and folders logged against an entity.

Bytes go to the content-addressed object store first (stored once, verified on
read), then one metadata transaction records the key. A folder becomes a tree
manifest object listing each file's relative path, digest and size.

Moving bytes in and out is :mod:`cairn.files.artifacts`, which the HTTP client runs
against the server's object routes too. The server's side of that split is
:meth:`ArtifactService.record_artifact` (record objects that are already stored,
checked) and :meth:`ArtifactService.resolve_artifact` (what a key names, for listing
and download).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.identity import Role
from cairn.core.model import ArtifactInfo
from cairn.core.objects import Progress
from cairn.core.tree import Tree, TreeEntry
from cairn.core.validation import check_artifact_key
from cairn.files.artifacts import (
    ARTIFACT_KINDS,
    ArtifactSource,
    ResolvedArtifact,
    StoredArtifact,
    place_artifact,
    store_source,
)
from cairn.files.statcache import open_stat_cache
from cairn.service.base import ServicePart
from cairn.service.objects import read_tree, stored_size
from cairn.store.metadata.artifacts import check_room
from cairn.store.metadata.tx import MetadataTx

__all__ = ["ArtifactService"]


class ArtifactService(ServicePart):
    """Files and folders logged against projects, experiments and runs."""

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
        self._allow(entity_id, Role.WRITER)
        with self.metadata.read() as tx:  # fail fast, before moving any bytes
            self._require_kind(tx, entity_id)
            self._room(tx, entity_id, key, _known_size(source))
        cache = open_stat_cache(self.settings.stat_cache)
        stored = store_source(self.objects, source, progress, self.settings.symlinks, cache)
        return self._record(entity_id, key, stored)

    def record_artifact(self, entity_id: str, key: str, kind: str, digest: str) -> ArtifactInfo:
        """Record objects that are already stored (uploaded one by one) as an artifact.

        Nothing the caller says is trusted: the object must exist; a tree must be a
        canonical manifest whose every file exists with the size it claims; size and
        file count come from the store.
        """
        check_artifact_key(key)
        if kind not in ARTIFACT_KINDS:
            raise InvalidArgument("kind", f"must be 'file' or 'tree', got {kind!r}")
        digest = parse_digest(digest)
        self._allow(entity_id, Role.WRITER)
        with self.metadata.read() as tx:
            self._require_kind(tx, entity_id)
            now = tx.artifacts.get(entity_id, key)
        if now is not None and (now.kind, now.digest) == (kind, digest):
            # Logged again unchanged: checked when it was first recorded, and recording it
            # again refers to nothing new (a folder of 10,000 files: 10,000 stats spared).
            stored = StoredArtifact(kind, digest, now.size, now.file_count)
        elif kind == "file":
            stored = StoredArtifact("file", digest, self._object_size(digest), 1)
        else:
            tree = self._read_tree(digest)
            if tree.digest() != digest:
                raise InvalidArgument("digest", "is not the canonical manifest of a tree")
            for entry in tree.entries:
                actual = self._object_size(entry.digest)
                if actual != entry.size:
                    raise InvalidArgument(
                        "digest",
                        f"the tree says {entry.path!r} has {entry.size} bytes, "
                        f"its object has {actual}",
                        path=entry.path,
                    )
            stored = StoredArtifact("tree", digest, tree.size, len(tree.entries))
        return self._record(entity_id, key, stored)

    def _record(self, entity_id: str, key: str, stored: StoredArtifact) -> ArtifactInfo:
        info = ArtifactInfo(
            key, stored.kind, stored.digest, stored.size, stored.file_count, self.clock()
        )
        with self.metadata.write() as tx:
            self._require_writable(tx, entity_id, recording=True)  # a run's must be running
            tx.artifacts.put(entity_id, info, quota=self.settings.project_quota_bytes)
        return info

    def _room(self, tx: MetadataTx, entity_id: str, key: str, incoming: int) -> None:
        """``QuotaExceeded`` now if the project has no room for ``incoming`` bytes in place
        of what ``key`` holds."""
        quota = self.settings.project_quota_bytes
        project_id = None if quota is None else tx.artifacts.project_of(entity_id)
        if project_id is not None:
            replaced = tx.artifacts.get(entity_id, key)
            used = tx.artifacts.usage(project_id) - (replaced.size if replaced else 0)
            check_room(project_id, used, quota, incoming)

    def list_artifacts(self, entity_id: str) -> list[ArtifactInfo]:
        self._allow(entity_id, Role.READER)
        with self.metadata.read() as tx:
            self._require_kind(tx, entity_id)
            return tx.artifacts.of_entity(entity_id)

    def list_artifact_files(self, entity_id: str, key: str) -> list[TreeEntry]:
        """The files of an artifact (a tree lists each; a file lists itself)."""
        return list(self.resolve_artifact(entity_id, key).entries)

    def open_artifact(self, entity_id: str, key: str) -> BinaryIO:
        """A verifying read stream of a file artifact, or of a file inside a tree."""
        found = self.resolve_artifact(entity_id, key)
        return self.objects.open(found.file_digest(key))

    def download_artifact(
        self,
        entity_id: str,
        key: str,
        dest: str | os.PathLike[str],
        progress: Progress | None = None,
    ) -> Path:
        """Write an artifact under ``dest``: into it if it is a folder (or ends in '/'),
        else at ``dest`` itself. Every file is verified and written atomically;
        ``progress`` is told of the bytes as they are written."""
        found = self.resolve_artifact(entity_id, key)
        return place_artifact(self.objects, found, key, dest, progress)

    # -- resolution -------------------------------------------------------------------
    def resolve_artifact(self, entity_id: str, key: str) -> ResolvedArtifact:
        """A key names an artifact, or a file or folder inside a tree artifact."""
        check_artifact_key(key)
        self._allow(entity_id, Role.READER)
        with self.metadata.read() as tx:
            self._require_kind(tx, entity_id)
            info, rest = self._find(tx, entity_id, key)
        name = key.rsplit("/", 1)[-1]
        if info.kind == "file":
            return ResolvedArtifact("file", (TreeEntry(name, Digest(info.digest), info.size),))
        tree = self._read_tree(Digest(info.digest))
        if rest is None:
            return ResolvedArtifact("tree", tree.entries)
        entry = tree.find(rest)
        if entry is not None:
            return ResolvedArtifact("file", (TreeEntry(name, entry.digest, entry.size),))
        inside = tree.under(rest)
        if inside:
            return ResolvedArtifact("tree", Tree.of(inside).entries)
        raise NotFound(f"no artifact {key!r} on {entity_id}", id=entity_id, key=key)

    @staticmethod
    def _find(tx: MetadataTx, entity_id: str, key: str) -> tuple[ArtifactInfo, str | None]:
        parts = key.split("/")
        for cut in range(len(parts), 0, -1):
            info = tx.artifacts.get(entity_id, "/".join(parts[:cut]))
            if info is not None:
                rest = "/".join(parts[cut:]) or None
                if rest is not None and info.kind != "tree":
                    break
                return info, rest
        raise NotFound(f"no artifact {key!r} on {entity_id}", id=entity_id, key=key)

    def _read_tree(self, digest: Digest) -> Tree:
        return read_tree(self.objects, digest)

    def _object_size(self, digest: Digest) -> int:
        return stored_size(self.objects, digest)


def _known_size(source: ArtifactSource) -> int:
    """The bytes a source brings where that costs nothing to learn (bytes, a file); 0 for
    a folder or a stream (the record of the artifact checks the quota then)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return memoryview(source).nbytes
    if isinstance(source, str | os.PathLike):
        try:
            found = os.stat(source)
        except OSError:
            return 0  # store_source says what is wrong with it
        return found.st_size if stat.S_ISREG(found.st_mode) else 0
    return 0
