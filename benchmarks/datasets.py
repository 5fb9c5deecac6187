"""Datasets at disk speed (issue 16's table): Cairn's captured dataset versions against DVC
3.67 on the same files in the same run, and against the disk and ``cp -r``.

Usage::

    .venv/bin/python benchmarks/datasets.py                # full sizes, 3 rounds
    .venv/bin/python benchmarks/datasets.py --server       # Cairn through a real `cairn server`
    .venv/bin/python benchmarks/datasets.py --quick --no-dvc --rounds 1   # a smoke test, seconds
    .venv/bin/python benchmarks/datasets.py --only small   # rows 1-4 and 7 (or --only big: 5-6)

DVC is installed by the benchmark itself, on first use, into a virtual environment of its
own outside the repository (``--dvc-venv``, default
``$XDG_CACHE_HOME/cairn-benchmarks/dvc-3.67.1``: ``python -m venv`` + ``pip install
dvc==3.67.1``), never into the project's ``.venv``. DVC is driven in a worker process of
that Python through its own API (``Repo.add``, ``Repo.status``, ``Repo.checkout``: what
its commands call), every module imported first, so neither side's interpreter start-up
is counted; DVC's command-line start-up (``dvc --version``) is printed as a note.

Each round gets fresh folders, a fresh Cairn store (and stat cache) and a fresh DVC
repository (``dvc init --no-scm``, default cache type: copy here). Both sides get their own
copy of the same bytes. A tree is at least 2.5 s old before it is captured (Cairn's stat
cache never trusts a file written less than 2 s before it was read, as git does), and
``os.sync()`` runs before every timed step so that no step's writeback lands in the next
one's timing. Time rows show the best of ``--rounds``; ratios are DVC's time / Cairn's.

Rows (see benchmarks/README.md): 1 first capture of 20,000 x 4 KiB files; 2 the same again
unchanged (and ``dvc status``); 3 after one file changed; 4 checkout into an empty folder
(beside ``cp -r``, and hard links where both have them); 5 first capture of 10 x 100 MiB,
cold, beside an ``O_DIRECT`` read of the same files; 6 new storage after a 1 MiB overwrite
inside a 100 MiB file and after a 1-byte insert at its start; 7 new metadata for a 1-file
change of the 20,000-file version. The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import mmap
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import clean_environment, say
from server import running_server

import cairn
from cairn.core.settings import Settings
from cairn.versioning import Path as DataPath

DVC_VERSION = "3.67.1"
PIN = f"dvc=={DVC_VERSION}"
MiB = 1 << 20

DVC_WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from dvc.repo import Repo

    # answers on a copy of stdout; whatever DVC prints goes to stderr
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def dir_files(root):
        found = {}
        for folder, _, names in os.walk(os.path.join(root, ".dvc", "cache")):
            for name in names:
                path = os.path.join(folder, name)
                found[path] = os.path.getsize(path)
        return found

    def run(job):
        root, op = job["repo"], job["op"]
        if op == "init":
            Repo.init(root, no_scm=True).close()
            if job.get("cache_type"):
                with Repo(root) as repo:
                    with repo.config.edit() as conf:
                        conf["cache"]["type"] = job["cache_type"]
            return {}
        if op == "cache_type":
            with Repo(root) as repo:
                with repo.config.edit() as conf:
                    conf["cache"]["type"] = job["cache_type"]
            return {}
        if op == "cache":
            return {"files": dir_files(root)}
        os.chdir(root)  # as `dvc` runs, in the repository
        start = time.perf_counter()
        with Repo(root) as repo:
            if op == "add":
                repo.add(job["target"])
                answer = None
            elif op == "status":
                answer = repo.status()
            elif op == "checkout":
                repo.checkout(force=True)
                answer = None
            else:
                raise SystemExit("unknown op " + op)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "clean": not answer if op == "status" else None}

    for line in sys.stdin:
        job = json.loads(line)
        try:
            out = run(job)
        except Exception as exc:
            out = {"error": repr(exc)}
        print(json.dumps(out), file=answers, flush=True)
    """
)


# -- the files -----------------------------------------------------------------------------


def fsync_write(path: Path, data: bytes | memoryview) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_small_trees(roots: list[Path], files: int, size: int, per_folder: int) -> list[str]:
    """The same random bytes under every root: ``files`` files in folders of
    ``per_folder``. Returns the relative paths."""
    paths = [f"d{i // per_folder:03d}/f{i % per_folder:03d}.bin" for i in range(files)]
    for root in roots:
        root.mkdir(parents=True)
        for folder in {p.split("/")[0] for p in paths}:
            (root / folder).mkdir()
    for rel in paths:
        data = os.urandom(size)
        for root in roots:
            (root / rel).write_bytes(data)
    os.sync()
    return paths


def write_big_files(roots: list[Path], count: int, size: int) -> list[str]:
    names = [f"part-{i:02d}.bin" for i in range(count)]
    for root in roots:
        root.mkdir(parents=True)
    for name in names:
        data = os.urandom(size)
        for root in roots:
            fsync_write(root / name, data)
    return names


def drop_cache(paths: list[Path]) -> None:
    """Out of the page cache (the pages are clean: written and fsynced), so the next read
    goes to the disk."""
    os.sync()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def direct_read(paths: list[Path], block: int = 4 * MiB) -> float:
    """Seconds to read ``paths`` one after the other around the page cache (``O_DIRECT``,
    4 MiB reads into an aligned buffer): the disk's cold sequential read speed."""
    buffer = mmap.mmap(-1, block)
    flags = os.O_RDONLY | getattr(os, "O_DIRECT", 0)
    start = time.perf_counter()
    for path in paths:
        fd = os.open(path, flags)
        try:
            while os.readv(fd, [buffer]) == block:
                pass
        finally:
            os.close(fd)
    seconds = time.perf_counter() - start
    buffer.close()
    return seconds


def tree_bytes(root: Path, skip: tuple[str, ...] = ()) -> int:
    total = 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def same_tree(a: Path, b: Path, paths: list[str]) -> bool:
    return all((a / p).read_bytes() == (b / p).read_bytes() for p in paths)


def timed(call: Callable[[], object]) -> float:
    os.sync()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def cp_r(tree: Path, dest: Path) -> float:
    seconds = timed(lambda: subprocess.run(["cp", "-r", str(tree), str(dest)], check=True))
    shutil.rmtree(dest)
    return seconds


# -- Cairn -----------------------------------------------------------------------------------


@dataclass
class CairnSide:
    """A client on a fresh store: embedded (``home``) or through a server on ``home``."""

    client: cairn.Client
    home: Path  # the store's home (the server's, through a server)

    def objects_bytes(self) -> int:
        return tree_bytes(self.home / "objects", skip=("tmp",))

    def metadata_bytes(self) -> dict[str, int]:
        return metadata_bytes(self.home / "cairn.db")


def metadata_bytes(db_path: Path) -> dict[str, int]:
    """Bytes of the rows of every table (every value's stored length, 8 for a number),
    whatever the tables and columns are: a version's metadata is what grows."""
    total: dict[str, int] = {}
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        tables = [
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not row[0].startswith("sqlite_")
        ]
        for table in tables:
            columns = [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]
            sizes = " + ".join(
                f"(CASE typeof(\"{c}\") WHEN 'null' THEN 0 WHEN 'integer' THEN 8 WHEN 'real'"
                f' THEN 8 ELSE length(CAST("{c}" AS BLOB)) END)'
                for c in columns
            )
            query = f'SELECT coalesce(sum({sizes}), 0) FROM "{table}"'
            total[table] = db.execute(query).fetchone()[0]
    return total


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {t: n - before.get(t, 0) for t, n in after.items() if n != before.get(t, 0)}


# Tables that grow with a request rather than with a version (the server's audit log, its
# idempotency keys): noted, not counted as the version's metadata.
NOT_VERSIONS = ("audit_events", "idempotency_keys")


@contextlib.contextmanager
def cairn_side(work: Path, server: bool, base_env: dict[str, str]) -> Iterator[CairnSide]:
    home = work / "cairn-home"
    cache = str(work / "stat-cache.sqlite")
    if not server:
        with cairn.Client(settings=Settings(home=str(home), stat_cache=cache)) as client:
            yield CairnSide(client, home)
        return
    env = {**base_env, "CAIRN_CAPTURE": "none"}
    with (
        running_server(home, None, env, work / "server.log", work) as running,
        cairn.Client(settings=Settings(url=running.url, stat_cache=cache)) as client,
    ):
        yield CairnSide(client, home)


def has_link_checkout() -> bool:
    from cairn.client._datasets import DatasetVersion

    return "link" in inspect.signature(DatasetVersion.checkout).parameters


# -- DVC -------------------------------------------------------------------------------------


def default_dvc_venv() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache) / "cairn-benchmarks" / f"dvc-{DVC_VERSION}"


def ensure_dvc(venv: Path) -> Path:
    """The venv's Python, DVC installed in it (made on first use)."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import dvc.version as v; print(v.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == DVC_VERSION:
            return python
    say(f"installing dvc=={DVC_VERSION} into {venv} (once)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", PIN],
        check=True,
    )
    subprocess.run(probe, check=True, capture_output=True)
    return python


class Dvc:
    """A worker process of DVC's Python that runs DVC API calls and times them."""

    def __init__(self, python: Path, env: dict[str, str], cwd: Path) -> None:
        self.python = python
        self.env = env
        self.log = cwd / "dvc-worker.log"
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [str(python), "-c", DVC_WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sink,
                env=env,
                cwd=cwd,
                text=True,
            )

    def call(self, **job: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if job["op"] not in ("init", "cache", "cache_type"):
            os.sync()
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the DVC worker died:\n{self.log.read_text()[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise SystemExit(f"DVC {job}: {answer['error']}\n{self.log.read_text()[-3000:]}")
        return answer

    def timed(self, op: str, repo: Path, **job: Any) -> float:
        return float(self.call(op=op, repo=str(repo), **job)["seconds"])

    def cache_files(self, repo: Path) -> dict[str, int]:
        return dict(self.call(op="cache", repo=str(repo))["files"])

    def warm_up(self, scratch: Path) -> None:
        """Every module a timed call needs, imported once on a tiny repository."""
        repo = scratch / "dvc-warm"
        write_small_trees([repo / "data"], 4, 64, 2)
        self.call(op="init", repo=str(repo))
        self.timed("add", repo, target="data")
        self.timed("add", repo, target="data")
        self.call(op="status", repo=str(repo))
        shutil.rmtree(repo / "data")
        self.timed("checkout", repo)
        shutil.rmtree(repo)

    def cli_status(self, scratch: Path) -> tuple[float, float]:
        """``dvc status`` of a tiny repository as a command and as the API call: what
        running a command costs over the call itself (best of 3 each)."""
        repo = scratch / "dvc-cli"
        write_small_trees([repo / "data"], 4, 64, 2)
        self.call(op="init", repo=str(repo))
        self.timed("add", repo, target="data")
        command = [str(self.python.parent / "dvc"), "status", "-q"]
        cli = api = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(command, env=self.env, cwd=repo, capture_output=True, check=True)
            cli = min(cli, time.perf_counter() - start)
            api = min(api, self.timed("status", repo))
        shutil.rmtree(repo)
        return cli, api

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- the rounds ----------------------------------------------------------------------------


@dataclass
class Figures:
    """Each measure's value per round: ``cairn``, ``dvc`` and baselines by name."""

    values: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    this_round: dict[str, float] = field(default_factory=dict)
    meta_tables: dict[str, int] = field(default_factory=dict)  # the last round's growth

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)
        self.this_round[name] = value

    def details(self) -> list[str]:
        """Notes: row 7's growth by table, and each time row's rounds."""
        found = []
        if self.meta_tables:
            parts = ", ".join(f"{t} {n:,} B" for t, n in sorted(self.meta_tables.items()))
            found.append(
                f"row 7, Cairn's new rows by table (last round; {', '.join(NOT_VERSIONS)}"
                f" not counted): {parts}"
            )
        for measure, values in self.values.items():
            if len(values) > 1 and not measure.endswith(SIZES):
                found.append(f"{measure}, each round: " + " / ".join(f"{v:.3f}" for v in values))
        # Within a round both sides meet the same machine: the ratios of each round.
        for slow, fast, label in PAIRS:
            a, b = self.values.get(slow, []), self.values.get(fast, [])
            if len(a) == len(b) > 1:
                each = " / ".join(f"{x / y:.2f}" for x, y in zip(a, b, strict=True) if y > 0)
                found.append(f"{label}, each round: {each}")
        return found

    def round_text(self) -> str:
        """This round's figures (and forget them)."""
        parts = [
            f"{name} {value:,.0f} B" if name.endswith(SIZES) else f"{name} {value:.3f} s"
            for name, value in self.this_round.items()
        ]
        self.this_round = {}
        return "; ".join(parts)

    def best(self, name: str) -> float | None:
        found = self.values.get(name)
        return min(found) if found else None

    def last(self, name: str) -> float | None:
        found = self.values.get(name)
        return found[-1] if found else None


def small_round(
    n: int, args: argparse.Namespace, work: Path, env: dict[str, str], dvc: Dvc | None, f: Figures
) -> None:
    cairn_tree = work / "cairn-data"
    dvc_repo = work / "dvc-repo"
    trees = [cairn_tree] + ([dvc_repo / "data"] if dvc else [])
    paths = write_small_trees(trees, args.files, args.file_size, args.per_folder)
    changed = paths[len(paths) // 2]
    new_bytes = os.urandom(args.file_size)
    time.sleep(max(0.0, 2.5 - (time.time() - (cairn_tree / paths[-1]).stat().st_mtime)))

    f.add("cp -r", cp_r(cairn_tree, work / "cp-dest"))
    cairn_small(args, work, cairn_tree, paths, (changed, new_bytes), env, f)
    if dvc is not None:
        dvc_small(dvc, dvc_repo, (changed, new_bytes), f)
    say(f"round {n + 1} (small files): " + f.round_text())


def cairn_small(
    args: argparse.Namespace,
    work: Path,
    cairn_tree: Path,
    paths: list[str],
    change: tuple[str, bytes],
    env: dict[str, str],
    f: Figures,
) -> None:
    with cairn_side(work, args.server, env) as side:
        ds = side.client.set_dataset("bench")
        capture = DataPath(cairn_tree, capture=True)
        versions: list[Any] = []
        f.add("cairn first", timed(lambda: versions.append(ds.create_version(capture))))
        f.add("cairn again", timed(lambda: versions.append(ds.create_version(capture))))
        if versions[1].id != versions[0].id:
            raise SystemExit("capturing an unchanged folder made a new version")
        (cairn_tree / change[0]).write_bytes(change[1])
        meta = side.metadata_bytes()
        f.add("cairn changed", timed(lambda: versions.append(ds.create_version(capture))))
        growth = grown(meta, side.metadata_bytes())
        f.add("cairn meta", sum(n for t, n in growth.items() if t not in NOT_VERSIONS))
        f.meta_tables = growth
        out = work / "cairn-out"
        f.add("cairn checkout", timed(lambda: versions[-1].checkout(out)))
        if not same_tree(cairn_tree, out, paths):
            raise SystemExit("Cairn's checkout differs from the tree")
        shutil.rmtree(out)
        if has_link_checkout():
            f.add("cairn link", timed(lambda: versions[-1].checkout(out, link=True)))
            if not same_tree(cairn_tree, out, paths):
                raise SystemExit("Cairn's linked checkout differs from the tree")
            shutil.rmtree(out)  # read-only files in writable folders: they go
    shutil.rmtree(work / "cairn-home")
    shutil.rmtree(cairn_tree)


def dvc_small(dvc: Dvc, repo: Path, change: tuple[str, bytes], f: Figures) -> None:
    dvc.call(op="init", repo=str(repo))
    f.add("dvc first", dvc.timed("add", repo, target="data"))
    f.add("dvc again", dvc.timed("add", repo, target="data"))
    f.add("dvc status", dvc.timed("status", repo))
    (repo / "data" / change[0]).write_bytes(change[1])
    before = dvc_meta(dvc, repo)
    f.add("dvc changed", dvc.timed("add", repo, target="data"))
    f.add("dvc meta", dvc_meta(dvc, repo) - before)
    shutil.rmtree(repo / "data")
    f.add("dvc checkout", dvc.timed("checkout", repo))
    dvc.call(op="cache_type", repo=str(repo), cache_type="hardlink")
    shutil.rmtree(repo / "data")
    f.add("dvc link", dvc.timed("checkout", repo))
    shutil.rmtree(repo)


def dvc_meta(dvc: Dvc, repo: Path) -> int:
    """DVC's metadata for ``data``: its ``.dvc`` file and the ``.dir`` manifests."""
    manifests = sum(size for path, size in dvc.cache_files(repo).items() if path.endswith(".dir"))
    return manifests + (repo / "data.dvc").stat().st_size


def big_round(
    n: int, args: argparse.Namespace, work: Path, env: dict[str, str], dvc: Dvc | None, f: Figures
) -> None:
    cairn_tree = work / "cairn-big"
    dvc_repo = work / "dvc-big"
    trees = [cairn_tree] + ([dvc_repo / "data"] if dvc else [])
    size = args.big_mib * MiB
    names = write_big_files(trees, args.big_files, size)
    files = [cairn_tree / name for name in names]
    drop_cache(files)
    f.add("disk read", direct_read(files))
    drop_cache(files)
    storage = n == 0  # the storage rows are exact: measured once
    with cairn_side(work, args.server, env) as side:
        ds = side.client.set_dataset("big")
        capture = DataPath(cairn_tree, capture=True)
        f.add("cairn big", timed(lambda: ds.create_version(capture)))
        if storage:
            for label, edit in edits(size):
                edit(cairn_tree / names[0] if label == "overwrite" else cairn_tree / names[1])
                before = side.objects_bytes()
                ds.create_version(capture)
                f.add(f"cairn {label}", side.objects_bytes() - before)
    shutil.rmtree(work / "cairn-home")
    shutil.rmtree(cairn_tree)

    if dvc is not None:
        dvc.call(op="init", repo=str(dvc_repo))
        drop_cache([dvc_repo / "data" / name for name in names])
        f.add("dvc big", dvc.timed("add", dvc_repo, target="data"))
        if storage:
            for label, edit in edits(size):
                edit(dvc_repo / "data" / (names[0] if label == "overwrite" else names[1]))
                before = sum(dvc.cache_files(dvc_repo).values())
                dvc.timed("add", dvc_repo, target="data")
                f.add(f"dvc {label}", sum(dvc.cache_files(dvc_repo).values()) - before)
        shutil.rmtree(dvc_repo)
    say(f"round {n + 1} (big files): " + f.round_text())


def edits(size: int) -> list[tuple[str, Callable[[Path], None]]]:
    def overwrite(path: Path) -> None:
        with open(path, "r+b") as out:
            out.seek(size // 2)
            out.write(os.urandom(MiB))

    def insert(path: Path) -> None:
        data = path.read_bytes()
        fsync_write(path, b"x" + data)

    return [("overwrite", overwrite), ("insert", insert)]


SIZES = ("meta", "overwrite", "insert")
# (numerator, denominator, what the ratio is) of the same round
PAIRS = [
    (f"dvc {m}", f"cairn {m}", f"DVC / Cairn, {m}")
    for m in ("first", "again", "changed", "checkout", "link", "big")
] + [
    ("cairn checkout", "cp -r", "Cairn checkout / cp -r"),
    ("disk read", "cairn big", "Cairn's capture speed / the disk's read speed"),
]


# -- the table -----------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def ratio(slow: float | None, fast: float | None) -> str:
    return "-" if slow is None or fast is None or fast <= 0 else f"{slow / fast:.1f}x"


def size_text(value: float | None, binary: bool = True) -> str:
    """MiB for the storage rows (their targets are in MiB), KB and MB for metadata."""
    if value is None:
        return "-"
    if binary and value >= MiB:
        return f"{value / MiB:,.2f} MiB"
    if not binary and value >= 1e6:
        return f"{value / 1e6:,.2f} MB"
    if value >= 10_000:
        return f"{value / 1000:,.1f} KB"
    return f"{value:,.0f} B"


def table(args: argparse.Namespace, f: Figures) -> list[str]:
    b = f.best
    lines = [
        "| # | case | Cairn | DVC | DVC / Cairn | target |",
        "|---|---|---|---|---|---|",
    ]
    small = f"{args.files:,} x {args.file_size // 1024} KiB"
    if "cairn first" in f.values:
        lines += [
            f"| 1 | first capture, {small} | {seconds(b('cairn first'))} | "
            f"{seconds(b('dvc first'))} | {ratio(b('dvc first'), b('cairn first'))} | >= 5x |",
            f"| 2 | capture again, unchanged | {seconds(b('cairn again'))} | "
            f"{seconds(b('dvc again'))} (`status` {seconds(b('dvc status'))}) | "
            f"{ratio(b('dvc again'), b('cairn again'))} | >= 5x |",
            f"| 3 | capture after 1 file changed | {seconds(b('cairn changed'))} | "
            f"{seconds(b('dvc changed'))} | {ratio(b('dvc changed'), b('cairn changed'))}"
            " | >= 5x |",
            f"| 4 | checkout into an empty folder, copying | {seconds(b('cairn checkout'))}"
            f" ({ratio(b('cairn checkout'), b('cp -r'))} `cp -r` {seconds(b('cp -r'))}) | "
            f"{seconds(b('dvc checkout'))} | {ratio(b('dvc checkout'), b('cairn checkout'))}"
            " | >= 5x; <= 1.5x `cp -r` |",
            f"| 4 | checkout, hard links | {seconds(b('cairn link'))} | {seconds(b('dvc link'))}"
            f" (`cache.type hardlink`) | {ratio(b('dvc link'), b('cairn link'))} | >= 5x |",
        ]
    if "cairn big" in f.values:
        total = args.big_files * args.big_mib * MiB
        disk = b("disk read") or 0.0
        disk_speed = total / disk / 1e6 if disk else 0.0

        def speed(name: str) -> str:
            value = b(name)
            if value is None:
                return "-"
            return f"{value:.3f} s ({total / value / 1e6:,.0f} MB/s, {disk / value:.2f}x disk)"

        lines += [
            f"| 5 | first capture, {args.big_files} x {args.big_mib} MiB, cold (disk: O_DIRECT"
            f" read {seconds(disk)}, {disk_speed:,.0f} MB/s) | {speed('cairn big')} | "
            f"{speed('dvc big')} | {ratio(b('dvc big'), b('cairn big'))} | >= 0.7x disk |",
            f"| 6 | new storage after a 1 MiB overwrite inside a {args.big_mib} MiB file | "
            f"{size_text(b('cairn overwrite'))} | {size_text(b('dvc overwrite'))} | "
            f"{ratio(b('dvc overwrite'), b('cairn overwrite'))} | <= 2 MiB |",
            f"| 6 | new storage after a 1-byte insert at the start | "
            f"{size_text(b('cairn insert'))} | {size_text(b('dvc insert'))} | "
            f"{ratio(b('dvc insert'), b('cairn insert'))} | <= 1 MiB |",
        ]
    if "cairn meta" in f.values:
        lines.append(
            f"| 7 | new metadata for a 1-file change in a {args.files:,}-file version | "
            f"{size_text(b('cairn meta'), False)} | {size_text(b('dvc meta'), False)}"
            " (`.dir` + `.dvc`) | "
            f"{ratio(b('dvc meta'), b('cairn meta'))} | <= 20 KB |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", action="store_true", help="Cairn through `cairn server`")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--no-dvc", action="store_true", help="Cairn alone (no DVC install)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("small", "big"), default=None)
    parser.add_argument("--dvc-venv", type=Path, default=None)
    parser.add_argument("--files", type=int, default=None)
    args = parser.parse_args()
    args.files = args.files or (500 if args.quick else 20_000)
    args.file_size = 4096
    args.per_folder = 100
    args.big_files = 2 if args.quick else 10
    args.big_mib = 8 if args.quick else 100
    base = clean_environment()
    os.environ["CAIRN_CAPTURE"] = "none"
    with tempfile.TemporaryDirectory(prefix="cairn-datasets-bench-") as name:
        tmp = Path(name)
        dvc = None
        env = {
            **base,
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(tmp / "dvc-site"),
            "DVC_GLOBAL_CONFIG_DIR": str(tmp / "dvc-global"),
            "DVC_SYSTEM_CONFIG_DIR": str(tmp / "dvc-system"),
        }
        if not args.no_dvc:
            python = ensure_dvc(args.dvc_venv or default_dvc_venv())
            dvc = Dvc(python, env, tmp)
        f = Figures()
        try:
            if dvc is not None:
                dvc.warm_up(tmp)
                cli, api = dvc.cli_status(tmp)
                f.notes.append(
                    f"DVC is timed through its API in a warm process: `dvc status` of a tiny"
                    f" repository takes {cli:.2f} s as a command, {api:.3f} s as the call"
                )
            mode = "through `cairn server` on 127.0.0.1" if args.server else "embedded"
            say(f"Cairn {mode}; load {os.getloadavg()}; link checkout: {has_link_checkout()}")
            for n in range(args.rounds):
                work = tmp / f"round-{n}"
                work.mkdir()
                if args.only in (None, "small"):
                    small_round(n, args, work, base, dvc, f)
                if args.only in (None, "big"):
                    big_round(n, args, work, base, dvc, f)
                shutil.rmtree(work)
        finally:
            if dvc is not None:
                dvc.close()
        say()
        say(
            f"best of {args.rounds} rounds; Cairn {mode}; DVC {DVC_VERSION if dvc else 'skipped'}"
            f"; load {os.getloadavg()}"
        )
        for line in table(args, f):
            say(line)
        for note in f.notes + f.details():
            say(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
