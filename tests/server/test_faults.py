"""Faults for real, on loopback: metric batches survive a server killed and restarted
mid-stream, and a proxy that drops connections or holds answers past the client's timeout,
exactly once; retries back off; and when the server stays away the error reaches the user
within a bounded time.

Exactly once rests on the idempotency key every batch carries (cairn/client/_http.py)
and the server claiming it in the write's own transaction (cairn/service/metrics.py).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import cairn
from cairn.core.errors import CairnError, StoreUnavailable
from cairn.core.settings import SETTINGS, Settings
from tests.proxy import (
    Action,
    DroppingProxy,
    LoopbackServer,
    Plan,
    Seen,
    free_port,
    read_request,
    reset,
)
from tests.servers import serve_in_thread

HEALTH = "/api/v1/health"
STARTUP_LIMIT_S = 30.0  # a loaded 2-CPU machine, two test workers at once


# -- helpers --------------------------------------------------------------------------------
def history_steps(settings: Settings, run_id: str) -> list[tuple[int, float]]:
    """(step, value) of every stored point of the run's "loss", read by a fresh client."""
    with cairn.Client(settings=settings) as client:
        points = client.get_run(run_id).get_metric_history("loss")
    return [(p.step, p.value) for p in points]


def assert_exactly_once(found: list[tuple[int, float]], count: int) -> None:
    steps = [step for step, _ in found]
    if steps != list(range(count)):
        counts = Counter(steps)
        missing = [s for s in range(count) if s not in counts][:10]
        doubled = sorted(s for s, n in counts.items() if n > 1)[:10]
        pytest.fail(
            f"{len(steps)} points stored for {count} logged; "
            f"first missing {missing}, first doubled {doubled}"
        )
    assert all(value == step * 0.5 for step, value in found)


class ServerProcess:
    """``python -m cairn server`` on a fixed port and home, killed and started at will."""

    def __init__(self, tmp_path: Path, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp_path = tmp_path
        self.command = [
            sys.executable,
            *("-m", "cairn", "server", "--port", str(self.port), "--home", str(home)),
            *("--log-level", "warning"),
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.tmp_path / f"server-{self.starts}.log"
        settings_vars = {s.env for s in SETTINGS}  # nothing from the outer environment
        env = {k: v for k, v in os.environ.items() if k not in settings_vars}
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.DEVNULL, stderr=sink, env=env, cwd=self.tmp_path
            )
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + HEALTH, timeout=1.0).status_code == 200:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.02)

    def kill(self) -> int:
        """SIGKILL: no graceful shutdown, in-flight requests die with it."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(15)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, tmp_path / "home")
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()


def new_run(url: str) -> str:
    with cairn.Client(settings=Settings(url=url)) as client:
        client.set_project("faults")
        client.set_experiment("exp")
        return client.start_run("r").id


# -- 1. a server killed and restarted mid-stream ----------------------------------------------
class KillAndRestart(threading.Thread):
    """Once ``min_landed`` points of the run are stored, SIGKILL the server, wait a
    second, start it again on the same port and home."""

    def __init__(self, server: ServerProcess, run_id: str, min_landed: int) -> None:
        super().__init__(daemon=True)
        self.server, self.run_id, self.min_landed = server, run_id, min_landed
        self.killed, self.restarted = threading.Event(), threading.Event()
        self.landed_at_kill = 0
        self.failure: BaseException | None = None

    def landed(self) -> int:
        path = f"{self.server.url}/api/v1/runs/{self.run_id}/metrics"
        latest = httpx.get(path, params={"key": "loss"}, timeout=5).json()
        return int(latest["loss"]["step"]) + 1 if "loss" in latest else 0

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 30
            while (done := self.landed()) < self.min_landed:  # really mid-stream
                assert time.monotonic() < deadline, "no points landed before the kill"
                time.sleep(0.01)
            self.landed_at_kill = done
            assert self.server.kill() == -signal.SIGKILL
            self.killed.set()
            time.sleep(1.0)
            self.server.start()
            self.restarted.set()
        except BaseException as exc:
            self.failure = exc
        finally:  # never leave the logging loop waiting
            self.killed.set()
            self.restarted.set()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_server_killed_and_restarted_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, server_process: ServerProcess
) -> None:
    total, pause_for_kill, pause_for_restart = 20_000, 8_000, 14_000
    server = server_process
    server.start()
    run_id = new_run(server.url)
    killer = KillAndRestart(server, run_id, min_landed=2_000)
    settings = Settings(url=server.url, retry_timeout=30, flush_interval=0.05, batch_size=500)
    with cairn.Client(settings=settings) as client:
        run = client.get_run(run_id)
        killer.start()
        for step in range(total):
            if step == pause_for_kill:  # points logged before, during and after the outage
                assert killer.killed.wait(40)
            elif step == pause_for_restart:
                assert killer.restarted.wait(40)
            run.log_metric("loss", step * 0.5, step=step)
            if step % 100 == 99:
                time.sleep(0.002)  # a training loop, not a tight one
        started = time.monotonic()
        run.flush()
        flush_s = time.monotonic() - started
    killer.join(40)
    if killer.failure is not None:
        raise killer.failure
    assert 2_000 <= killer.landed_at_kill < total
    assert server.starts == 2

    assert_exactly_once(history_steps(Settings(url=server.url), run_id), total)
    assert server.stop() == 0
    # And on disk, read by the embedded store once the server is gone.
    assert_exactly_once(history_steps(Settings(home=str(tmp_path / "home")), run_id), total)
    print(f"landed_at_kill={killer.landed_at_kill} flush_s={flush_s:.2f}")


# -- 2. a proxy that drops connections ------------------------------------------------------
PLAN = (Action.FORWARD, Action.DROP_BEFORE, Action.DROP_AFTER, Action.FORWARD, Action.STALL)


def cycle_of_five() -> Plan:
    # Request by request, batches alternate between: dropped before the server, sent
    # again and applied but the answer dropped, sent a third time (a replay, acknowledged
    # without being applied); and applied but the answer held past the client's timeout,
    # then replayed and acknowledged. Other requests pass.
    batches = itertools.count()

    def plan(request: Seen) -> Action:
        if request.method == "POST" and request.path.endswith("/metrics"):
            return PLAN[next(batches) % len(PLAN)]
        return Action.FORWARD

    return plan


@pytest.mark.timeout(60)
def test_a_proxy_dropping_and_stalling_connections_applies_each_batch_exactly_once(
    tmp_path: Path,
) -> None:
    total, per_flush = 2_000, 250
    with serve_in_thread(Settings(home=str(tmp_path / "home"))) as url:
        run_id = new_run(url)
        port = int(url.rsplit(":", 1)[1])
        proxy = DroppingProxy(("127.0.0.1", port), cycle_of_five())
        try:
            settings = Settings(
                url=proxy.url,
                retry_timeout=20,
                request_timeout=0.5,  # a held answer times out soon
                flush_interval=0.05,
                batch_size=500,
            )
            with cairn.Client(settings=settings) as client:
                run = client.get_run(run_id)
                for step in range(total):
                    run.log_metric("loss", step * 0.5, step=step)
                    if step % per_flush == per_flush - 1:
                        run.flush()  # one batch or more per round
        finally:
            proxy.close()
        found = history_steps(Settings(url=url), run_id)

    assert_exactly_once(found, total)
    seen = [s for s in proxy.seen if s.method == "POST" and s.path.endswith("/metrics")]
    assert all(s.key for s in seen), "a metric batch was sent without an idempotency key"
    assert proxy.count(Action.DROP_BEFORE) >= 2
    unacknowledged = Counter[Action]()  # applied for the first time, answer lost
    for i, lost in enumerate(seen):
        if lost.action in (Action.DROP_AFTER, Action.STALL):
            assert lost.status == 204  # the server answered: it holds the batch...
            # ...and the client sent the same batch again, under the same key, and got
            # the server's answer this time: a replay, applied once.
            assert any(
                s.key == lost.key and s.action is Action.FORWARD and s.status == 204
                for s in seen[i + 1 :]
            )
            earlier = [s for s in seen[:i] if s.key == lost.key]
            if all(s.action is Action.DROP_BEFORE for s in earlier):
                unacknowledged[lost.action] += 1
    assert unacknowledged[Action.DROP_AFTER] >= 2
    assert unacknowledged[Action.STALL] >= 2
    keys = {s.key for s in seen}
    assert len(keys) < len(seen)  # retries reused keys rather than minting new ones
    print(
        f"requests={len(seen)} batches={len(keys)} "
        f"dropped_before={proxy.count(Action.DROP_BEFORE)} "
        f"dropped_after={proxy.count(Action.DROP_AFTER)} "
        f"stalled={proxy.count(Action.STALL)}"
        f" unacknowledged_first_applications={ {a.name: n for a, n in unacknowledged.items()} }"
    )


# -- 3. the server down for good: the error reaches the user, in bounded time ---------------
@pytest.mark.timeout(60)
def test_with_the_server_gone_flush_and_the_next_log_raise_within_a_bounded_time(
    tmp_path: Path,
) -> None:
    retry_timeout = 2.0
    with serve_in_thread(Settings(home=str(tmp_path / "home"))) as url:
        run_id = new_run(url)
        settings = Settings(url=url, retry_timeout=retry_timeout, flush_interval=0.05)
        client = cairn.Client(settings=settings)
        run = client.get_run(run_id)
        run.log_metric("loss", 0.0, step=0)
        run.flush()
    # The server is gone for good (its port is closed): nothing answers any more.
    try:
        for step in range(1, 101):
            run.log_metric("loss", step * 0.5, step=step)  # queued: returns at once
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot reach the Cairn server"):
            run.flush()
        flush_s = time.monotonic() - started
        assert 0.5 <= flush_s < 10  # retried, then gave up
        run.flush()  # the error is raised once, not again and again

        # Without a flush: the background write fails, and the next log call says so.
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            while time.monotonic() - started < 15:
                run.log_metric("loss", 1.0, step=1_000)
                time.sleep(0.05)
        log_s = time.monotonic() - started
        assert log_s < 10
    except BaseException:
        with contextlib.suppress(CairnError):
            client.close()
        raise
    # Points queued after the failure are not written either: closing says so too.
    with pytest.raises(StoreUnavailable):
        client.close()
    print(f"flush_s={flush_s:.2f} log_s={log_s:.2f}")


# -- 4. retries back off --------------------------------------------------------------------
class Refuser(LoopbackServer):
    """Accepts each connection and answers it badly (a reset, or a bare 503), noting
    when each attempt came."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.attempts: list[float] = []
        super().__init__(threaded=False)

    def handle(self, conn: socket.socket) -> None:
        self.attempts.append(time.monotonic())
        if self.how == "reset":
            reset(conn)
            return
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            read_request(conn)
            conn.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
                b"connection: close\r\n\r\n"
            )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["reset", "503"])
def test_retries_back_off_and_stop_after_the_retry_timeout(how: str) -> None:
    retry_timeout = 3.0
    refuser = Refuser(how)
    expected: type[CairnError] = StoreUnavailable if how == "reset" else CairnError
    try:
        with cairn.Client(settings=Settings(url=refuser.url, retry_timeout=retry_timeout)) as c:
            started = time.monotonic()
            with pytest.raises(expected) as raised:
                c.list_projects()
            elapsed = time.monotonic() - started
    finally:
        refuser.close()
    if how == "503":  # the last answer, as a CairnError that names its status
        assert raised.value.details["status"] == 503
    attempts = refuser.attempts
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # Delays of ~0.05, 0.1, 0.2, 0.4, 0.8 s ... (jittered x0.5-1.5): 5 to 8 attempts
    # in 3 s. A tight loop would make hundreds.
    assert 4 <= len(attempts) <= 12, gaps
    assert max(gaps) >= 0.3, gaps  # the waits grew
    half = len(gaps) // 2
    assert sum(gaps[half:]) > sum(gaps[:half]), gaps  # ...and kept growing
    assert elapsed < retry_timeout + 4  # the last wait may pass the deadline a little
    print(f"attempts={len(attempts)} elapsed_s={elapsed:.2f} gaps={[round(g, 3) for g in gaps]}")
