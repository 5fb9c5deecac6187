"""A full disk under the metadata database is ``StorageFull`` (HTTP 507, not retried), and
writes work again once space is freed (issue 12).

On a real small file system: a tmpfs mounted for the test (we run as root here; where
mounting is not allowed the test skips). The same path is also driven by SQLite itself
refusing to grow the database (``PRAGMA max_page_count``: SQLITE_FULL, "database or disk is
full"), which needs no mount.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

import cairn
from cairn.core.errors import StorageFull, StoreUnavailable
from cairn.core.settings import Settings
from cairn.service import open_service
from tests.faults.conftest import tmpfs
from tests.servers import serve_in_thread

SMALL = "4m"  # the tmpfs: room for a new store and a few writes


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a tmpfs of its own, unmounted at the end."""
    with tmpfs(tmp_path / "small", SMALL) as mount:
        yield mount


def fill(folder: Path) -> Path:
    """A file that takes every byte left on ``folder``'s file system."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 16, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)
    assert os.statvfs(folder).f_bavail == 0
    return filler


def write_until_full(run: Any) -> StorageFull:
    """Attributes of 64 KiB until the store says the disk is full."""
    for i in range(1_000):
        try:
            run.log_attribute(f"blob{i}", "x" * 65_536)
        except StorageFull as exc:
            return exc
    pytest.fail("the store never filled the disk")


def check_full(error: StorageFull) -> None:
    assert error.code == "storage_full"
    assert not isinstance(error, StoreUnavailable)  # not retried
    assert "has no room left on its disk" in error.message
    assert "database or disk is full" in error.details["cause"]


def test_a_full_disk_under_the_embedded_store_is_storage_full_until_space_is_freed(
    small_disk: Path,
) -> None:
    home = small_disk / "home"
    with cairn.Client(home=home) as client:
        client.set_project("p")
        client.set_experiment("e")
        run = client.start_run("r")
        run.log_hyperparameter("lr", 0.1)
        filler = fill(small_disk)
        check_full(write_until_full(run))
        with pytest.raises(StorageFull):
            client.set_project("q")  # a new row: no room either
        assert run.get_hyperparameters()["lr"] == 0.1  # reads go on
        filler.unlink()
        client.set_project("q")  # room again: writes work
        run.log_attribute("after", "freed")
        assert run.get_attribute("after") == "freed"
    with cairn.Client(home=home) as client:  # and all of it is stored
        assert sorted(p.name for p in client.list_projects()) == ["p", "q"]


def test_over_http_a_full_metadata_disk_is_507_at_once_and_writes_resume(
    small_disk: Path,
) -> None:
    home = small_disk / "home"
    with cairn.Client(home=home) as client:
        client.set_project("p")
    with serve_in_thread(Settings(home=str(home))) as url:
        filler = fill(small_disk)
        answer = httpx.post(
            f"{url}/api/v1/projects", json={"name": "q", "description": "x" * 60_000}
        )
        assert answer.status_code == 507, answer.text
        assert "retry-after" not in answer.headers
        assert answer.json()["error"]["code"] == "storage_full"
        with cairn.Client(settings=Settings(url=url, retry_timeout=60)) as client:
            started = time.monotonic()
            with pytest.raises(StorageFull, match="no room left"):
                client.set_project("q", description="x" * 60_000)
            assert time.monotonic() - started < 5, "a full disk was retried"
            filler.unlink()
            client.set_project("q", description="x" * 60_000)
            assert sorted(p.name for p in client.list_projects()) == ["p", "q"]


def test_sqlite_refusing_to_grow_is_storage_full(tmp_path: Path) -> None:
    """SQLITE_FULL from SQLite itself (the database at its page limit), no mount needed."""
    service = open_service(Settings(home=str(tmp_path / "home")))
    try:
        engine = service.context.metadata.engine

        @event.listens_for(engine, "connect")
        def _limit(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count={pages + 2}")
            cursor.close()

        engine.dispose()  # new connections, with the limit
        project = service.entities.set_project("p")
        with pytest.raises(StorageFull) as caught:
            service.entities.set_project("q", description="x" * 60_000)
        check_full(caught.value)
        with pytest.raises(StorageFull):  # create_run's raw path too
            experiment = service.entities.set_experiment(project.id, "e")
            for i in range(1_000):
                service.entities.create_run(experiment.id, f"r{i}", description="y" * 2_000)
        event.remove(engine, "connect", _limit)
        engine.dispose()
        service.entities.set_project("q", description="x" * 60_000)  # room again
    finally:
        service.close()
