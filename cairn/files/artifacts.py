"""Artifacts between local files and an object store: a file, a folder (as a tree
manifest), bytes or a stream in; a file or a folder out, verified and atomic.

The same functions run against the local object store (the embedded service) and against
the server's object routes (the HTTP client): each takes the small slice of an object
store it needs (:class:`ObjectSink`, :class:`ObjectSource`).
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument
from cairn.core.objects import ObjectInfo, Progress
from cairn.core.tree import Tree, TreeEntry
from cairn.core.validation import check_artifact_key
from cairn.files.writing import fsync_dir, room_for

__all__ = [
    "ARTIFACT_KINDS",
    "ArtifactKind",
    "ArtifactSource",
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


class ObjectSource(Protocol):
    """What placing an artifact on disk needs: a verified, atomic copy of one object."""

    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int: ...


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
    objects: ObjectSink, source: ArtifactSource, progress: Progress | None = None
) -> StoredArtifact:
    """Store a file, a folder (as a tree), bytes or a binary file object. ``progress``
    is told of the bytes of the source as they are stored (not of a tree's manifest)."""
    if isinstance(source, bytes | bytearray | memoryview):
        ref = objects.put_bytes(bytes(source))
        if progress is not None:
            progress(ref.size)
        return StoredArtifact("file", ref.digest, ref.size, 1)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir():
            tree = store_folder(objects, path, progress)
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


def store_folder(objects: ObjectSink, root: Path, progress: Progress | None = None) -> Tree:
    """Store every regular file under ``root``; the tree lists them by relative path."""
    entries: list[TreeEntry] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            if not path.is_file():  # sockets, broken links: nothing to keep
                continue
            relative = path.relative_to(root).as_posix()
            check_artifact_key(relative, "file path in folder")
            ref = objects.put_file(path, progress)
            entries.append(TreeEntry(relative, ref.digest, ref.size))
    return Tree.of(entries)


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
    at all: its files are staged in a hidden folder beside the target first."""
    target = Path(dest)
    if target.is_dir() or os.fspath(dest).endswith(("/", os.sep)):
        target = target / key.rsplit("/", 1)[-1]
    with room_for(str(target), path=str(target)):
        target.parent.mkdir(parents=True, exist_ok=True)
        if found.kind == "file":
            objects.copy_to_file(found.entries[0].digest, target, progress)
            return target
        staging = _new_folder(target.parent, f".{target.name[:100]}.")
        try:
            for entry in found.entries:
                check_artifact_key(entry.path, "file path in folder")  # never leave target
                out = staging.joinpath(*entry.path.split("/"))
                out.parent.mkdir(parents=True, exist_ok=True)
                objects.copy_to_file(entry.digest, out, progress)
            _move_into(staging, target, [e.path for e in found.entries])
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already when renamed whole
    return target


def _move_into(staging: Path, target: Path, paths: list[str]) -> None:
    """Put the staged files at ``target``: one rename if it is new, else file by file
    (files of ``target`` that the tree does not name stay)."""
    if not target.exists():
        staging.rename(target)
        fsync_dir(target.parent)
        return
    touched: set[Path] = set()
    for path in paths:
        out = target.joinpath(*path.split("/"))
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging.joinpath(*path.split("/")), out)
        touched.add(out.parent)
    target.mkdir(exist_ok=True)  # an existing file there fails here, as it should
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
