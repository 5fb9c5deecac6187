"""The runs table in Chromium: search (and its inline error), sorting by a click, columns
remembered in the URL, keyset pages, selection for compare, runs across projects."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.ui.conftest import Seeded


def _names(page: Any) -> list[str]:
    names: list[str] = page.locator("#runs td.name a").all_inner_texts()
    return names


def test_search_filters(page: Any, ui_url: str, ui_data: Seeded, shot: Any) -> None:
    page.goto(f"{ui_url}/experiments/{ui_data.experiment}")
    page.fill("input[name=q]", "hyperparameters.lr = 0.1 and status = 'finished'")
    page.locator("#query-hint").filter(has_text="6 runs match").wait_for()
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=hyperparameters"))
    assert sorted(_names(page)) == [f"run-{i:02d}" for i in range(0, 24, 4)]
    assert page.locator("#runs-count").inner_text() == "6 runs"
    shot(page, "runs-search")


def test_search_error_shows_position(
    page: Any, ui_url: str, ui_data: Seeded, page_errors: Any, shot: Any
) -> None:
    page_errors.allow(r"status of 400")  # the live check's answer to the bad query
    page.goto(f"{ui_url}/experiments/{ui_data.experiment}")
    page.fill("input[name=q]", "metrics.acc > 'high'")
    box = page.locator("#query-error")
    box.wait_for(state="visible")
    caret = page.locator(".query-error-caret").inner_text().split("\n")
    assert caret[0] == "metrics.acc > 'high'"
    assert caret[1] == " " * 14 + "^"
    # Submitted anyway, the server renders the same error (no JavaScript needed).
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=metrics"))
    assert page.locator("#query-error").is_visible()
    assert page.locator(".query-error-caret").inner_text().split("\n")[1] == " " * 14 + "^"
    assert page.locator("#runs").count() == 0
    assert page.locator("#compare-button").count() == 0  # nothing to select
    shot(page, "runs-query-error")


def test_sort_by_clicking_a_column(page: Any, ui_url: str, ui_data: Seeded) -> None:
    page.goto(f"{ui_url}/experiments/{ui_data.experiment}?q=name like 'run-%'&col=metrics.acc")
    page.click("th a.sort[data-column='metrics.acc']")
    page.wait_for_url(re.compile(r"order=metrics.acc"))
    ascending = _names(page)
    assert ascending[:3] == ["run-00", "run-01", "run-02"]
    page.click("th a.sort[data-column='metrics.acc']")
    page.wait_for_url(re.compile(r"order=-metrics.acc"))
    assert _names(page)[:3] == ["run-23", "run-22", "run-21"]
    values = page.locator("#runs tbody td.num").all_inner_texts()
    assert values  # the duration and acc cells


def test_columns_chosen_and_kept_in_the_url(
    page: Any, ui_url: str, ui_data: Seeded, shot: Any
) -> None:
    page.goto(f"{ui_url}/experiments/{ui_data.experiment}")
    page.click("#column-picker summary")
    picker = page.locator("#column-picker input[type=checkbox]")
    for value in picker.evaluate_all("boxes => boxes.filter(b => b.checked).map(b => b.value)"):
        page.uncheck(f"#column-picker input[value='{value}']")
    page.check("#column-picker input[value='hyperparameters.model']")
    page.check("#column-picker input[value='metrics.loss']")
    shot(page, "runs-columns")
    page.click("#column-picker button[type=submit]")
    page.wait_for_url(re.compile(r"col="))
    query = parse_qs(urlsplit(page.url).query)
    assert query["col"] == ["hyperparameters.model", "metrics.loss"]
    headers = [h.strip() for h in page.locator("#runs thead th").all_inner_texts()]
    assert headers[-2:] == ["param.model", "metric.loss"]
    # Sorting keeps the columns.
    page.click("th a.sort[data-column='hyperparameters.model']")
    page.wait_for_url(re.compile(r"order=hyperparameters.model"))
    assert parse_qs(urlsplit(page.url).query)["col"] == ["hyperparameters.model", "metrics.loss"]


def test_keyset_pages(page: Any, ui_url: str, ui_data: Seeded) -> None:
    page.goto(f"{ui_url}/experiments/{ui_data.experiment}?flat=1&limit=10&q=name like 'run-%'")
    seen = _names(page)
    while page.locator("#next-page").count():
        page.click("#next-page")
        page.wait_for_load_state()
        assert "cursor=" in page.url
        seen += _names(page)
    assert sorted(seen) == [f"run-{i:02d}" for i in range(24)]
    assert len(seen) == 24


def test_select_runs_to_compare(page: Any, ui_url: str, ui_data: Seeded, page_errors: Any) -> None:
    page_errors.allow(r"status of 404")  # /compare may not be there yet
    page.goto(f"{ui_url}/experiments/{ui_data.experiment}")
    button = page.locator("#compare-button")
    assert button.is_disabled()
    first, second = ui_data.runs["run-01"], ui_data.runs["run-02"]
    page.check(f"#runs tr[data-run='{first}'] input[type=checkbox]")
    page.check(f"#runs tr[data-run='{second}'] input[type=checkbox]")
    assert page.locator("#selected-count").inner_text() == "2 selected"
    assert button.is_enabled()
    with page.expect_navigation():
        button.click()
    query = parse_qs(urlsplit(page.url).query)
    assert urlsplit(page.url).path == "/compare"
    assert set(query["runs"][0].split(",")) == {first, second}


def test_runs_across_projects(page: Any, ui_url: str, ui_data: Seeded, shot: Any) -> None:
    page.goto(f"{ui_url}/runs?q=" + "hyperparameters.depth = 6 or name = 'run-03'")
    assert sorted(_names(page)) == ["gbm-1", "run-03"]
    where = page.locator("#runs tbody tr td:nth-child(6)").all_inner_texts()
    assert sorted(where) == ["tabular / gbm", "vision / resnet"]
    shot(page, "runs-across-projects")
    page.goto(f"{ui_url}/runs?project={ui_data.other_project}")
    assert _names(page) == ["gbm-1"]


def test_missing_experiment_is_a_page(
    page: Any, ui_url: str, ui_data: Seeded, page_errors: Any
) -> None:
    page_errors.allow(r"status of 404")
    response = page.goto(f"{ui_url}/experiments/{'0' * 8}-0000-7000-8000-{'0' * 12}")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Error 404"
