"""Big files through a server, whole against as the chunks the server lacks.

Usage::

    .venv/bin/python benchmarks/chunked_uploads.py              # 256 MiB, 3 rounds
    .venv/bin/python benchmarks/chunked_uploads.py --mib 64 --rounds 1

A real ``cairn server`` process on loopback (its own temporary home) and
``cairn.Client(url)`` here. Each round logs a new file of random bytes (a first upload),
the same file with 1 MiB overwritten in its middle, and with one byte inserted at its
start, and the unchanged file under a second key: once with the client's chunked uploads
(``cairn/client/_http_chunks.py``) and once with them turned off in this process (every
file goes up whole, as before them), alternating which goes first. Also a first upload
to a server whose store keeps files whole (``CAIRN_CHUNK_SIZE=0``). Printed: the best
wall time of each case, and the bytes the server stored for it (its home's growth).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

import cairn
from cairn.client import _http_chunks

MiB = 1 << 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _server(home: Path, env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "cairn", "server", "--port", str(port), "--home", str(home)]
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _stored(home: Path) -> int:
    return sum(p.stat().st_size for p in (home / "objects").rglob("*") if p.is_file())


@contextlib.contextmanager
def _whole_only(on: bool) -> Iterator[None]:
    """Chunked uploads off in this process (every file whole), when ``on``."""
    saved = _http_chunks.server_chunking
    if on:
        _http_chunks.server_chunking = lambda transport: None
    try:
        yield
    finally:
        _http_chunks.server_chunking = saved


def _timed(run: cairn.Run, key: str, src: Path, whole: bool) -> float:
    with _whole_only(whole):
        started = time.perf_counter()
        run.log_artifact(key, src)
        return time.perf_counter() - started


Noted = Callable[[str, float, int], None]


def _round(run: cairn.Run, home: Path, src: Path, size: int, mode: str, note: Noted) -> None:
    """A new file, then 1 MiB overwritten, then 1 byte inserted, then unchanged under a
    second key (with ``mode`` ``whole, store unchunked``: the new file only)."""
    whole = mode != "chunked"
    data = bytearray(os.urandom(size))
    steps: list[tuple[str, Callable[[bytearray], None]]] = [
        ("first upload", lambda d: None),
        ("1 MiB overwritten", _overwrite),
        ("1 byte inserted", lambda d: d.__setitem__(slice(0, 0), b"x")),
    ]
    if mode == "whole, store unchunked":
        steps = steps[:1]
    for case, change in steps:
        change(data)
        src.write_bytes(data)
        before = _stored(home)
        seconds = _timed(run, "blob", src, whole)
        note(f"{case}, {mode}", seconds, _stored(home) - before)
    if len(steps) > 1:
        note(f"unchanged, {mode}", _timed(run, "again", src, whole), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * MiB
    best: dict[str, tuple[float, int]] = {}

    def note(case: str, seconds: float, stored: int) -> None:
        if case not in best or seconds < best[case][0]:
            best[case] = (seconds, stored)

    with tempfile.TemporaryDirectory(prefix="cairn-chunked-bench-") as tmp:
        work = Path(tmp)
        src = work / "big.bin"
        for chunk_size in ("262144", "0"):
            home = work / f"home-{chunk_size}"
            with _server(home, {"CAIRN_CHUNK_SIZE": chunk_size}) as url:
                client = cairn.Client(url)
                client.set_project("bench")
                client.set_experiment("chunked")
                run = client.start_run("uploads", capture="none")
                run.log_artifact("warm-up", b"warm-up")
                if chunk_size == "0":
                    for _ in range(args.rounds):
                        _round(run, home, src, size, "whole, store unchunked", note)
                for i in range(args.rounds if chunk_size != "0" else 0):
                    modes = ("chunked", "whole") if i % 2 == 0 else ("whole", "chunked")
                    for mode in modes:
                        _round(run, home, src, size, mode, note)
                client.close()
    print(f"{args.mib} MiB file, best of {args.rounds} (wall s, MB/s, bytes stored)")
    for case, (seconds, stored) in sorted(best.items()):
        print(f"  {case:40} {seconds:7.3f} s {size / seconds / 1e6:8.0f} MB/s {stored:>12,}")


def _overwrite(data: bytearray) -> None:
    middle = len(data) // 2
    data[middle : middle + MiB] = os.urandom(MiB)


if __name__ == "__main__":
    main()
