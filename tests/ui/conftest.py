"""Browser tests of the web UI: Playwright (sync API) driving Debian's Chromium headless
against a real ``cairn server`` process on 127.0.0.1, filled through the HTTP client.

Fixtures (other page tests build on them; keep them stable):

- ``ui_url`` (session): the server's base URL, ``http://127.0.0.1:PORT``; one server per
  pytest worker, its home in the session's temporary folder.
- ``ui_client`` (session): ``cairn.Client(ui_url)``, to log more data in a test.
- ``ui_data`` (session): :class:`Seeded`, what the fill logged (ids and names): a project
  with a Markdown description, tags, attributes and an artifact; an experiment
  ``resnet`` with 24 finished runs (hyperparameters ``lr``, ``batch``, ``model``; metrics
  ``loss`` and ``acc`` over 20 steps; tags), one parent run with two children, one run
  still running; a second project ``tabular``; and the hostile strings of
  :data:`HOSTILE` as names, tags, descriptions, attributes and artifact keys.
- ``browser`` (session): the launched Chromium.
- ``page`` (function): a fresh page (own context, 1366x900) whose console errors and
  uncaught page errors fail the test when it ends; ``page_errors.allow(regex)`` excuses
  the expected ones (e.g. the 400 a bad query gets from the search route).
- ``shot`` (function): ``shot(page, "name")`` writes ``SHOTS/<name>.png``; the folder
  (``test-artifacts/ui/`` at the repository root) is printed at the end of the run.

Without Chromium (``/usr/bin/chromium``, or ``CAIRN_CHROMIUM``) the tests skip, except
under ``CI=true``, where they fail: ``scripts/chromium.sh`` installs it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.proxy import free_port

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "ui"  # named at the end of the run (tests/conftest.py)
CHROMIUM = os.environ.get("CAIRN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = (
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=1">',
    "javascript:window.__pwned=1",
    "{{ 7*7 }}<b>bold</b>",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ui: drives the web UI in Chromium (tests/ui)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.ui)


def _no_browser(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (the UI tests must run in CI: scripts/chromium.sh)", pytrace=False)
    pytest.skip(f"{reason}: run scripts/chromium.sh (as root) to install it")


# -- the server and its data ------------------------------------------------------------


@pytest.fixture(scope="session")
def ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("ui-home")
    port = free_port()
    log = home / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    command = [sys.executable, "-m", "cairn", "server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--home", str(home / "store"), "--log-level", "warning"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cairn server did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def ui_client(ui_url: str) -> Iterator[Any]:
    import cairn

    client = cairn.Client(ui_url)
    yield client
    client.close()


@dataclass
class Seeded:
    """What the fill logged, by name -> id."""

    project: str = ""  # "vision"
    other_project: str = ""  # "tabular"
    experiment: str = ""  # vision/resnet
    runs: dict[str, str] = field(default_factory=dict)  # run name -> id (resnet's)
    parent: str = ""  # the run with two children
    children: list[str] = field(default_factory=list)
    running: str = ""  # the run still running
    hostile_project: str = ""
    hostile_experiment: str = ""
    hostile_run: str = ""


DESCRIPTION = """# Vision models

Image classifiers for the **shop** catalogue. See [the wiki](https://example.org/wiki).

- trained nightly
- evaluated on `holdout-v3`

<script>window.__pwned=1</script>
<a href="javascript:window.__pwned=1">click</a>
"""


def _fill(client: Any) -> Seeded:
    seeded = Seeded()
    project = client.set_project(
        "vision", description=DESCRIPTION, tags=["prod", "images"], owner="ada"
    )
    project.log_attributes({"team": "perception", "budget": {"gpu_hours": 1200}})
    project.log_artifact("README.txt", b"the vision project\n")
    seeded.project = project.id
    experiment = client.set_experiment(
        "resnet", description="ResNet sweep over learning rates", tags=["sweep"], owner="ada"
    )
    experiment.log_attributes({"dataset": "shop-v3", "classes": 120})
    experiment.log_artifact("config.json", b'{"epochs": 20}')
    seeded.experiment = experiment.id
    for i in range(24):
        lr = [0.1, 0.03, 0.01, 0.003][i % 4]
        run = client.start_run(
            f"run-{i:02d}",
            tags=["baseline"] if i % 3 == 0 else [],
            hyperparameters={"lr": lr, "batch": 32 * (1 + i % 3), "model": ["r18", "r50"][i % 2]},
            capture="none",
        )
        for step in range(20):
            run.log_metrics(
                {"loss": 2.0 / (1 + step * lr * 10) + i / 100, "acc": i / 30}, step=step
            )
        run.end("failed" if i == 5 else "finished")
        seeded.runs[run.info.name] = run.id
    parent = client.start_run("sweep-parent", capture="none", hyperparameters={"lr": 0.05})
    seeded.parent = parent.id
    for j in range(2):
        child = client.start_run(
            f"sweep-child-{j}",
            parent=parent,
            capture="none",
            hyperparameters={"lr": 0.05 / (j + 2)},
        )
        child.log_metric("acc", 0.5 + j / 10, step=0)
        child.end()
        seeded.children.append(child.id)
        seeded.runs[child.info.name] = child.id
    parent.end()
    seeded.runs["sweep-parent"] = parent.id
    running = client.start_run("live-run", capture="none", hyperparameters={"lr": 0.2})
    running.log_metric("loss", 1.0, step=0)
    running.flush()
    seeded.running = running.id
    seeded.runs["live-run"] = running.id
    other = client.set_project("tabular", description="Gradient boosting on *tables*.")
    client.set_experiment("gbm")
    client.start_run("gbm-1", capture="none", hyperparameters={"depth": 6}).end()
    seeded.other_project = other.id
    # Hostile strings wherever a user can put text.
    bad = client.set_project(HOSTILE[0], description=HOSTILE[1], tags=list(HOSTILE))
    bad.log_attributes({h: h for h in HOSTILE})
    bad.log_artifact(HOSTILE[1], b"x")
    seeded.hostile_project = bad.id
    bad_experiment = client.set_experiment(HOSTILE[1], description=HOSTILE[0], tags=list(HOSTILE))
    bad_experiment.log_attributes({h: h for h in HOSTILE})
    seeded.hostile_experiment = bad_experiment.id
    bad_run = client.start_run(
        HOSTILE[0],
        description=HOSTILE[1],
        tags=list(HOSTILE),
        capture="none",
        hyperparameters={h[:40]: h for h in HOSTILE},
    )
    bad_run.log_metric(HOSTILE[1], 1.0, step=0)
    bad_run.log_attributes({h: h for h in HOSTILE})
    bad_run.end()
    seeded.hostile_run = bad_run.id
    client.flush()
    return seeded


@pytest.fixture(scope="session")
def ui_data(ui_client: Any) -> Seeded:
    return _fill(ui_client)


# -- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        _no_browser(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class PageErrors:
    """Console errors and uncaught exceptions a page reported."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self._allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self._allowed.append(re.compile(pattern))

    def add(self, text: str) -> None:
        self.found.append(text)

    def unexpected(self) -> list[str]:
        return [t for t in self.found if not any(p.search(t) for p in self._allowed)]


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser: Any, page_errors: PageErrors) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)

    def on_console(message: Any) -> None:
        if message.type == "error":
            page_errors.add(f"console: {message.text} ({message.location.get('url', '')})")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: page_errors.add(f"page error: {error}"))
    yield opened
    context.close()
    unexpected = page_errors.unexpected()
    if unexpected:
        pytest.fail("the page reported errors:\n" + "\n".join(unexpected), pytrace=False)


@pytest.fixture
def shot() -> Callable[[Any, str], Path]:
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str, *, full_page: bool = True) -> Path:
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
