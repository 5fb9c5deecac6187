"""Repository pages: a repository (branches, tags, the commit log with its graph of
merges), a commit (its facts and the tree of ingredients, each blob kind drawn for
people), the diff of any two commits (per path, per field, worded per kind) and a merge of
two branches computed without committing (``dry_run``): what it would change, and each
conflict's base, ours and theirs.

Links name commits by id (a branch or tag name only goes in a query string), so a hostile
ref name never becomes a path. Each page reads everything in one worker-thread call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument
from cairn.core.model import ProjectInfo
from cairn.core.versioning.info import CommitInfo, MergeOutcome, RefInfo, RepositoryInfo
from cairn.service import TrackingService
from cairn.ui.commit_graph import GraphRow, graph_rows, newest_first
from cairn.ui.ingredients import (
    BlobView,
    ConflictRow,
    PathDiff,
    blob_view,
    conflict_row,
    path_diff,
)
from cairn.ui.render import call, page, render, service

__all__ = ["router"]

router = APIRouter()

LOG_LIMIT = 300  # commits in the log (and in the diff page's pickers)
MAX_BLOBS = 500  # ingredients drawn on a commit page; the rest are listed by path
MAX_DIFF_PATHS = 300  # paths of a diff shown field by field; the rest by path only


@dataclass(frozen=True, slots=True)
class Place:
    """A repository, its project, its refs (by commit), for every repository page."""

    repository: RepositoryInfo
    project: ProjectInfo
    refs: list[RefInfo]

    @property
    def branches(self) -> list[RefInfo]:
        return [r for r in self.refs if r.kind == "branch"]

    @property
    def tags(self) -> list[RefInfo]:
        return [r for r in self.refs if r.kind == "tag"]

    def names_of(self, commit: str) -> list[RefInfo]:
        return [r for r in self.refs if r.commit == commit]

    @property
    def crumbs(self) -> list[tuple[str, str]]:
        return [
            ("Projects", "/"),
            (self.project.name, f"/projects/{self.project.id}"),
            (self.repository.name, f"/repositories/{self.repository.id}"),
        ]


def _place(svc: TrackingService, repository_id: str) -> Place:
    repository = svc.repositories.get_repository(repository_id)
    refs = sorted(svc.repositories.list_refs(repository_id), key=lambda r: (r.kind, r.name))
    return Place(repository, svc.entities.get_project(repository.project_id), refs)


def _log(svc: TrackingService, place: Place, ref: str | None) -> list[CommitInfo]:
    """The log of ``ref``, or of every branch and tag together, newest first (the newest
    LOG_LIMIT commits). Refs are walked newest first, and one is skipped when its commit
    is already listed, or older than the LOG_LIMIT commits found so far (so are all its
    ancestors): a repository of many merged branches costs a walk or two, not one each."""
    repos, repository_id = svc.repositories, place.repository.id
    if ref:
        return repos.log(repository_id, ref, limit=LOG_LIMIT)
    heads = [repos.get_commit(repository_id, d) for d in sorted({r.commit for r in place.refs})]
    found: dict[Digest, CommitInfo] = {}
    for head in sorted(heads, key=lambda c: -c.time):
        if head.id in found:
            continue
        if len(found) >= LOG_LIMIT:
            cut = sorted((c.time for c in found.values()), reverse=True)[LOG_LIMIT - 1]
            if head.time < cut:
                continue
        for commit in repos.log(repository_id, head.id, limit=LOG_LIMIT):
            found.setdefault(commit.id, commit)
    return newest_first(found.values())[:LOG_LIMIT]


# -- the repository -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepositoryView:
    place: Place
    rows: list[GraphRow]
    heads: dict[Digest, CommitInfo]  # ref's commit id -> that commit
    ref: str | None
    more: bool  # the log was cut at LOG_LIMIT


def _repository(svc: TrackingService, repository_id: str, ref: str | None) -> RepositoryView:
    place = _place(svc, repository_id)
    commits = _log(svc, place, ref)
    heads = {c.id: c for c in commits}
    for r in place.refs:
        if r.commit not in heads:
            heads[r.commit] = svc.repositories.get_commit(repository_id, r.commit)
    return RepositoryView(place, graph_rows(commits), heads, ref, len(commits) >= LOG_LIMIT)


@router.get("/repositories/{repository_id}")
@page
async def repository(request: Request, repository_id: str, ref: str | None = None) -> Response:
    view = await call(_repository, service(request), repository_id, ref or None)
    info = view.place.repository
    return render(
        request,
        "repository.html",
        title=info.name,
        nav="projects",
        crumbs=view.place.crumbs[:2],
        view=view,
    )


# -- a commit -------------------------------------------------------------------------------


@dataclass
class TreeFolder:
    name: str
    folders: dict[str, TreeFolder] = field(default_factory=dict)
    blobs: list[tuple[str, str, BlobView | None]] = field(default_factory=list)  # name, path

    def sorted_folders(self) -> list[TreeFolder]:
        return [self.folders[k] for k in sorted(self.folders)]


def tree_of(paths: dict[str, str], blobs: dict[str, Any]) -> TreeFolder:
    """Paths split at their slashes into folders; a blob drawn if it was read."""
    root = TreeFolder("")
    for path in sorted(paths, key=lambda p: p.split("/")):
        *folders, name = path.split("/")
        here = root
        for part in folders:
            here = here.folders.setdefault(part, TreeFolder(part))
        blob = blobs.get(path)
        here.blobs.append((name, path, None if blob is None else blob_view(blob)))
    return root


@dataclass(frozen=True, slots=True)
class CommitView:
    place: Place
    commit: CommitInfo
    kinds: dict[str, str]  # path -> blob kind
    tree: TreeFolder
    drawn: int  # blobs drawn (MAX_BLOBS at most)


def _commit(svc: TrackingService, repository_id: str, ref: str) -> CommitView:
    place = _place(svc, repository_id)
    repos = svc.repositories
    commit = repos.get_commit(repository_id, ref)
    every = repos.read_blobs(repository_id, commit.id)  # read in a few batched queries
    kinds = {path: blob.KIND for path, blob in every.items()}
    drawn = {path: every[path] for path in sorted(every)[:MAX_BLOBS]}
    return CommitView(place, commit, kinds, tree_of(kinds, drawn), len(drawn))


@router.get("/repositories/{repository_id}/commits/{ref:path}")
@page
async def commit_page(request: Request, repository_id: str, ref: str) -> Response:
    view = await call(_commit, service(request), repository_id, ref)
    return render(
        request,
        "commit.html",
        title=f"Commit {view.commit.id[:12]}",
        nav="projects",
        crumbs=view.place.crumbs,
        view=view,
    )


# -- the diff of two commits ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiffView:
    place: Place
    choices: list[CommitInfo]  # commits to pick from (the log of every ref)
    base: CommitInfo | None
    other: CommitInfo | None
    paths: list[PathDiff]


def _diff(svc: TrackingService, repository_id: str, base: str, other: str) -> DiffView:
    place = _place(svc, repository_id)
    repos = svc.repositories
    choices = _log(svc, place, None)
    if not (base and other):
        return DiffView(place, choices, None, None, [])
    first = repos.get_commit(repository_id, base)
    second = repos.get_commit(repository_id, other)
    changes = repos.diff(repository_id, first.id, second.id)
    paths = [path_diff(c, fields=i < MAX_DIFF_PATHS) for i, c in enumerate(changes)]
    return DiffView(place, choices, first, second, paths)


@router.get("/repositories/{repository_id}/diff")
@page
async def diff_page(
    request: Request, repository_id: str, base: str = "", other: str = ""
) -> Response:
    view = await call(_diff, service(request), repository_id, base.strip(), other.strip())
    title = "Diff"
    if view.base is not None and view.other is not None:
        title = f"Diff {view.base.id[:10]}..{view.other.id[:10]}"
    return render(
        request, "diff.html", title=title, nav="projects", crumbs=view.place.crumbs, view=view
    )


# -- a merge, computed without committing ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class MergeView:
    place: Place
    source: str
    into: str
    outcome: MergeOutcome | None
    conflicts: list[ConflictRow]
    commits: dict[Digest, CommitInfo]  # base, ours, theirs by id


def _merge(svc: TrackingService, repository_id: str, source: str, into: str) -> MergeView:
    place = _place(svc, repository_id)
    if not (source and into):
        return MergeView(place, source, into, None, [], {})
    if into not in {b.name for b in place.branches}:
        raise InvalidArgument("into", f"must be a branch of this repository, not {into!r}")
    repos = svc.repositories
    outcome = repos.merge(repository_id, source, into, dry_run=True)
    ids = {outcome.source, outcome.target} | ({outcome.base} if outcome.base else set())
    commits = {d: repos.get_commit(repository_id, d) for d in ids}
    conflicts = [conflict_row(c) for c in outcome.conflicts]
    return MergeView(place, source, into, outcome, conflicts, commits)


@router.get("/repositories/{repository_id}/merge")
@page
async def merge_page(
    request: Request, repository_id: str, source: str = "", into: str = ""
) -> Response:
    view = await call(_merge, service(request), repository_id, source.strip(), into.strip())
    title = f"Merge {view.source} into {view.into}" if view.outcome else "Merge"
    return render(
        request, "conflicts.html", title=title, nav="projects", crumbs=view.place.crumbs, view=view
    )
