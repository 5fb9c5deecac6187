"""The README's first Python example runs as written, in a fresh interpreter and an empty
folder, and leaves a finished run behind (not a failed one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cairn
from cairn.core.model import RunStatus

ROOT = Path(__file__).resolve().parents[1]


def first_python_block() -> str:
    found = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert found is not None, "the README has no Python example"
    return found.group(1)


@pytest.mark.capture
def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", first_python_block()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "weights").read_bytes() == b"\x00" * 1024
    with cairn.Client(home=tmp_path / ".cairn") as client:
        [run] = client.get_project("churn").set_experiment("baseline").list_runs()
        assert run.status is RunStatus.FINISHED
        assert run.get_metric("acc") == 0.99
        assert run.get_hyperparameters() == {"lr": 0.01, "depth": 6}
