"""Metric series made small enough to draw: the stored chunks read, then downsampled.

The web UI's charts ask for one series at a time at about the width of the chart in points
(:mod:`cairn.core.downsample`); a series of a million points answers with ~2,000 of them,
its spikes, NaNs and infinities kept. A server-side part (the chart route), outside the
client contract: the Python client reads whole histories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from cairn.core.downsample import downsample
from cairn.core.errors import InvalidArgument
from cairn.core.identity import Role
from cairn.core.validation import check_name
from cairn.service.base import ServicePart

__all__ = ["X_AXES", "ChartService", "MetricChart"]

XAxis = Literal["step", "time"]
X_AXES: tuple[XAxis, ...] = ("step", "time")


@dataclass(frozen=True, slots=True)
class MetricChart:
    """The points of a series to draw, parallel lists in (step, timestamp) order.

    ``values`` holds None where the stored value is NaN or infinite (JSON has no such
    numbers, and a chart draws a gap there); ``nonfinite`` says which: (index into these
    lists, ``"nan"`` | ``"inf"`` | ``"-inf"``). ``total``: the points the series holds."""

    key: str
    x: XAxis
    total: int
    steps: list[int]
    timestamps: list[int]
    values: list[float | None]
    nonfinite: list[tuple[int, str]]

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "x": self.x,
            "total": self.total,
            "steps": self.steps,
            "timestamps": self.timestamps,
            "values": self.values,
            "nonfinite": [list(pair) for pair in self.nonfinite],
        }


class ChartService(ServicePart):
    """Downsampled metric series for charts."""

    def metric_chart(self, run_id: str, key: str, points: int, x: XAxis = "step") -> MetricChart:
        """At most ``points`` points of one series, min and max per bucket of ``x`` (steps
        or timestamps). Timestamps that go back now and then (points logged out of order)
        only make those buckets' x ranges uneven: buckets stay runs of the series, in order,
        so nothing is lost or repeated; not checking saves a pass over the series."""
        check_name(key, "metric key")
        if x not in X_AXES:
            raise InvalidArgument("x", f"must be one of {', '.join(X_AXES)}, not {x!r}")
        self._allow(run_id, Role.READER, "run")
        with self.metadata.read() as tx:
            self._require_run(tx, run_id)
            series = tx.metrics.history(run_id, key)
        # The transaction is over: the CPU work below holds no connection.
        xs = series.steps if x == "step" else series.timestamps
        kept = downsample(series.values, points, xs)
        steps, stamps, values = series.steps, series.timestamps, series.values
        drawn: list[float | None] = []
        nonfinite: list[tuple[int, str]] = []
        for at, i in enumerate(kept):
            v = values[i]
            if math.isfinite(v):
                drawn.append(v)
            else:
                drawn.append(None)
                nonfinite.append((at, "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")))
        return MetricChart(
            key=key,
            x=x,
            total=len(series),
            steps=[steps[i] for i in kept],
            timestamps=[stamps[i] for i in kept],
            values=drawn,
            nonfinite=nonfinite,
        )
