"""Versioning benchmark: Cairn's commits, diff, log and run capture against git on the same
content, in one run.

Usage::

    .venv/bin/python benchmarks/versioning.py           # full sizes (about two minutes)
    .venv/bin/python benchmarks/versioning.py --quick   # 10x smaller: a smoke test
    .venv/bin/python benchmarks/versioning.py --only 15 # some sections only

Everything runs in one temporary folder, removed afterwards: an embedded store
(``cairn.Client(home=...)``, SQLite and a local object folder) and git repositories
holding the same content. Each figure is printed beside git's for the same work and the
ratio ``git time / cairn time`` (1.00 = as fast as git, 2.00 twice as fast): machines
are noisy, so compare ratios from day to day.

Sections:

1. A commit of a tree of 10,000 small ingredients in 100 folders, against
   ``git add -A && git commit`` of the same 10,000 small files.
2. Then a commit that changes one path: the rows and bytes it adds to the store, and its
   time against ``git add FILE && git commit``.
3. A diff of two 10,000-path commits that differ in 10 paths, against ``git diff --stat``.
4. The log of a branch of 10,000 commits, against ``git log --oneline``.
5. Starting a run with the default capture (git reference with the dirty diff, Python
   environment) in a git work tree of 1,000 files, in a fresh process, until the capture
   is stored, against ``git status`` in the same tree; and a sweep of runs in one process.

The exit code is 0 whether targets are met or not: this is a measuring tool.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _report import Result, Target, clean_environment, say, settle, table_lines, unsettle
from _report import report as shared_report

import cairn
from cairn.versioning import Hyperparameters

KiB = 1024
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass(frozen=True)
class Sizes:
    paths: int
    changed: int
    commits: int
    tree_files: int
    sweep: int
    reps: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(paths=10_000, changed=10, commits=10_000, tree_files=1_000, sweep=1_000, reps=5)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(paths=1_000, changed=10, commits=1_000, tree_files=100, sweep=100, reps=3)


def report(title: str, results: Sequence[Result], notes: Sequence[str] = ()) -> None:
    shared_report(title, results, "cairn", notes)


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={**os.environ, **GIT_ENV, **(env or {})},
    )
    return done.stdout.decode()


def timed_shell(cwd: Path, command: str) -> float:
    """Wall time of one shell command line (stdout discarded, as a user's terminal would
    not count it either; ``--stat`` and ``log`` still compute all they print)."""
    start = time.perf_counter()
    subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **GIT_ENV},
    )
    return time.perf_counter() - start


def best_of(reps: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(reps))


def path_of(i: int) -> str:
    return f"d{i // 100:03d}/f{i % 100:02d}"


def hp(i: int, salt: int) -> Hyperparameters:
    return Hyperparameters({"i": i, "salt": salt, "lr": 0.001 * (i % 7)})


def git_text(i: int, salt: int) -> str:
    """The same values as :func:`hp`, as a small file for git."""
    return json.dumps({"i": i, "lr": 0.001 * (i % 7), "salt": salt}, sort_keys=True) + "\n"


def write_files(root: Path, count: int, salt: int) -> None:
    for i in range(count):
        file = root / path_of(i)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(git_text(i, salt))


def new_git(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "gc.auto", "0")  # no background packing while we count and time
    return root


def store_totals(home: Path) -> tuple[int, int]:
    """Rows and bytes of content the versioning tables hold (objects and commits; the
    branch row is updated in place)."""
    with sqlite3.connect(home / "cairn.db") as db:
        objects, object_bytes = db.execute(
            "SELECT count(*), coalesce(sum(length(digest) + length(kind) + length(body)), 0)"
            " FROM version_objects"
        ).fetchone()
        commits, commit_bytes = db.execute(
            "SELECT count(*), coalesce(sum(length(repository_id) + length(digest)"
            " + length(root) + length(parents) + length(message) + length(author) + 8), 0)"
            " FROM commits"
        ).fetchone()
    return objects + commits, object_bytes + commit_bytes


def git_object_bytes(root: Path) -> tuple[int, int]:
    files = [p for p in (root / ".git" / "objects").rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# -- 1 and 2: a commit of many paths, then of one ------------------------------------------


def bench_commits(sizes: Sizes, tmp: Path) -> list[Result]:
    home = tmp / "home-commits"
    client = cairn.Client(home=str(home))
    client.set_project("bench")
    whole: list[float] = []
    git_whole: list[float] = []
    repo = None
    for rep in range(sizes.reps):
        # new content every round, so that no round finds its blobs stored already
        blobs = [(path_of(i), hp(i, rep)) for i in range(sizes.paths)]
        repo = client.set_repository(f"r{rep}")
        settle()
        start = time.perf_counter()
        commit = repo.get_commit(branch="main")
        for path, blob in blobs:
            commit.update(path, blob)
        commit.save(f"{sizes.paths} paths")
        whole.append(time.perf_counter() - start)
        unsettle()
        tree = new_git(tmp / f"git-commits-{rep}")
        write_files(tree, sizes.paths, rep)
        git_whole.append(timed_shell(tree, "git add -A && git commit -q -m all"))
    assert repo is not None
    cairn_all, git_all = min(whole), min(git_whole)

    one: list[float] = []
    git_one: list[float] = []
    grown: list[tuple[int, int]] = []
    git_grown: list[tuple[int, int]] = []
    tree = tmp / f"git-commits-{sizes.reps - 1}"
    for rep in range(sizes.reps):
        i = (rep * 4_111) % sizes.paths
        before = store_totals(home)
        start = time.perf_counter()
        commit = repo.get_commit(branch="main")
        commit.update(path_of(i), hp(i, 1_000 + rep))
        commit.save("one path")
        one.append(time.perf_counter() - start)
        after = store_totals(home)
        grown.append((after[0] - before[0], after[1] - before[1]))
        (tree / path_of(i)).write_text(git_text(i, 1_000 + rep))
        git_before = git_object_bytes(tree)
        git_one.append(timed_shell(tree, f"git add {path_of(i)} && git commit -q -m one"))
        git_after = git_object_bytes(tree)
        git_grown.append((git_after[0] - git_before[0], git_after[1] - git_before[1]))
    rows, written = max(grown, key=lambda g: g[1])
    git_files, git_written = max(git_grown, key=lambda g: g[1])
    cairn_one, git_commit_one = min(one), min(git_one)
    results = [
        Result(
            "1",
            f"commit of {sizes.paths:,} paths",
            cairn_all,
            "s",
            "git add -A && git commit",
            git_all,
            git_all / cairn_all,
            Target(">=", 0.5, on="ratio"),
        ),
        Result(
            "2",
            "then a commit of 1 changed path",
            cairn_one,
            "s",
            "git add FILE && git commit",
            git_commit_one,
            git_commit_one / cairn_one,
            Target(">=", 1.0, on="ratio"),
        ),
        Result(
            "2",
            f"bytes it adds ({rows} rows)",
            written,
            "bytes",
            f"git: {git_files} loose objects",
            git_written,
            None,
            Target("<", 8 * KiB + 1),
        ),
    ]
    client.close()
    return results


# -- 3: diff ----------------------------------------------------------------------------------


def bench_diff(sizes: Sizes, tmp: Path) -> list[Result]:
    home = tmp / "home-diff"
    client = cairn.Client(home=str(home))
    client.set_project("bench")
    repo = client.set_repository("diff")
    first = repo.get_commit(branch="main")
    for i in range(sizes.paths):
        first.update(path_of(i), hp(i, 0))
    first.save("all")
    a = first.id
    changed = [(k * sizes.paths) // sizes.changed + 7 for k in range(sizes.changed)]
    second = repo.get_commit(branch="main")
    for i in changed:
        second.update(path_of(i), hp(i, 1))
    second.save(f"{sizes.changed} paths")
    b = second.id

    tree = new_git(tmp / "git-diff")
    write_files(tree, sizes.paths, 0)
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "all")
    for i in changed:
        (tree / path_of(i)).write_text(git_text(i, 1))
    git(tree, "commit", "-q", "-a", "-m", "changed")

    fresh = cairn.Client(home=str(home))  # nothing cached from writing the commits
    fresh.set_project("bench")
    fresh_repo = fresh.get_repository("diff")
    changes = fresh_repo.diff(a, b)
    assert len(changes) == sizes.changed, changes

    def ours() -> float:
        start = time.perf_counter()
        fresh_repo.diff(a, b)
        return time.perf_counter() - start

    settle()
    cairn_time = best_of(sizes.reps * 2, ours)
    unsettle()
    git_time = best_of(sizes.reps * 2, lambda: timed_shell(tree, "git diff --stat HEAD~1 HEAD"))
    fresh.close()
    client.close()
    return [
        Result(
            "3",
            f"diff, {sizes.paths:,} paths, {sizes.changed} changed",
            cairn_time,
            "s",
            "git diff --stat",
            git_time,
            git_time / cairn_time,
            Target(">=", 1.0, on="ratio"),
        )
    ]


# -- 4: log -----------------------------------------------------------------------------------


def git_history(root: Path, count: int) -> None:
    """``count`` commits, each changing one small file, built by ``git fast-import``
    (making them with ``git commit`` would take minutes)."""
    stream = []
    for i in range(count):
        data = f"{i}\n".encode()
        message = f"commit {i}".encode()
        stream.append(b"commit refs/heads/main\n")
        stream.append(f"committer bench <b@x> {1_700_000_000 + i} +0000\n".encode())
        stream.append(b"data %d\n%s\n" % (len(message), message))
        stream.append(b"M 100644 inline hp\ndata %d\n%s\n" % (len(data), data))
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=root,
        input=b"".join(stream),
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    git(root, "checkout", "-q", "main")


def bench_log(sizes: Sizes, tmp: Path) -> list[Result]:
    home = tmp / "home-log"
    client = cairn.Client(home=str(home))
    client.set_project("bench")
    repo = client.set_repository("log")
    commit = repo.get_commit(branch="main")
    build = time.perf_counter()
    for i in range(sizes.commits - 1):  # with the repository's first commit: sizes.commits
        commit.update("hp", Hyperparameters({"i": i}))
        commit.save(f"commit {i}")
    build = time.perf_counter() - build
    tree = new_git(tmp / "git-log")
    git_history(tree, sizes.commits)

    fresh = cairn.Client(home=str(home))
    fresh.set_project("bench")
    fresh_repo = fresh.get_repository("log")
    assert len(fresh_repo.log("main")) == sizes.commits

    def ours() -> float:
        start = time.perf_counter()
        fresh_repo.log("main")
        return time.perf_counter() - start

    settle()
    cairn_time = best_of(sizes.reps, ours)
    unsettle()
    git_time = best_of(sizes.reps, lambda: timed_shell(tree, "git log --oneline"))
    fresh.close()
    client.close()
    return [
        Result(
            "4",
            f"log of {sizes.commits:,} commits",
            cairn_time,
            "s",
            "git log --oneline",
            git_time,
            git_time / cairn_time,
            Target(">=", 0.5, on="ratio"),
        ),
        Result(
            "4",
            f"(set-up: {sizes.commits - 1:,} commits saved one by one)",
            build / (sizes.commits - 1) * 1000,
            "ms each",
        ),
    ]


# -- 5: a run's capture -------------------------------------------------------------------

# Runs in a fresh interpreter, in the work tree: what a training script pays, first run
# of its process included. Prints JSON timings.
_CAPTURE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import cairn
    client = cairn.Client(home=sys.argv[1])
    client.set_project("capture")
    client.start_run(capture="none").end()  # the store opened, its code paths warm
    start = time.perf_counter()
    run = client.start_run()
    returned = time.perf_counter() - start
    run.end()  # waits until the capture is stored
    first = time.perf_counter() - start
    start = time.perf_counter()
    client.start_run(capture="none").end()
    bare = time.perf_counter() - start
    start = time.perf_counter()
    client.start_run().end()
    second = time.perf_counter() - start
    assert sorted(run.get_capture()) == ["code/git", "environment/python"], run.get_capture()
    print(json.dumps({"returned": returned, "first": first, "bare": bare, "second": second}))
    """
)

_SWEEP_SCRIPT = textwrap.dedent(
    """
    import json, sqlite3, sys, time
    import cairn
    client = cairn.Client(home=sys.argv[1])
    client.set_project("sweep")
    count = int(sys.argv[2])
    times = {}
    for capture in ("none", "all", "none", "all"):
        start = time.perf_counter()
        for i in range(count):
            with client.start_run(capture=capture, hyperparameters={"i": i}):
                pass
        times[capture] = min(times.get(capture, 1e9), time.perf_counter() - start)
    db = sqlite3.connect(sys.argv[1] + "/cairn.db")
    stored = db.execute(
        "SELECT count(*) FROM version_objects WHERE kind = 'environment.python'"
    ).fetchone()[0]
    links = db.execute("SELECT count(*) FROM run_captures").fetchone()[0]
    print(json.dumps({**times, "stored": stored, "links": links}))
    """
)


def work_tree(root: Path, files: int) -> Path:
    tree = new_git(root)
    git(tree, "remote", "add", "origin", "https://example.com/acme/train.git")
    for i in range(files):
        file = tree / f"src/pkg{i // 100:02d}/module_{i:04d}.py"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"VALUE = {i}\n\n\ndef f(x):\n    return x * VALUE\n")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "initial")
    (tree / "src/pkg00/module_0000.py").write_text("VALUE = -1  # an uncommitted change\n")
    # A work tree's index is normally older than its files' last change; one just made is
    # not ("racy"), and every read-only git call would re-hash every file until something
    # rewrites the index. One `git status` does, as it would on a user's machine.
    time.sleep(1.1)
    git(tree, "status")
    return tree


def bench_capture(sizes: Sizes, tmp: Path) -> list[Result]:
    tree = work_tree(tmp / "git-capture", sizes.tree_files)
    env = {
        **os.environ,
        "CAIRN_CAPTURE": "all",
        "PYTHONPATH": str(Path(cairn.__file__).parent.parent),
    }
    script = tmp / "capture.py"
    script.write_text(_CAPTURE_SCRIPT)
    timings = []
    for rep in range(sizes.reps):
        done = subprocess.run(
            [sys.executable, str(script), str(tmp / f"home-capture-{rep}")],
            cwd=tree,
            env=env,
            check=True,
            capture_output=True,
        )
        timings.append(json.loads(done.stdout))
    git_time = best_of(sizes.reps * 2, lambda: timed_shell(tree, "git status"))
    first = min(t["first"] for t in timings)
    returned = min(t["returned"] for t in timings)
    bare = min(t["bare"] for t in timings)
    second = min(t["second"] for t in timings)

    sweep_script = tmp / "sweep.py"
    sweep_script.write_text(_SWEEP_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(sweep_script), str(tmp / "home-sweep"), str(sizes.sweep)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
    )
    sweep = json.loads(done.stdout)
    per_run = (sweep["all"] - sweep["none"]) / sizes.sweep
    return [
        Result(
            "5",
            "start_run() to capture stored, first run in process",
            first,
            "s",
            "git status",
            git_time,
            git_time / first,
            Target(">=", 0.5, on="ratio"),
        ),
        Result(
            "5",
            "of which start_run() returned",
            returned,
            "s",
            "git status",
            git_time,
            git_time / returned,
        ),
        Result("5", "the same run without capture (start + end)", bare, "s"),
        Result(
            "5",
            "a second run, same process (capture kept)",
            second,
            "s",
            "git status",
            git_time,
            git_time / second,
        ),
        Result(
            "5",
            f"sweep: capture's cost per run over {sizes.sweep:,} runs",
            per_run * 1000,
            "ms",
        ),
        Result(
            "5",
            f"sweep: environment blobs stored for {sweep['links'] // 2:,} captured runs",
            sweep["stored"],
            "blobs",
            target=Target("<", 2),
        ),
    ]


# -- main -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes: a smoke test")
    parser.add_argument("--only", default="12345", help="sections to run, e.g. --only 15")
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes.full()
    clean_environment()
    os.environ["CAIRN_CAPTURE"] = "none"  # the benchmark's own clients capture nothing
    version = git(Path.cwd(), "--version").strip()
    mode = "quick: 10x smaller" if args.quick else "full sizes"
    say(f"Cairn versioning benchmark ({mode})")
    say(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, {version}, "
        f"{os.cpu_count()} CPUs, cairn {cairn.__version__} at {Path(cairn.__file__).parent}"
    )
    say("speed vs baseline = git time / cairn time for the same work (1.00 = as fast as git)")
    sections: list[tuple[str, str, Callable[[Path], list[Result]], list[str]]] = [
        (
            "12",
            f"1-2. commits (best of {sizes.reps}; new content each round)",
            lambda tmp: bench_commits(sizes, tmp),
            [
                "cairn: get_commit + update() of prebuilt blobs + save(), embedded store;"
                " git: the files already written",
                "bytes: digest, kind and body of new objects + the commit row; git: loose"
                " objects (zlib-compressed) it wrote",
            ],
        ),
        (
            "3",
            f"3. diff (best of {sizes.reps * 2}; a new Client, nothing cached)",
            lambda tmp: bench_diff(sizes, tmp),
            ["cairn: repository.diff(a, b), typed changes down to each changed key"],
        ),
        (
            "4",
            f"4. log (best of {sizes.reps}; a new Client, nothing cached)",
            lambda tmp: bench_log(sizes, tmp),
            ["cairn: repository.log('main'), every commit as a Commit object"],
        ),
        (
            "5",
            f"5. run capture in a git work tree of {sizes.tree_files:,} files, one of them"
            f" changed (best of {sizes.reps} fresh processes)",
            lambda tmp: bench_capture(sizes, tmp),
            [
                "capture: git reference with the dirty diff, every installed distribution,"
                " command line; runs on a thread, run.end() waits for it",
            ],
        ),
    ]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="cairn-bench-versioning-") as tmp_name:
        tmp = Path(tmp_name)
        for key, title, run_section, notes in sections:
            if not set(key) & set(args.only):
                continue
            try:
                section_results = run_section(tmp)
            finally:
                unsettle()
            results.extend(section_results)
            report(title, section_results, notes)
    say()
    say("Targets")
    for line in table_lines([r for r in results if r.target is not None], "cairn"):
        say(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
