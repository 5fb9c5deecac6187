"""The compare page (``/compare?runs=a,b,c``): runs side by side (hyperparameters, latest
metrics, tags, attributes) with the rows that differ highlighted; overlaid metric curves
(from the chart route), a parallel-coordinates plot of hyperparameters against a chosen
metric, and a scatter of any two fields (``static/compare.js``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.core.errors import InvalidArgument
from cairn.core.model import ExperimentInfo, RunInfo
from cairn.core.validation import check_entity_id
from cairn.service import TrackingService
from cairn.ui.render import call, page, render, service

__all__ = ["MAX_RUNS", "router"]

router = APIRouter()

MAX_RUNS = 100  # a table wider than this is read better as the runs table
_MISSING = object()
_CELL_CHARS = 200  # a JSON attribute is cut to this in a cell (its run page has it whole)


@dataclass(frozen=True, slots=True)
class Cell:
    text: str  # as shown
    present: bool


@dataclass(frozen=True, slots=True)
class Row:
    group: str  # "run", "hyperparameter", "metric", "tag", "attribute"
    label: str
    cells: list[Cell]
    differs: bool


@dataclass(frozen=True, slots=True)
class Comparison:
    runs: list[RunInfo]
    experiments: dict[str, ExperimentInfo]
    rows: list[Row]
    data: dict[str, Any]  # for compare.js

    @property
    def groups(self) -> list[tuple[str, list[Row]]]:
        found: dict[str, list[Row]] = {}
        for row in self.rows:
            found.setdefault(row.group, []).append(row)
        return list(found.items())


def parse_runs(text: str) -> list[str]:
    """Run ids separated by commas (or spaces), each once, in the order given."""
    ids: list[str] = []
    for part in text.replace(" ", ",").split(","):
        if part:
            run_id = check_entity_id(part.strip(), "runs").lower()
            if run_id not in ids:
                ids.append(run_id)
    if not ids:
        raise InvalidArgument("runs", "name at least one run: /compare?runs=ID,ID,...")
    if len(ids) > MAX_RUNS:
        raise InvalidArgument("runs", f"compares at most {MAX_RUNS} runs, not {len(ids)}")
    return ids


def _text(value: Any) -> str:
    if value is _MISSING:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, int | str):
        return str(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"


def _same_key(value: Any) -> str:
    """Values compare by type and JSON form: 1 and 1.0 and "1" differ, NaN equals NaN."""
    if value is _MISSING:
        return "missing"
    return f"{type(value).__name__}:{json.dumps(value, sort_keys=True, default=str)}"


def _row(group: str, label: str, values: list[Any]) -> Row:
    cells = [Cell(_text(v), v is not _MISSING) for v in values]
    differs = len(values) > 1 and len({_same_key(v) for v in values}) > 1
    return Row(group, label, cells, differs)


def _plain(value: Any) -> Any:
    """A value for compare.js: numbers, strings and booleans as they are (NaN and
    infinities as None), anything else as its JSON text."""
    if value is _MISSING or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return _text(value)


def load(svc: TrackingService, run_ids: list[str]) -> Comparison:
    runs = [svc.entities.get_run(run_id) for run_id in run_ids]
    experiments: dict[str, ExperimentInfo] = {}
    for run in runs:
        if run.experiment_id not in experiments:
            experiments[run.experiment_id] = svc.entities.get_experiment(run.experiment_id)
    hyper = [svc.labels.get_hyperparameters(r.id) for r in runs]
    metrics = [{k: p.value for k, p in svc.metrics.get_latest_metrics(r.id).items()} for r in runs]
    tags = [set(svc.labels.get_tags(r.id)) for r in runs]
    attrs = [svc.labels.get_attributes(r.id) for r in runs]

    rows = [
        _row("run", "experiment", [experiments[r.experiment_id].name for r in runs]),
        _row("run", "status", [r.status.value for r in runs]),
        _row("run", "owner", [r.owner for r in runs]),
        _row(
            "run",
            "duration (s)",
            [
                _MISSING if r.end_time is None else round((r.end_time - r.start_time) / 1000, 1)
                for r in runs
            ],
        ),
    ]
    fields: dict[str, list[Any]] = {}
    for group, prefix, maps in (
        ("hyperparameter", "hp", hyper),
        ("metric", "metric", metrics),
        ("attribute", "attr", attrs),
    ):
        for key in sorted(set().union(*maps)):
            values = [m.get(key, _MISSING) for m in maps]
            rows.append(_row(group, key, values))
            fields[f"{prefix}:{key}"] = [_plain(v) for v in values]
    for tag in sorted(set().union(*tags)):
        rows.append(_row("tag", tag, ["✓" if tag in t else "" for t in tags]))
    durations = [None if r.end_time is None else (r.end_time - r.start_time) / 1000 for r in runs]
    fields["run:duration (s)"] = durations
    data = {
        "runs": [{"id": r.id, "name": r.name, "start": r.start_time} for r in runs],
        "hyperparameters": sorted(set().union(*hyper)),
        "metrics": sorted(set().union(*metrics)),
        "fields": fields,
    }
    return Comparison(runs, experiments, rows, data)


@router.get("/compare")
@page
async def compare_page(request: Request, runs: str = "") -> Response:
    ids = parse_runs(runs)
    comparison = await call(load, service(request), ids)
    return render(
        request,
        "compare.html",
        title=f"Compare {len(comparison.runs)} run{'s' if len(comparison.runs) != 1 else ''}",
        nav="runs",
        view=comparison,
        data=comparison.data,
    )
