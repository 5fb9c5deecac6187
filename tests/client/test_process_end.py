"""How a real process with a running run ends: SIGTERM (queued points stored, the run
killed, the process ended as it would have been), kill -9 (the run reads as crashed once
its heartbeat is old), a plain exit (finished) and an uncaught exception (failed). Each
against the embedded store and through a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.core.model import RunStatus
from cairn.core.settings import Settings
from tests.servers import serve_in_thread

REPO = Path(__file__).resolve().parents[2]
POINTS = 5_000


@pytest.fixture(params=["embedded", "http"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path, store_url: str
) -> Iterator[dict[str, str]]:
    """Where the child process logs: CAIRN_* variables for it (and for the reader here).
    The reader (or the server) counts a run as crashed after 1 s without a heartbeat."""
    home = str(tmp_path / "home")
    if request.param == "embedded":
        yield {"CAIRN_HOME": home, "CAIRN_STORE_URI": store_url}
        return
    settings = Settings(home=home, store_uri=store_url, heartbeat_timeout=1.0)
    with serve_in_thread(settings) as url:
        yield {"CAIRN_URL": url}


def reader(target: dict[str, str]) -> cairn.Client:
    if "CAIRN_URL" in target:
        return cairn.Client(target["CAIRN_URL"])
    return cairn.Client(
        home=target["CAIRN_HOME"],
        store=target["CAIRN_STORE_URI"],
        settings=Settings(heartbeat_timeout=1.0),
    )


def start_child(target: dict[str, str], body: str, **env: str) -> subprocess.Popen[str]:
    """A Python process running ``body`` with ``client`` made from ``target``; it prints
    its run's id when the body says so."""
    script = "import sys, time, signal, cairn\nclient = cairn.Client()\n" + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env={
            **os.environ,
            **target,
            "PYTHONPATH": str(REPO),
            "CAIRN_CAPTURE": "none",
            # Points stay queued until something flushes them.
            "CAIRN_FLUSH_INTERVAL": "600",
            "CAIRN_BATCH_SIZE": "1000000",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_id_of(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if not line:
        _, err = child.communicate(timeout=30)
        pytest.fail(f"the child printed no run id: {err}")
    return line


LOG_AND_WAIT = f"""
run = client.start_run()
for i in range({POINTS}):
    run.log_metric("loss", float(i))
print(run.id, flush=True)
time.sleep(60)
"""


def test_sigterm_stores_queued_points_and_records_killed(target: dict[str, str]) -> None:
    child = start_child(target, LOG_AND_WAIT)
    run_id = run_id_of(child)
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=30)
    assert child.returncode == -signal.SIGTERM  # ended by the signal, as it would have been
    with reader(target) as client:
        run = client.get_run(run_id)
        assert run.status is RunStatus.KILLED
        assert run.info.end_time is not None
        assert [p.value for p in run.get_metric_history("loss")] == [
            float(i) for i in range(POINTS)
        ]


def test_sigterm_calls_the_handler_that_was_there_before(target: dict[str, str]) -> None:
    body = """
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
    with client.start_run() as run:
        run.log_metrics({"a": 1.0, "b": 2.0})
        print(run.id, flush=True)
        time.sleep(60)
    """
    child = start_child(target, body)
    run_id = run_id_of(child)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 3, err  # the program's own handler ran: sys.exit(3)
    with reader(target) as client:
        run = client.get_run(run_id)
        assert run.status is RunStatus.KILLED  # not rewritten as failed by the with block
        assert run.get_metrics() == {"a": 1.0, "b": 2.0}


def test_kill_9_reads_as_crashed_once_the_heartbeat_is_old(target: dict[str, str]) -> None:
    child = start_child(target, LOG_AND_WAIT, CAIRN_HEARTBEAT_INTERVAL="0.2")
    run_id = run_id_of(child)
    with reader(target) as client:
        assert client.get_run(run_id).status is RunStatus.RUNNING
        time.sleep(1.5)  # heartbeats every 0.2 s keep it running past the 1 s timeout
        assert client.get_run(run_id).status is RunStatus.RUNNING
        child.kill()
        child.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while client.get_run(run_id).status is RunStatus.RUNNING:
            assert time.monotonic() < deadline, "still running 10 s after kill -9"
            time.sleep(0.2)
        assert client.get_run(run_id).status is RunStatus.CRASHED
        # A crashed run can still be ended (or resumed) by whoever takes it over.
        client.get_run(run_id).end("failed")
        assert client.get_run(run_id).status is RunStatus.FAILED


@pytest.mark.parametrize(
    ("ending", "status"),
    [("pass", RunStatus.FINISHED), ("raise ValueError('boom')", RunStatus.FAILED)],
)
def test_a_run_left_running_ends_with_the_process(
    target: dict[str, str], ending: str, status: RunStatus
) -> None:
    body = f"""
    run = client.start_run()
    run.log_metric("x", 1.0)
    print(run.id, flush=True)
    {ending}
    """
    child = start_child(target, body)
    run_id = run_id_of(child)
    child.communicate(timeout=30)
    with reader(target) as client:
        run = client.get_run(run_id)
        assert run.status is status
        assert run.get_metrics() == {"x": 1.0}
