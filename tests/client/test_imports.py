"""``cairn.Client(url)`` speaks HTTP only: a fresh process that logs, uploads and downloads
through a real server loads neither SQLAlchemy nor any part of the store or the service
(but the contract it is written against), nor the server's libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cairn.core.settings import Settings
from tests.servers import serve_in_thread

_SCRIPT = """
import json, sys
import cairn
with cairn.Client(sys.argv[1]) as client:
    run = client.start_run()
    run.log_metric("loss", 0.5)
    run.log_metrics({"acc": 0.9})
    run.log_hyperparameters({"lr": 0.01})
    run.log_artifact("weights", b"bytes of a model")
    run.download_artifact("weights", sys.argv[2])
with cairn.Client(sys.argv[1]) as other:
    again = other.get_run(run.id)  # not this client's run: its steps are asked off-thread
    again.log_metric("loss", 0.25)
    assert [p.step for p in again.get_metric_history("loss")] == [0, 1]
print(json.dumps(sorted(sys.modules)))
"""
_FORBIDDEN_TOPS = ("sqlalchemy", "alembic", "psycopg", "fastapi", "starlette", "uvicorn")


def test_an_http_client_loads_no_store(tmp_path: Path) -> None:
    with serve_in_thread(Settings(home=str(tmp_path / "home"))) as url:
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT, url, str(tmp_path / "out.bin")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    assert (tmp_path / "out.bin").read_bytes() == b"bytes of a model"
    assert "cairn.client._http" in loaded  # the script did speak HTTP
    forbidden = [
        name
        for name in loaded
        if name.partition(".")[0] in _FORBIDDEN_TOPS
        or name.startswith("cairn.store")
        or (name.startswith("cairn.service.") and name != "cairn.service.contracts")
        or name.startswith("cairn.server")
    ]
    assert forbidden == []
