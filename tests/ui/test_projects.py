"""The projects page, in Chromium: the list, its counts and last activity, the search box."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import Seeded


def test_projects_list(page: Any, ui_url: str, ui_data: Seeded, shot: Any) -> None:
    page.goto(ui_url + "/")
    row = page.locator("#projects tbody tr", has_text="vision").first
    cells = row.locator("td")
    assert cells.nth(0).inner_text().startswith("vision")
    assert "prod" in cells.nth(1).inner_text()
    assert cells.nth(2).inner_text() == "1"  # experiments
    assert cells.nth(3).inner_text() == "28"  # 24 + parent + 2 children + the live run
    assert "ago" in cells.nth(4).inner_text()
    assert page.locator("link[rel=icon]").count() == 1
    shot(page, "projects")


def test_projects_search(page: Any, ui_url: str, ui_data: Seeded, shot: Any) -> None:
    page.goto(ui_url + "/?q=" + "tags contains 'prod'")
    names = page.locator("#projects a.name").all_inner_texts()
    assert names == ["vision"]


def test_projects_search_error_inline(
    page: Any, ui_url: str, ui_data: Seeded, page_errors: Any, shot: Any
) -> None:
    page_errors.allow(r"status of 400")  # the live check's answer to the bad query
    page.goto(ui_url + "/")
    page.fill("input[name=q]", "name = ")
    error = page.locator("#query-error")
    error.wait_for(state="visible")
    assert "but the query ends" in error.inner_text()
    caret = page.locator(".query-error-caret").inner_text().split("\n")
    assert caret[0] == "name = "
    assert caret[1] == " " * 7 + "^"
    shot(page, "projects-query-error")
    page.fill("input[name=q]", "owner = 'ada'")
    error.wait_for(state="hidden")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**q=owner*")
    assert page.locator("#projects a.name").all_inner_texts() == ["vision"]
