"""Folders below a target that a download or checkout writes into, never through a link.

The caller names a target folder (it may itself be a link: the caller chose it). Below
it, every folder a download needs must be a real folder: a symbolic link there (even to
a folder inside the target) is refused with an error naming it, so no byte lands
outside. A link where a *file* goes is no hazard: files are written to a temp file and
renamed over their path, which replaces the link itself, as it replaces a file.

Checks are made with ``lstat`` as the folders are made. Someone who can write into the
target folder while Cairn writes there could still swap a folder for a link between the
check and the write; a download into a folder shared with untrusted writers is not
safe, with Cairn or ``cp``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cairn.core.errors import InvalidArgument

__all__ = ["check_folders", "link_refused", "make_folders"]


def link_refused(path: Path, field: str = "dest") -> InvalidArgument:
    return InvalidArgument(
        field,
        f"{os.fspath(path)!r} is a symbolic link where the download needs a folder: Cairn "
        "never writes through links; remove it or choose another folder",
        path=os.fspath(path),
    )


def check_folders(root: Path, parts: Sequence[str], field: str = "dest") -> None:
    """Refuse a link, or a file, at any folder ``root/parts[:i]`` that exists already
    (the rest will be made). Nothing is written."""
    path = root
    for part in parts:
        path = path / part
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        _check_folder(path, info, field)


def make_folders(root: Path, parts: Sequence[str], field: str = "dest") -> Path:
    """``root/parts...``, each part a real folder, made if missing; never a link."""
    path = root
    for part in parts:
        path = path / part
        try:
            os.mkdir(path)
            continue
        except FileExistsError:
            pass
        _check_folder(path, os.lstat(path), field)
    return path


def _check_folder(path: Path, info: os.stat_result, field: str) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise link_refused(path, field)
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidArgument(
            field,
            f"{os.fspath(path)!r} is a file where the download needs a folder",
            path=os.fspath(path),
        )
