"""The parser under hostile input: only QueryError ever escapes, errors point at the
offending token with a caret and say what was expected; trees round-trip through text."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cairn
from cairn.core.errors import QueryError
from cairn.core.query import (
    MAX_DEPTH,
    MAX_QUERY_CHARS,
    Compare,
    Scope,
    parse_order,
    parse_query,
)
from cairn.service import TrackingService

from ._runs import queries, render, styles

# Pieces hostile queries are made of: the language's own tokens, SQL, quotes, escapes,
# unicode, and things a lexer or a driver may choke on.
TOKENS = [
    "metrics.acc",
    "hyperparameters.lr",
    "params.`a b`",
    "attributes.`x``y`",
    "tags",
    "name",
    "status",
    "created_at",
    "duration",
    "project.name",
    "parent.id",
    "commit.id",
    "dataset.version",
    "'0a1b2c3%'",
    "'" + "a" * 64 + "'",
    "foo",
    "metrics.",
    "metrics.`",
    ".",
    "`",
    "``",
    "=",
    "==",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not",
    "like",
    "ilike",
    "contains",
    "is",
    "null",
    "and",
    "or",
    "AND",
    "Or",
    "NOT",
    "true",
    "FALSE",
    "(",
    ")",
    ",",
    "-",
    "'",
    '"',
    "'x'",
    '"y"',
    "'\\'",
    "'\\\\'",
    "'%_'",
    "''",
    "'é'",
    "'\u212a'",
    "'\x00'",
    "0",
    "-1",
    "1e999",
    "1e-999",
    ".5",
    "9223372036854775808",
    "1" * 40,
    "0x10",
    "1_000",
    "nan",
    "inf",
    "2026-01-31",
    "2026-13-45",
    "2026-01-31T25:61:61Z",
    "0000-01-01",
    "9999-12-31T23:59:59.999999999+14:00",
    "'2026-02-30'",
    "'; drop table runs; --",
    "/*",
    "*/",
    "--",
    ";",
    "union select",
    "$1",
    "?",
    ":name",
    "%s",
    "\\",
    "\n",
    "\t",
    "\r",
    "\x00",
    "\ufeff",
    "\u202e",
    "\U0001d569",
    "😀",
    "\udcff"[:0],
    " ",
]


def _parses_or_query_error(text: str, scope: Scope = Scope.RUNS) -> None:
    try:
        parse_query(text, scope)
    except QueryError as error:
        _check_error(text, error)


def _check_error(text: str, error: QueryError) -> None:
    """A QueryError names the query, has a position in it, a list of what was expected,
    and a caret under the position in its message."""
    assert isinstance(error, cairn.InvalidArgument)
    assert error.field == "query"
    position = error.details["position"]
    assert isinstance(position, int) and 0 <= position <= len(text)
    assert isinstance(error.details["expected"], list)
    *_, line, caret = str(error).split("\n")
    column = caret.index("^")
    assert caret[:column].strip() == "", "the caret line holds only the caret"
    shown = line[column:]
    if line.lstrip().startswith("..."):  # a long query: a window around the position
        assert text[position:].replace("\n", " ").startswith(shown[:20])
    else:
        assert line[2:] == text[: position + 60].replace("\n", " "), "the query, as written"
        assert column - 2 == position, "the caret is under the position"


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_is_a_query_error(text: str) -> None:
    _parses_or_query_error(text)


@settings(max_examples=400, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(TOKENS), max_size=12),
    st.sampled_from(list(Scope)),
    st.sampled_from([" ", "", "  "]),
)
def test_token_soup_parses_or_is_a_query_error(tokens: list[str], scope: Scope, gap: str) -> None:
    _parses_or_query_error(gap.join(tokens), scope)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=4).map(" ".join) | st.text(max_size=20))
def test_order_keys_parse_or_are_query_errors(text: str) -> None:
    for keys in ([text], ["-" + text], [text, "name"]):
        try:
            parse_order(keys)
        except QueryError as error:
            assert error.field == "query"
            assert isinstance(error.details["position"], int)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.data())
def test_trees_round_trip_through_text(data: st.DataObject) -> None:
    tree = data.draw(queries([], 1_700_000_000_000, max_leaves=8))
    text = render(tree, data.draw(styles))
    assert parse_query(text) == tree, text


@pytest.mark.parametrize(
    "text",
    [
        "not " * (MAX_DEPTH + 5) + "name = 'a'",
        "(" * (MAX_DEPTH + 5) + "name = 'a'" + " and name = 'b')" * (MAX_DEPTH + 5),
        "(" * 5000 + "name = 'a'" + ")" * 5000,
        "(" * 5000 + "name = 'a'",
        ")" * 5000,
        "not (" * 2000 + "name = 'a'" + ")" * 2000,
        "name = 'a' or " * 1000 + "name = 'b'",
        "name in (" + ", ".join(["'x'"] * 3000) + ")",
    ],
    ids=["nots", "ands", "parens", "open", "close", "not-parens", "long-or", "long-in"],
)
def test_deep_and_long_queries_parse_or_are_query_errors(text: str) -> None:
    assert len(text) <= MAX_QUERY_CHARS
    _parses_or_query_error(text)


def test_nesting_beyond_the_limit_is_an_error_saying_so() -> None:
    inside = "not " * MAX_DEPTH + "name = 'a'"
    parse_query(inside)
    with pytest.raises(QueryError, match=f"nested deeper than {MAX_DEPTH}") as caught:
        parse_query("not " + inside)
    _check_error("not " + inside, caught.value)
    # Parentheses around a single term add no level.
    parse_query("(" * 1000 + "name = 'a'" + ")" * 1000)


@pytest.mark.parametrize("extra", [1, 10_000])
def test_a_query_longer_than_the_limit_is_an_error(extra: int) -> None:
    text = "name = '" + "x" * (MAX_QUERY_CHARS + extra) + "'"
    with pytest.raises(QueryError, match=str(MAX_QUERY_CHARS)) as caught:
        parse_query(text)
    assert caught.value.details["position"] == MAX_QUERY_CHARS
    assert len(str(caught.value)) < 1000, "the message shows a window, not the query"


def test_a_number_too_long_for_python_is_a_query_error() -> None:
    _parses_or_query_error("metrics.acc > " + "1" * 5000)


# (query, position, some of what is expected)
ERRORS = [
    ("name =", 6, {"a 'string'", "a number"}),
    ("name = 'a' and", 14, {"a field", "not", "'('"}),
    ("(name = 'a'", 11, {"')'"}),
    ("name = 'a')", 10, {"the end"}),
    ("name = 'unterminated", 7, {"a 'string'"}),
    ("metrics.acc >> 1", 13, {"a number"}),
    ("metrics.acc > 0.9 metrics.loss < 1", 18, {"and", "or"}),
    ("name = 'a' or or", 16, {"a comparison (= != < <= > >=)", "is", "in"}),
    ("not", 3, {"a field"}),
    ("name in ()", 9, {"a 'string'"}),
    ("'; drop table runs; --", 0, {"a field"}),
    ("name = ''; drop table runs; --'", 9, {"and", "or"}),
    ("metrics = 1", 0, {"metrics.KEY"}),
    ("metrics.acc > 'x'", 14, {"a number"}),
    ("duration < true", 11, {"a number"}),
    ("name = 1", 7, {"a 'string'"}),
    ("tags contains 1", 14, {"a 'string'"}),
    ("status = 'done'", 9, {"running", "finished", "failed", "killed", "crashed"}),
    ("name = null", 7, {"is null"}),
    ("created_at > 'yesterday'", 13, {"a date or time"}),
    ("metrics.acc > 1 and created_at < 2026-02-30", 33, {"a date or time"}),
    ("name = 'a' é", 11, {"and", "or"}),
    ("hyperparameters.lr < true", 19, set()),
    ("tags = 'x'", 5, set()),
    ("metrics.acc like 'a'", 12, set()),
    ("hyperparameters.`` = 1", 16, set()),
    ("dataset.version = '0a1b2c3'", 18, {"a version id"}),  # a prefix: like '0a1b2c3%'
    ("dataset.version = '" + "A" * 64 + "'", 18, {"a version id"}),
    ("dataset.version in ('" + "a" * 64 + "', 7)", 88, {"a version id"}),
    ("dataset.version = 2026-01-31", 18, {"a version id"}),
    ("dataset.version > '" + "a" * 64 + "'", 16, set()),
    ("dataset.version contains 'x'", 16, set()),
    ("dataset.versions = 'x'", 0, {"dataset.version"}),
]


@pytest.mark.parametrize(("text", "position", "expected"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_point_at_the_problem(text: str, position: int, expected: set[str]) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    error = caught.value
    assert error.details["position"] == position, str(error)
    assert expected <= set(error.details["expected"]), str(error)
    _check_error(text, error)
    assert f"at position {position}" in str(error)


def test_an_unknown_field_lists_the_valid_ones() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("metrics.acc > 1 and accuracy > 0.9")
    error = caught.value
    assert error.details["position"] == 20
    valid = set(error.details["expected"])
    assert {"metrics.KEY", "hyperparameters.KEY", "params.KEY", "attributes.KEY"} <= valid
    assert {"name", "status", "tags", "duration", "project.name", "commit.id"} <= valid
    assert "dataset.version" in valid
    for name in valid:
        assert name in str(error)
    assert "'accuracy'" in str(error)
    # Each entity lists its own fields.
    with pytest.raises(QueryError) as caught:
        parse_query("metrics.acc > 1", Scope.PROJECTS)
    assert "metrics.KEY" not in caught.value.details["expected"]
    assert "attributes.KEY" in caught.value.details["expected"]
    with pytest.raises(QueryError) as caught:
        parse_query("project.nmae = 'x'", Scope.EXPERIMENTS)
    assert "project.name" in caught.value.details["expected"]


@pytest.mark.parametrize(
    "text",
    [
        "name = '; drop table runs; --'",
        'name = "\' or 1=1 --"',
        "hyperparameters.`x'); drop table runs; --` = 1",
        "name like '%'' or ''1''=''1'",
    ],
)
def test_sql_in_values_is_only_a_value(service: TrackingService, text: str) -> None:
    experiment = service.entities.set_experiment(service.entities.set_project("p").id, "e")
    service.entities.create_run(experiment.id, "r")
    try:
        found = service.search.find_runs(text)
    except QueryError as error:
        _check_error(text, error)
        return
    assert list(found) == []
    assert service.search.count_runs("") == 1, "the runs are still there"


def test_keywords_and_odd_keys_as_keys() -> None:
    tree = parse_query("hyperparameters.in = 1 and metrics.and > 0 and params.`a``b c` = 'x'")
    assert tree is not None
    keys = [item.field.key for item in tree.items if isinstance(item, Compare)]  # type: ignore[union-attr]
    assert keys == ["in", "and", "a`b c"]


# Tokens that need a database of their own kind (NUL, huge numbers) have their own tests.
_SERVICE_TOKENS = [
    t for t in TOKENS if "\x00" not in t and t not in ("'\\0'", "1" * 40, "9223372036854775808")
]


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    tokens=st.lists(st.sampled_from(_SERVICE_TOKENS), max_size=10),
    order=st.lists(
        st.sampled_from(
            ["name", "-metrics.acc", "params.lr", "-duration", "attributes.x", "tags", "foo", "-"]
        ),
        max_size=2,
    ),
)
def test_the_service_answers_hostile_queries_with_results_or_invalid_argument(
    service: TrackingService, tokens: list[str], order: list[str]
) -> None:
    text = " ".join(tokens)
    try:
        service.search.find_runs(text, order_by=order, limit=5)
        service.search.count_runs(text)
    except cairn.InvalidArgument as error:
        assert error.field in ("query", "order_by"), error
