"""Artifacts: files and folders logged against an entity.

Bytes go to the content-addressed object store first (stored once, verified on
read), then one metadata transaction records the key. A folder becomes a tree
manifest object listing each file's relative path, digest and size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.model import ArtifactInfo
from cairn.core.tree import Tree, TreeEntry
from cairn.core.validation import check_artifact_key
from cairn.service.base import ServiceBase
from cairn.store.metadata.tx import MetadataTx

__all__ = ["ArtifactOps", "ArtifactSource"]

ArtifactSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


class ArtifactOps(ServiceBase):
    def log_artifact(self, entity_id: str, key: str, source: ArtifactSource) -> ArtifactInfo:
        """Log a file, a folder (kept as a tree), bytes or a binary file object."""
        check_artifact_key(key)
        with self.metadata.read() as tx:  # fail fast, before moving any bytes
            self._require_kind(tx, entity_id)
        kind, digest, size, count = self._store_source(source)
        info = ArtifactInfo(key, kind, digest, size, count, self.clock())
        with self.metadata.write() as tx:
            self._require_writable(tx, entity_id)
            tx.artifacts.put(entity_id, info)
        return info

    def _store_source(self, source: ArtifactSource) -> tuple[str, Digest, int, int]:
        if isinstance(source, bytes | bytearray | memoryview):
            ref = self.objects.put_bytes(bytes(source))
            return "file", ref.digest, ref.size, 1
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if path.is_dir():
                tree = self._store_folder(path)
                ref = self.objects.put_bytes(tree.encode())
                return "tree", ref.digest, tree.size, len(tree.entries)
            if path.is_file():
                ref = self.objects.put_file(path)
                return "file", ref.digest, ref.size, 1
            raise InvalidArgument("source", f"{os.fspath(path)!r} is not a file or a folder")
        if hasattr(source, "read"):
            ref = self.objects.put_stream(source)
            return "file", ref.digest, ref.size, 1
        raise InvalidArgument(
            "source", f"must be a path, bytes or a binary file object, got {type(source).__name__}"
        )

    def _store_folder(self, root: Path) -> Tree:
        entries: list[TreeEntry] = []
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder, name)
                if not path.is_file():  # sockets, broken links: nothing to keep
                    continue
                relative = path.relative_to(root).as_posix()
                check_artifact_key(relative, "file path in folder")
                ref = self.objects.put_file(path)
                entries.append(TreeEntry(relative, ref.digest, ref.size))
        return Tree.of(entries)

    def list_artifacts(self, entity_id: str) -> list[ArtifactInfo]:
        with self.metadata.read() as tx:
            self._require_kind(tx, entity_id)
            return tx.artifacts.of_entity(entity_id)

    def list_artifact_files(self, entity_id: str, key: str) -> list[TreeEntry]:
        """The files of an artifact (a tree lists each; a file lists itself)."""
        found = self._resolve(entity_id, key)
        if isinstance(found, Tree):
            return list(found.entries)
        return [TreeEntry(key.rsplit("/", 1)[-1], found.digest, found.size)]

    def open_artifact(self, entity_id: str, key: str) -> BinaryIO:
        """A verifying read stream of a file artifact, or of a file inside a tree."""
        found = self._resolve(entity_id, key)
        if isinstance(found, Tree):
            raise InvalidArgument("key", f"{key!r} is a folder: download it or open a file in it")
        return self.objects.open(found.digest)

    def download_artifact(self, entity_id: str, key: str, dest: str | os.PathLike[str]) -> Path:
        """Write an artifact under ``dest``: into it if it is a folder (or ends in '/'),
        else at ``dest`` itself. Every file is verified and written atomically."""
        found = self._resolve(entity_id, key)
        target = Path(dest)
        if target.is_dir() or os.fspath(dest).endswith(("/", os.sep)):
            target = target / key.rsplit("/", 1)[-1]
        if isinstance(found, Tree):
            for entry in found.entries:
                check_artifact_key(entry.path, "file path in folder")  # never leave target
                out = target.joinpath(*entry.path.split("/"))
                out.parent.mkdir(parents=True, exist_ok=True)
                self.objects.copy_to_file(entry.digest, out)
            target.mkdir(parents=True, exist_ok=True)  # an empty folder is a folder too
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.objects.copy_to_file(found.digest, target)
        return target

    # -- resolution -------------------------------------------------------------------
    def _resolve(self, entity_id: str, key: str) -> TreeEntry | Tree:
        """A key names an artifact, or a file or folder inside a tree artifact."""
        check_artifact_key(key)
        with self.metadata.read() as tx:
            self._require_kind(tx, entity_id)
            info, rest = self._find(tx, entity_id, key)
        if info.kind == "file":
            return TreeEntry(info.key, Digest(info.digest), info.size)
        with self.objects.open(Digest(info.digest)) as stream:
            tree = Tree.decode(stream.read())
        if rest is None:
            return tree
        entry = tree.find(rest)
        if entry is not None:
            return entry
        inside = tree.under(rest)
        if inside:
            return Tree.of(inside)
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
