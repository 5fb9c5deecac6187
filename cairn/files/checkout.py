"""Ingredients written back to disk: each path of a commit becomes a folder of files people
and tools read (``requirements.txt``, a config as JSON, a snapshot's files, a patch), every
stored byte verified on the way."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cairn.core.digest import Digest
from cairn.core.validation import check_artifact_key
from cairn.core.versioning.blobs import (
    Blob,
    DockerEnvironment,
    GitReference,
    Hyperparameters,
    NotebookCode,
    PathDataset,
    PythonEnvironment,
    SnapshotCode,
)
from cairn.files.nofollow import check_folders, make_folders
from cairn.files.writing import room_for, write_file_atomically

__all__ = ["Fetch", "checkout", "write_json"]

# Writes the stored object ``digest`` to a file, verified and atomically.
Fetch = Callable[[Digest, Path], int]


def checkout(blobs: Mapping[str, Blob], dest: str | os.PathLike[str], fetch: Fetch) -> list[Path]:
    """Write each blob under ``dest/<its path>/``; the files written, in order. A path
    that would leave ``dest``, and a symbolic link (or a file) where a folder goes
    below ``dest``, are refused before anything is written (``cairn.files.nofollow``):
    nothing is written through a link. ``dest`` itself may be a link: the caller named
    it."""
    root = Path(dest)
    targets = {path: check_artifact_key(path, "path").split("/") for path in blobs}
    for path, blob in blobs.items():
        check_folders(root, targets[path])
        for inner in _inner_folders(blob):
            check_folders(root, [*targets[path], *inner])
    written: list[Path] = []
    with room_for(f"the checkout into {os.fspath(root)!r}", path=os.fspath(root)):
        root.mkdir(parents=True, exist_ok=True)
        for path, blob in sorted(blobs.items()):
            folder = make_folders(root, targets[path])
            written += _write(blob, folder, fetch)
    return written


def _inner_folders(blob: Blob) -> list[list[str]]:
    """The folders a blob's files go in, below its own (a snapshot's)."""
    if not isinstance(blob, SnapshotCode):
        return []
    return [check_artifact_key(e.path, "file path").split("/")[:-1] for e in blob.files]


def _write(blob: Blob, folder: Path, fetch: Fetch) -> list[Path]:
    if isinstance(blob, Hyperparameters):
        return [write_json(folder / "hyperparameters.json", _hyperparameters(blob))]
    if isinstance(blob, PythonEnvironment):
        files = [_text(folder / "requirements.txt", _lines(blob.requirements.values()))]
        if blob.constraints:
            files.append(_text(folder / "constraints.txt", _lines(blob.constraints.values())))
        about = {
            "python": blob.version,
            "environment": dict(blob.environment),
            "command_line": list(blob.command_line),
            "apt": list(blob.apt),
        }
        files.append(write_json(folder / "environment.json", about))
        return files
    if isinstance(blob, DockerEnvironment):
        return [write_json(folder / "image.json", blob.body())]
    if isinstance(blob, GitReference):
        return _git(blob, folder, fetch)
    if isinstance(blob, SnapshotCode):
        files = []
        for entry in blob.files:
            *inner, name = check_artifact_key(entry.path, "file path").split("/")
            out = make_folders(folder, inner) / name
            fetch(entry.digest, out)
            files.append(out)
        return files
    if isinstance(blob, NotebookCode):
        name = check_artifact_key(blob.path, "notebook").rsplit("/", 1)[-1]
        fetch(Digest(blob.content), folder / name)
        # its git reference beside it, named after it: no notebook's name can clash
        git = [] if blob.git is None else _git(blob.git, folder, fetch, f"{name}.")
        return [folder / name, *git]
    if isinstance(blob, PathDataset):
        return [write_json(folder / "manifest.json", blob.body()["components"])]
    return [write_json(folder / f"{blob.KIND}.json", blob.body())]  # a kind added later


def _git(blob: GitReference, folder: Path, fetch: Fetch, prefix: str = "") -> list[Path]:
    files = [write_json(folder / f"{prefix}git.json", blob.body()["reference"])]
    if blob.diff is not None:
        out = folder / f"{prefix}uncommitted.patch"
        fetch(blob.diff, out)
        files.append(out)
    return files


def _hyperparameters(blob: Hyperparameters) -> dict[str, Any]:
    """Plain JSON values for people and tools (typed values keep their type: 1 stays an
    int, 1.0 a float)."""
    found: dict[str, Any] = {"values": dict(blob.values)}
    if blob.ranges:
        found["ranges"] = {
            k: {"begin": r.begin, "end": r.end, "step": r.step} for k, r in blob.ranges.items()
        }
    if blob.sets:
        found["sets"] = {k: list(v) for k, v in blob.sets.items()}
    return found


def _lines(lines: Any) -> str:
    return "".join(f"{line}\n" for line in lines)


def write_json(path: Path, value: Any) -> Path:
    """``value`` as indented JSON in ``path``, written atomically."""
    """``value`` as indented JSON in ``path``, written atomically."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return _text(path, text)


def _text(path: Path, text: str) -> Path:
    data = memoryview(text.encode())
    position = 0

    def readinto(buffer: memoryview) -> int:
        nonlocal position
        n = min(len(buffer), len(data) - position)
        buffer[:n] = data[position : position + n]
        position += n
        return n

    write_file_atomically(readinto, path)
    return path
