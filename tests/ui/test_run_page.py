"""The run page, in Chromium against a real server: overview, hyperparameters, metric
charts (plotly's SVG with the right number of traces; x axis, log scale, smoothing, several
metrics on one chart), attributes drawn, artifact previews, live update of a running run,
hostile names shown as text, and a chart of a million points drawn (timed)."""

from __future__ import annotations

import io
import json
import math
import struct
import time
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import cairn
from cairn.core.columns import SeriesPoints
from cairn.core.settings import Settings
from cairn.versioning import Hyperparameters
from tests.ui.conftest import HOSTILE, Seeded

CHARTS = "#charts .metric-chart"
MILLION = 1_000_000


def png(width: int, height: int) -> bytes:
    """A small real PNG (grey), made by hand: no imaging library needed."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class Mine:
    """This module's own runs, in a project of their own (the shared fill stays as it is)."""

    rich: str  # artifacts of every kind, attributes to draw, NaN points, a linked commit
    hostile: str  # hostile artifact names, contents and attribute keys
    million: str  # one metric of a million points
    client: cairn.Client


@pytest.fixture(scope="module")
def mine(ui_url: str, ui_data: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mine]:
    client = cairn.Client(settings=Settings(url=ui_url, capture="none"))
    client.set_project("run-page")
    client.set_experiment("pages")
    repo = client.set_repository("ingredients")
    commit = repo.get_commit(branch="main")
    commit.update("config/hp", Hyperparameters({"lr": 0.1}))
    first = commit.save("first")
    rich = client.start_run(
        "rich", hyperparameters={"lr": 0.1, "layers": 4}, tags=["t1"], capture="environment"
    )
    rich.log_commit(first, key_paths={"hp": "config/hp"})
    for step in range(50):
        rich.log_metrics({"loss": 1 / (1 + step), "lr": 0.1 * 0.9**step}, step=step)
    rich.log_metric("loss", math.nan, step=50)
    rich.log_attributes(
        {"curve": [1, 3, 2, 5, 4], "matrix": [[1, 2, 3], [4, 5, 6]], "meta": {"a": [1, "x"]}}
    )
    rich.log_artifact("notes.txt", b"hello from the run\n" * 3)
    rich.log_artifact("table.csv", b'name,score\nalpha,1\n"b,eta",2\n')
    rich.log_artifact("config.json", b'{"layers": 4, "names": ["a", "b"]}')
    rich.log_artifact("plots/tiny.png", io.BytesIO(png(8, 6)))
    rich.log_artifact("big.txt", b"0123456789" * 20_000)  # 200 kB: a bounded preview
    folder = tmp_path_factory.mktemp("checkpoint")
    (folder / "meta").mkdir()
    (folder / "weights.bin").write_bytes(b"\0" * 2048)
    (folder / "meta" / "info.json").write_bytes(b'{"epoch": 3}')
    rich.log_artifact("checkpoint", folder)
    rich.end()
    hostile = client.start_run(HOSTILE[0])
    hostile.log_artifact(f"{HOSTILE[1]}.txt", HOSTILE[0].encode())
    hostile.log_artifact("cells.csv", f"a,b\n{HOSTILE[1]},{HOSTILE[3]}\n".encode())
    hostile.log_attributes({HOSTILE[3]: [1, 2, 3]})
    hostile.end()
    big = client.start_run("million")
    n = MILLION
    values = array("d", (math.sin(i / 20_000) for i in range(n)))
    points = SeriesPoints(array("q", range(n)), array("q", range(1, n + 1)), values)
    client._backend.metrics.log_metric_batch({(big.id, "signal"): points})
    big.end()
    client.flush()
    yield Mine(rich.id, hostile.id, big.id, client)
    client.close()


def traces(page: Any, plot: Any) -> int:
    return int(plot.locator(".scatterlayer .trace").count())


def wait_charts(page: Any, count: int) -> Any:
    plots = page.locator(CHARTS)
    page.wait_for_function(
        "n => [...document.querySelectorAll('#charts .metric-chart')].filter("
        "d => d.querySelector('.main-svg')).length === n",
        arg=count,
    )
    assert plots.count() == count
    return plots


def test_overview_hyperparameters_and_charts(
    page: Any, ui_url: str, ui_data: Seeded, shot: Any
) -> None:
    run_id = ui_data.runs["run-01"]
    page.goto(f"{ui_url}/runs/{run_id}")
    assert page.locator("#run-name").inner_text() == "run-01"
    assert page.locator("#run-status").inner_text() == "finished"
    overview = page.locator("#overview").inner_text()
    assert run_id in overview and "resnet" in overview and "vision" in overview
    hyper = page.locator("#hyperparameters table").inner_text()
    assert "lr" in hyper and "0.03" in hyper and "r50" in hyper
    plots = wait_charts(page, 2)  # acc and loss, one chart each
    for i in range(2):
        assert traces(page, plots.nth(i)) == 1
    shot(page, "run")

    page.select_option("#chart-layout", "together")
    plots = wait_charts(page, 1)
    assert traces(page, plots.first) == 2
    page.check("#chart-log")
    page.wait_for_function(
        "() => document.querySelector('#charts .metric-chart')?.layout?.yaxis?.type === 'log'"
    )
    page.select_option("#chart-x", "time")
    page.wait_for_function(
        "() => document.querySelector('#charts .metric-chart')?.layout?.xaxis?.type === 'date'"
    )
    page.fill("#chart-smooth", "0.6")
    page.dispatch_event("#chart-smooth", "input")
    page.wait_for_function(
        "() => document.querySelectorAll('#charts .metric-chart .scatterlayer .trace').length === 4"
    )  # each metric raw (faint) and smoothed
    shot(page, "run-together-log-smoothed")


def test_parent_lists_children_and_children_their_parent(
    page: Any, ui_url: str, ui_data: Seeded
) -> None:
    page.goto(f"{ui_url}/runs/{ui_data.parent}")
    children = page.locator("#children a").all_inner_texts()
    assert sorted(children) == ["sweep-child-0", "sweep-child-1"]
    page.goto(f"{ui_url}/runs/{ui_data.children[0]}")
    assert "sweep-parent" in page.locator("#overview").inner_text()


def test_attributes_commit_nonfinite_and_previews(
    page: Any, ui_url: str, mine: Mine, shot: Any
) -> None:
    page.goto(f"{ui_url}/runs/{mine.rich}")
    overview = page.locator("#overview").inner_text()
    assert "ingredients" in page.locator("#commit").inner_text() and "config/hp" in overview
    captured = page.locator("#captured").inner_text()
    assert "environment/python" in captured and "requirements" in captured
    page.wait_for_function(
        "() => [...document.querySelectorAll('.attr-chart')].filter("
        "d => d.querySelector('.main-svg')).length === 2"
    )
    assert page.locator(".attr-chart").nth(0).locator(".scatterlayer .trace").count() == 1
    assert page.locator(".attr-chart").nth(1).locator(".heatmaplayer .hm").count() == 1
    assert '"a": [' in page.locator("#attributes").inner_text()  # pretty JSON
    wait_charts(page, 2)
    assert "NaN or infinite values are gaps" in page.locator("#charts").inner_text()

    def open_preview(name: str) -> Any:
        page.locator(f"button.preview[data-name='{name}']").click()
        body = page.locator("#preview-body")
        page.wait_for_function(
            "name => document.getElementById('preview-name').textContent === name "
            "&& document.getElementById('preview-body').childElementCount > 0",
            arg=name,
        )
        return body

    assert open_preview("notes.txt").inner_text() == "hello from the run\n" * 3
    cells = open_preview("table.csv").locator("tr")
    assert cells.count() == 3 and cells.nth(2).locator("td").first.inner_text() == "b,eta"
    assert json.loads(open_preview("config.json").inner_text()) == {
        "layers": 4,
        "names": ["a", "b"],
    }
    open_preview("big.txt")
    assert "first 65,536 of 200,000 bytes" in page.locator("#preview-note").inner_text()
    assert len(page.locator("#preview-body pre").inner_text()) == 65_536
    image = open_preview("plots/tiny.png").locator("img")
    page.wait_for_function("() => document.querySelector('#preview-body img')?.naturalWidth === 8")
    assert image.get_attribute("alt") == "plots/tiny.png"
    assert page.locator("#artifacts details summary", has_text="plots/").count() == 1
    tree = page.locator("#artifacts details summary", has_text="checkpoint/").inner_text()
    assert "a folder artifact of 2 files" in tree
    assert json.loads(open_preview("checkpoint/meta/info.json").inner_text()) == {"epoch": 3}
    download = page.locator("a.download[download='tiny.png']")
    assert download.count() == 1
    shot(page, "run-attributes-artifacts")


def test_live_update_shows_new_points_then_stops(
    page: Any, ui_url: str, mine: Mine, shot: Any
) -> None:
    client = mine.client
    run = client.start_run("live-h7")
    run.log_metric("loss", 1.0, step=0)
    run.flush()
    page.goto(f"{ui_url}/runs/{run.id}")
    assert page.locator("#live").count() == 1
    plots = wait_charts(page, 1)
    assert (
        page.evaluate("() => document.querySelector('#charts .metric-chart').data[0].x.length") == 1
    )
    run.log_metric("loss", 0.5, step=1)
    run.log_metric("acc", 0.7, step=1)  # a new key appears too
    run.flush()
    page.wait_for_function(
        "() => document.querySelectorAll('#charts .metric-chart').length === 2 && "
        "[...document.querySelectorAll('#charts .metric-chart')].some("
        "p => p.dataset.key === 'loss' && p.data && p.data[0].x.length === 2)",
        timeout=15_000,
    )
    assert plots.count() == 2
    row = page.locator("#latest-metrics tr[data-key='loss']")
    assert row.locator(".step").inner_text() == "1"
    shot(page, "run-live")
    run.end()
    page.wait_for_function("() => document.body.dataset.polling === 'stopped'", timeout=15_000)
    assert page.locator("#run-status").inner_text() == "finished"
    assert page.locator("#live").count() == 0


def test_a_million_point_chart_draws_fast(page: Any, ui_url: str, mine: Mine) -> None:
    page.goto(f"{ui_url}/runs/{mine.million}")  # once, so plotly.js is in the cache
    wait_charts(page, 1)
    started = time.perf_counter()
    page.reload()
    wait_charts(page, 1)
    took = time.perf_counter() - started
    drawn = page.evaluate("() => document.querySelector('#charts .metric-chart').data[0].x.length")
    assert drawn <= 2000
    assert "of 1,000,000 points drawn" in page.locator("#charts").inner_text()
    timing = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " const c = performance.getEntriesByType('resource').find(e => e.name.includes('/chart?'));"
        " return {html: n.responseEnd, dom: n.domContentLoadedEventEnd, chart: c && c.duration,"
        " chartStart: c && c.startTime}; }"
    )
    print(f"run page with a {MILLION:,}-point chart drawn in {took:.3f} s: {timing}")
    # ~0.7 s under a load average of 15 on 2 CPUs (docs/benchmarks.md); a loose bound here
    assert took < 6.0


def test_hostile_names_are_text(
    page: Any, ui_url: str, ui_data: Seeded, page_errors: Any, shot: Any
) -> None:
    page_errors.allow(r"/x\b")  # an <img src=x> that did load would 404: it must not exist
    page.goto(f"{ui_url}/runs/{ui_data.hostile_run}")
    assert page.locator("#run-name").inner_text() == HOSTILE[0]
    wait_charts(page, 1)
    assert page.locator("#charts figcaption").inner_text() == HOSTILE[1]
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("#hyperparameters").inner_text().count("<script>") >= 1
    shot(page, "run-hostile")


def test_hostile_artifacts_and_attributes_are_text(
    page: Any, ui_url: str, mine: Mine, page_errors: Any, shot: Any
) -> None:
    page_errors.allow(r"/x\b")
    page.goto(f"{ui_url}/runs/{mine.hostile}")
    buttons = page.locator("button.preview")
    assert buttons.count() == 2
    names = [buttons.nth(i).get_attribute("data-name") for i in range(2)]
    assert sorted(names) == sorted([f"{HOSTILE[1]}.txt", "cells.csv"])
    for i in range(2):
        buttons.nth(i).click()
        page.wait_for_function(
            "() => document.getElementById('preview-body').childElementCount > 0"
        )
        body = page.locator("#preview-body").inner_text()
        assert HOSTILE[0] in body or "<img src=x onerror" in body  # shown as text
    page.wait_for_function(
        "() => document.querySelector('.attr-chart')?.querySelector('.main-svg')"
    )
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img[src=x], #preview-body script, #preview-body b").count() == 0
    shot(page, "run-hostile-artifacts")


def test_missing_and_malformed_runs_are_error_pages(
    page: Any, ui_url: str, ui_data: Seeded, page_errors: Any
) -> None:
    page_errors.allow(r"status of (400|404)")
    response = page.goto(f"{ui_url}/runs/0190a5d2-0000-7000-8000-000000000000")
    assert response.status == 404
    response = page.goto(f"{ui_url}/runs/not-a-run")
    assert response.status in (400, 404)
