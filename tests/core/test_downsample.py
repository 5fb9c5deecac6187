"""Min/max downsampling for charts: bounded, ordered, and every bucket's extremes kept."""

from __future__ import annotations

import math
from array import array
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.core.downsample import MAX_POINTS, MIN_POINTS, downsample, downsample_buckets
from cairn.core.errors import InvalidArgument

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
special = st.sampled_from([math.nan, math.inf, -math.inf])
values = st.lists(st.one_of(finite, finite, finite, special), min_size=0, max_size=400)
sizes = st.integers(MIN_POINTS, 120)


def check(vs: array[float], points: int, xs: array[int] | None) -> None:
    kept, bounds = downsample_buckets(vs, points, xs)
    assert kept == downsample(vs, points, xs)
    n = len(vs)
    assert len(kept) <= points
    assert kept == sorted(set(kept)), "indices increase, none twice"
    if n <= points:
        assert kept == list(range(n))
        return
    assert kept[0] == 0 and kept[-1] == n - 1
    chosen = set(kept)
    assert bounds[0] == 1 and bounds[-1] == n - 1
    for start, end in pairwise(bounds):
        bucket = [(i, vs[i]) for i in range(start, end)]
        numbers = [v for _, v in bucket if math.isfinite(v)]
        if numbers:
            for extreme in (min(numbers), max(numbers)):
                assert any(vs[i] == extreme for i in chosen if start <= i < end), (
                    f"bucket {start}..{end} lost its extreme {extreme}"
                )
        for kind in (math.isnan, lambda v: v == math.inf, lambda v: v == -math.inf):
            if any(kind(v) for _, v in bucket):
                assert any(kind(vs[i]) for i in chosen if start <= i < end)


@settings(max_examples=300, deadline=None)
@given(values, sizes)
def test_counts_buckets_keep_extremes_order_and_bound(raw: list[float], points: int) -> None:
    check(array("d", raw), points, None)


@settings(max_examples=300, deadline=None)
@given(values, sizes, st.data())
def test_x_range_buckets_keep_extremes_order_and_bound(
    raw: list[float], points: int, data: st.DataObject
) -> None:
    gaps = data.draw(st.lists(st.integers(0, 1000), min_size=len(raw), max_size=len(raw)))
    xs = array("q")
    x = 0
    for gap in gaps:
        x += gap
        xs.append(x)
    check(array("d", raw), points, xs)


@settings(max_examples=200, deadline=None)
@given(values, sizes, st.data())
def test_xs_that_go_down_still_keep_every_property(
    raw: list[float], points: int, data: st.DataObject
) -> None:
    xs = array("q", data.draw(st.lists(st.integers(-50, 50), min_size=len(raw), max_size=len(raw))))
    check(array("d", raw), points, xs)


def test_a_million_points_come_down_to_the_size_asked() -> None:
    n = 1_000_000
    vs = array("d", (math.sin(i / 1000) for i in range(n)))
    vs[123_456] = 50.0  # a lone spike survives
    vs[654_321] = math.nan
    kept = downsample(vs, 2000, array("q", range(n)))
    assert 1990 <= len(kept) <= 2000  # one NaN costs a bucket or two, not the budget
    assert 123_456 in kept and 654_321 in kept
    assert kept[0] == 0 and kept[-1] == n - 1


def test_all_finite_series_use_two_points_a_bucket() -> None:
    vs = array("d", [float(i % 7) for i in range(10_000)])
    assert len(downsample(vs, 1000)) > 900  # not the five-a-bucket budget


def test_the_size_asked_is_checked() -> None:
    for bad in (MIN_POINTS - 1, MAX_POINTS + 1):
        with pytest.raises(InvalidArgument, match="points"):
            downsample(array("d", [1.0]), bad)
    with pytest.raises(InvalidArgument, match="xs"):
        downsample(array("d", [1.0, 2.0]), MIN_POINTS, array("q", [1]))


def test_equal_xs_put_every_point_in_one_bucket() -> None:
    vs = array("d", [float(i) for i in range(100)])
    kept = downsample(vs, MIN_POINTS, array("q", [5] * 100))
    assert kept[0] == 0 and kept[-1] == 99 and 1 in kept and 98 in kept


def test_non_finite_values_everywhere_fall_back_to_five_a_bucket() -> None:
    vs = array("d", [math.nan if i % 3 == 0 else float(i % 11) for i in range(30_000)])
    vs[1::7] = array("d", [math.inf] * len(vs[1::7]))
    kept = downsample(vs, 500)
    assert 400 <= len(kept) <= 500
