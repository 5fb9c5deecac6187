"""Folders of many small files (issue 16): batched, and logged again without reading the
files the stat cache knows unchanged; embedded and through a real server."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import cairn
from cairn.core.settings import Settings
from cairn.files import artifacts, statcache
from cairn.files.statcache import Stamp, StatCache, open_stat_cache
from tests.client.conftest import MakeClient

Reads = list[str]


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "stat-cache.sqlite"


@pytest.fixture
def folder_client(
    open_client: MakeClient, server_url: str | None, home: Path, store_url: str, cache_file: Path
) -> cairn.Client:
    """A client whose stat cache is the test's own file."""
    if server_url is None:
        settings = Settings(home=str(home), store_uri=store_url, stat_cache=str(cache_file))
        return open_client(settings=settings)
    return open_client(
        url=server_url, settings=Settings(retry_timeout=5.0, stat_cache=str(cache_file))
    )


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    """The files logging reads whole (the small ones), by real path."""
    seen: Reads = []
    real = artifacts._read_small

    def counted(path: str, shown: str) -> tuple[bytes, Stamp]:
        seen.append(path)
        return real(path, shown)

    monkeypatch.setattr(artifacts, "_read_small", counted)
    return seen


@pytest.fixture
def quick_racy(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Files count as old enough to trust 50 ms after they are written (not 2 s); the
    function waits that long."""
    monkeypatch.setattr(statcache, "RACY_NS", 50_000_000)
    return lambda: time.sleep(0.1)


def make_folder(root: Path, count: int = 200) -> dict[str, bytes]:
    files = {f"d{i % 7}/f{i:04d}.bin": os.urandom(i % 5000) for i in range(count)}
    files["same/one.txt"] = files["same/two.txt"] = b"duplicate bytes"
    files["big.bin"] = os.urandom(artifacts.SMALL_FILE + 1)  # streamed, not batched
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_folder(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_folder_of_small_files_round_trips(folder_client: cairn.Client, tmp_path: Path) -> None:
    files = make_folder(tmp_path / "ckpt", 600)
    run = folder_client.set_experiment_run("r")
    info = run.log_artifact("ckpt", tmp_path / "ckpt")
    assert (info.kind, info.file_count, info.size) == (
        "tree",
        len(files),
        sum(map(len, files.values())),
    )
    out = run.download_artifact("ckpt", f"{tmp_path}/out/")
    assert read_folder(out) == files
    # Into a folder that has files already: those the tree names are replaced.
    (out / "d1" / "f0001.bin").write_bytes(b"stale")
    (out / "extra.txt").write_bytes(b"kept")
    assert run.download_artifact("ckpt", f"{tmp_path}/out/") == out
    assert read_folder(out) == {**files, "extra.txt": b"kept"}


def test_logging_again_reads_no_unchanged_file(
    folder_client: cairn.Client, tmp_path: Path, reads: Reads, quick_racy: Callable[[], None]
) -> None:
    files = make_folder(tmp_path / "ckpt")
    small = sum(1 for data in files.values() if len(data) <= artifacts.SMALL_FILE)
    quick_racy()
    run = folder_client.set_experiment_run("r")
    first = run.log_artifact("ckpt", tmp_path / "ckpt")
    assert len(reads) == small  # every small file once (the duplicate's two files too)
    reads.clear()
    again = run.log_artifact("ckpt", tmp_path / "ckpt")
    assert reads == []
    assert again.digest == first.digest
    # One file changed: only it is read.
    changed = tmp_path / "ckpt" / "d3" / "f0003.bin"
    changed.write_bytes(b"new bytes")
    quick_racy()
    third = run.log_artifact("ckpt", tmp_path / "ckpt")
    assert reads == [os.path.realpath(changed)]
    assert third.digest != first.digest
    out = run.download_artifact("ckpt", tmp_path / "out")
    assert (out / "d3" / "f0003.bin").read_bytes() == b"new bytes"


def test_a_change_with_size_and_mtime_restored_is_caught(
    folder_client: cairn.Client, tmp_path: Path, quick_racy: Callable[[], None]
) -> None:
    make_folder(tmp_path / "ckpt", 20)
    victim = tmp_path / "ckpt" / "d2" / "f0002.bin"
    old = victim.read_bytes()
    before = victim.stat()
    quick_racy()
    run = folder_client.set_experiment_run("r")
    run.log_artifact("ckpt", tmp_path / "ckpt")
    victim.write_bytes(bytes(b ^ 0x55 for b in old))  # same size
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
    assert victim.stat().st_mtime_ns == before.st_mtime_ns
    quick_racy()
    run.log_artifact("ckpt", tmp_path / "ckpt")
    out = run.download_artifact("ckpt", tmp_path / "out")
    assert (out / "d2" / "f0002.bin").read_bytes() == victim.read_bytes() != old


def test_files_younger_than_the_timestamp_granularity_are_read_again(
    folder_client: cairn.Client, tmp_path: Path, reads: Reads
) -> None:
    """The racy-git rule: a file written less than RACY_NS before it was read could
    change again within the same timestamp tick, so its stat proves nothing yet."""
    make_folder(tmp_path / "ckpt", 30)
    run = folder_client.set_experiment_run("r")
    run.log_artifact("ckpt", tmp_path / "ckpt")  # just written: younger than 2 s
    first = len(reads)
    reads.clear()
    run.log_artifact("ckpt", tmp_path / "ckpt")
    assert len(reads) == first  # read again, every one


def test_objects_the_store_lost_are_sent_again(
    folder_client: cairn.Client,
    tmp_path: Path,
    home: Path,
    reads: Reads,
    quick_racy: Callable[[], None],
) -> None:
    files = make_folder(tmp_path / "ckpt", 40)
    quick_racy()
    run = folder_client.set_experiment_run("r")
    run.log_artifact("ckpt", tmp_path / "ckpt")
    entry = next(e for e in run.list_artifact_files("ckpt") if e.path == "d4/f0004.bin")
    (home / "objects" / "objects" / entry.digest[:2] / entry.digest[2:]).unlink()
    reads.clear()
    run.log_artifact("ckpt", tmp_path / "ckpt")
    assert reads == [os.path.realpath(tmp_path / "ckpt" / "d4" / "f0004.bin")]
    out = run.download_artifact("ckpt", tmp_path / "out")
    assert read_folder(out) == files


def test_a_file_changing_while_it_is_read_is_refused(
    folder_client: cairn.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_folder(tmp_path / "ckpt", 10)
    victim = os.path.realpath(tmp_path / "ckpt" / "d5" / "f0005.bin")
    real_read = os.read

    def read_while_a_writer_appends(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        if os.readlink(f"/proc/self/fd/{fd}") == victim:
            with open(victim, "ab") as f:  # another process, writing meanwhile
                f.write(b"more")
        return data

    monkeypatch.setattr(os, "read", read_while_a_writer_appends)
    run = folder_client.set_experiment_run("r")
    with pytest.raises(cairn.InvalidArgument, match="changed while it was being read") as err:
        run.log_artifact("ckpt", tmp_path / "ckpt")
    assert err.value.details["path"].endswith("f0005.bin")
    assert run.list_artifacts() == []


# -- the cache itself -------------------------------------------------------------------------
def stamp_of(path: Path) -> Stamp:
    return Stamp.of(path.stat())


def test_the_cache_trusts_only_an_unchanged_old_stamp(tmp_path: Path) -> None:
    cache = StatCache(str(tmp_path / "c.sqlite"))
    file = tmp_path / "f"
    file.write_bytes(b"x")
    stamp = stamp_of(file)
    late = max(stamp.mtime_ns, stamp.ctime_ns) + statcache.RACY_NS + 1
    cache.remember([(str(file), stamp, "a" * 64, late)])  # type: ignore[list-item]
    assert cache.lookup({str(file): stamp}, str(tmp_path)) == {str(file): "a" * 64}
    assert cache.lookup({str(file): stamp}) == {str(file): "a" * 64}  # outside any folder
    for changed in (
        stamp._replace(size=2),
        stamp._replace(mtime_ns=stamp.mtime_ns + 1),
        stamp._replace(ctime_ns=stamp.ctime_ns + 1),
        stamp._replace(ino=stamp.ino + 1),
        stamp._replace(dev=stamp.dev + 1),
    ):
        assert cache.lookup({str(file): changed}, str(tmp_path)) == {}
    # Read within RACY_NS of its last change: never trusted.
    cache.remember([(str(file), stamp, "b" * 64, late - 2)])  # type: ignore[list-item]
    assert cache.lookup({str(file): stamp}, str(tmp_path)) == {}


def test_a_damaged_or_unwritable_cache_is_a_miss_never_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = StatCache(str(path))
    file = tmp_path / "f"
    file.write_bytes(b"x")
    stamp = stamp_of(file)
    assert cache.lookup({str(file): stamp}) == {}
    late = stamp.ctime_ns + statcache.RACY_NS * 2
    cache.remember([(str(file), stamp, "c" * 64, late)])  # type: ignore[list-item]
    assert cache.lookup({str(file): stamp}) == {str(file): "c" * 64}  # made anew
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM files").fetchone() == (1,)
    blocked = StatCache(str(tmp_path / "a-file" / "c.sqlite"))
    (tmp_path / "a-file").write_bytes(b"")
    blocked.remember([(str(file), stamp, "c" * 64, late)])  # type: ignore[list-item]
    assert blocked.lookup({str(file): stamp}) == {}


def test_the_setting_names_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_stat_cache("off") is None
    named = open_stat_cache(str(tmp_path / "x.sqlite"))
    assert named is not None and named.path == str(tmp_path / "x.sqlite")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    default = open_stat_cache(None)
    assert default is not None
    assert default.path == str(tmp_path / "xdg" / "cairn" / "stat-cache.sqlite")
