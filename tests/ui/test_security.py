"""Hostile strings stay text; pages carry a Content-Security-Policy; nothing is fetched
from anywhere but the server (the API docs page included); / without the ui extra."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cairn.ui.missing import install_placeholder
from tests.ui.conftest import HOSTILE, Seeded


def _pages(ui_data: Seeded) -> list[str]:
    return [
        "/",
        f"/projects/{ui_data.hostile_project}",
        f"/experiments/{ui_data.hostile_experiment}",
        f"/experiments/{ui_data.hostile_experiment}?col=tags&col=attributes.{HOSTILE[0][:8]}",
        "/runs?q=" + "tags contains '<script>window.__pwned=1</script>'",
        "/runs?q=" + 'name = \'"><img src=x onerror="window.__pwned=1">\' and',  # an error
        f"/projects/{ui_data.project}",
    ]


def test_hostile_strings_never_run(
    page: Any, ui_url: str, ui_data: Seeded, page_errors: Any, shot: Any
) -> None:
    page_errors.allow(r"status of 400")
    outside: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((ui_url, "data:")) else outside.append(r.url),
    )
    for number, path in enumerate(_pages(ui_data)):
        page.goto(ui_url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("img[src=x]").count() == 0, path
        assert page.locator("main script").count() == 0, path
        shot(page, f"hostile-{number}")
    assert outside == []  # the <img src=x> never became a request either
    page.goto(f"{ui_url}/projects/{ui_data.hostile_project}")
    text = page.locator("main").inner_text()
    for hostile in HOSTILE:
        assert hostile in text  # shown as written
    assert page.locator("h1").inner_text() == HOSTILE[0]


def test_pages_carry_a_content_security_policy(ui_url: str, ui_data: Seeded) -> None:
    for path in _pages(ui_data)[:3]:
        response = httpx.get(ui_url + path)
        policy = response.headers["content-security-policy"]
        assert (
            "script-src 'self'" in policy
            and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        )
        assert response.headers["content-type"].startswith("text/html")
    script = httpx.get(ui_url + "/static/plotly.min.js")
    assert script.status_code == 200 and len(script.content) > 1_000_000


def test_api_docs_page_works_offline(page: Any, ui_url: str, shot: Any) -> None:
    outside: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((ui_url, "data:")) else outside.append(r.url),
    )
    page.goto(ui_url + "/api/v1/docs")
    page.wait_for_load_state("networkidle")
    text = page.locator("body").inner_text()
    assert "/api/v1/search/runs" in text  # Swagger UI or the listing: every operation shows
    assert outside == []
    shot(page, "api-docs")


def test_root_explains_the_ui_extra_when_missing() -> None:
    app = FastAPI()
    install_placeholder(app, ["jinja2"])
    answer = TestClient(app).get("/")
    assert answer.status_code == 503
    assert (
        "pip install &#x27;cairn[ui]&#x27;" in answer.text
        or "pip install 'cairn[ui]'" in answer.text
    )
    assert "jinja2" in answer.text
