"""Artifacts: files and folders logged against an entity.

Bytes go to the content-addressed object store first (stored once, verified on
read), then one metadata transaction records the key. A folder becomes a tree
manifest object listing each file's relative path, digest and size.

Moving bytes in (:func:`store_source`) and out (:func:`place_artifact`) are plain
functions over a small slice of the object-store port, so the HTTP client runs the
very same logic against the server's object routes. The server side of that split is
:meth:`ArtifactOps.record_artifact` (record objects that are already stored, checked)
and :meth:`ArtifactOps.resolve_artifact` (what a key names, for listing and download).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.model import ArtifactInfo
from cairn.core.tree import Tree, TreeEntry
from cairn.core.validation import check_artifact_key
from cairn.service.base import ServiceBase
from cairn.store.metadata.tx import MetadataTx
from cairn.store.objects.local import fsync_dir, room_for
from cairn.store.objects.port import ObjectInfo, ObjectWriter, Progress

__all__ = [
    "ArtifactKind",
    "ArtifactOps",
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
_CHUNK = 4 << 20  # reads of whole objects: big, for few calls


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


class ArtifactOps(ServiceBase):
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
        with self.metadata.read() as tx:  # fail fast, before moving any bytes
            self._require_kind(tx, entity_id)
        stored = store_source(self.objects, source, progress)
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
        with self.metadata.read() as tx:
            self._require_kind(tx, entity_id)
        if kind == "file":
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
            self._require_writable(tx, entity_id)
            tx.artifacts.put(entity_id, info)
        return info

    def list_artifacts(self, entity_id: str) -> list[ArtifactInfo]:
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
        with self.objects.open(digest) as stream:
            return Tree.decode(stream.read())

    def _object_size(self, digest: Digest) -> int:
        try:
            return self.objects.size(digest)
        except NotFound:
            raise NotFound(
                f"no object {digest}: upload it before recording it", digest=digest
            ) from None

    # -- objects, for the object routes of the server ----------------------------------
    def object_size(self, digest: str) -> int:
        """Size of a stored object; ``NotFound`` if there is none."""
        return self.objects.size(parse_digest(digest))

    def open_object(self, digest: str) -> BinaryIO:
        """A verifying read stream of one object."""
        return self.objects.open(parse_digest(digest))

    def object_writer(self) -> ObjectWriter:
        """A writer for one object arriving piece by piece (commit with its digest)."""
        return self.objects.open_writer()

    def verify_object(self, digest: str) -> ObjectInfo:
        """Read a whole object and check it; ``CorruptObject`` if its bytes lie."""
        digest = parse_digest(digest)
        size = 0
        with self.objects.open(digest) as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
        return ObjectInfo(digest, size)

    def compose_object(self, parts: Sequence[str], digest: str) -> ObjectInfo:
        """Store the concatenation of stored objects as the object ``digest``.

        Each part is verified as it is read and the result must hash to ``digest``
        (else ``InvalidArgument`` and nothing is stored). The parts stay stored.
        """
        if not parts:
            raise InvalidArgument("parts", "must list at least one object")
        wanted = parse_digest(digest)
        digests = [parse_digest(p, "parts") for p in parts]
        if self.objects.exists(wanted):
            return ObjectInfo(wanted, self.objects.size(wanted))
        for part in digests:  # every part there before a byte is copied
            self._object_size(part)
        with self.objects.open_writer() as writer:
            for part in digests:
                with self.objects.open(part) as stream:
                    while chunk := stream.read(_CHUNK):
                        writer.write(chunk)
            return writer.commit(expected=wanted)
