"""Fewer points of a long metric series for a chart, keeping its shape.

A chart a few thousand pixels wide cannot show more points than it has pixels; sending a
million points to a browser costs seconds of transfer and drawing and shows nothing more.
:func:`downsample` picks the indices to draw by **min/max per bucket**: the series is cut
into buckets (one or two pixels each at the requested size) and each bucket keeps the
points of its lowest and highest value, in series order. Every spike, dip and plateau stays
visible (LTTB keeps one point a bucket and can drop a lone spike); the first and last points
are always kept, so the line spans the whole range.

Values that are not finite are kept visible, never averaged away: in a bucket holding NaN,
+inf or -inf, the min and max are taken over its finite values, and the bucket also keeps
its first NaN, its first +inf and its first -inf. The caller draws them as it likes (the
chart route sends them as gaps, marked). Such a bucket keeps up to five points, so when
the series holds non-finite values the buckets are counted again, fewer, until the points
kept fit (a few NaNs cost a bucket or two; after three tries every bucket gets a budget
of five). The result never holds more than ``points`` indices.

Pure Python over the stored arrays (numpy is not a dependency): each bucket costs a few
C-level passes (slice, ``sum``, ``min``, ``max``, ``index``), a Python loop only in a
bucket that holds a non-finite value. A million points take a few tens of milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

from cairn.core.errors import InvalidArgument

__all__ = [
    "MAX_POINTS",
    "MIN_POINTS",
    "bucket_bounds",
    "bucket_count",
    "downsample",
    "downsample_buckets",
]

# Below this a chart cannot keep first, last and one bucket of five; above it a browser
# draws slowly and the series is better read whole (the history route).
MIN_POINTS = 16
MAX_POINTS = 20_000
# Indices a bucket keeps: min and max; with non-finite values also a NaN, +inf and -inf.
_FINITE_KEEPS = 2
_MIXED_KEEPS = 5
_TRIES = 3  # bucket counts tried before every bucket gets the budget of five


def bucket_count(points: int, keeps: int = _FINITE_KEEPS) -> int:
    """Buckets for ``points`` indices when each bucket keeps up to ``keeps`` of them."""
    return max(1, (points - 2) // keeps)


def bucket_bounds(n: int, count: int, xs: Sequence[float] | None = None) -> list[int]:
    """Where ``count`` buckets of a series of ``n`` points start and end: ``bounds[k]`` to
    ``bounds[k + 1]`` is bucket ``k``, over the inner points ``1 .. n - 2`` (the first
    and last are kept apart). With ``xs`` (one per point) buckets span equal ranges of x,
    like a chart's pixels, and may be empty (where ``xs`` goes down, the ranges are uneven;
    the bounds still rise); without, they hold equal counts."""
    inner = n - 2
    if inner <= 0:
        return [1, 1]
    if xs is None:
        return [1 + inner * k // count for k in range(count + 1)]
    low, high = float(xs[1]), float(xs[n - 2])
    width = (high - low) / count
    bounds = [1]
    for k in range(1, count):
        bounds.append(_first_at_least(xs, low + k * width, bounds[-1], n - 1))
    bounds.append(n - 1)
    return bounds


def _first_at_least(xs: Sequence[float], x: float, lo: int, hi: int) -> int:
    """The first index in ``lo .. hi`` whose x is at least ``x`` (``hi`` if none)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def downsample(
    values: Sequence[float], points: int, xs: Sequence[float] | None = None
) -> list[int]:
    """The indices of ``values`` to draw, increasing, at most ``points`` of them.

    A series of at most ``points`` values is kept whole. ``xs``: the x of each value
    (steps, timestamps), to cut buckets by equal ranges of x; None cuts them by equal
    counts. Where ``xs`` goes down, the ranges come out uneven, nothing worse: buckets are
    always consecutive runs of the series. ``values`` is best an ``array('d')``: its
    slices are copied in C."""
    return downsample_buckets(values, points, xs)[0]


def downsample_buckets(
    values: Sequence[float], points: int, xs: Sequence[float] | None = None
) -> tuple[list[int], list[int]]:
    """:func:`downsample`, and the bounds of the buckets it used (see :func:`bucket_bounds`;
    empty when the series is kept whole)."""
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise InvalidArgument("points", f"must be from {MIN_POINTS} to {MAX_POINTS}, not {points}")
    n = len(values)
    if xs is not None and len(xs) != n:
        raise InvalidArgument("xs", f"must hold one x per value ({n}), not {len(xs)}")
    if n <= points:
        return list(range(n)), []
    # One C pass tells whether any value is NaN or infinite (a sum that overflows only
    # takes the careful path for nothing).
    finite = math.isfinite(sum(values))
    count = bucket_count(points)
    for _ in range(_TRIES):
        bounds = bucket_bounds(n, count, xs)
        kept = _pick(values, bounds, finite)
        if len(kept) <= points:
            return kept, bounds
        # Buckets holding non-finite values kept more than two: fewer buckets, as many as
        # fit at the points per bucket this try kept.
        count = max(1, min(count - 1, (points - 2) * count // (len(kept) - 2)))
    bounds = bucket_bounds(n, bucket_count(points, _MIXED_KEEPS), xs)
    return _pick(values, bounds, finite), bounds


def _pick(values: Sequence[float], bounds: list[int], finite: bool) -> list[int]:
    """The first and last indices and each bucket's picks."""
    kept = [0]
    for start, end in pairwise(bounds):
        if start >= end:
            continue
        bucket = values[start:end]
        if finite or math.isfinite(sum(bucket)):
            low, high = bucket.index(min(bucket)), bucket.index(max(bucket))
            picked: tuple[int, ...] = (low, high) if low <= high else (high, low)
        else:
            picked = _mixed(bucket)
        last = -1
        for i in picked:
            if i != last:
                kept.append(start + i)
                last = i
    kept.append(len(values) - 1)
    return kept


def _mixed(bucket: Sequence[float]) -> tuple[int, ...]:
    """A bucket holding non-finite values: its finite min and max, its first NaN, +inf and
    -inf, in order."""
    low = high = nan = pos = neg = -1
    for i, v in enumerate(bucket):
        if math.isnan(v):
            if nan < 0:
                nan = i
        elif v == math.inf:
            if pos < 0:
                pos = i
        elif v == -math.inf:
            if neg < 0:
                neg = i
        else:
            if low < 0 or v < bucket[low]:
                low = i
            if high < 0 or v > bucket[high]:
                high = i
    return tuple(sorted({i for i in (low, high, nan, pos, neg) if i >= 0}))
