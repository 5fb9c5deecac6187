"""The state of a git work tree: remote, commit, branch, and the uncommitted changes.

One ``git status`` tells the commit, the branch and whether the tree is dirty; the remote
comes from the config, the uncommitted changes from ``git diff HEAD``; the questions run
side by side. A process keeps the last answer while neither ``HEAD`` nor the index has
moved and it is younger than ``ttl`` seconds (an edit moves neither), so a sweep of many
runs does not ask git for each.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cairn.capture.secrets import redact_urls

__all__ = ["GitState", "cached_git", "capture_git"]

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


@functools.lru_cache(maxsize=4)
def _git(path: str | None) -> str | None:
    """Where git is, for a PATH (asked once: a sweep asks for each run)."""
    return shutil.which("git", path=path)


def cached_git(
    cwd: str | os.PathLike[str] | None = None, *, ttl: float = 2.0
) -> tuple[bool, GitState | None]:
    """What :func:`capture_git` would answer, if it can answer without running git: the
    answer it keeps (still valid), or None outside a work tree; ``(False, None)`` when git
    must be asked. A few ``stat`` calls: cheap enough for the training thread."""
    if _git(os.environ.get("PATH")) is None:
        return True, None
    where = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
    with _lock:
        asked = where in _trees
        known = _trees.get(where)
    if asked and known is None:
        return True, None
    if known is not None:
        key = _stamp(known[1])
        with _lock:
            cached = _cache.get(known[0])
            if cached is not None and cached[0] == key and time.monotonic() - cached[1] < ttl:
                return True, cached[2]
    return False, None


def capture_git(cwd: str | os.PathLike[str] | None = None, *, ttl: float = 2.0) -> GitState | None:
    """The work tree ``cwd`` is in (None outside one, or without git)."""
    git = _git(os.environ.get("PATH"))
    if git is None:
        return None
    answered, cached_state = cached_git(cwd, ttl=ttl)
    if answered:
        return cached_state
    where = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
    with _lock:
        known = _trees.get(where)
    # Every question at once, as separate processes: git's answers come in about the time
    # of its slowest one (``status``) rather than of all of them in turn. The diff is asked
    # for whether or not the tree turns out dirty; on a clean tree it is cheap.
    asking = {
        "status": [git, "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
        "diff": [git, "diff", "HEAD", "--binary"],
    }
    if known is None:
        asking["top"] = [git, "rev-parse", "--show-toplevel", "--absolute-git-dir"]
    remote = None if known is None else _known_remote(known[1])
    if remote is None:
        asking["remote"] = [git, "config", "--get", "remote.origin.url"]
    answers = _ask(where, asking)
    if known is None:
        lines = (answers.get("top") or b"").decode(errors="replace").splitlines()
        known = (lines[0], lines[1]) if len(lines) >= 2 else None
        with _lock:
            _trees[where] = known
        if known is None:
            return None
    root, git_dir = known
    if remote is None:
        remote = _remember_remote(git_dir, answers.get("remote") or b"")
    key = _stamp(git_dir)
    state = _parse(root, remote, answers.get("status"), answers.get("diff"))
    if state is not None:
        with _lock:
            _cache[root] = (key, time.monotonic(), state)
    return state


def _parse(root: str, remote: str, status: bytes | None, diff: bytes | None) -> GitState | None:
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
    return GitState(root, remote, commit, branch, dirty, diff if dirty and commit else None)


def _config_stamp(git_dir: str) -> object:
    try:
        stat = os.stat(os.path.join(git_dir, "config"))
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _known_remote(git_dir: str) -> str | None:
    """origin's URL as last read, if the repository's config file has not changed since."""
    with _lock:
        known = _remotes.get(git_dir)
    if known is not None and known[0] == _config_stamp(git_dir):
        return known[1]
    return None


def _remember_remote(git_dir: str, answer: bytes) -> str:
    url = redact_urls(answer.decode(errors="replace").strip())  # a CI token in the URL
    with _lock:
        _remotes[git_dir] = (_config_stamp(git_dir), url)
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


def _ask(cwd: str, commands: dict[str, list[str]]) -> dict[str, bytes | None]:
    """Each command's output (None for one that failed: not a work tree, no git, a hang),
    the commands running side by side."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    started: dict[str, subprocess.Popen[bytes]] = {}
    answers: dict[str, bytes | None] = {}
    deadline = time.monotonic() + _TIMEOUT
    try:
        for name, command in commands.items():
            try:
                started[name] = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            except OSError:
                answers[name] = None
        for name, process in started.items():
            try:
                out, _ = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                answers[name] = None
                continue
            answers[name] = out if process.returncode == 0 else None
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return answers
