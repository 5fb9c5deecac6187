"""GET /runs/{id}/metrics/chart through a real server: a long series comes down to the
points asked, its extremes and non-finite values kept, and a short one comes whole."""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import cairn
from cairn.core.columns import SeriesPoints
from cairn.core.settings import Settings
from tests.servers import serve_in_thread


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with serve_in_thread(Settings(home=str(tmp_path / "home"))) as base:
        yield base


@pytest.fixture
def run(url: str) -> Iterator[cairn.Run]:
    client = cairn.Client(settings=Settings(url=url, capture="none"))
    client.set_project("charts")
    client.set_experiment("e")
    yield client.start_run("r")
    client.close()


def chart(url: str, run_id: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{url}/api/v1/runs/{run_id}/metrics/chart", params=params, timeout=30)


def log_series(run: cairn.Run, key: str, values: array[float], start_ms: int = 0) -> None:
    n = len(values)
    points = SeriesPoints(array("q", range(n)), array("q", range(start_ms, start_ms + n)), values)
    run._client._backend.metrics.log_metric_batch({(run.id, key): points})


def test_a_short_series_comes_whole_with_its_nonfinite_values_named(
    url: str, run: cairn.Run
) -> None:
    log_series(run, "loss", array("d", [1.0, math.nan, math.inf, -math.inf, 0.5]))
    body = chart(url, run.id, key="loss").json()
    assert body["total"] == 5 and body["x"] == "step"
    assert body["steps"] == [0, 1, 2, 3, 4]
    assert body["values"] == [1.0, None, None, None, 0.5]
    assert body["nonfinite"] == [[1, "nan"], [2, "inf"], [3, "-inf"]]


def test_a_million_points_come_down_fast_with_the_spike_kept(url: str, run: cairn.Run) -> None:
    n = 1_000_000
    values = array("d", (math.sin(i / 5000) for i in range(n)))
    values[400_000] = 99.0
    log_series(run, "acc", values, start_ms=1_700_000_000_000)
    for x in ("step", "time"):
        started = time.perf_counter()
        response = chart(url, run.id, key="acc", points=2000, x=x)
        took = time.perf_counter() - started
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == n and len(body["steps"]) <= 2000
        assert body["steps"][0] == 0 and body["steps"][-1] == n - 1
        assert 99.0 in body["values"] and 400_000 in body["steps"]
        # ~0.25 s on a quiet machine (benchmarks/ui_charts.py); loose: 2 CPUs, shared
        assert took < 5.0, f"{x}: {took:.3f} s"


def test_bad_requests_name_the_parameter(url: str, run: cairn.Run) -> None:
    assert chart(url, run.id, key="loss", points=3).status_code in (400, 422)
    assert chart(url, run.id, key="loss", x="epoch").status_code in (400, 422)
    missing = chart(url, "0190a5d2-0000-7000-8000-000000000000", key="loss")
    assert missing.status_code == 404
    # A key with no points is an empty chart, as its history is empty.
    assert chart(url, run.id, key="never").json()["total"] == 0
