"""Datasets, as users hold them: a dataset is a repository of the current project marked as
one, whose versions are the commits of its branch ``main``. A version of local files is a
tree (:mod:`cairn.core.datasets`): a ``dataset.tree`` blob at ``dataset`` and one
``dataset.file`` blob per file under ``files/``, built here where the files are read and
compared with the latest version's root, so an unchanged capture sends nothing and a
one-file change sends the nodes along that file's path. An S3 prefix listed or a query
recorded is one blob at ``dataset``; versions made before trees (one ``dataset.path`` blob
listing every file) are read as they are. Built on the repository API, so both backends
serve it as they serve repositories; a run links to a dataset version with a tag and an
attribute."""

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
    FILES_PATH,
    RUN_ATTRIBUTE_PREFIX,
    RUN_TAG_PREFIX,
    files_of,
    runs_of_version_query,
    version_tree,
)
from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.objects import Progress
from cairn.core.versioning.blobs import (
    Blob,
    Component,
    DatasetFile,
    DatasetTree,
    PathDataset,
    S3Dataset,
)
from cairn.core.versioning.canonical import Json
from cairn.core.versioning.diff import diff_blobs
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
        versions = self._versions
        if isinstance(source, Blob):
            record = source
        elif callable(getattr(source, "resolve", None)):
            record = source.resolve(versions)  # files read and (captured) stored here
            if not isinstance(record, Blob):
                raise InvalidArgument("source", "the ingredient did not make a blob")
        else:
            raise InvalidArgument(
                "source", f"must be a dataset source or blob, got {type(source).__name__}"
            )
        tree = version_tree(record)  # refuses a blob that is no dataset
        head = versions.get_commit(self.id, "refs/heads/main")
        if head.root == tree.root:  # nothing changed: the latest version is this one
            return DatasetVersion(self, head, record)
        # the nodes the store lacks (one question), and they and their blobs sent: a
        # folder the store has is whole there, so unchanged folders send nothing
        missing = versions.missing_tree_objects(self.id, list(tree.nodes))
        info = versions.save_tree(
            self.id,
            "main",
            tree.root,
            tree.to_send(missing),
            message=message or _default_message(record),
            author=self._client._owner,
            base=head.id,
        )
        return DatasetVersion(self, info, record)

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

    def __init__(self, dataset: Dataset, info: CommitInfo, record: Blob | None = None) -> None:
        self.dataset = dataset
        self.info = info
        # what was read of it: the blob at ``dataset``; the files (for local files)
        self._head: Blob | None = None
        self._files: tuple[Component, ...] | None = None
        self._record: Blob | None = None  # the record as made (a PathDataset for files)
        if isinstance(record, PathDataset):
            self._record, self._files = record, record.components
            size = sum(c.size for c in record.components if c.link is None)
            self._head = DatasetTree(len(record.components), size, record.captured)
        elif record is not None:
            self._head = self._record = record

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

    def _at_head(self) -> Blob:
        """The blob at ``dataset``: a tree version's summary, or the whole record."""
        if self._head is None:
            repositories = self.dataset._versions
            try:
                found = repositories.read_blobs(self.dataset.id, self.id, [BLOB_PATH])
            except NotFound:
                found = {}
            if BLOB_PATH not in found:
                raise NotFound(f"version {self.id} holds no dataset", id=self.id)
            self._head = found[BLOB_PATH]
        return self._head

    @property
    def kind(self) -> str:
        """``dataset.path`` (local files, however stored), ``dataset.s3`` or
        ``dataset.query``."""
        head = self._at_head()
        return PathDataset.KIND if isinstance(head, DatasetTree) else head.KIND

    @property
    def blob(self) -> Blob:
        """What the version records (a ``PathDataset``, ``S3Dataset``, ``QueryDataset``).
        A version of local files kept as a tree is given as the one ``PathDataset`` its
        files make (read whole: ``files``, ``file_count`` and ``size`` read less)."""
        if self._record is None:
            head = self._at_head()
            if isinstance(head, DatasetTree):
                self._record = PathDataset(self.files, head.captured)
            else:
                self._record = head
        return self._record

    @property
    def captured(self) -> bool:
        """The files' bytes are stored (the version can be checked out)."""
        head = self._at_head()
        return isinstance(head, DatasetTree | PathDataset | S3Dataset) and head.captured

    @property
    def files(self) -> tuple[Component, ...]:
        """The files of a local dataset, in path order (empty for other kinds)."""
        if self._files is None:
            head = self._at_head()
            if isinstance(head, PathDataset):
                self._files = head.components
            elif isinstance(head, DatasetTree):
                blobs = self.dataset._versions.read_blobs(self.dataset.id, self.id)
                self._files = files_of(blobs)[1]
            else:
                self._files = ()
        return self._files

    @property
    def file_count(self) -> int:
        """How many files (objects, for S3) the version holds; 0 for a query. A tree
        version says so in its summary: its files are not read."""
        head = self._at_head()
        if isinstance(head, DatasetTree):
            return head.files
        if isinstance(head, S3Dataset):
            return len(head.entries)
        return len(self.files)

    @property
    def size(self) -> int:
        """The bytes of its files (links not counted) or S3 objects."""
        head = self._at_head()
        if isinstance(head, DatasetTree | S3Dataset):
            return head.size
        return sum(c.size for c in self.files if c.link is None)

    def diff(self, other: DatasetVersion | str) -> list[DatasetChange]:
        """What changed from ``other`` to this version: each file added, removed or
        changed (and any other field of the record, such as an S3 object's ETag). Two
        tree versions are compared by the store, folder by folder, reading only the
        folders that differ."""
        base = other.id if isinstance(other, DatasetVersion) else other
        changes = self.dataset.diff(base, self.id)
        head = next((c for c in changes if c.path == BLOB_PATH), None)
        if (
            head is not None
            and head.before is not None
            and head.after is not None
            and head.before.KIND != head.after.KIND
        ):
            # the record changed kind (an old version against a tree one, files against
            # an S3 prefix): each side's entries read whole and compared
            before = other if isinstance(other, DatasetVersion) else self.dataset.get_version(base)
            return _compare(_entries(before), _entries(self))
        found: list[DatasetChange] = []
        prefix = FILES_PATH + "/"
        for change in changes:
            if change.path.startswith(prefix) and (
                isinstance(change.before, DatasetFile | None)
                and isinstance(change.after, DatasetFile | None)
            ):
                old, new = _value(change.before), _value(change.after)
                if old != new:  # else only ``captured`` differs: the same file
                    found.append(_change(change.path.removeprefix(prefix), old, new))
            elif change.path == BLOB_PATH and not isinstance(change.after, DatasetTree):
                for field in change.fields:
                    name = field.field[-1] if len(field.field) == 2 else field.name
                    found.append(_change(name, field.before, field.after))
        return found

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
        head = self._at_head()
        if isinstance(head, S3Dataset) and head.captured:  # S3(..., capture=True)
            files = head.components()
        elif self.kind != PathDataset.KIND:
            raise InvalidArgument(
                "version",
                f"is a {self.kind} dataset: only captured local files check out "
                "(and S3 prefixes captured with S3(..., capture=True))",
            )
        elif not self.captured:
            raise InvalidArgument(
                "version",
                "was recorded without its bytes (Path(..., capture=False)): nothing to restore",
            )
        else:
            files = self.files
        return checkout_components(self.dataset._client, files, Path(dest), progress, link=link)

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


def _value(blob: DatasetFile | None) -> Json:
    """A file as a diff shows it: as a component's canonical form (no ``captured``)."""
    if blob is None:
        return None
    found = blob.body()
    found.pop("captured", None)
    return found


def _change(name: str, before: Json, after: Json) -> DatasetChange:
    status: Literal["added", "removed", "changed"] = (
        "added" if before is None else "removed" if after is None else "changed"
    )
    return DatasetChange(status, name, before, after)


def _entries(version: DatasetVersion) -> dict[str, Json]:
    """A version's entries by name, as a diff compares them: files (path -> component),
    S3 objects (key -> object), a query's fields."""
    head = version._at_head()
    if isinstance(head, DatasetTree | PathDataset):
        return {c.path: c.value() for c in version.files}
    return {
        change.name if len(change.field) == 1 else change.field[-1]: change.after
        for change in diff_blobs(None, head)
    }


def _compare(before: dict[str, Json], after: dict[str, Json]) -> list[DatasetChange]:
    names = sorted(before.keys() | after.keys(), key=lambda n: n.split("/"))
    return [
        _change(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    ]
