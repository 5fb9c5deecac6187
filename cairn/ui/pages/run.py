"""The run page (``/runs/{run_id}``): overview, hyperparameters, metric charts, tags,
attributes (pretty JSON; lists of numbers and 2-D arrays drawn), captured code and
environment, the linked commit, and an artifacts browser with downloads and previews.

Everything the page shows is read in one worker-thread call; the charts' points come from
the documented ``GET /api/v1/runs/{id}/metrics/chart`` (downsampled on the server), and a
running run's page polls ``GET /api/v1/runs/{id}`` and ``/metrics`` for new points
(``static/run.js``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.core.errors import NotFound
from cairn.core.model import ArtifactInfo, ExperimentInfo, ProjectInfo, RunInfo, RunStatus
from cairn.core.versioning.blobs import Blob
from cairn.core.versioning.info import RunCommitInfo
from cairn.service import TrackingService
from cairn.ui.pages.dataset import DatasetLink, dataset_links
from cairn.ui.render import call, page, render, service

__all__ = ["router"]

router = APIRouter()

# A tree artifact lists at most this many files on the page (the rest are counted).
MAX_TREE_FILES = 1000
# Attributes drawn as charts: a line of up to this many numbers, a heatmap of up to this
# many cells (larger ones stay as JSON).
MAX_LINE = 100_000
MAX_CELLS = 250_000


_PREVIEWS = {
    **dict.fromkeys(("png", "jpg", "jpeg", "gif", "webp", "bmp", "svg"), "image"),
    **dict.fromkeys(("json", "jsonl", "ipynb"), "json"),
    **dict.fromkeys(("csv", "tsv"), "csv"),
    **dict.fromkeys(
        (
            "txt",
            "log",
            "md",
            "rst",
            "py",
            "yaml",
            "yml",
            "toml",
            "cfg",
            "ini",
            "sh",
            "diff",
            "patch",
            "html",
            "xml",
            "js",
            "css",
            "c",
            "h",
            "cpp",
            "rs",
            "go",
            "sql",
        ),
        "text",
    ),
}


def preview_kind(name: str) -> str | None:
    """How the page previews a file, by its extension: image, json, csv, text or None."""
    base = name.rsplit("/", 1)[-1]
    if "." not in base:
        return "text" if base.upper() in ("README", "LICENSE", "MAKEFILE", "DOCKERFILE") else None
    return _PREVIEWS.get(base.rsplit(".", 1)[1].lower())


@dataclass
class Folder:
    """A folder of the artifacts browser: artifact keys split at their slashes, and the
    files of a tree artifact under its key."""

    name: str
    folders: dict[str, Folder] = field(default_factory=dict)
    files: list[tuple[str, str, str, int]] = field(default_factory=list)  # name, path, digest, size
    size: int = 0
    artifact: ArtifactInfo | None = None  # a tree artifact logged at this folder
    more: int = 0  # files of that tree left unlisted

    def sorted_folders(self) -> list[Folder]:
        return [self.folders[k] for k in sorted(self.folders)]

    def folder(self, parts: list[str], size: int) -> Folder:
        """The folder at ``parts`` below this one (made as needed), with ``size`` more
        bytes counted in each folder on the way, this one included."""
        here = self
        self.size += size
        for part in parts:
            here = here.folders.setdefault(part, Folder(part))
            here.size += size
        return here


def artifact_tree(artifacts: list[ArtifactInfo], files_of: Callable[[str], list[Any]]) -> Folder:
    """Every artifact in one tree of folders: a file at its key, a tree's files (at most
    MAX_TREE_FILES of each) under its key."""
    root = Folder("")
    for info in artifacts:
        parts = info.key.split("/")
        if info.kind != "tree":
            where = root.folder(parts[:-1], info.size)
            where.files.append((parts[-1], info.key, info.digest, info.size))
            continue
        top = root.folder(parts, info.size)
        top.artifact = info
        entries = files_of(info.key)
        top.more = max(0, len(entries) - MAX_TREE_FILES)
        for entry in entries[:MAX_TREE_FILES]:
            inner = entry.path.split("/")
            where = top.folder(inner[:-1], 0)
            for depth in range(1, len(inner)):  # the tree's own size is counted above
                top.folder(inner[:depth], 0).size += entry.size
            path = f"{info.key}/{entry.path}"
            where.files.append((inner[-1], path, str(entry.digest), entry.size))
    return root


@dataclass(frozen=True, slots=True)
class Capture:
    path: str
    kind: str
    scalars: list[tuple[str, Any]]  # section -> value (strings, numbers, booleans)
    maps: list[tuple[str, list[tuple[str, Any]]]]  # section -> sorted entries
    lists: list[tuple[str, list[Any]]]  # section -> items
    objects: list[str]  # digests of stored files it names (a git diff)


@dataclass(frozen=True, slots=True)
class RunView:
    run: RunInfo
    experiment: ExperimentInfo
    project: ProjectInfo
    parent: RunInfo | None
    children: list[RunInfo]
    hyperparameters: dict[str, Any]
    latest: dict[str, Any]  # key -> MetricPoint
    tags: list[str]
    attributes: dict[str, Any]
    charts: list[dict[str, Any]]  # attributes drawn: {"key", "kind", "values"}
    artifacts: Folder
    artifact_count: int
    commit: RunCommitInfo | None
    repository_name: str | None
    captures: list[Capture]
    datasets: list[DatasetLink]  # the dataset versions it used (its dataset.KEY attributes)

    @property
    def duration(self) -> float | None:
        end = self.run.end_time
        if end is None:
            return None
        return (end - self.run.start_time) / 1000

    @property
    def live(self) -> bool:
        return self.run.status is RunStatus.RUNNING


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def chart_of(key: str, value: Any) -> dict[str, Any] | None:
    """An attribute drawn as a chart: a list of numbers as a line, a list of equally long
    lists of numbers as a heatmap; None for anything else."""
    if not isinstance(value, list) or len(value) < 2:
        return None
    if len(value) <= MAX_LINE and all(_is_number(v) for v in value):
        return {"key": key, "kind": "line", "values": _finite(value)}
    rows = value
    if all(isinstance(r, list) and r for r in rows):
        width = len(rows[0])
        if (
            len(rows) * width <= MAX_CELLS
            and all(len(r) == width for r in rows)
            and all(_is_number(v) for r in rows for v in r)
        ):
            return {"key": key, "kind": "heatmap", "values": _finite(rows)}
    return None


def capture_of(path: str, blob: Blob) -> Capture:
    scalars: list[tuple[str, Any]] = []
    maps: list[tuple[str, list[tuple[str, Any]]]] = []
    lists: list[tuple[str, list[Any]]] = []
    for section, value in blob.body().items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            maps.append((section, sorted(value.items())))
        elif isinstance(value, list):
            lists.append((section, value))
        else:
            scalars.append((section, value))
    return Capture(path, blob.KIND, scalars, maps, lists, [str(d) for d in blob.objects()])


def load(svc: TrackingService, run_id: str) -> RunView:
    entities, labels = svc.entities, svc.labels
    run = entities.get_run(run_id)
    parent = None
    if run.parent_id is not None:
        try:
            parent = entities.get_run(run.parent_id)
        except NotFound:
            parent = None
    attributes = labels.get_attributes(run.id)
    charts = [c for k, v in sorted(attributes.items()) if (c := chart_of(k, v)) is not None]
    listed = svc.artifacts.list_artifacts(run.id)
    artifacts = artifact_tree(listed, lambda key: svc.artifacts.list_artifact_files(run.id, key))
    commit = svc.repositories.get_run_commit(run.id)
    repository_name = None
    if commit is not None:
        try:
            repository_name = svc.repositories.get_repository(commit.repository_id).name
        except NotFound:
            repository_name = None
    captured = svc.repositories.get_run_capture(run.id)
    return RunView(
        run=run,
        experiment=entities.get_experiment(run.experiment_id),
        project=entities.get_project(run.project_id),
        parent=parent,
        children=entities.list_child_runs(run.id),
        hyperparameters=labels.get_hyperparameters(run.id),
        latest=svc.metrics.get_latest_metrics(run.id),
        tags=labels.get_tags(run.id),
        attributes=attributes,
        charts=charts,
        artifacts=artifacts,
        artifact_count=len(listed),
        commit=commit,
        repository_name=repository_name,
        captures=[capture_of(path, blob) for path, blob in sorted(captured.items())],
        datasets=dataset_links(svc, run.project_id, attributes),
    )


def page_data(view: RunView) -> dict[str, Any]:
    """What run.js needs, as the page's JSON data block (no NaN: JSON has none)."""
    run = view.run
    return {
        "run": run.id,
        "name": run.name,
        "status": run.status.value,
        "start": run.start_time,
        "live": view.live,
        "metrics": {
            k: {"step": p.step, "timestamp": p.timestamp, "value": _finite(p.value)}
            for k, p in sorted(view.latest.items())
        },
        "attributes": view.charts,
    }


@router.get("/runs/{run_id}")
@page
async def run_page(request: Request, run_id: str) -> Response:
    view = await call(load, service(request), run_id)
    run = view.run
    crumbs = [
        (view.project.name, f"/projects/{view.project.id}"),
        (view.experiment.name, f"/experiments/{view.experiment.id}"),
    ]
    return render(
        request,
        "run.html",
        title=run.name,
        nav="runs",
        crumbs=crumbs,
        view=view,
        data=page_data(view),
        preview_kind=preview_kind,
    )
