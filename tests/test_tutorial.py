"""The versioning tutorial (examples/versioning.py, walked through in docs/versioning.md)
runs as a user runs it, in a fresh interpreter, and every step says what it should."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "versioning.py"


@pytest.mark.capture
def test_the_versioning_tutorial_runs_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "1. saved" in out and "['code/src', 'config/hp', 'data/train', 'env/python']" in out
    assert "values.lr: 0.5 -> 0.8" in out  # the diff, typed
    assert "conflict: config/hp: values.lr: base 0.5, ours 0.3, theirs 0.8" in out
    assert "config/hp = {'epochs': 120, 'lr': 0.8}" in out  # epochs merged, lr resolved
    restored = tmp_path / "restore-run1"
    hp = json.loads((restored / "ingredients/config/hp/hyperparameters.json").read_text())
    assert hp == {"values": {"epochs": 60, "lr": 0.5}}  # the first run's state, not main's
    assert (restored / "ingredients/code/src/train.py").read_text().startswith('"""Fits')
    manifest = json.loads((restored / "ingredients/data/train/manifest.json").read_text())
    assert "train.csv" in json.dumps(manifest)
    assert (restored / "captured/environment/python/requirements.txt").exists()
    report = json.loads((restored / "restore.json").read_text())
    assert report["key_paths"] == {"data": "data/train", "hp": "config/hp"}
    git = json.loads((restored / "captured/code/git/git.json").read_text())
    assert len(git["commit"]) == 40  # the tutorial's own work tree, as the run saw it
    assert any("never pushed" in note for note in report["notes"])
