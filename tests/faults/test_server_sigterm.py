"""A server stopped with SIGTERM mid-stream loses nothing acknowledged: clients stream
metric batches, the server gets SIGTERM while batches are in flight (uvicorn finishes the
requests it holds, then exits 0), starts again on the same home, and every point is
stored exactly once. (SIGKILL is tests/server/test_faults.py's.)"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

import cairn
from cairn.core.settings import Settings
from tests.server.test_faults import (
    ServerProcess,
    assert_exactly_once,
    history_steps,
    server_process,
)

__all__ = ["server_process"]  # the fixture, imported to be used here

CLIENTS = 3
POINTS = 12_000


def new_runs(url: str, count: int) -> list[str]:
    with cairn.Client(settings=Settings(url=url, capture="none")) as client:
        client.set_project("sigterm")
        client.set_experiment("exp")
        return [client.start_run(f"r{i}").id for i in range(count)]


def landed(url: str, run_id: str) -> int:
    import httpx

    latest = httpx.get(f"{url}/api/v1/runs/{run_id}/metrics", params={"key": "loss"}, timeout=5)
    found = latest.json()
    return int(found["loss"]["step"]) + 1 if "loss" in found else 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, server_process: ServerProcess
) -> None:
    server = server_process
    server.start()
    runs = new_runs(server.url, CLIENTS)
    stopped, restarted = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def stream(run_id: str) -> None:
        settings = Settings(url=server.url, retry_timeout=60, flush_interval=0.02, batch_size=400)
        try:
            with cairn.Client(settings=settings) as client:
                run = client.get_run(run_id)
                for step in range(POINTS):
                    if step == POINTS // 2:  # logged before, during and after the stop
                        stopped.wait(60)
                    run.log_metric("loss", step * 0.5, step=step)
                    if step % 200 == 199:
                        time.sleep(0.003)  # a training loop, not a tight one
                run.flush()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=stream, args=(r,), daemon=True) for r in runs]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 40
    while min(landed(server.url, r) for r in runs) < 1_000:  # really mid-stream
        assert time.monotonic() < deadline, "no points landed before the stop"
        time.sleep(0.01)
    at_stop = [landed(server.url, r) for r in runs]
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0  # a graceful stop, in-flight batches answered
    stopped.set()
    time.sleep(0.5)
    server.start()
    restarted.set()
    for thread in threads:
        thread.join(90)
    assert not failures, failures
    assert all(0 < n < POINTS for n in at_stop), at_stop
    for run_id in runs:
        assert_exactly_once(history_steps(Settings(url=server.url), run_id), POINTS)
    assert server.stop() == 0
