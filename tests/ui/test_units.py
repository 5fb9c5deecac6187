"""The UI's pieces without a browser: the table's URL state, query errors as boxes,
Markdown sanitizing, the API docs page's fallback, pages through the app (CSP, HTML
errors, outside the OpenAPI document)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from cairn.core.errors import InvalidArgument, QueryError
from cairn.core.query import Scope, parse_query
from cairn.core.settings import Settings
from cairn.server import create_app
from cairn.ui.markdown import plain_summary, render_markdown
from cairn.ui.queries import box_error
from cairn.ui.runs_table import RunsTable, TableState, parse_column


def test_table_state_round_trips_through_the_url() -> None:
    state = TableState(query="metrics.acc > 0.9", order="-metrics.acc", columns=("tags",))
    url = state.url("/runs", {"project": "p"}, cursor="abc")
    params = parse_qs(urlsplit(url).query)
    assert params == {
        "project": ["p"],
        "q": ["metrics.acc > 0.9"],
        "order": ["-metrics.acc"],
        "col": ["tags"],
        "cursor": ["abc"],
    }
    again = TableState.from_params({k: v[0] for k, v in params.items()}, params["col"])
    assert (again.query, again.order, again.columns, again.cursor) == (
        state.query,
        state.order,
        state.columns,
        "abc",
    )
    # Several columns in one parameter, duplicates once; a silly limit is bounded.
    many = TableState.from_params({"limit": "99999"}, ["metrics.a,tags", "metrics.a"])
    assert many.columns == ("metrics.a", "tags") and many.limit == 500
    assert TableState.from_params({"limit": "x"}, []).limit == 50


def test_clicking_a_column_cycles_its_order() -> None:
    table = RunsTable(TableState())
    first = table.sort_url("/e", "metrics.acc")
    assert parse_qs(urlsplit(first).query)["order"] == ["metrics.acc"]
    table = RunsTable(TableState(order="metrics.acc", cursor="c"))
    second = parse_qs(urlsplit(table.sort_url("/e", "metrics.acc")).query)
    assert second["order"] == ["-metrics.acc"] and "cursor" not in second
    table = RunsTable(TableState(order="-metrics.acc"))
    assert "order" not in parse_qs(urlsplit(table.sort_url("/e", "metrics.acc")).query)


def test_columns_parse() -> None:
    assert parse_column("params.lr") == parse_column("hyperparameters.lr")
    assert parse_column("tags") is not None
    assert parse_column("name") is None and parse_column("metrics.") is None


def test_query_error_box_points_at_the_mistake() -> None:
    query = "metrics.acc > and x"
    with pytest.raises(QueryError) as caught:
        parse_query(query, Scope.RUNS)
    box = box_error(caught.value, query)
    assert box.position == 14 and box.caret == " " * 14 + "^"
    assert "position" not in box.message and "\n" not in box.message
    other = box_error(InvalidArgument("cursor", "must be the next_cursor of a page"), query)
    assert other.position is None and other.caret == ""


def test_markdown_is_sanitized() -> None:
    html = str(
        render_markdown(
            "# Title\n\n<script>x()</script> [a](javascript:x()) [b](https://ok.example)"
            " ![i](https://img.example/i.png) <img src=x onerror=y()>"
        )
    )
    assert "<h3>Title</h3>" in html  # under the page's own headings
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html.replace("[a](javascript:x())", "")
    assert 'href="https://ok.example"' in html and "nofollow" in html
    assert "<img" not in html
    assert plain_summary("**bold** <b>x</b> & more", 100) == "bold <b>x</b> & more"
    assert plain_summary("word " * 100, 20).endswith("…")


@pytest.fixture
def app_client(tmp_path: Path) -> TestClient:
    # The Host allow-list takes loopback names; TestClient says "testserver" by default.
    return TestClient(create_app(Settings(home=str(tmp_path))), base_url="http://127.0.0.1")


def test_pages_through_the_app(app_client: TestClient) -> None:
    with app_client as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        missing = client.get("/projects/00000000-0000-7000-8000-000000000000")
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
        bad = client.get("/projects/not-an-id")
        assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]
        paths = client.get("/api/v1/openapi.json").json()["paths"]
        assert not [p for p in paths if not p.startswith("/api/v1/")]
        assert "/api/v1/docs" not in paths
        assert client.get("/static/cairn.css").status_code == 200


def test_api_docs_without_swagger_lists_operations(app_client: TestClient) -> None:
    from cairn.ui.apidocs import swagger_files

    with app_client as client:
        docs = client.get("/api/v1/docs")
        assert docs.status_code == 200
        if swagger_files() is None:  # the plain listing: every operation, no script
            assert "<script" not in docs.text
            assert "/api/v1/search/runs" in docs.text
            assert "cairn[ui]" in docs.text
        else:
            assert '<script src="/api/v1/docs/files/swagger-ui-bundle.js">' in docs.text
            bundle = client.get("/api/v1/docs/files/swagger-ui-bundle.js")
            assert bundle.status_code == 200
        assert client.get("/api/v1/docs/files/../../etc/passwd").status_code == 404


def test_api_docs_listing_without_the_package(tmp_path: Path) -> None:
    """The page a server without swagger-ui-bundle-v2 serves: every operation, no script."""
    from cairn.ui.apidocs import _listing

    document = create_app(Settings(home=str(tmp_path))).openapi()
    page = _listing(document)
    assert "<script" not in page and "cairn[ui]" in page
    for path in document["paths"]:
        assert f"<code>{path}</code>" in page
