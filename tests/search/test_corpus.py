"""Every predicate over a fixed corpus of edge values, and its negation, against the
oracle (on SQLite and on PostgreSQL); then the same queries, orders and pages on both
databases at once, which must agree row for row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.core.query import Not, parse_query
from cairn.core.settings import Settings
from cairn.service import TrackingService, open_service

from . import _oracle as oracle
from ._runs import (
    START_MS,
    Clock,
    Loaded,
    context,
    corpus_leaves,
    corpus_plans,
    load,
    render,
)


def _found(service: TrackingService, loaded: Loaded, text: str, **kwargs: Any) -> list[str]:
    by_id = loaded.by_id()
    page = service.search.find_runs(text, project_ids=[loaded.project_id], limit=1000, **kwargs)
    assert page.next_cursor is None
    return [by_id[r.id].name for r in page]


def test_every_predicate_and_its_negation_finds_what_the_oracle_finds(
    service: TrackingService, clock: Clock
) -> None:
    loaded = load(service, clock, "corpus", corpus_plans())
    ctx = context(service, clock)
    wrong = []
    leaves = corpus_leaves(loaded.runs, loaded.start)
    for leaf in leaves:
        for node in (leaf, Not(leaf)):
            text = render(node)
            assert parse_query(text) == node, text
            expected = [r.name for r in oracle.search(loaded.runs, node, [], ctx)]
            got = _found(service, loaded, text)
            if sorted(got) != sorted(expected):
                wrong.append(f"{text}: got {sorted(got)}, expected {sorted(expected)}")
    assert not wrong, f"{len(wrong)} of {2 * len(leaves)} queries differ:\n" + "\n".join(wrong[:20])


PARITY_QUERIES = [
    "",
    "metrics.acc > 0.9 and (hyperparameters.a < 0.01 or tags contains 'best')",
    "status = 'finished' and hyperparameters.a in ('a', 'A', 1, true)",
    "name like 'bert-%' and not attributes.team = 'a' and duration < 3600",
    "not (metrics.loss >= 0.5 or params.b is null) or name ilike 'É%'",
    "attributes.team >= 0 or attributes.team < 'b' or attributes.team = false",
    "parent.id is not null and experiment.name != 'exp'",
    "hyperparameters.`x.y` > -1 and not hyperparameters.`x.y` ilike '%B%'",
    "end_time is null or status = 'crashed'",
]
PARITY_ORDERS = [
    [],
    ["-metrics.acc", "name"],
    ["metrics.loss"],
    ["hyperparameters.a"],
    ["-params.b"],
    ["-attributes.team", "-created_at"],
    ["name"],
    ["-status", "duration"],
    ["parent.id"],
    ["-end_time"],
    ["owner", "-experiment.name", "hyperparameters.`x.y`"],
]


@pytest.fixture
def both(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> Iterator[list[tuple[TrackingService, Loaded]]]:
    """The corpus stored in SQLite and in PostgreSQL, at the same times. Each run starts
    in its own millisecond: ids (UUIDv7) then sort in creation order in both stores, so
    ties broken by id break the same way."""
    plans = corpus_plans()
    for plan in plans:
        plan.tick = max(plan.tick, 1)
    opened = []
    try:
        for i, url in enumerate((sqlite_url, pg_url)):
            clock = Clock(START_MS)
            service = open_service(
                Settings(home=str(tmp_path / str(i)), store_uri=url), clock=clock
            )
            opened.append((service, load(service, clock, "corpus", plans)))
        yield opened
    finally:
        for service, _ in opened:
            service.close()


@pytest.mark.postgres
def test_sqlite_and_postgresql_agree(both: list[tuple[TrackingService, Loaded]]) -> None:
    """The same queries, orders and pages give the same runs in the same order."""
    leaves = corpus_leaves(both[0][1].runs, both[0][1].start)
    texts = PARITY_QUERIES + [render(node) for node in leaves[::7]]
    differ = []
    for text in texts:
        for order in PARITY_ORDERS if text in PARITY_QUERIES else [[]]:
            results = []
            for service, loaded in both:
                by_id = loaded.by_id()
                names: list[str] = []
                cursor = None
                while True:
                    page = service.search.find_runs(
                        text,
                        project_ids=[loaded.project_id],
                        order_by=order,
                        limit=7,
                        cursor=cursor,
                        include_deleted=True,
                    )
                    names.extend(by_id[r.id].name for r in page)
                    if (cursor := page.next_cursor) is None:
                        break
                results.append(names)
            if results[0] != results[1]:
                differ.append(f"{text!r} {order}: {results[0]} != {results[1]}")
    assert not differ, "\n".join(differ[:10])
