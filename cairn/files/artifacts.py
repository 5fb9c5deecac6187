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
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument
from cairn.core.objects import ObjectInfo, Progress
from cairn.core.settings import SYMLINKS_CHOICES
from cairn.core.tree import Tree, TreeEntry
from cairn.core.validation import check_artifact_key
from cairn.files.nofollow import check_folders, link_refused, make_folders
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
    objects: ObjectSink,
    source: ArtifactSource,
    progress: Progress | None = None,
    symlinks: str = "inside",
) -> StoredArtifact:
    """Store a file, a folder (as a tree), bytes or a binary file object. ``progress``
    is told of the bytes of the source as they are stored (not of a tree's manifest).
    ``symlinks`` says what a link inside a folder is taken for (:func:`store_folder`)."""
    if isinstance(source, bytes | bytearray | memoryview):
        ref = objects.put_bytes(bytes(source))
        if progress is not None:
            progress(ref.size)
        return StoredArtifact("file", ref.digest, ref.size, 1)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir():
            tree = store_folder(objects, path, progress, symlinks)
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
    objects: ObjectSink, root: Path, progress: Progress | None = None, symlinks: str = "inside"
) -> Tree:
    """Store every file under ``root``; the tree lists them by relative path.

    A symbolic link inside the folder is, by ``symlinks`` (the ``CAIRN_SYMLINKS``
    setting): ``inside``, stored as what it points to if that is inside ``root`` (a
    file, or a folder walked like any other), refused if it leaves ``root`` or is
    broken; ``refuse``, refused; ``follow``, followed wherever it points. A link that
    leads back into a folder being walked, and any special file (FIFO, socket, device),
    is refused. Every refusal names the path, before a byte of the folder is stored
    (the walk comes first, the uploads after). ``root`` itself may be a link: it is
    what the caller named. Empty folders are not kept."""
    if symlinks not in SYMLINKS_CHOICES:
        raise InvalidArgument("symlinks", f"must be one of {', '.join(SYMLINKS_CHOICES)}")
    files = _walk(root, symlinks)
    entries: list[TreeEntry] = []
    for relative, real in files:
        ref = objects.put_file(real, progress)
        entries.append(TreeEntry(relative, ref.digest, ref.size))
    return Tree.of(entries)


def _walk(root: Path, symlinks: str) -> list[tuple[str, str]]:
    """(path in the tree, real path to read) of every file the folder holds, by the
    rules of :func:`store_folder`; the paths are checked as tree paths."""
    top = os.path.realpath(root)
    found: list[tuple[str, str]] = []
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
            shown = os.path.join(os.fspath(root), *relative.split("/"))
            check_artifact_key(relative, "file path in folder")
            real = item.path
            if item.is_symlink():
                real = _link_target(item.path, shown, top, symlinks)
            try:
                info = os.stat(real)
            except OSError as exc:  # gone meanwhile, or unreadable
                raise InvalidArgument(
                    "source", f"{shown!r} cannot be read: {exc.strerror}", path=shown
                ) from None
            if stat.S_ISDIR(info.st_mode):
                identity = _identity(info)
                if identity in above:
                    raise InvalidArgument(
                        "source",
                        f"{shown!r} is a link back to a folder that holds it (a loop)",
                        path=shown,
                    )
                pending.append((real, f"{relative}/", above | {identity}))
            elif stat.S_ISREG(info.st_mode):
                found.append((relative, real))
            else:
                raise InvalidArgument(
                    "source",
                    f"{shown!r} is a {_special_kind(info.st_mode)}, not a file or a folder: "
                    "only files and folders can be logged",
                    path=shown,
                )
    return found


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
            for entry, path in zip(found.entries, paths, strict=True):
                out = staging.joinpath(*path.split("/"))
                out.parent.mkdir(parents=True, exist_ok=True)
                objects.copy_to_file(entry.digest, out, progress)
            _move_into(staging, target, paths)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already when renamed whole
    return target


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
