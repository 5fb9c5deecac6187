"""The compare page, in Chromium against a real server: the side-by-side table highlights
the values that differ, overlaid curves have one line per run, the parallel coordinates one
line per run, the scatter one point per run; bad and hostile input is handled."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import HOSTILE, Seeded


def row(page: Any, label: str) -> Any:
    return page.locator(f"#compare-table tbody tr[data-label='{label}']")


def drawn(page: Any, plot_id: str) -> None:
    page.wait_for_function(
        "id => document.getElementById(id)?.dataset.drawn !== undefined "
        "&& document.getElementById(id).querySelector('.main-svg')",
        arg=plot_id,
    )


def traces(page: Any, plot_id: str) -> int:
    return int(page.locator(f"#{plot_id} .scatterlayer .trace").count())


def test_compare_highlights_differences_and_draws(
    page: Any, ui_url: str, ui_data: Seeded, shot: Any
) -> None:
    names = ["run-00", "run-04", "run-08"]  # the same lr and model, three batch sizes
    ids = ",".join(ui_data.runs[n] for n in names)
    page.goto(f"{ui_url}/compare?runs={ids}")
    heads = page.locator("#compare-table thead th.run-head").all_inner_texts()
    assert [h.strip() for h in heads] == names
    assert "differs" in (row(page, "batch").get_attribute("class") or "")
    assert row(page, "batch").locator("td").all_inner_texts() == ["32", "64", "96"]
    for same in ("lr", "model", "experiment", "status"):
        assert row(page, same).get_attribute("class") == "same", same
    assert "differs" in (row(page, "acc").get_attribute("class") or "")

    drawn(page, "curve-plot")
    assert traces(page, "curve-plot") == 3  # one line per run
    drawn(page, "parallel-plot")
    assert traces(page, "parallel-plot") == 3
    drawn(page, "scatter-plot")
    assert traces(page, "scatter-plot") == 1
    assert page.locator("#scatter-plot .scatterlayer .point").count() == 3
    shot(page, "compare")

    page.select_option("#curve-key", "acc")
    page.wait_for_function("() => document.getElementById('curve-plot').dataset.drawn === 'acc'")
    assert traces(page, "curve-plot") == 3
    page.select_option("#scatter-x", "hp:batch")
    page.select_option("#scatter-y", "metric:loss")
    page.wait_for_function(
        "() => document.getElementById('scatter-plot').dataset.drawn === 'hp:batch|metric:loss'"
    )
    xs = page.evaluate("() => document.getElementById('scatter-plot').data[0].x")
    assert xs == [32, 64, 96]

    page.check("#only-differences")
    assert not row(page, "lr").is_visible()
    assert row(page, "batch").is_visible()
    shot(page, "compare-only-differences")


def test_runs_without_a_metric_and_nested_runs(page: Any, ui_url: str, ui_data: Seeded) -> None:
    ids = ",".join([ui_data.parent, *ui_data.children])
    page.goto(f"{ui_url}/compare?runs={ids}")
    drawn(page, "curve-plot")
    assert traces(page, "curve-plot") == 2  # the parent logged no acc
    assert "1 of the runs have no acc" in page.locator("#curve-note").inner_text()


def test_bad_lists_are_error_pages(
    page: Any, ui_url: str, ui_data: Seeded, page_errors: Any
) -> None:
    page_errors.allow(r"status of (400|404)")
    response = page.goto(f"{ui_url}/compare?runs=not-an-id")
    assert response.status == 400
    assert "runs" in page.locator(".error-text").inner_text()
    missing = "0190a5d2-0000-7000-8000-000000000000"
    response = page.goto(f"{ui_url}/compare?runs={missing}")
    assert response.status == 404


def test_hostile_names_are_text(
    page: Any, ui_url: str, ui_data: Seeded, page_errors: Any, shot: Any
) -> None:
    page_errors.allow(r"/x\b")
    ids = f"{ui_data.hostile_run},{ui_data.runs['run-00']}"
    page.goto(f"{ui_url}/compare?runs={ids}")
    heads = page.locator("#compare-table thead th.run-head").all_inner_texts()
    assert heads[0].strip() == HOSTILE[0]
    drawn(page, "scatter-plot")
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0
    table = page.locator("#compare-table").inner_text()
    assert HOSTILE[1] in table
    shot(page, "compare-hostile")
