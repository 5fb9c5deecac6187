"""Fixtures of the search tests: a TrackingService on the store under test (SQLite and
PostgreSQL), with a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.core.settings import Settings
from cairn.service import TrackingService, open_service

from ._runs import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return Settings(home=str(tmp_path / "home"), store_uri=store_url)


@pytest.fixture
def service(settings: Settings, clock: Clock) -> Iterator[TrackingService]:
    svc = open_service(settings, clock=clock)
    yield svc
    svc.close()
