"""A dataset's page (docs/datasets.md): its versions (the commits of its branch ``main``,
newest first, each with its file count and size), the components of one version, a link
to the diff of two versions (the repository's diff page, which words dataset files), and
the runs that used the chosen version (found by their ``dataset-version:<id>`` tag).

A version of local files kept as a tree is listed from its summary blob (count, size) and
its files are read from the tree only for the chosen version, the first ``MAX_FILES``
shown; a version made before trees is one ``dataset.path`` blob, shown as it is.

The dataset conventions the client writes come from :mod:`cairn.core.datasets`, which both
read. Everything is read in one worker-thread call; every string reaches the page through
autoescaping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from jinja2.filters import do_filesizeformat
from starlette.responses import Response

from cairn.core.datasets import (
    BLOB_PATH,
    DATASET_ATTRIBUTE,
    DATASET_KIND,
    DATASETS_QUERY,
    RUN_ATTRIBUTE_PREFIX,
    files_of,
    runs_of_version_query,
)
from cairn.core.errors import NotFound
from cairn.core.model import ProjectInfo, RunInfo
from cairn.core.versioning.blobs import DatasetTree, PathDataset, QueryDataset, S3Dataset
from cairn.core.versioning.info import CommitInfo, RepositoryInfo
from cairn.service import TrackingService
from cairn.ui.ingredients import BlobView, Cell, Section, blob_view
from cairn.ui.render import call, page, render, service

__all__ = ["DatasetLink", "dataset_ids", "dataset_links", "router", "version_view"]

router = APIRouter()

MAX_VERSIONS: Final = 200  # versions listed (each one's blob is read for its counts)
MAX_RUNS: Final = 200  # runs of a version listed
MAX_FILES: Final = 2000  # files of the chosen version drawn (the count says how many more)
_VERSION_ID = re.compile(r"[0-9a-f]{16,128}")


@dataclass(frozen=True, slots=True)
class VersionRow:
    commit: CommitInfo
    kind: str  # dataset.path, dataset.s3, dataset.query ("" if the commit holds none)
    files: int | None  # files or objects (None for a query)
    size: int | None


@dataclass(frozen=True, slots=True)
class DatasetView:
    dataset: RepositoryInfo
    project: ProjectInfo
    versions: list[VersionRow]
    chosen: VersionRow | None
    previous: CommitInfo | None  # the version before the chosen one, for its diff
    blob: BlobView | None  # the chosen version's components
    runs: list[RunInfo]
    more: bool  # the versions were cut at MAX_VERSIONS

    @property
    def crumbs(self) -> list[tuple[str, str]]:
        return [("Projects", "/"), (self.project.name, f"/projects/{self.project.id}")]


def _row(commit: CommitInfo, blob: Any) -> VersionRow:
    if isinstance(blob, DatasetTree):  # local files kept as a tree: its summary says
        return VersionRow(commit, PathDataset.KIND, blob.files, blob.size)
    if isinstance(blob, PathDataset):
        sized = [c.size for c in blob.components if c.link is None]
        return VersionRow(commit, blob.KIND, len(blob.components), sum(sized))
    if isinstance(blob, S3Dataset):
        return VersionRow(commit, blob.KIND, len(blob.entries), blob.size)
    return VersionRow(commit, "" if blob is None else blob.KIND, None, None)


def _time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def version_view(blob: Any) -> BlobView:
    """A version's blob for people: S3 objects and a query's fields as tables and facts
    (the repository pages show these kinds as JSON); a folder's files as a commit shows them."""
    if isinstance(blob, S3Dataset):
        rows = [
            (
                Cell(o.key, mono=True),
                Cell(str(do_filesizeformat(o.size, binary=True)), num=True),
                Cell(o.etag, mono=True),
                Cell(o.version or "", mono=True),
                Cell(_time(o.modified)),
            )
            for o in blob.entries
        ]
        headers = ("key", "size", "ETag", "version", "last modified (UTC)")
        n, size = len(blob.entries), do_filesizeformat(blob.size, binary=True)
        sections = [
            Section("prefix", "facts", rows=[(Cell("uri"), Cell(blob.uri, mono=True))]),
            Section("objects", "table", headers, rows),
        ]
        return BlobView(blob.KIND, f"{n} object{'s' if n != 1 else ''}, {size}", sections)
    if isinstance(blob, QueryDataset):
        facts = [
            ("source", blob.source),
            ("executed at (UTC)", _time(blob.executed_at)),
            ("duration", "" if blob.duration_ms is None else f"{blob.duration_ms} ms"),
            ("rows", "" if blob.row_count is None else str(blob.row_count)),
        ]
        shown = [(Cell(k), Cell(v, mono=True)) for k, v in facts if v]
        sections = [
            Section("query", "facts", rows=shown),
            Section("text", "json", text=blob.text),  # drawn as <pre>: its lines kept
        ]
        return BlobView(blob.KIND, "a query", sections)
    return blob_view(blob)


def _load(svc: TrackingService, dataset_id: str, version: str) -> DatasetView:
    repos = svc.repositories
    info = repos.get_repository(dataset_id)
    if svc.labels.get_attributes(info.id).get(DATASET_ATTRIBUTE) != DATASET_KIND:
        raise NotFound(f"repository {info.name!r} is not a dataset", id=dataset_id)
    commits = repos.log(info.id, "refs/heads/main", first_parent=True, limit=MAX_VERSIONS + 1)
    commits = [c for c in commits if c.parents]  # the branch's empty first commit is no version
    blobs = {c.id: repos.read_blobs(info.id, c.id, [BLOB_PATH]).get(BLOB_PATH) for c in commits}
    rows = [_row(c, blobs[c.id]) for c in commits[:MAX_VERSIONS]]
    chosen: VersionRow | None = rows[0] if rows else None
    if version:
        commit = repos.get_commit(info.id, version)  # a prefix is enough
        found = [r for r in rows if r.commit.id == commit.id]
        if not commit.parents:
            raise NotFound(f"{info.name!r} has no version {version!r}", id=version)
        chosen = found[0] if found else _row(commit, _read(svc, info.id, commit.id))
    blob, previous, runs = None, None, []
    if chosen is not None:
        value = blobs.get(chosen.commit.id) or _read(svc, info.id, chosen.commit.id)
        if isinstance(value, DatasetTree):
            blob = _files_view(svc, info.id, chosen.commit.id, value)
        else:
            blob = None if value is None else version_view(value)
        # the version before: the next row down, or (for one older than the list) its parent
        at = rows.index(chosen) if chosen in rows else -1
        if 0 <= at < len(rows) - 1:
            previous = rows[at + 1].commit
        elif at < 0:
            parent = repos.get_commit(info.id, chosen.commit.parents[0])
            previous = parent if parent.parents else None
        page_ = svc.search.find_runs(
            runs_of_version_query(chosen.commit.id),
            project_ids=[info.project_id],
            order_by=["-created_at"],
            limit=MAX_RUNS,
            columns=[],
        )
        runs = [record.info for record in page_.items]
    project = svc.entities.get_project(info.project_id)
    more = len(commits) > MAX_VERSIONS
    return DatasetView(info, project, rows, chosen, previous, blob, runs, more)


def _read(svc: TrackingService, dataset_id: str, commit: str) -> Any:
    return svc.repositories.read_blobs(dataset_id, commit, [BLOB_PATH]).get(BLOB_PATH)


def _files_view(svc: TrackingService, dataset_id: str, commit: str, head: DatasetTree) -> BlobView:
    """A tree version's files, read from its tree, as a folder's files are drawn (the
    first MAX_FILES of them; the summary gives the whole count and size)."""
    _, files = files_of(svc.repositories.read_blobs(dataset_id, commit))
    view = blob_view(PathDataset(files[:MAX_FILES], head.captured))
    n, size = head.files, do_filesizeformat(head.size, binary=True)
    cut = f", the first {MAX_FILES:,} shown" if len(files) > MAX_FILES else ""
    return BlobView(
        PathDataset.KIND, f"{n} file{'s' if n != 1 else ''}, {size}{cut}", view.sections
    )


@router.get("/datasets/{dataset_id}")
@page
async def dataset(request: Request, dataset_id: str, version: str = "") -> Response:
    view = await call(_load, service(request), dataset_id, version.strip())
    return render(
        request,
        "dataset.html",
        title=view.dataset.name,
        nav="projects",
        crumbs=view.crumbs,
        view=view,
    )


# -- links from other pages -----------------------------------------------------------------


def dataset_ids(svc: TrackingService, project_id: str) -> set[str]:
    """The ids of the project's repositories that are datasets (one search)."""
    query = DATASETS_QUERY
    found = svc.search.find_repositories(
        query, project_ids=[project_id], limit=svc.settings.max_search_limit
    )
    return {record.info.id for record in found.items}


@dataclass(frozen=True, slots=True)
class DatasetLink:
    key: str  # train, eval
    name: str  # the dataset's name
    version: str  # the version's (commit's) id
    dataset_id: str | None  # None: no dataset of that name in the run's project now


def dataset_links(
    svc: TrackingService, project_id: str, attributes: dict[str, Any]
) -> list[DatasetLink]:
    """A run's ``dataset.<key>`` attributes (``name@version``) as links, by key."""
    named: list[tuple[str, str, str]] = []
    for key, value in sorted(attributes.items()):
        if key.startswith(RUN_ATTRIBUTE_PREFIX) and isinstance(value, str) and "@" in value:
            name, _, version = value.rpartition("@")
            if _VERSION_ID.fullmatch(version):
                named.append((key.removeprefix(RUN_ATTRIBUTE_PREFIX), name, version))
    if not named:
        return []
    ids = {r.name: r.id for r in svc.repositories.list_repositories(project_id)}
    return [DatasetLink(key, name, version, ids.get(name)) for key, name, version in named]
