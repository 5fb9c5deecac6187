"""The state of a git work tree: remote, commit, branch, and the uncommitted changes.

One ``git status`` tells the commit, the branch and whether the tree is dirty; the remote
comes from the config, and the diff against HEAD only when there is one. A process keeps
the last answer while neither ``HEAD`` nor the index has moved and it is younger than
``ttl`` seconds, so a sweep of many runs does not ask git for each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["GitState", "capture_git"]

_TIMEOUT: Final = 30.0  # seconds: a git that hangs must not hold a run's capture forever


@dataclass(frozen=True, slots=True)
class GitState:
    """What git says of a work tree; ``diff`` is ``git diff HEAD`` (binary-safe), or None
    when the tree is clean."""

    root: str
    remote: str
    commit: str
    branch: str
    dirty: bool
    diff: bytes | None


_cache: dict[str, tuple[tuple[object, ...], float, GitState]] = {}
_trees: dict[str, tuple[str, str] | None] = {}  # folder -> (work tree root, git dir)
_remotes: dict[str, tuple[object, str]] = {}  # git dir -> (config file stamp, remote URL)
_lock = threading.Lock()


def capture_git(cwd: str | os.PathLike[str] | None = None, *, ttl: float = 2.0) -> GitState | None:
    """The work tree ``cwd`` is in (None outside one, or without git)."""
    git = shutil.which("git")
    if git is None:
        return None
    where = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
    with _lock:
        asked = where in _trees
        known = _trees.get(where)
    if not asked:
        top = _run([git, "-C", where, "rev-parse", "--show-toplevel", "--absolute-git-dir"])
        lines = [] if top is None else top.decode(errors="replace").splitlines()
        known = (lines[0], lines[1]) if len(lines) >= 2 else None
        with _lock:
            _trees[where] = known
    if known is None:
        return None
    root, git_dir = known
    key = _stamp(git_dir)
    with _lock:
        cached = _cache.get(root)
        if cached is not None and cached[0] == key and time.monotonic() - cached[1] < ttl:
            return cached[2]
    state = _read(git, root, git_dir)
    if state is not None:
        with _lock:
            _cache[root] = (key, time.monotonic(), state)
    return state


def _read(git: str, root: str, git_dir: str) -> GitState | None:
    status = _run([git, "-C", root, "status", "--porcelain=v2", "--branch", "--untracked-files=no"])
    if status is None:
        return None
    commit = branch = ""
    dirty = False
    for line in status.decode(errors="replace").splitlines():
        if line.startswith("# branch.oid "):
            commit = line.removeprefix("# branch.oid ").strip()
        elif line.startswith("# branch.head "):
            branch = line.removeprefix("# branch.head ").strip()
        elif line and not line.startswith("#"):
            dirty = True
    if commit == "(initial)":
        commit = ""  # a repository without a commit yet
    if branch == "(detached)":
        branch = ""
    diff = _run([git, "-C", root, "diff", "HEAD", "--binary"]) if dirty and commit else None
    return GitState(root, _remote(git, root, git_dir), commit, branch, dirty, diff)


def _remote(git: str, root: str, git_dir: str) -> str:
    """origin's URL, read again only when the repository's config file changed."""
    try:
        stat = os.stat(os.path.join(git_dir, "config"))
        stamp: object = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    with _lock:
        known = _remotes.get(git_dir)
    if known is not None and known[0] == stamp:
        return known[1]
    found = _run([git, "-C", root, "config", "--get", "remote.origin.url"]) or b""
    url = found.decode(errors="replace").strip()
    with _lock:
        _remotes[git_dir] = (stamp, url)
    return url


def _stamp(git_dir: str) -> tuple[object, ...]:
    """What moves when git's own state does: HEAD (and the ref it names) and the index."""
    found: list[object] = []
    for name in ("HEAD", "index"):
        try:
            stat = os.stat(os.path.join(git_dir, name))
            found.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            found.append(None)
    try:
        found.append(Path(git_dir, "HEAD").read_bytes())
    except OSError:
        found.append(None)
    return tuple(found)


def _run(command: list[str]) -> bytes | None:
    """A git command's output, or None if it failed (not a work tree, no git, a hang)."""
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
