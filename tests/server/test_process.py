"""End to end through a real `cairn server` process: the quickstart example, unchanged,
logs to the server when CAIRN_URL is set, and what it logged is in the server's store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import cairn
from tests.cli.test_server import cairn_server, clean_env, kill_tree, start

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_quickstart_through_a_server_process(tmp_path: Path) -> None:
    command, port = cairn_server(tmp_path, "--home", str(tmp_path / "store"))
    served = start(command, tmp_path, port)
    try:
        env = {**clean_env(), "CAIRN_URL": served.url}
        done = subprocess.run(
            [sys.executable, str(EXAMPLE)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "status     finished" in done.stdout
        assert "loss       60 points" in done.stdout
        assert served.stop(signal.SIGTERM) == 0
    finally:
        kill_tree(served.process)
    assert not (tmp_path / ".cairn").exists()  # nothing went to a local store
    # The server's own store holds the run, as the embedded client reads it.
    with cairn.Client(home=tmp_path / "store") as client:
        runs = client.set_project("churn").set_experiment("baseline").list_runs()
        assert len(runs) == 1
        run = runs[0]
        assert run.status is cairn.RunStatus.FINISHED
        assert len(run.get_metric_history("loss")) == 60
        assert run.get_hyperparameters()["epochs"] == 60
        assert [a.key for a in run.list_artifacts()] == ["model/weights.npy"]
    assert os.path.isdir(tmp_path / "store" / "objects")
