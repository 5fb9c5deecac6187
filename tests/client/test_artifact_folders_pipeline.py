"""Folders of small files move as batches, several at once (issue 16): many batches up and
down round-trip, progress is told each byte once on the caller's thread, a batch that fails
fails the log with nothing left running."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import cairn
from cairn.client import _http_artifacts
from cairn.core.digest import Digest
from cairn.core.errors import CairnError
from cairn.files import artifacts
from cairn.files.artifacts import ObjectSink


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 7 files, so that a folder of a few dozen needs many, in flight at once."""
    monkeypatch.setattr(artifacts, "_BATCH_FILES", 7)
    monkeypatch.setattr(_http_artifacts, "_FRAMED_OBJECTS", 7)


def make_folder(root: Path, count: int = 60) -> dict[str, bytes]:
    files = {f"d{i % 3}/f{i:03d}.bin": os.urandom(i * 37 % 3000) for i in range(count)}
    files["d1/same.bin"] = files["d2/same.bin"] = b"the same bytes twice"
    for rel, data in files.items():
        path = root.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_folder(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def batch_threads() -> list[str]:
    return [
        t.name for t in threading.enumerate() if t.name.startswith(("cairn-batch", "cairn-fetch"))
    ]


def test_many_batches_round_trip_with_progress_on_the_callers_thread(
    client: cairn.Client, tmp_path: Path, small_batches: None
) -> None:
    files = make_folder(tmp_path / "ckpt")
    told: list[tuple[int, int]] = []

    def progress(n: int) -> None:
        told.append((n, threading.get_ident()))

    run = client.set_experiment_run("r")
    info = run.log_artifact("ckpt", tmp_path / "ckpt", progress=progress)
    total = sum(map(len, files.values()))
    assert (info.file_count, info.size) == (len(files), total)
    assert sum(n for n, _ in told) == total
    assert {ident for _, ident in told} == {threading.get_ident()}
    told.clear()
    out = run.download_artifact("ckpt", tmp_path / "out", progress=progress)
    assert read_folder(out) == files
    assert sum(n for n, _ in told) == total
    assert batch_threads() == []


def test_a_failing_batch_fails_the_log_and_leaves_nothing_running(
    client: cairn.Client,
    tmp_path: Path,
    small_batches: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_folder(tmp_path / "ckpt")
    real = artifacts._store_batch
    sent: list[int] = []

    def third_fails(objects: ObjectSink, send: dict[Digest, bytes]) -> None:
        sent.append(len(send))
        if len(sent) == 3:
            raise CairnError("the third batch failed")
        real(objects, send)

    monkeypatch.setattr(artifacts, "_store_batch", third_fails)
    run = client.set_experiment_run("r")
    with pytest.raises(CairnError, match="third batch"):
        run.log_artifact("ckpt", tmp_path / "ckpt")
    assert run.list_artifacts() == []  # nothing recorded
    assert batch_threads() == []  # the batches after it were waited for, not left running
