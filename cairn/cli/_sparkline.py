"""Sparklines: a metric's history as one line of block characters (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["ASCII", "BLOCKS", "WIDTH", "finite_range", "resample", "sparkline"]

BLOCKS = "▁▂▃▄▅▆▇█"
ASCII = "_.-~=+*#"  # for a terminal that cannot print the blocks
WIDTH = 60


def resample(values: Sequence[float], width: int = WIDTH) -> list[float]:
    """At most ``width`` values: each the mean of its share of the series (NaN and
    infinities left out of a mean; a share with nothing finite is NaN). A shorter series
    comes back as it is."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    count = len(values)
    if count <= width:
        return list(values)
    out: list[float] = []
    for i in range(width):
        # Integer bounds: every value lands in exactly one share, shares differ by at most 1.
        part = values[i * count // width : (i + 1) * count // width]
        share = [v for v in part if math.isfinite(v)]
        out.append(math.fsum(share) / len(share) if share else math.nan)
    return out


def finite_range(values: Sequence[float]) -> tuple[float, float] | None:
    """(min, max) of the finite values, or None if there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return (min(finite), max(finite)) if finite else None


def sparkline(values: Sequence[float], width: int = WIDTH, chars: str = BLOCKS) -> str:
    """One character per value (after :func:`resample`), lowest ``chars[0]``, highest
    ``chars[-1]``; a flat series sits in the middle; NaN and infinities are blanks."""
    points = resample(values, width)
    span = finite_range(points)
    if span is None:
        return " " * len(points)
    low, high = span
    scale = high / 2 - low / 2  # halves: the span of two huge floats stays finite
    top = len(chars) - 1
    line = []
    for v in points:
        if not math.isfinite(v):
            line.append(" ")
        elif high == low:
            line.append(chars[top // 2])
        else:
            line.append(chars[min(top, int((v / 2 - low / 2) / scale * top + 0.5))])
    return "".join(line)
