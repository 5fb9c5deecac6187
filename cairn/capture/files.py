"""Files to version: walked in a stable order, hashed with the one digest of Cairn."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cairn.core.digest import Digest, new_hasher
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.validation import check_artifact_key

__all__ = ["LocalFile", "hash_file", "list_files"]

_CHUNK: Final = 4 << 20


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file under a folder: its path there (with '/'), where it is, its size and
    its modification time (ms)."""

    path: str
    source: Path
    size: int
    modified: int


def hash_file(path: str | os.PathLike[str]) -> tuple[Digest, int]:
    """The digest and size of a file's bytes."""
    hasher = new_hasher()
    size = 0
    try:
        with open(path, "rb", buffering=0) as file:
            buffer = memoryview(bytearray(_CHUNK))
            while n := file.readinto(buffer):
                hasher.update(buffer[:n])
                size += n
    except FileNotFoundError:
        raise NotFound(f"no file at {os.fspath(path)!r}", path=os.fspath(path)) from None
    return Digest(hasher.hexdigest()), size


def list_files(root: str | os.PathLike[str]) -> list[LocalFile]:
    """Every regular file under ``root`` (a folder, or one file), in path order. Symbolic
    links are not followed: what a snapshot holds is what is in the folder."""
    base = Path(root)
    if base.is_file():
        stat = base.stat()
        return [LocalFile(base.name, base, stat.st_size, stat.st_mtime_ns // 1_000_000)]
    if not base.is_dir():
        raise NotFound(f"no file or folder at {os.fspath(root)!r}", path=os.fspath(root))
    found: list[LocalFile] = []
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(folder, d)))
        for name in sorted(files):
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(base).as_posix()
            try:
                check_artifact_key(relative, "file path")
            except InvalidArgument as exc:
                raise InvalidArgument("path", f"{relative!r} cannot be versioned: {exc}") from None
            stat = path.stat()
            found.append(LocalFile(relative, path, stat.st_size, stat.st_mtime_ns // 1_000_000))
    return found
