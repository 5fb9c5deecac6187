"""Opening a store at another schema revision, and ``python -m cairn db upgrade``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import cairn
from cairn.store.metadata import upgrade
from cairn.store.metadata.store import HEAD_REVISION, REVISIONS

UPGRADE_COMMAND = "python -m cairn db upgrade"


def cairn_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cairn", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def set_revision(url: str, revision: str | None) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if revision is None:
                conn.execute(text("DELETE FROM alembic_version"))
            else:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    finally:
        engine.dispose()


def use_store(home: Path, url: str) -> str:
    """Write one of everything through the client; returns the run id."""
    with cairn.Client(home=home, store=url) as client:
        project = client.set_project("p", tags=["t"])
        project.log_attribute("a", {"b": [1, 2]})
        with client.start_run("r") as run:
            run.log_hyperparameters({"lr": 0.1, "n": 3})
            run.log_metric("loss", 0.5)
            run.log_metrics({"loss": 0.25, "acc": 1.0})
            run.log_artifact("f.txt", b"file")
        return run.id


def check_store(home: Path, url: str, run_id: str) -> None:
    with cairn.Client(home=home, store=url) as client:
        run = client.get_run(run_id)
        assert run.get_hyperparameters() == {"lr": 0.1, "n": 3}
        assert [p.value for p in run.get_metric_history("loss")] == [0.5, 0.25]
        assert run.open_artifact("f.txt").read() == b"file"
        assert client.get_project("p").get_attributes() == {"a": {"b": [1, 2]}}


def test_older_store_asks_for_db_upgrade(tmp_path: Path, store_url: str) -> None:
    if len(REVISIONS) < 2:
        pytest.skip("only one schema revision exists")
    assert upgrade(store_url, REVISIONS[-2]) == REVISIONS[-2]
    with pytest.raises(cairn.SchemaOutOfDate) as caught:
        cairn.Client(home=tmp_path / "home", store=store_url)
    assert UPGRADE_COMMAND in str(caught.value)
    assert REVISIONS[-2] in str(caught.value)
    assert isinstance(caught.value, cairn.CairnError)

    done = cairn_cli("db", "upgrade", "--store", store_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"schema at revision {HEAD_REVISION}"
    run_id = use_store(tmp_path / "home", store_url)
    check_store(tmp_path / "home", store_url, run_id)


def test_store_without_a_version_asks_for_db_upgrade(tmp_path: Path, store_url: str) -> None:
    cairn.Client(home=tmp_path / "home", store=store_url).close()
    set_revision(store_url, None)
    with pytest.raises(cairn.SchemaOutOfDate) as caught:
        cairn.Client(home=tmp_path / "home", store=store_url)
    assert UPGRADE_COMMAND in str(caught.value)


def test_unknown_revision_is_refused(tmp_path: Path, store_url: str) -> None:
    cairn.Client(home=tmp_path / "home", store=store_url).close()
    set_revision(store_url, "9999")
    with pytest.raises(cairn.SchemaOutOfDate) as caught:
        cairn.Client(home=tmp_path / "home", store=store_url)
    assert "9999" in str(caught.value)
    assert caught.value.details["revision"] == "9999"
    assert caught.value.details["expected"] == HEAD_REVISION


def test_db_upgrade_creates_a_store_from_an_empty_database(tmp_path: Path, store_url: str) -> None:
    done = cairn_cli("db", "upgrade", "--store", store_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"schema at revision {HEAD_REVISION}"

    run_id = use_store(tmp_path / "home", store_url)
    check_store(tmp_path / "home", store_url, run_id)
    assert not (tmp_path / ".cairn").exists()  # --store alone leaves the default home alone


def test_db_upgrade_on_a_current_store_keeps_its_data(tmp_path: Path, store_url: str) -> None:
    run_id = use_store(tmp_path / "home", store_url)
    done = cairn_cli("db", "upgrade", "--store", store_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"schema at revision {HEAD_REVISION}"
    check_store(tmp_path / "home", store_url, run_id)
