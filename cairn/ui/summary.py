"""Counts and "last activity" of projects and experiments, read through the service's
search (a few small statements each, on a worker thread).

Last activity comes from the runs, not from a column nobody updates: the latest of a run's
creation, update, end and heartbeat (a metric batch is a heartbeat), over the most recently
updated run and every run still open; the container's own update time when it has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cairn.core.model import RunInfo
from cairn.service import TrackingService

__all__ = ["Summary", "summarize"]

_OPEN_RUNS = 200  # open runs looked at for their heartbeat (a page's worth)


@dataclass(frozen=True, slots=True)
class Summary:
    experiments: int | None  # None: not counted (an experiment's summary)
    runs: int
    last_activity: int


def _latest(run: RunInfo) -> int:
    times = (run.created_at, run.updated_at, run.end_time, run.heartbeat_at, run.start_time)
    return max(t for t in times if t is not None)


def summarize(
    service: TrackingService,
    own_time: int,
    *,
    project_id: str | None = None,
    experiment_id: str | None = None,
) -> Summary:
    scope: dict[str, Any] = {}
    if project_id is not None:
        scope["project_ids"] = [project_id]
    if experiment_id is not None:
        scope["experiment_ids"] = [experiment_id]
    search = service.search
    runs = search.count_runs("", **scope)
    latest = [own_time]
    if runs:
        found: Sequence[Any] = search.find_runs(
            "", order_by=["-updated_at"], limit=1, columns=[], **scope
        ).items
        found = [
            *found,
            *search.find_runs("end_time is null", limit=_OPEN_RUNS, columns=[], **scope),
        ]
        latest += [_latest(r.info) for r in found]
    experiments = None
    if project_id is not None:  # the plain list: a search would read their labels too
        experiments = len(service.entities.list_experiments(project_id))
    return Summary(experiments, runs, max(latest))
