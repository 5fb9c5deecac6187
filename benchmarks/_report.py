"""What the benchmarks share: results with their targets, the tables they print, the
garbage-collector settling around timed blocks, and small set-up helpers. Imported by the
benchmark scripts, which run with this folder first on ``sys.path``."""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLOSE_MARGIN = 0.25  # a met target within 25% of its limit is reported as close


@dataclass(frozen=True)
class Target:
    """``value >= limit`` or ``value < limit``, on the figure itself or on its ratio to
    the baseline (``on="ratio"``)."""

    op: str  # ">=" or "<"
    limit: float
    on: str = "value"

    def check(self, value: float) -> str:
        if self.op == ">=":
            if value < self.limit:
                return "MISSED"
            return "close" if value < self.limit * (1 + CLOSE_MARGIN) else "met"
        if value >= self.limit:
            return "MISSED"
        return "close" if value > self.limit * (1 - CLOSE_MARGIN) else "met"


@dataclass(frozen=True)
class Mlflow:
    """MLflow's figure from the issue, and whether bigger is better for this measure."""

    text: str
    value: float
    higher_is_better: bool

    def versus(self, ours: float) -> str:
        if ours <= 0 or self.value <= 0:
            return ""
        times = ours / self.value if self.higher_is_better else self.value / ours
        return f"{times:,.1f}x better" if times >= 1 else f"{1 / times:,.1f}x worse"


@dataclass(frozen=True)
class Result:
    section: str
    name: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None  # baseline time / our time
    target: Target | None = None
    mlflow: Mlflow | None = None
    baseline_unit: str | None = None  # when the baseline counts something else

    @property
    def status(self) -> str:
        if self.target is None:
            return "info"
        checked = self.ratio if self.target.on == "ratio" else self.value
        if checked is None:
            return "n/a"
        return self.target.check(checked)

    def target_text(self) -> str:
        if self.target is None:
            return ""
        if self.target.on == "ratio":
            return f"ratio {self.target.op} {self.target.limit:g}"
        return f"{self.target.op} {fmt(self.target.limit, self.unit)}"


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MB":
        return f"{value:,.1f} MB"
    return f"{value:,.0f} {unit}"


def render(cells: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Rows as aligned columns under a ruled header (the first row)."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(parts).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


def table_lines(results: Sequence[Result], ours: str) -> list[str]:
    """A section's table; ``ours`` heads the column of the measured figures."""
    cells: list[Sequence[str]] = [
        ("measure", ours, "baseline", "baseline value", "speed vs baseline", "target", "status")
    ]
    for r in results:
        cells.append(
            (
                r.name,
                fmt(r.value, r.unit),
                r.baseline,
                ""
                if r.baseline_value is None
                else fmt(r.baseline_value, r.baseline_unit or r.unit),
                "" if r.ratio is None else f"{r.ratio:.2f}",
                r.target_text(),
                "" if r.status == "info" else r.status,
            )
        )
    return render(cells, {1, 3, 4})


def say(text: str = "") -> None:
    print(text, flush=True)


def report(title: str, results: Sequence[Result], ours: str, notes: Sequence[str] = ()) -> None:
    say()
    say(title)
    for line in table_lines(results, ours):
        say(line)
    for note in notes:
        say(f"  note: {note}")


def settle() -> None:
    """Before a timed block: collect garbage, then freeze what is alive (the benchmark's
    prebuilt inputs, the clients) so the collector does not rescan it during the timing.
    What the measured code allocates during the block is still collected as usual."""
    gc.collect()
    gc.freeze()


def unsettle() -> None:
    gc.unfreeze()
    gc.collect()


def clean_environment() -> dict[str, str]:
    """No CAIRN_* setting from the caller's shell may steer the stores elsewhere."""
    for name in [n for n in os.environ if n.startswith("CAIRN_")]:
        del os.environ[name]
    return dict(os.environ)


def write_synced(path: Path, data: bytes | bytearray) -> None:
    """Write ``data`` and fsync it: the pages stay cached and clean, so no writeback of
    the source competes with the timed copies."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
