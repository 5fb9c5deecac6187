"""Fixtures of the service suite: a TrackingService on the store under test, with a clock
the test moves by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.core.settings import Settings
from cairn.service import TrackingService, open_service

START_MS = 1_700_000_000_000


class FakeClock:
    """Milliseconds that move only when the test says so."""

    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def tick(self, ms: int = 1000) -> int:
        self.now += ms
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return Settings(home=str(tmp_path / "home"), store_uri=store_url)


@pytest.fixture
def service(settings: Settings, clock: FakeClock) -> Iterator[TrackingService]:
    svc = open_service(settings, clock=clock)
    yield svc
    svc.close()
