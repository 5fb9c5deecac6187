"""The SQL path against the oracle: random runs stored through the real service (on
SQLite and on PostgreSQL), random query trees rendered to text; the runs found, their
count, their order and their pages must be the oracle's, on both databases."""

from __future__ import annotations

import itertools
import os
from typing import Any

from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from cairn.core.query import parse_order, parse_query
from cairn.service import TrackingService

from . import _oracle as oracle
from ._runs import (
    START_MS,
    Clock,
    RunPlan,
    context,
    load,
    orders,
    queries,
    render,
    render_order,
    run_plans,
    styles,
)

_projects = itertools.count()

_SETTINGS = settings(
    # CAIRN_SEARCH_EXAMPLES=2000 hunts longer (the suite keeps to 60 for time).
    max_examples=int(os.environ.get("CAIRN_SEARCH_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
    # No shrinking: an example is a store load (~0.1 s), shrinking one takes minutes; the
    # failing query's text is in the assertion.
    phases=[Phase.explicit, Phase.generate],
)


def _names(runs: list[oracle.OracleRun]) -> list[str]:
    return [r.name for r in runs]


@_SETTINGS
@given(plans=run_plans(), data=st.data())
def test_search_finds_what_the_oracle_finds(
    service: TrackingService, clock: Clock, plans: list[RunPlan], data: st.DataObject
) -> None:
    # A fresh project per example: the store is reused, its other runs are out of scope.
    # The clock starts over, so that a replayed example draws the same times.
    clock.now = START_MS
    loaded = load(service, clock, f"p{next(_projects)}", plans)
    ctx = context(service, clock)
    by_id = loaded.by_id()
    scope: dict[str, Any] = {"project_ids": [loaded.project_id]}
    for _ in range(4):
        tree = data.draw(queries(loaded.runs, loaded.start), label="tree")
        style = data.draw(styles, label="style")
        text = render(tree, style)
        parsed = parse_query(text)
        assert parsed == tree, f"{text!r} parses to another tree"
        include_deleted = data.draw(st.booleans(), label="include_deleted")

        expected = oracle.search(loaded.runs, parsed, [], ctx, include_deleted=include_deleted)
        page = service.search.find_runs(text, limit=1000, include_deleted=include_deleted, **scope)
        assert page.next_cursor is None
        got = [by_id[r.id] for r in page]
        assert sorted(_names(got)) == sorted(_names(expected)), text
        # No order: newest first, by id.
        assert [r.id for r in page] == [r.id for r in expected], text
        live = [r for r in loaded.runs if include_deleted or not r.deleted]
        event(f"matched: {_share(len(expected), len(live))}")
        count = service.search.count_runs(text, include_deleted=include_deleted, **scope)
        assert count == len(expected), text

        order = data.draw(orders, label="order")
        order_text = render_order(order, style)
        expected = oracle.search(
            loaded.runs, parsed, parse_order(order_text), ctx, include_deleted=include_deleted
        )
        page = service.search.find_runs(
            text, order_by=order_text, limit=1000, include_deleted=include_deleted, **scope
        )
        assert _names([by_id[r.id] for r in page]) == _names(expected), (text, order_text)

        limit = data.draw(st.integers(1, 3), label="limit")
        paged, pages = _page_through(service, text, order_text, limit, include_deleted, scope)
        assert _names([by_id[i] for i in paged]) == _names(expected), (text, order_text, limit)
        assert pages == max(1, -(-len(expected) // limit)), "no empty page at the end"


def _share(found: int, out_of: int) -> str:
    if out_of == 0:
        return "no runs"
    return "none" if found == 0 else "all" if found == out_of else "some"


def _page_through(
    service: TrackingService,
    text: str,
    order: list[str],
    limit: int,
    include_deleted: bool,
    scope: dict[str, Any],
) -> tuple[list[str], int]:
    found: list[str] = []
    cursor = None
    for pages in range(1, 100):
        page = service.search.find_runs(
            text,
            order_by=order,
            limit=limit,
            cursor=cursor,
            include_deleted=include_deleted,
            **scope,
        )
        found.extend(r.id for r in page)
        cursor = page.next_cursor
        if cursor is None:
            return found, pages
        assert len(page) == limit, "a page before the last is full"
    raise AssertionError("paging does not end")
