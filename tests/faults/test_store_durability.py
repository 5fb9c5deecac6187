"""Durability is a stated choice (issue 12): ``sqlite_synchronous`` (``normal`` | ``full``)
sets SQLite's ``synchronous`` pragma on every connection of the embedded store."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.core.errors import InvalidArgument
from cairn.core.settings import Settings, settings_from
from cairn.service import open_service

PRAGMA = {"normal": 1, "full": 2}  # what PRAGMA synchronous reads back


@pytest.mark.parametrize("choice", ["normal", "full"])
def test_the_setting_is_the_pragma_of_every_connection(tmp_path: Path, choice: str) -> None:
    settings = settings_from({"CAIRN_SQLITE_SYNCHRONOUS": choice.upper()}, home=str(tmp_path))
    assert settings.sqlite_synchronous == choice
    service = open_service(settings)
    try:
        metadata = service.context.metadata
        with metadata.write() as tx:
            assert tx.conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == PRAGMA[choice]
            assert tx.conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        with metadata.run_writer() as writer:  # the raw path's connection too
            writer._cursor.execute("PRAGMA synchronous")
            assert writer._cursor.fetchone()[0] == PRAGMA[choice]
    finally:
        service.close()


def test_the_default_is_normal_and_other_values_are_refused() -> None:
    assert Settings().sqlite_synchronous == "normal"
    assert settings_from({}).sqlite_synchronous == "normal"
    with pytest.raises(InvalidArgument, match=r"CAIRN_SQLITE_SYNCHRONOUS.*normal, full"):
        settings_from({"CAIRN_SQLITE_SYNCHRONOUS": "off"})
