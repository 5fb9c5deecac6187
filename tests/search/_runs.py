"""Runs and queries for the search tests: plans of runs stored through the real service
(and mirrored as :class:`OracleRun`), query trees drawn at random and rendered to text."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from cairn.core.model import MetricRecord, RunStatus
from cairn.core.query import (
    And,
    Compare,
    Field,
    FieldKind,
    IsNull,
    Node,
    Not,
    Or,
    OrderKey,
)
from cairn.service import TrackingService

from ._oracle import Context, OracleRun

# Cases of bugs found and fixed (each has its own test); drawn too, so the differential
# test keeps covering them (False leaves them out while hunting another bug).
INFINITE_METRICS = True  # test_paging_past_an_infinite_metric
HUGE_INT_LITERALS = True  # test_an_int_literal_beyond_64_bits_is_no_error
BIG_INT_METRIC_LITERALS = True  # test_a_metric_compares_with_a_big_int_the_same_on_both

START_MS = 1_700_000_000_000


class Clock:
    """Milliseconds that move only when the test says so."""

    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def tick(self, ms: int = 1000) -> int:
        self.now += ms
        return self.now


# -- pools of values, with the edges the semantics name -------------------------------
HP_KEYS = ["a", "b", "lr rate", "x.y"]  # the last two need backticks
METRIC_KEYS = ["acc", "loss", "m/1"]
ATTR_KEYS = ["team", "n", "odd`key"]
TAGS = ["best", "Best", "prod", "x%", "a_b", "é"]
STRINGS = [
    "",
    "a",
    "A",
    "ab",
    "AB",
    "aB",
    "abc",
    "b",
    "z",
    "é",
    "É",
    "ß",
    "SS",
    "x%y",
    "x_y",
    "xay",
    "x\\y",
    "x\\%y",
    "100%",
    "it's",
    'say "hi"',
    "日本",
    "a b",
    "bert-1",
    "BERT-1",
    "\u212a",  # KELVIN SIGN: Unicode lowers it to 'k', ASCII folding does not
    "k",
    "line\nbreak",
    "tab\there",
]
# dataset.version: ids (two share a 7-character prefix), and the tags that hold them, with
# look-alikes that are not version tags (another case of the prefix) and an empty id
_V = ["0a1b2c3" + "4" * 57, "0a1b2c3" + "5" * 57, "f" * 64]
VERSIONS = [*_V, "e" * 64]  # the last one no run logs
VERSION_TAGS = [
    *(f"dataset-version:{v}" for v in _V),
    f"Dataset-Version:{_V[2]}",
    "dataset-version:",
]
VERSION_PATTERNS = [
    "0a1b2c3%",
    "0A1B2C3%",
    "0a1b2c34%",
    "%",
    "_",
    "f%",
    "%4",
    "%5%",
    "",
    _V[0],
    _V[2].upper(),
]
NAMES = ["bert-1", "bert-2", "BERT-3", "gpt", "x%y", "xay", "a_b", "é", "É", "\u212a", "k"]
OWNERS = ["", "ann", "Ann", "bob"]
INTS = [
    0,
    1,
    -1,
    2,
    3,
    10,
    -10,
    2**31,
    2**53 - 1,
    2**53,
    2**53 + 1,
    2**62,
    2**63 - 1,
    -(2**63),
    -(2**53) - 1,
]
FLOATS = [0.0, -0.0, 0.5, 1.0, 2.0, -1.5, 0.9, 1e-9, 2.0**53, 1e300, math.inf, -math.inf, math.nan]
PATTERNS = [
    "%",
    "_",
    "",
    "a%",
    "A%",
    "%b%",
    "%B%",
    "_b",
    "x\\%y",
    "x\\_y",
    "x%y",
    "x_y",
    "%\\\\%",
    "é%",
    "É%",
    "%ß%",
    "bert-%",
    "BERT-_",
    "%'%",
    "\u212a%",
    "k%",
    "[a]%",
    "*",
    "%?%",
]
FATES = ["running", "stale", "finished", "failed", "killed"]

_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=3
)
_name_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=3
)
strings = st.one_of(st.sampled_from(STRINGS), _text)
ints = st.one_of(st.sampled_from(INTS), st.integers(-(2**63), 2**63 - 1))
floats = st.one_of(st.sampled_from(FLOATS), st.floats())
hyperparameter_values = st.one_of(ints, floats, strings, st.booleans())
metric_values = st.one_of(st.sampled_from(FLOATS), st.floats(-10, 10)).filter(
    lambda v: INFINITE_METRICS or not math.isinf(v)
)
attribute_values = st.one_of(
    ints,
    st.sampled_from([2**63, 2**63 + 1, 2**64, -(2**64) - 5]),
    floats,
    strings,
    st.booleans(),
    st.none(),
    st.sampled_from([[1, 2], [], {"a": 1}, ["x"]]),
)


# -- a plan of runs -------------------------------------------------------------------
@dataclass
class RunPlan:
    name: str
    experiment: int  # 0 or 1
    owner: str
    parent: int | None  # index of an earlier run
    hyperparameters: dict[str, Any]
    metrics: dict[str, list[float]]  # points at steps 0, 1, ...: the last one is latest
    tags: list[str]
    attributes: dict[str, Any]
    fate: str
    deleted: bool
    tick: int  # ms the clock moves before the run starts
    version_tags: list[str] = field(default_factory=list)  # from VERSION_TAGS; tags too


@st.composite
def _some(draw: st.DrawFn, keys: Sequence[str], values: st.SearchStrategy[Any]) -> dict[str, Any]:
    """Each key present four times in five: most runs share keys, so queries match some."""
    return {k: draw(values) for k in keys if draw(st.integers(0, 4))}


@st.composite
def run_plans(draw: st.DrawFn, max_runs: int = 8) -> list[RunPlan]:
    count = draw(st.integers(2, max_runs))
    names = draw(
        st.lists(
            st.one_of(st.sampled_from(NAMES), _name_text),
            unique=True,
            min_size=count,
            max_size=count,
        )
    )
    plans = []
    for i, name in enumerate(names):
        plans.append(
            RunPlan(
                name=name,
                experiment=draw(st.integers(0, 1)),
                owner=draw(st.sampled_from(OWNERS)),
                parent=draw(st.none() | st.integers(0, i - 1)) if i else None,
                hyperparameters=draw(_some(HP_KEYS, hyperparameter_values)),
                metrics=draw(_some(METRIC_KEYS, st.lists(metric_values, min_size=1, max_size=2))),
                tags=draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=3)),
                attributes=draw(_some(ATTR_KEYS, attribute_values)),
                fate=draw(st.sampled_from(FATES)),
                deleted=draw(st.sampled_from([False, False, False, True])),
                tick=draw(st.sampled_from([0, 1, 7, 500, 1500])),
                version_tags=draw(st.lists(st.sampled_from(VERSION_TAGS), unique=True, max_size=2)),
            )
        )
    return plans


EXPERIMENTS = ("exp", "Exp-2")


@dataclass
class Loaded:
    project_id: str
    project_name: str
    runs: list[OracleRun] = field(default_factory=list)
    start: int = 0  # ms, when the first run could start

    def by_id(self) -> dict[str, OracleRun]:
        return {r.id: r for r in self.runs}


def load(service: TrackingService, clock: Clock, project: str, plans: Sequence[RunPlan]) -> Loaded:
    """Store the plan through the service; the oracle's copy of what was stored."""
    entities, labels = service.entities, service.labels
    p = entities.set_project(project)
    experiments = [entities.set_experiment(p.id, name) for name in EXPERIMENTS]
    loaded = Loaded(p.id, project, start=clock.now)
    ids: list[str] = []
    for plan in plans:
        clock.tick(plan.tick)
        run = entities.create_run(
            experiments[plan.experiment].id,
            plan.name,
            owner=plan.owner,
            parent_id=ids[plan.parent] if plan.parent is not None else None,
            tags=[*plan.tags, *plan.version_tags],
        )
        ids.append(run.id)
        if plan.hyperparameters:
            labels.log_hyperparameters(run.id, plan.hyperparameters)
        records = [
            MetricRecord(run.id, key, step, clock.now, value)
            for key, values in plan.metrics.items()
            for step, value in enumerate(values)
        ]
        if records:
            service.metrics.log_metric_records(records)
        if plan.attributes:
            labels.set_attributes(run.id, plan.attributes)
    # Past the heartbeat timeout: runs not heard of since read as crashed.
    clock.tick(int(service.settings.heartbeat_timeout * 1000) + 1000)
    for run_id, plan in zip(ids, plans, strict=True):
        clock.tick(3)
        if plan.fate == "running":
            entities.heartbeat([run_id])
        elif plan.fate != "stale":
            entities.end_run(run_id, plan.fate)
        if plan.deleted:
            entities.delete_run(run_id)
    for run_id, plan in zip(ids, plans, strict=True):
        info = entities.get_run(run_id)
        loaded.runs.append(
            OracleRun(
                id=info.id,
                name=info.name,
                status="running" if info.status is RunStatus.CRASHED else info.status.value,
                heartbeat_at=info.heartbeat_at,
                start_time=info.start_time,
                end_time=info.end_time,
                created_at=info.created_at,
                updated_at=info.updated_at,
                project_id=p.id,
                project_name=project,
                experiment_id=experiments[plan.experiment].id,
                experiment_name=EXPERIMENTS[plan.experiment],
                owner=plan.owner,
                description=info.description,
                parent_id=info.parent_id,
                deleted=plan.deleted,
                hyperparameters=dict(plan.hyperparameters),
                metrics={k: v[-1] for k, v in plan.metrics.items()},
                tags={*plan.tags, *plan.version_tags},
                attributes=dict(plan.attributes),
            )
        )
    return loaded


def context(service: TrackingService, clock: Clock) -> Context:
    return Context(clock.now, int(service.settings.heartbeat_timeout * 1000))


# -- queries --------------------------------------------------------------------------
def _metric(key: str) -> Field:
    return Field("metrics", FieldKind.METRIC, key)


def _hp(key: str) -> Field:
    return Field("hyperparameters", FieldKind.HYPERPARAMETER, key)


def _attr(key: str) -> Field:
    return Field("attributes", FieldKind.ATTRIBUTE, key)


TEXT_FIELDS = [
    "name",
    "owner",
    "description",
    "experiment.name",
    "project.name",
    "parent.id",
    "commit.id",
    "id",
]
TIME_FIELDS = ["created_at", "start_time", "end_time", "updated_at"]
ORDERED_OPS = ["=", "!=", "<", "<=", ">", ">="]
MAX_INT64 = 2**63 - 1

_literal_ints = st.one_of(st.sampled_from(INTS), st.integers(-(2**63), MAX_INT64)).map(int)
_literal_floats = st.one_of(
    st.sampled_from([f for f in FLOATS if not math.isnan(f)]), st.floats(allow_nan=False)
)


def _huge(value: int | float) -> bool:
    return isinstance(value, int) and not -(2**63) <= value <= MAX_INT64


def numbers(metric: bool = False) -> st.SearchStrategy[int | float]:
    found = st.one_of(_literal_ints, _literal_floats, st.sampled_from([2**64, -(2**70)]))
    if not HUGE_INT_LITERALS:
        found = found.filter(lambda v: not _huge(v))
    if metric and not BIG_INT_METRIC_LITERALS:
        found = found.filter(lambda v: not isinstance(v, int) or abs(v) <= 2**53)
    return found


def _compares(
    f: Field, values: st.SearchStrategy[Any], ops: Sequence[str]
) -> st.SearchStrategy[Node]:
    @st.composite
    def draw_one(draw: st.DrawFn) -> Node:
        op = draw(st.sampled_from([*ops, "in"]))
        if op == "in":
            return Compare(f, "in", tuple(draw(st.lists(values, min_size=1, max_size=3))))
        value = draw(values)
        if isinstance(value, bool) and op not in ("=", "!="):
            op = "="
        return Compare(f, op, value)

    return draw_one()


def _literal(value: Any) -> bool:
    """Whether a stored value can be written as a literal of the language."""
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return HUGE_INT_LITERALS or not _huge(value)
    return isinstance(value, (str, bool))


def _or_seen(base: st.SearchStrategy[Any], seen: Sequence[Any]) -> st.SearchStrategy[Any]:
    """Values from the pools, or ones the runs hold (so that queries match some runs)."""
    # A literal beyond 64 bits parses to a float (see fit in cairn.core.query): the tree
    # holds what the text parses to.
    usable = [float(v) if _huge(v) else v for v in seen if _literal(v)]
    return st.one_of(base, st.sampled_from(usable)) if usable else base


def leaves(runs: Sequence[OracleRun], start: int) -> st.SearchStrategy[Node]:
    """Predicates on every kind of field; values from the pools or from ``runs``; times
    near ``start`` (ms)."""
    hp_values = st.one_of(numbers(), strings, st.booleans())
    attr_values = st.one_of(numbers(), strings, st.booleans())
    metric_numbers = numbers(metric=True)
    moments = st.integers(-2000, 200_000).map(lambda ms: start + ms)
    moments = _or_seen(
        moments, [r.created_at for r in runs] + [r.end_time for r in runs if r.end_time]
    )
    time_values = st.one_of(
        moments,
        moments.map(lambda ms: _EPOCH + dt.timedelta(milliseconds=ms)),
        moments.map(lambda ms: ms + 0.5),
    )
    durations = st.one_of(
        st.sampled_from([0, 1, 180, 181, 182.5, 185, 190, 200]), st.floats(170, 200)
    )
    text_values = _or_seen(
        st.one_of(strings, st.sampled_from(NAMES)), [r.name for r in runs] + [r.owner for r in runs]
    )
    patterns = st.one_of(
        st.sampled_from(PATTERNS),
        st.text(alphabet="aAbé%_\\x", max_size=4).filter(writable_pattern),
    )

    def keyed(family: str, keys: Sequence[str]) -> st.SearchStrategy[Node]:
        def of_key(key: str) -> st.SearchStrategy[Node]:
            if family == "metrics":
                seen = [r.metrics[key] for r in runs if key in r.metrics]
                return _compares(_metric(key), _or_seen(metric_numbers, seen), ORDERED_OPS)
            if family == "hyperparameters":
                seen = [r.hyperparameters[key] for r in runs if key in r.hyperparameters]
                return _compares(_hp(key), _or_seen(hp_values, seen), ORDERED_OPS)
            seen = [r.attributes[key] for r in runs if key in r.attributes]
            return _compares(_attr(key), _or_seen(attr_values, seen), ORDERED_OPS)

        return st.sampled_from(keys).flatmap(of_key)

    hp = st.sampled_from([*HP_KEYS, "missing"]).map(_hp)
    attr = st.sampled_from([*ATTR_KEYS, "missing"]).map(_attr)
    text = st.sampled_from(TEXT_FIELDS).map(lambda n: Field(n, FieldKind.TEXT))
    times = st.sampled_from(TIME_FIELDS).map(lambda n: Field(n, FieldKind.TIME))
    like_fields = st.one_of(hp, attr, text)

    @st.composite
    def like_leaf(draw: st.DrawFn) -> Node:
        return Compare(draw(like_fields), draw(st.sampled_from(["like", "ilike"])), draw(patterns))

    status = Field("status", FieldKind.STATUS)
    version = Field("dataset.version", FieldKind.DATASET_VERSION)

    @st.composite
    def version_like(draw: st.DrawFn) -> Node:
        op = draw(st.sampled_from(["like", "ilike"]))
        return Compare(version, op, draw(st.sampled_from(VERSION_PATTERNS)))

    null_fields = st.one_of(
        st.sampled_from(METRIC_KEYS).map(_metric),
        hp,
        attr,
        text,
        times,
        st.just(Field("tags", FieldKind.TAGS)),
        st.just(version),
    )
    return st.one_of(
        _compares(version, st.sampled_from(VERSIONS), ["=", "!="]),
        version_like(),
        keyed("metrics", METRIC_KEYS),
        keyed("hyperparameters", [*HP_KEYS, "missing"]),
        keyed("attributes", [*ATTR_KEYS, "missing"]),
        text.flatmap(lambda f: _compares(f, text_values, ORDERED_OPS)),
        times.flatmap(lambda f: _compares(f, time_values, ORDERED_OPS)),
        _compares(Field("duration", FieldKind.DURATION), durations, ORDERED_OPS),
        _compares(status, st.sampled_from([s.value for s in RunStatus]), ["=", "!="]),
        st.sampled_from([*TAGS, "none"]).map(
            lambda t: Compare(Field("tags", FieldKind.TAGS), "contains", t)
        ),
        null_fields.map(IsNull),
        like_leaf(),
    )


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def writable_pattern(pattern: str) -> bool:
    """Whether a like pattern can be written in a query: its backslashes escape only
    ``%``, ``_`` or a backslash (those escapes reach the pattern as written; any other
    escape is the string's, so a pattern holding ``\\a`` or ending in ``\\`` has no text)."""
    return re.fullmatch(r"([^\\]|\\[%_\\])*", pattern, flags=re.DOTALL) is not None


def queries(runs: Sequence[OracleRun], start: int, max_leaves: int = 6) -> st.SearchStrategy[Node]:
    return st.recursive(
        leaves(runs, start),
        lambda children: st.one_of(
            children.map(Not),
            st.lists(children, min_size=2, max_size=3).map(lambda c: And(tuple(c))),
            st.lists(children, min_size=2, max_size=3).map(lambda c: Or(tuple(c))),
        ),
        max_leaves=max_leaves,
    )


ORDER_FIELDS = [
    _metric("acc"),
    _metric("loss"),
    _hp("a"),
    _hp("b"),
    _attr("team"),
    _attr("n"),
    Field("name", FieldKind.TEXT),
    Field("owner", FieldKind.TEXT),
    Field("id", FieldKind.TEXT),
    Field("parent.id", FieldKind.TEXT),
    Field("experiment.name", FieldKind.TEXT),
    Field("created_at", FieldKind.TIME),
    Field("end_time", FieldKind.TIME),
    Field("duration", FieldKind.DURATION),
    Field("status", FieldKind.STATUS),
]
orders = st.lists(st.builds(OrderKey, st.sampled_from(ORDER_FIELDS), st.booleans()), max_size=2)


# -- rendering ------------------------------------------------------------------------
_KEY = re.compile(r"[A-Za-z0-9_\-/:]+")


@dataclass(frozen=True)
class Style:
    """Ways of writing the same tree: keyword case, aliases, quotes, operator spellings."""

    upper: bool = False
    params: bool = False
    double_quotes: bool = False
    spaced: bool = True
    sugar: bool = True  # not in / not like / is not null rather than not (...)


styles = st.builds(Style, st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans())


def render_field(f: Field, style: Style = Style()) -> str:
    if f.key is None:
        return f.name.upper() if style.upper else f.name
    head = "params" if f.name == "hyperparameters" and style.params else f.name
    key = f.key if _KEY.fullmatch(f.key) else "`" + f.key.replace("`", "``") + "`"
    return f"{head}.{key}"


def render_value(value: Any, style: Style = Style()) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
        return text.upper() if style.upper else text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert isinstance(value, str)
    quote = '"' if style.double_quotes else "'"
    return quote + value.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


def render_pattern(pattern: str, style: Style = Style()) -> str:
    """A like pattern as a quoted string: its escapes (``\\%``, ``\\_``, ``\\\\``) as they are."""
    assert writable_pattern(pattern), pattern
    quote = '"' if style.double_quotes else "'"
    return quote + pattern.replace(quote, "\\" + quote) + quote


def render(node: Node, style: Style = Style()) -> str:
    def kw(word: str) -> str:
        return word.upper() if style.upper else word

    def grouped(item: Node) -> str:
        text = render(item, style)
        return f"({text})" if isinstance(item, (And, Or)) else text

    if isinstance(node, And):
        return f" {kw('and')} ".join(grouped(i) for i in node.items)
    if isinstance(node, Or):
        return f" {kw('or')} ".join(grouped(i) for i in node.items)
    if isinstance(node, Not):
        inner = node.item
        if style.sugar and isinstance(inner, IsNull):
            return f"{render_field(inner.field, style)} {kw('is')} {kw('not')} {kw('null')}"
        if (
            style.sugar
            and isinstance(inner, Compare)
            and inner.op in ("in", "like", "ilike", "contains")
        ):
            return _render_compare(inner, style, negated=True)
        if isinstance(inner, Not):
            return f"{kw('not')} ({render(inner, style)})"
        return f"{kw('not')} {grouped(inner)}"
    if isinstance(node, IsNull):
        return f"{render_field(node.field, style)} {kw('is')} {kw('null')}"
    return _render_compare(node, style, negated=False)


def _render_compare(node: Compare, style: Style, *, negated: bool) -> str:
    field_text = render_field(node.field, style)
    no = ("NOT " if style.upper else "not ") if negated else ""
    if node.op == "in":
        assert isinstance(node.value, tuple)
        values = ", ".join(render_value(v, style) for v in node.value)
        return f"{field_text} {no}{'IN' if style.upper else 'in'} ({values})"
    if node.op in ("like", "ilike", "contains"):
        op = node.op.upper() if style.upper else node.op
        assert isinstance(node.value, str)
        value = (
            render_pattern(node.value, style)
            if node.op != "contains"
            else render_value(node.value, style)
        )
        return f"{field_text} {no}{op} {value}"
    op = {"=": "==", "!=": "<>"}.get(node.op, node.op) if style.upper else node.op
    gap = " " if style.spaced else ""
    return f"{field_text}{gap}{op}{gap}{render_value(node.value, style)}"


def render_order(keys: Sequence[OrderKey], style: Style = Style()) -> list[str]:
    return [("-" if k.descending else "") + render_field(k.field, style) for k in keys]


# -- a fixed corpus: every edge value of every family, on runs of every fate ----------
CORPUS_HP = [*INTS, *FLOATS, *STRINGS, True, False]
CORPUS_METRICS = [0.0, -0.0, 0.5, 0.9, 1.0, -1.5, 2.0**53, 1e300, math.nan]
CORPUS_ATTRIBUTES = [
    0,
    1,
    -1,
    2**53 + 1,
    2**63,
    2**64,
    0.5,
    -0.0,
    math.nan,
    math.inf,
    "",
    "a",
    "A",
    "é",
    "É",
    "\u212a",
    "x%y",
    "x\\y",
    True,
    False,
    None,
    [1, 2],
    {"a": 1},
]


def corpus_plans() -> list[RunPlan]:
    """One run per hyperparameter value; the other families rotate beside it, and every
    family misses now and then."""
    names = list(dict.fromkeys([*NAMES, *(s for s in STRINGS if s and s.isprintable())]))
    plans = []
    for i, value in enumerate(CORPUS_HP):
        metrics = {"acc": [CORPUS_METRICS[i % len(CORPUS_METRICS)]]}
        if i % 4:
            metrics["loss"] = [1.0, CORPUS_METRICS[(i * 5) % len(CORPUS_METRICS)]]
        plans.append(
            RunPlan(
                name=names[i] if i < len(names) else f"run-{i}",
                experiment=i % 2,
                owner=OWNERS[i % len(OWNERS)],
                parent=(i // 3) if i % 3 == 1 else None,
                hyperparameters={
                    **({"a": value} if i % 9 else {}),
                    **({"b": CORPUS_HP[(i * 7) % len(CORPUS_HP)]} if i % 5 else {}),
                    "x.y": CORPUS_HP[(i * 3) % len(CORPUS_HP)],
                },
                metrics=metrics if i % 7 else {},
                tags=[t for j, t in enumerate(TAGS) if (i >> j) & 1],
                attributes=(
                    {"team": CORPUS_ATTRIBUTES[i % len(CORPUS_ATTRIBUTES)]} if i % 6 else {}
                ),
                fate=FATES[i % len(FATES)],
                deleted=i % 11 == 10,
                tick=[0, 1, 7, 500, 1500][i % 5],
                version_tags=[t for j, t in enumerate(VERSION_TAGS) if (i * 3 >> j) & 1],
            )
        )
    return plans


def corpus_leaves(runs: Sequence[OracleRun], start: int) -> list[Node]:
    """Every predicate the corpus tells apart: each family with each operator and each
    literal of its pool (and the values the runs hold)."""
    numbers_pool = [
        0,
        1,
        -1,
        2**53 + 1,
        2**63 - 1,
        -(2**63),
        0.5,
        0.9,
        -0.0,
        2.0**53,
        1e300,
        math.inf,
    ]
    strings_pool = ["", "a", "A", "é", "É", "\u212a", "k", "x%y", "x\\y", "z"]
    pool: list[Any] = [*numbers_pool, *strings_pool, True, False]
    found: list[Node] = []

    # = != < >= : with the negations, <= and > add little (time: ~4 ms a query).
    def each(f: Field, values: Sequence[Any], ops: Sequence[str] = ("=", "!=", "<", ">=")) -> None:
        for value in values:
            for op in ops:
                if isinstance(value, bool) and op not in ("=", "!="):
                    continue
                found.append(Compare(f, op, value))
        found.append(Compare(f, "in", tuple(values[:3])))
        found.append(IsNull(f))

    metric_pool = [v for v in numbers_pool if not isinstance(v, int) or abs(v) <= 2**53]
    for key in ("acc", "loss"):
        each(_metric(key), metric_pool)
    each(_metric("missing"), [0.5])
    for key in ("a", "b"):
        each(_hp(key), pool)
    each(_hp("missing"), [1, 0.5, "a", True])
    each(_attr("team"), pool)
    each(_attr("missing"), [1, "a", True])
    each(Field("name", FieldKind.TEXT), strings_pool + [r.name for r in runs[:5]])
    for name in ("owner", "parent.id", "experiment.name"):
        each(Field(name, FieldKind.TEXT), ["", "a", "ann", "Ann", "exp", runs[0].id])
    times = sorted({r.created_at for r in runs} | {r.end_time for r in runs if r.end_time})
    for name in TIME_FIELDS:
        each(
            Field(name, FieldKind.TIME),
            [
                times[0],
                times[len(times) // 2],
                times[-1] + 0.5,
                _EPOCH + dt.timedelta(milliseconds=times[3]),
            ],
        )
    each(Field("duration", FieldKind.DURATION), [0, 181, 181.5, 1e9])
    each(Field("status", FieldKind.STATUS), [s.value for s in RunStatus], ["=", "!="])
    for tag in [*TAGS, "none", "BEST"]:
        found.append(Compare(Field("tags", FieldKind.TAGS), "contains", tag))
    found.append(IsNull(Field("tags", FieldKind.TAGS)))
    version = Field("dataset.version", FieldKind.DATASET_VERSION)
    each(version, VERSIONS, ("=", "!="))
    for pattern in VERSION_PATTERNS:
        for op in ("like", "ilike"):
            found.append(Compare(version, op, pattern))
    like_fields = [_hp("a"), _attr("team"), Field("name", FieldKind.TEXT)]
    for f in like_fields:
        for pattern in PATTERNS:
            for op in ("like", "ilike"):
                found.append(Compare(f, op, pattern))
    return found
