"""The capture layer on real work trees and the real interpreter: what git and the
installed distributions say, read fast and kept while it cannot have changed."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from cairn.capture import git as git_capture
from cairn.capture.git import capture_git
from cairn.capture.python import capture_python, installed_requirements, safe_environment
from cairn.capture.secrets import HIDDEN, redact_arguments, redact_urls

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@x",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@x",
}


def git(tree: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=tree, check=True, env=ENV, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    git(work, "remote", "add", "origin", "https://example.com/acme/train.git")
    (work / "src" / "train.py").write_text("print('v1')\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "v1")
    return work


def test_installed_requirements_agree_with_importlib_metadata() -> None:
    expected: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        expected.setdefault(canonicalize_name(dist.metadata["Name"]), dist.version)
    found = dict(line.split("==") for line in installed_requirements())
    assert found == expected
    assert list(found) == sorted(found)


def test_the_python_environment_keeps_secrets_out() -> None:
    environ = {"CUDA_VISIBLE_DEVICES": "1", "HF_TOKEN": "t", "MY_API_KEY": "k", "OMP_X": "2"}
    assert safe_environment(environ, ["CUDA_*", "HF_*", "MY_*"]) == {"CUDA_VISIBLE_DEVICES": "1"}
    env = capture_python(environ, ["*"])
    assert env.environment == {"CUDA_VISIBLE_DEVICES": "1", "OMP_X": "2"}
    assert "pytest" in env.requirements


def test_a_clean_tree_from_a_subfolder(tree: Path) -> None:
    state = capture_git(tree / "src", ttl=0)
    assert state is not None
    assert state.root == str(tree)
    assert state.remote == "https://example.com/acme/train.git"
    assert state.commit == git(tree, "rev-parse", "HEAD")
    assert (state.branch, state.dirty, state.diff) == ("main", False, None)


def test_a_dirty_tree_keeps_its_diff_and_staged_changes(tree: Path) -> None:
    (tree / "src" / "train.py").write_text("print('v2')\n")
    (tree / "new.py").write_text("x = 1\n")
    git(tree, "add", "new.py")
    state = capture_git(tree, ttl=0)
    assert state is not None and state.dirty and state.diff is not None
    assert b"+print('v2')" in state.diff and b"+x = 1" in state.diff
    # the stored diff is one `git apply` away from the work tree it came from
    git(tree, "stash", "-q")
    (tree / "patch").write_bytes(state.diff)
    git(tree, "apply", "patch")
    assert (tree / "src" / "train.py").read_text() == "print('v2')\n"


def test_outside_a_work_tree_and_before_the_first_commit(tmp_path: Path) -> None:
    assert capture_git(tmp_path, ttl=0) is None
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q", "-b", "main")
    (fresh / "a.py").write_text("1\n")
    git(fresh, "add", "a.py")
    state = capture_git(fresh, ttl=0)
    assert state is not None
    assert (state.commit, state.remote, state.dirty, state.diff) == ("", "", True, None)


def test_the_answer_is_kept_until_head_or_the_index_moves(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = capture_git(tree, ttl=60)
    asked: list[list[str]] = []
    real = git_capture._ask

    def counting(cwd: str, commands: dict[str, list[str]]) -> dict[str, bytes | None]:
        asked.extend(commands.values())
        return real(cwd, commands)

    monkeypatch.setattr(git_capture, "_ask", counting)
    assert capture_git(tree, ttl=60) == first
    assert asked == []  # nothing asked of git: HEAD and the index stand still
    (tree / "src" / "train.py").write_text("print('v2')\n")
    git(tree, "commit", "-qam", "v2")
    second = capture_git(tree, ttl=60)
    assert second is not None and first is not None
    assert second.commit != first.commit
    assert not any("config" in command for command in asked)  # the remote is still known
    git(tree, "remote", "set-url", "origin", "https://example.com/acme/other.git")
    third = capture_git(tree, ttl=0)
    assert third is not None and third.remote == "https://example.com/acme/other.git"


def test_credentials_are_kept_out_of_urls_arguments_and_variables() -> None:
    assert redact_urls("https://gitlab-ci-token:glcbt-SECRET@gitlab.example.com/a/b.git") == (
        "https://gitlab.example.com/a/b.git"
    )
    assert redact_urls("https://ghp_TOKEN@github.com/a/b") == "https://github.com/a/b"
    assert redact_urls("db=postgres://u:pw@h:5432/db x") == "db=postgres://u@h:5432/db x"
    assert redact_urls("git@github.com:a/b.git") == "git@github.com:a/b.git"  # no secret
    argv = ["train.py", "--api-key", "sk-live-1", "--password=pw", "--lr", "0.1", "--token"]
    assert redact_arguments(argv) == [
        "train.py",
        "--api-key",
        HIDDEN,
        f"--password={HIDDEN}",
        "--lr",
        "0.1",
        "--token",
    ]
    environ = {"TF_DATABASE_URL": "postgres://u:pw@h/db", "MYSQL_PWD": "x", "HF_HOME": "/h"}
    assert safe_environment(environ, ["*"]) == {
        "TF_DATABASE_URL": "postgres://u@h/db",
        "HF_HOME": "/h",
    }


def test_a_remote_with_a_token_is_recorded_without_it(tree: Path) -> None:
    git(tree, "remote", "set-url", "origin", "https://gitlab-ci-token:SECRET@example.com/a.git")
    state = capture_git(tree, ttl=0)
    assert state is not None and state.remote == "https://example.com/a.git"


def test_bytes_that_were_not_utf8_are_recorded_as_replacement_characters() -> None:
    found = safe_environment({"A_B": "x\udcff", "A_C": "y\ud800"}, ["A_*"])
    assert all("\ufffd" in v and v.isprintable() for v in found.values())
    capture_python(found, ["*"])  # a valid blob
