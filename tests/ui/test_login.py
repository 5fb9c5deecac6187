"""The login page: a wrong password is said inline; the right one sets the server's
HttpOnly token cookie (unreadable by scripts) and goes on to the page asked for."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from cairn.ui.pages.login import safe_next
from tests.ui.conftest import Seeded


def test_login_page(page: Any, ui_url: str, ui_data: Seeded, page_errors: Any, shot: Any) -> None:
    command = [sys.executable, "-m", "cairn", "users", "create", "grace", "--password-stdin"]
    subprocess.run(
        [*command, "--url", ui_url],
        input=b"correct horse battery\n",
        check=True,
        capture_output=True,
        timeout=60,
    )
    page_errors.allow(r"status of 401")  # the wrong password's answer
    page.goto(f"{ui_url}/login?next=/runs")
    page.fill("input[name=username]", "grace")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    error = page.locator("#login-error")
    error.wait_for(state="visible")
    assert error.inner_text()
    shot(page, "login-error")
    page.fill("input[name=password]", "correct horse battery")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == f"{ui_url}/runs"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["cairn_token"]["httpOnly"]
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the token


def test_login_goes_only_to_this_server() -> None:
    assert safe_next("/runs?q=x") == "/runs?q=x"
    for target in (None, "", "https://evil.example/", "//evil.example/x", "/\\evil", "runs"):
        assert safe_next(target) == "/"
