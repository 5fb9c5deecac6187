"""The project and experiment pages and the runs table, in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.ui.conftest import Seeded


def test_project_page(page: Any, ui_url: str, ui_data: Seeded, shot: Any) -> None:
    page.goto(f"{ui_url}/projects/{ui_data.project}")
    assert page.locator("h1").inner_text() == "vision"
    description = page.locator("#description")
    assert description.locator("h3").inner_text() == "Vision models"
    assert description.locator("strong").inner_text() == "shop"
    link = description.locator("a")
    assert link.get_attribute("href") == "https://example.org/wiki"
    assert "nofollow" in (link.get_attribute("rel") or "")
    assert "<script>" in description.inner_text()  # shown as text, not run
    assert page.locator("#experiments a.name").all_inner_texts() == ["resnet"]
    assert "perception" in page.locator("#attributes").inner_text()
    assert "README.txt" in page.locator("#artifacts").inner_text()
    with page.expect_download() as downloading:
        page.click("#artifacts a[download]")
    saved = downloading.value.path()
    assert Path(saved).read_bytes() == b"the vision project\n"
    shot(page, "project")


def test_experiment_page_and_runs_table(page: Any, ui_url: str, ui_data: Seeded, shot: Any) -> None:
    page.goto(f"{ui_url}/experiments/{ui_data.experiment}")
    assert page.locator("h1").inner_text() == "resnet"
    assert "shop-v3" in page.locator("#attributes").inner_text()
    assert "config.json" in page.locator("#artifacts").inner_text()
    rows = page.locator("#runs tbody tr")
    # 26 top-level runs (24 + the parent + the live one): a page of 50, children nested.
    assert page.locator("#runs tbody tr:not(.child)").count() == 26
    parent = page.locator(f"#runs tr[data-run='{ui_data.parent}']")
    nxt = parent.locator("xpath=following-sibling::tr[1]")
    assert "child" in (nxt.get_attribute("class") or "")
    assert rows.count() == 28
    live = page.locator(f"#runs tr[data-run='{ui_data.running}']")
    assert live.locator(".status").inner_text() == "running"
    header = page.locator("#runs thead").inner_text()
    assert "lr" in header and "acc" in header and "loss" in header
    shot(page, "experiment")


def test_laptop_and_wide_widths(browser: Any, ui_url: str, ui_data: Seeded, shot: Any) -> None:
    """No page scrolls sideways at a laptop's width (a wide table scrolls in its own box),
    and wide screens use the room."""
    for width, height in ((1280, 800), (1920, 1080)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        for name, path in (
            ("projects", "/"),
            ("project", f"/projects/{ui_data.project}"),
            ("experiment", f"/experiments/{ui_data.experiment}"),
        ):
            page.goto(ui_url + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} at {width}px is {overflow}px too wide"
            shot(page, f"{name}-{width}", full_page=False)
        main_width = page.evaluate("document.querySelector('main').clientWidth")
        assert main_width > (1400 if width == 1920 else 1100)
        context.close()
