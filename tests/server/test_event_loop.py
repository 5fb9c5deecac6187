"""The server's event loop never waits on the database: while another process holds the
SQLite write lock, writes wait for it on worker threads, and the same single-worker
server goes on answering ``/health`` and reads at once."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cairn.core.columns import BATCH_MEDIA_TYPE, SeriesPoints, encode_batch
from cairn.core.settings import Settings
from tests.servers import serve_in_thread

LOCK_SECONDS = 4.0
FAST = 0.1  # seconds: what "at once" means here
CREATE_RUNS = 8  # more than asyncio's default executor has threads on a 2-core machine
OCTETS = "application/octet-stream"

_HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")  # the write lock, as another writer takes it
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


def call(url: str, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    """One request on a connection of its own; (status, parsed JSON body or None)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        if isinstance(body, bytes):
            payload = body
        else:
            payload = None if body is None else json.dumps(body).encode()
            headers.setdefault("content-type", "application/json")
        conn.request(method, "/api/v1" + path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def download(url: str, digest: str) -> bytes:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        conn.request("GET", f"/api/v1/objects/{digest}")
        return conn.getresponse().read()
    finally:
        conn.close()


def test_reads_and_health_answer_while_writes_wait_on_a_lock(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve_in_thread(Settings(home=str(home))) as url:
        _, project = call(url, "POST", "/projects", {"name": "p"})
        _, experiment = call(url, "POST", f"/projects/{project['id']}/experiments", {"name": "e"})
        _, run = call(url, "POST", f"/experiments/{experiment['id']}/runs", {"name": "r"})
        batch = {(run["id"], "loss"): SeriesPoints()}
        batch[(run["id"], "loss")].append(0, 1, 0.5)
        blob = os.urandom(3 << 20)
        status, stored = call(url, "POST", "/objects", blob, **{"content-type": OCTETS})
        assert status == 201

        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(home / "cairn.db"), str(LOCK_SECONDS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            locked_at = time.monotonic()
            writes: list[tuple[str, float, int]] = []

            def write(name: str, *request: Any, **headers: str) -> None:
                status, _ = call(url, *request, **headers)
                writes.append((name, time.monotonic() - locked_at, status))

            waiting = [
                threading.Thread(target=write, args=(name, *request), kwargs=headers)
                for name, request, headers in [
                    ("project", ("POST", "/projects", {"name": "q"}), {}),
                    *[
                        ("create_run", ("POST", f"/experiments/{experiment['id']}/runs", {}), {})
                        for _ in range(CREATE_RUNS)
                    ],
                    ("tags", ("POST", f"/entities/{run['id']}/tags", {"tags": ["t"]}), {}),
                    (
                        "metrics",
                        ("POST", "/metrics", encode_batch(batch)),
                        {"content-type": BATCH_MEDIA_TYPE},
                    ),
                ]
            ]
            for thread in waiting:
                thread.start()
            time.sleep(0.5)  # the writes are in, waiting on the lock
            assert writes == [], "a write went through a held lock"

            slowest = 0.0
            while time.monotonic() - locked_at < LOCK_SECONDS - 1.0:
                for path in ("/health", f"/runs/{run['id']}", f"/projects/{project['id']}"):
                    started = time.monotonic()
                    status, _ = call(url, "GET", path)
                    slowest = max(slowest, time.monotonic() - started)
                    assert status == 200
                time.sleep(0.05)
            started = time.monotonic()  # the bytes of an object move while writes wait
            assert download(url, stored["digest"]) == blob
            fetched = time.monotonic() - started
            assert writes == [], "the lock was let go early: the test measured nothing"
            assert slowest < FAST, f"a read waited {slowest:.3f} s behind a locked write"
            assert fetched < 1.0, f"a download waited {fetched:.2f} s behind locked writes"
        finally:
            holder.wait(timeout=30)
        for thread in waiting:
            thread.join(timeout=60)
        # Every write waited for the lock, then went through.
        assert sorted({name for name, _, _ in writes}) == [
            "create_run",
            "metrics",
            "project",
            "tags",
        ]
        assert len(writes) == 3 + CREATE_RUNS
        assert all(status in (200, 201, 204) for _, _, status in writes), writes
        assert all(after >= LOCK_SECONDS - 0.5 for _, after, _ in writes), writes
