"""A store is never silently replaced (issue 12).

A store is made by a first write into an empty home, or by ``cairn db upgrade``; a read
makes nothing. A home whose ``objects/`` folder holds objects but whose ``cairn.db`` is
missing or empty (0 bytes) is an error naming the file and what to do: for the embedded
client, the CLI and the server. ``cairn db backup`` copies a live store consistently.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import cairn
from cairn.cli import app
from cairn.core.errors import InvalidArgument, StoreUnavailable
from cairn.core.settings import SETTINGS, Settings
from cairn.service.admin import backup_store
from tests.proxy import free_port


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.chdir(tmp_path)


def cli(*args: Any) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def a_store(home: Path) -> None:
    """A store with a project and an artifact (so objects/ holds an object)."""
    with cairn.Client(home=home) as client:
        client.set_project("p")
        client.set_experiment("e")
        with client.start_run("r") as run:
            run.log_artifact("weights", b"the weights")


@pytest.fixture
def lost(tmp_path: Path) -> Path:
    """A home whose cairn.db (and its WAL) went missing; objects/ is whole."""
    home = tmp_path / "home"
    a_store(home)
    for name in ("cairn.db", "cairn.db-wal", "cairn.db-shm"):
        (home / name).unlink(missing_ok=True)
    return home


def files_in(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir())


# -- reads make nothing -----------------------------------------------------------------------
def test_a_read_command_on_an_empty_database_file_makes_no_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "cairn.db").touch()  # 0 bytes, no objects: nothing was ever stored
    for command in (("projects", "ls"), ("runs", "ls", "p/e")):
        result = cli(*command, "--home", home)
        assert result.exit_code != 0, result.stdout
        assert "no Cairn store in" in result.stderr and "yet" in result.stderr
    assert cli("db", "current", "--home", tmp_path / "nothing").stdout == "no schema\n"
    assert not (tmp_path / "nothing").exists()
    assert (home / "cairn.db").stat().st_size == 0
    assert files_in(home) == ["cairn.db"]


def test_a_first_write_into_an_empty_home_makes_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = cli("projects", "create", "p", "--home", home)
    assert result.exit_code == 0, result.stderr
    assert (home / "cairn.db").stat().st_size > 0


# -- a lost database beside objects -----------------------------------------------------------
@pytest.mark.parametrize("damage", ["missing", "empty"])
def test_a_lost_database_beside_objects_is_an_error_everywhere(lost: Path, damage: str) -> None:
    db = lost / "cairn.db"
    if damage == "empty":
        db.touch()
    said = "is missing" if damage == "missing" else "is empty (0 bytes)"
    # The embedded client.
    with pytest.raises(StoreUnavailable) as caught:
        cairn.Client(home=lost)
    message = caught.value.message
    assert f"{str(db)!r} {said}" in message
    assert "objects folder" in message and "holds objects" in message
    assert "Restore the database from a backup" in message
    assert f"cairn db upgrade --home {lost}" in message
    assert caught.value.details["path"] == str(db)
    # The CLI, read and write commands alike.
    for command in (("projects", "ls"), ("projects", "create", "new")):
        result = cli(*command, "--home", lost)
        assert result.exit_code == 1
        assert result.stderr.startswith("error: the store's database"), result.stderr
        assert said in result.stderr
    # The server: it does not start.
    port = free_port()
    server = subprocess.run(
        [sys.executable, "-m", "cairn", "server", "--home", str(lost), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert server.returncode != 0
    assert said in server.stderr and str(db) in server.stderr
    # Nothing was made meanwhile.
    assert db.exists() == (damage == "empty")
    assert not db.exists() or db.stat().st_size == 0
    # The one explicit way to start again beside these objects.
    upgraded = cli("db", "upgrade", "--home", lost)
    assert upgraded.exit_code == 0, upgraded.stderr
    with cairn.Client(home=lost) as client:
        assert client.list_projects() == []


def test_a_lost_database_with_its_wal_left_is_an_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "cairn.db-wal").write_bytes(b"\0" * 32)  # the log of a database now gone
    with pytest.raises(StoreUnavailable, match="is missing"):
        cairn.Client(home=home)


def test_an_empty_postgres_database_beside_objects_is_an_error(pg_url: str, tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    a_store(tmp_path / "old")
    shutil.copytree(tmp_path / "old" / "objects", objects)
    settings = Settings(store_uri=pg_url, objects_uri=str(objects))
    with pytest.raises(StoreUnavailable, match="has no Cairn tables") as caught:
        cairn.Client(settings=settings)
    assert "holds objects" in caught.value.message
    assert cli("db", "upgrade", "--store", pg_url).exit_code == 0
    with cairn.Client(settings=settings) as client:
        assert client.list_projects() == []


# -- backups ----------------------------------------------------------------------------------
def test_db_backup_copies_a_live_store_consistently(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a_store(home)
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:  # a writer of another connection, all along
        with cairn.Client(home=home) as client:
            run = client.get_project("p").get_experiment("e").list_runs()[0]
            i = 0
            while not stop.is_set():
                run.log_attribute("n", i)
                written.append(i)
                i += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(written) < 20:
            threading.Event().wait(0.01)
        result = cli("db", "backup", tmp_path / "copy.db", "--home", home)
    finally:
        stop.set()
        writer.join(30)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"backed up to {tmp_path / 'copy.db'} (")
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    # Restored as a home of its own (with the objects copied after it), it opens.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(tmp_path / "copy.db", restored / "cairn.db")
    shutil.copytree(home / "objects", restored / "objects")
    with cairn.Client(home=restored) as client:
        run = client.get_project("p").get_experiment("e").list_runs()[0]
        assert run.get_attribute("n") in written
        with run.open_artifact("weights") as stream:
            assert stream.read() == b"the weights"
    # A backup never overwrites.
    again = cli("db", "backup", tmp_path / "copy.db", "--home", home)
    assert again.exit_code == 1 and "exists" in again.stderr


def test_db_backup_of_a_postgres_store_names_pg_dump(pg_url: str) -> None:
    result = cli("db", "backup", "x.db", "--store", pg_url)
    assert result.exit_code == 1
    assert "pg_dump" in result.stderr
    with pytest.raises(InvalidArgument, match="pg_dump"):
        backup_store(Settings(store_uri=pg_url), "x.db")
    assert not os.path.exists("x.db")
