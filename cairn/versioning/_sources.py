"""Ingredients read from this machine: captured now (the Python environment) or when a
commit takes them (files, whose bytes go to the object store first)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path as LocalPath
from typing import Final, Protocol

from cairn.capture.files import hash_file, list_files
from cairn.capture.git import capture_git
from cairn.capture.python import capture_python
from cairn.core.errors import InvalidArgument
from cairn.core.objects import ObjectInfo, Progress
from cairn.core.settings import CAPTURE_VARIABLES
from cairn.core.versioning.blobs import (
    Blob,
    Component,
    FileEntry,
    GitReference,
    NotebookCode,
    PathDataset,
    PythonEnvironment,
    SnapshotCode,
)
from cairn.files.statcache import open_stat_cache
from cairn.versioning._capture import CaptureStore, capture_folder

__all__ = [
    "DEFAULT_VARIABLES",
    "Git",
    "Ingredient",
    "Notebook",
    "ObjectStorer",
    "Path",
    "Python",
    "Snapshot",
]

# Variables a captured Python environment keeps unless told otherwise.
DEFAULT_VARIABLES: Final = tuple(CAPTURE_VARIABLES.split(","))


class ObjectStorer(Protocol):
    """Where an ingredient's bytes go before a commit names them (a backend's
    repositories part)."""

    def store_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo: ...

    def store_bytes(self, data: bytes) -> ObjectInfo: ...


class Ingredient(Protocol):
    """Something a commit can take that becomes a blob only then."""

    def resolve(self, store: ObjectStorer) -> Blob: ...


class Python(PythonEnvironment):
    """A Python environment: ``Python(requirements=[...], version=...)``, or
    ``Python.capture()`` for this process's own."""

    @classmethod
    def capture(cls, variables: Iterable[str] = DEFAULT_VARIABLES) -> PythonEnvironment:
        """This interpreter's version, every installed distribution pinned, the command line
        and the environment variables matching ``variables`` (never one that looks like a
        secret: ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*KEY*``, ...)."""
        return capture_python(os.environ, variables)


class Git(GitReference):
    """Code in git: ``Git(remote=..., commit=...)``, or ``Git.capture()`` for the work tree
    a folder is in (its uncommitted changes are stored as a diff)."""

    @classmethod
    def capture(cls, path: str | os.PathLike[str] = ".") -> Ingredient:
        state = capture_git(path)
        if state is None:
            raise InvalidArgument("path", f"{os.fspath(path)!r} is not in a git work tree")
        return _GitCapture(state.remote, state.commit, state.branch, state.dirty, state.diff)


class _GitCapture:
    def __init__(self, remote: str, commit: str, branch: str, dirty: bool, diff: bytes | None):
        self.remote, self.commit, self.branch, self.dirty, self.diff = (
            remote,
            commit,
            branch,
            dirty,
            diff,
        )

    def resolve(self, store: ObjectStorer) -> Blob:
        stored = None if self.diff is None else store.store_bytes(self.diff).digest
        return GitReference(
            remote=self.remote,
            commit=self.commit,
            branch=self.branch,
            dirty=self.dirty,
            diff=stored,
        )


class Snapshot:
    """The files of a folder (or one file) themselves, for code outside git: each file's
    bytes are stored once per content."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = LocalPath(path)

    def resolve(self, store: ObjectStorer) -> Blob:
        files = []
        for local in list_files(self.path):
            stored = store.store_file(local.source)
            files.append(FileEntry(local.path, stored.digest, stored.size))
        return SnapshotCode(files)


class Notebook:
    """A Jupyter notebook: its content stored, with the git reference of its work tree."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = LocalPath(path)

    def resolve(self, store: ObjectStorer) -> Blob:
        if not self.path.is_file():
            raise InvalidArgument("path", f"{os.fspath(self.path)!r} is not a notebook file")
        stored = store.store_file(self.path)
        git = capture_git(self.path.parent)
        reference = None
        if git is not None and (git.commit or git.remote):
            diff = None if git.diff is None else store.store_bytes(git.diff).digest
            reference = GitReference(
                remote=git.remote, commit=git.commit, branch=git.branch, dirty=git.dirty, diff=diff
            )
        return NotebookCode(self.path.name, stored.digest, stored.size, reference)


class Path:
    """A dataset of local files: each file's path, size, modification time and digest.
    By default its bytes stay where they are; ``capture=True`` stores them too (a dataset
    version that can be checked out), reading only the files the stat cache does not
    know unchanged. Symbolic links are recorded as links, never followed; a file that
    changes while it is captured is refused, naming it. ``progress`` is told of the bytes
    as they are taken."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        capture: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.path = LocalPath(path)
        self.capture = capture
        self.progress = progress

    def __repr__(self) -> str:
        return f"Path({os.fspath(self.path)!r}, capture={self.capture})"

    def resolve(self, store: ObjectStorer) -> Blob:
        if self.capture:
            if not isinstance(store, CaptureStore):
                raise InvalidArgument("store", "cannot capture a dataset's bytes")
            settings = getattr(store, "settings", None)
            cache = open_stat_cache(getattr(settings, "stat_cache", None))
            return capture_folder(self.path, store, cache, self.progress)
        components = []
        for local in list_files(self.path):
            digest, size = hash_file(local.source)
            components.append(Component(local.path, size, local.modified, digest))
        return PathDataset(components)
