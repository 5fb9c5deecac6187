"""Leftovers are swept (issue 12): a server killed (SIGKILL, a real process) in the middle
of a big upload leaves its temp file in ``objects/tmp``; the restarted server removes it
once it is ``temp_grace`` seconds old, and leaves alone the temp file of an upload in
progress.

Before: the upload resumed fine, but 36-314 MB of temp files stayed forever.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cairn.core.digest import digest_bytes
from cairn.core.settings import SETTINGS
from cairn.store.objects import LocalObjectStore
from tests.proxy import free_port

MiB = 1 << 20
STARTUP_LIMIT_S = 30.0  # a loaded 2-CPU machine, other tests at once


class ServerProcess:
    """``python -m cairn server`` on a fixed port and home, with settings of its own."""

    def __init__(self, tmp_path: Path, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp_path = tmp_path
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, **settings: str) -> None:
        self.starts += 1
        log = self.tmp_path / f"server-{self.starts}.log"
        ours = {s.env for s in SETTINGS}  # nothing from the outer environment
        env = {k: v for k, v in os.environ.items() if k not in ours} | settings
        command = [
            sys.executable,
            *("-m", "cairn", "server", "--port", str(self.port), "--home", str(self.home)),
            *("--log-level", "warning"),
        ]
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=sink, env=env, cwd=self.tmp_path
            )
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/api/v1/health", timeout=1.0).status_code == 200:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.02)

    def kill(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    made = ServerProcess(tmp_path, tmp_path / "home")
    try:
        yield made
    finally:
        if made.process is not None and made.process.poll() is None:
            made.kill()


class SlowUpload(threading.Thread):
    """``PUT /objects/{digest}`` of ``data``, a piece every ``pause`` seconds, as one part
    of a resumable upload goes; keeps the answer (or the error that ended it)."""

    def __init__(self, url: str, data: bytes, pause: float) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}/api/v1/objects/{digest_bytes(data)}"
        self.data = data
        self.pause = pause
        self.outcome: httpx.Response | BaseException | None = None

    def pieces(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), MiB):
            yield self.data[start : start + MiB]
            time.sleep(self.pause)

    def run(self) -> None:
        try:
            self.outcome = httpx.put(
                self.url,
                content=self.pieces(),
                headers={"Content-Type": "application/octet-stream"},
                timeout=60,
            )
        except BaseException as exc:
            self.outcome = exc


def temp_files(home: Path) -> dict[str, int]:
    tmp = home / "objects" / "tmp"
    return {p.name: p.stat().st_size for p in tmp.iterdir()} if tmp.exists() else {}


def wait_for(condition: object, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_server_killed_mid_upload_sweeps_its_temp_file_after_a_restart(
    server: ServerProcess,
) -> None:
    server.start(CAIRN_CHUNK_SIZE="0")  # one temp file per upload: the whole object's
    first = SlowUpload(server.url, os.urandom(64 * MiB), pause=0.02)
    first.start()
    wait_for(lambda: sum(temp_files(server.home).values()) >= 12 * MiB, 30, "12 MiB received")
    server.kill()
    first.join(10)
    assert isinstance(first.outcome, httpx.TransportError)
    left = temp_files(server.home)
    assert len(left) == 1 and sum(left.values()) >= 12 * MiB  # what a kill leaves

    server.start(CAIRN_TEMP_GRACE="2", CAIRN_CHUNK_SIZE="0")
    data = os.urandom(24 * MiB)
    fresh = SlowUpload(server.url, data, pause=0.4)  # ~10 s: past the grace and sweeps
    fresh.start()
    wait_for(lambda: set(temp_files(server.home)) - set(left), 15, "the fresh upload's file")
    wait_for(lambda: not set(left) & set(temp_files(server.home)), 15, "the leftover swept")
    time.sleep(1.5)  # more sweeps (every grace / 2) while the fresh upload goes on
    during = temp_files(server.home)
    assert fresh.is_alive() and len(during) == 1, during  # the fresh upload's file stays
    fresh.join(30)
    assert isinstance(fresh.outcome, httpx.Response), fresh.outcome
    assert fresh.outcome.status_code == 201, fresh.outcome.text
    assert fresh.outcome.json() == {"digest": digest_bytes(data), "size": len(data)}
    assert temp_files(server.home) == {}


def test_a_sweep_removes_old_temp_files_only(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    digest = store.put_bytes(b"an object").digest
    tmp = tmp_path / "objects" / "tmp"
    old, young = tmp / "old.tmp", tmp / "young.tmp"
    old.write_bytes(b"left by a killed process")
    young.write_bytes(b"another process's write in progress")
    os.utime(old, (time.time() - 120, time.time() - 120))
    with store.open_writer() as writer:  # this process's own write: never swept
        writer.write(b"in progress")
        (mine,) = set(tmp.iterdir()) - {old, young}
        os.utime(mine, (time.time() - 120, time.time() - 120))
        assert store.sweep(60) == [str(old)]
        assert sorted(tmp.iterdir()) == sorted([mine, young])
        assert writer.commit().digest == digest_bytes(b"in progress")
    assert store.exists(digest)
    time.sleep(0.01)
    assert store.sweep(0.001) == [str(young)]  # any age past a tiny grace
