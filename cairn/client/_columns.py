"""A metric's history as columns: what ``Run.get_metric_columns`` returns."""

from __future__ import annotations

import importlib
from array import array
from dataclasses import dataclass
from typing import Any

__all__ = ["MetricColumns"]


@dataclass(frozen=True, slots=True)
class MetricColumns:
    """Every point of one metric as three parallel arrays, in (step, timestamp) order:
    ``steps`` and ``timestamps`` (ms since the epoch) are ``array('q')``, ``values``
    ``array('d')``. 24 bytes a point, where a list of ``MetricPoint`` costs about ten
    times more; ``numpy.frombuffer`` reads each array without a copy."""

    steps: array[int]
    timestamps: array[int]
    values: array[float]

    def __len__(self) -> int:
        return len(self.steps)

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with the columns ``step`` and ``timestamp`` (int64, the
        timestamp in ms) and ``value`` (float64), one row per point. Needs pandas."""
        try:
            pandas = importlib.import_module("pandas")
            numpy = importlib.import_module("numpy")  # pandas depends on it
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"MetricColumns.to_pandas() needs pandas, which is not installed "
                f"(pip install pandas): {exc}",
                name="pandas",
            ) from None
        return pandas.DataFrame(
            {
                "step": numpy.frombuffer(self.steps, dtype=numpy.int64),
                "timestamp": numpy.frombuffer(self.timestamps, dtype=numpy.int64),
                "value": numpy.frombuffer(self.values, dtype=numpy.float64),
            },
            copy=True,  # the frame owns its data; the arrays stay free to change
        )
