"""Server-side cost of one create_run: ``POST /api/v1/experiments/{id}/runs`` on a real
``cairn server``, driven by the stdlib ``http.client`` on one keep-alive connection.

Usage::

    .venv/bin/python benchmarks/create_run_server.py              # 3,000 runs, 3 rounds
    .venv/bin/python benchmarks/create_run_server.py -n 1000 -r 1 # quicker

The server runs as ``python -m cairn server --port P --home H`` (one worker) on 127.0.0.1,
with a temporary home, removed afterwards. The client is as cheap as Python allows (no
Cairn client, no httpx), so the figures are the server's: runs per second on one
sequential connection, and the server process's CPU time (user + system, from psutil) per
request. The baseline, measured on the same server in the same rounds, is
``GET /api/v1/health``: the HTTP stack alone. CPU per request is less sensitive to other
load on the machine than wall time; each figure is the best of the rounds.

The exit code is 0 whether or not the figures are good: this is a measuring tool.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]

HEALTH = "/api/v1/health"
STARTUP_LIMIT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(tmp: Path) -> Iterator[tuple[int, psutil.Process]]:
    """A ``cairn server`` on a free port; stopped (SIGTERM, then SIGKILL) on the way out."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env["PYTHONPYCACHEPREFIX"] = os.fspath(tmp / "pycache")  # start-up is not measured
    command = [sys.executable, "-m", "cairn", "server", "--port", str(port)]
    command += ["--home", os.fspath(tmp / "home")]
    with (tmp / "server.log").open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=log, env=env)
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while True:
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", HEALTH)
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {tmp / 'server.log'}")
            time.sleep(0.1)
        yield port, psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def call(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None) -> bytes:
    headers = {"content-type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise SystemExit(f"{method} {path}: {response.status} {data!r}")
    return data


def timed(server: psutil.Process, n: int, one: Callable[[int], None]) -> tuple[float, float]:
    """(requests per second, server CPU ms per request) of ``n`` calls of ``one``."""
    before = server.cpu_times()
    started = time.perf_counter()
    for i in range(n):
        one(i)
    wall = time.perf_counter() - started
    after = server.cpu_times()
    cpu = (after.user + after.system) - (before.user + before.system)
    return n / wall, cpu / n * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="requests per round (3,000)")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds (3)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cairn-create-run-"))
    try:
        with running_server(tmp) as (port, server):
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            project = json.loads(call(conn, "POST", "/api/v1/projects", b'{"name":"p"}'))
            experiment = json.loads(
                call(conn, "POST", f"/api/v1/projects/{project['id']}/experiments", b'{"name":"e"}')
            )
            runs_path = f"/api/v1/experiments/{experiment['id']}/runs"
            counter = iter(range(1 << 62))

            def create_run(_: int) -> None:
                body = {
                    "name": f"run-{next(counter)}",
                    "parent_id": None,
                    "description": None,
                    "owner": "",
                    "tags": None,
                }
                call(conn, "POST", runs_path, json.dumps(body).encode())

            def health(_: int) -> None:
                call(conn, "GET", HEALTH, None)

            for warm in (create_run, health):  # first-call costs are not per-request costs
                timed(server, 200, warm)
            best: dict[str, tuple[float, float]] = {}
            for r in range(args.rounds):
                for name, one in (("create_run", create_run), ("GET /health", health)):
                    rate, cpu = timed(server, args.n, one)
                    print(f"round {r + 1}  {name:<11} {rate:8,.0f} req/s  {cpu:.3f} ms CPU/req")
                    old = best.get(name)
                    best[name] = (max(rate, old[0]), min(cpu, old[1])) if old else (rate, cpu)
            conn.close()
        (runs, run_cpu), (pings, ping_cpu) = best["create_run"], best["GET /health"]
        print(f"\nbest of {args.rounds} rounds of {args.n:,} requests (CPU: user + system)")
        print(f"create_run   {runs:8,.0f} runs/s      {run_cpu:.3f} ms server CPU/request")
        print(f"GET /health  {pings:8,.0f} requests/s  {ping_cpu:.3f} ms server CPU/request")
        ratio = f"{run_cpu / ping_cpu:.2f}x the CPU, {pings / runs:.2f}x the time"
        print(f"create_run / health: {ratio}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
