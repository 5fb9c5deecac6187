"""Datasets, as users hold them: a dataset is a repository of the current project marked as
one, whose versions are the commits of its branch ``main``, each holding one dataset blob
(files captured from a folder, an S3 prefix listed, a query recorded) at the path
``dataset``. Built on the repository API, so both backends serve it as they serve
repositories; a run links to a dataset version with a tag and an attribute."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cairn.client._checkout import CheckoutReport, checkout_components
from cairn.client._entities import Run
from cairn.client._repositories import Repository
from cairn.core.datasets import (
    BLOB_PATH,
    DATASET_ATTRIBUTE,
    DATASET_KIND,
    DATASETS_QUERY,
    RUN_ATTRIBUTE_PREFIX,
    RUN_TAG_PREFIX,
    runs_of_version_query,
)
from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.objects import Progress
from cairn.core.versioning.blobs import Blob, Component, PathDataset
from cairn.core.versioning.canonical import Json
from cairn.core.versioning.info import CommitInfo, RepositoryInfo

if TYPE_CHECKING:
    from cairn.client._client import Client
    from cairn.client._entities import Project

__all__ = [
    "DATASET_ATTRIBUTE",
    "CheckoutReport",
    "Dataset",
    "DatasetChange",
    "DatasetVersion",
    "log_dataset_version",
    "set_dataset",
]


def set_dataset(
    client: Client,
    project: Project,
    name: str,
    *,
    description: str | None = None,
    tags: Any = None,
) -> Dataset:
    """Get or create the dataset ``name`` in ``project``. A repository of that name that
    is not a dataset (it has commits of its own) is refused."""
    repositories = client._backend.repositories
    info = repositories.set_repository(
        project.id, name, description=description, owner=client._owner, tags=tags
    )
    dataset = Dataset(client, info)
    if dataset.get_attributes().get(DATASET_ATTRIBUTE) != DATASET_KIND:
        if repositories.get_commit(info.id, "refs/heads/main").parents:
            raise InvalidArgument(
                "name", f"{name!r} is a repository of ingredients, not a dataset: name another"
            )
        dataset.log_attribute(DATASET_ATTRIBUTE, DATASET_KIND)
    return dataset


def list_datasets(client: Client, project: Project) -> list[Dataset]:
    """The project's datasets, oldest first."""
    query = DATASETS_QUERY
    found: list[Dataset] = []
    cursor = None
    while True:
        page = client._backend.search.find_repositories(
            query, project_ids=[project.id], order_by=["created_at"], cursor=cursor
        )
        found += [Dataset(client, record.info) for record in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return found


def log_dataset_version(run: Run, key: str, version: DatasetVersion) -> None:
    """Say that ``run`` used ``version`` as its ``key`` (``train``, ``eval``)."""
    if not isinstance(version, DatasetVersion):
        raise InvalidArgument("version", f"must be a DatasetVersion, got {type(version).__name__}")
    run.log_attribute(f"{RUN_ATTRIBUTE_PREFIX}{key}", f"{version.dataset.name}@{version.id}")
    run.log_tag(f"{RUN_TAG_PREFIX}{version.id}")


class Dataset(Repository):
    """A repository of dataset versions (see the module). As a repository it also takes
    tags, attributes, a description, branches and tags of commits."""

    def __init__(self, client: Client, info: RepositoryInfo) -> None:
        super().__init__(client, info)

    def __repr__(self) -> str:
        return f"Dataset(id={self.id!r}, name={self.name!r})"

    def create_version(self, source: Any, *, message: str | None = None) -> DatasetVersion:
        """A new version from ``source``: ``Path(folder, capture=True)`` (the bytes are
        stored), ``Path(folder)`` (described only), ``S3("s3://bucket/prefix/")`` (listed,
        not downloaded), ``Query(...)``, or a dataset blob. If nothing changed since the
        latest version, that version (no new one is made)."""
        commit = self.get_commit(branch="main")
        commit.update(BLOB_PATH, source)
        blob = commit.staged[BLOB_PATH]
        if blob is None or not blob.KIND.startswith("dataset."):
            kind = "nothing" if blob is None else blob.KIND
            raise InvalidArgument("source", f"must make a dataset blob, made {kind}")
        try:
            commit.save(message or _default_message(blob))
        except InvalidArgument as exc:
            # nothing changed: the latest version is this one (asked of the store, which
            # compares tree ids, rather than reading the latest version's whole blob)
            if exc.details.get("field") == "changes" and "change nothing" in exc.message:
                return DatasetVersion(self, commit.info, blob)
            raise
        return DatasetVersion(self, commit.info, blob)

    def list_versions(self, *, limit: int | None = None) -> list[DatasetVersion]:
        """Every version, newest first."""
        commits = self._versions.log(self.id, "refs/heads/main", first_parent=True, limit=limit)
        return [DatasetVersion(self, c) for c in commits if c.parents]

    def get_version(self, id: str) -> DatasetVersion:
        """The version with this id (or a unique prefix of it, 7 characters or more)."""
        if not isinstance(id, str) or not id:
            raise InvalidArgument("id", "must be a version id or a prefix of one")
        info = self._versions.get_commit(self.id, id)
        if not info.parents:
            raise NotFound(f"{self.name!r} has no version {id!r}", id=id)
        return DatasetVersion(self, info)

    def latest(self) -> DatasetVersion | None:
        found = self.list_versions(limit=1)
        return found[0] if found else None


@dataclass(frozen=True, slots=True)
class DatasetChange:
    """One file (or other field) that differs between two versions. ``before``/``after``
    are what each side records (size, modified, digest...; None: absent there)."""

    status: Literal["added", "removed", "changed"]
    path: str
    before: Json
    after: Json

    def __str__(self) -> str:
        mark = {"added": "+", "removed": "-", "changed": "~"}[self.status]
        return f"{mark} {self.path}"


class DatasetVersion:
    """One version of a dataset: a commit of its branch ``main``; ``id`` is the commit's."""

    def __init__(self, dataset: Dataset, info: CommitInfo, blob: Blob | None = None) -> None:
        self.dataset = dataset
        self.info = info
        self._blob = blob

    @property
    def id(self) -> Digest:
        return self.info.id

    @property
    def message(self) -> str:
        return self.info.message

    @property
    def time(self) -> int:
        return self.info.time

    @property
    def author(self) -> str:
        return self.info.author

    def __repr__(self) -> str:
        return f"DatasetVersion(id={self.id[:12]!r}, dataset={self.dataset.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatasetVersion) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def blob(self) -> Blob:
        """What the version records (a ``PathDataset``, ``S3Dataset``, ``QueryDataset``)."""
        if self._blob is None:
            repositories = self.dataset._versions
            found = repositories.read_blobs(self.dataset.id, self.id, [BLOB_PATH])
            if BLOB_PATH not in found:
                raise NotFound(f"version {self.id} holds no dataset", id=self.id)
            self._blob = found[BLOB_PATH]
        return self._blob

    @property
    def files(self) -> tuple[Component, ...]:
        """The files of a local dataset (empty for other kinds)."""
        blob = self.blob
        return blob.components if isinstance(blob, PathDataset) else ()

    @property
    def size(self) -> int:
        return sum(c.size for c in self.files if c.link is None)

    def diff(self, other: DatasetVersion | str) -> list[DatasetChange]:
        """What changed from ``other`` to this version: each file added, removed or
        changed (and any other field of the record, such as an S3 object's ETag)."""
        base = other.id if isinstance(other, DatasetVersion) else other
        changes: list[DatasetChange] = []
        for path_change in self.dataset.diff(base, self.id):
            if path_change.path != BLOB_PATH:
                continue
            for change in path_change.fields:
                name = change.field[-1] if len(change.field) == 2 else change.name
                status: Literal["added", "removed", "changed"] = (
                    "added"
                    if change.before is None
                    else "removed"
                    if change.after is None
                    else "changed"
                )
                changes.append(DatasetChange(status, name, change.before, change.after))
        return changes

    def checkout(
        self,
        dest: str | os.PathLike[str],
        *,
        progress: Progress | None = None,
        link: bool = False,
    ) -> CheckoutReport:
        """Write the version's files under ``dest``, every byte verified; files already
        there with the right bytes are left as they are (not written again), links are
        made as links. ``link``: files are read-only hard links to the stored objects
        where the store can make them (embedded local store, same file system), copies
        elsewhere (the report says which). A path or link that would leave ``dest``, or
        a link where a folder goes, is refused before anything is written."""
        blob = self.blob
        if not isinstance(blob, PathDataset):
            raise InvalidArgument(
                "version", f"is a {blob.KIND} dataset: only captured local files check out"
            )
        if not blob.captured:
            raise InvalidArgument(
                "version",
                "was recorded without its bytes (Path(..., capture=False)): nothing to restore",
            )
        return checkout_components(
            self.dataset._client, blob.components, Path(dest), progress, link=link
        )

    def list_runs(self, *, include_deleted: bool = False) -> list[Run]:
        """The runs that logged this version (``run.log_dataset_version``)."""
        client = self.dataset._client
        runs: list[Run] = []
        cursor = None
        while True:
            page = client._backend.search.find_runs(
                runs_of_version_query(self.id),
                project_ids=[self.dataset.project_id],
                order_by=["created_at"],
                cursor=cursor,
                columns=[],
                include_deleted=include_deleted,
            )
            runs += [Run(client, record.info) for record in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return runs


def _default_message(blob: Blob) -> str:
    if isinstance(blob, PathDataset):
        size = sum(c.size for c in blob.components if c.link is None)
        return f"{len(blob.components)} files, {size} bytes"
    return blob.KIND
