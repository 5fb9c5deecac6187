"""The contract of the service: one ``Protocol`` per aggregate, and :class:`Backend`, which
gathers them.

Two implementations keep it: the in-process service (:class:`cairn.service.TrackingService`,
whose parts work on the stores) and the HTTP backend (``cairn.client._http.HttpBackend``,
whose parts make the same calls over REST). The client is written against
:class:`Backend` alone, so it works the same on either. ``tests/test_contracts.py``
compares each part of both sides with its protocol, method by method and parameter by
parameter: a method that one side gains or changes fails the test until the other side
and the protocol follow.

Importing this module loads no store, so the HTTP client can import it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from cairn.core.columns import MetricBatch, SeriesPoints
from cairn.core.digest import Digest
from cairn.core.identity import Role
from cairn.core.model import (
    ArtifactInfo,
    ExperimentInfo,
    HyperparameterValue,
    MetricPoint,
    MetricRecord,
    ProjectInfo,
    RunInfo,
    RunStatus,
)
from cairn.core.objects import ObjectInfo, Progress
from cairn.core.roles import RoleInfo
from cairn.core.search import ExperimentRecord, Page, ProjectRecord, RepositoryRecord, RunRecord
from cairn.core.tree import TreeEntry
from cairn.core.versioning.blobs import Blob, Field
from cairn.core.versioning.diff import PathChange
from cairn.core.versioning.info import (
    CommitInfo,
    MergeOutcome,
    RefInfo,
    RepositoryInfo,
    RunCommitInfo,
)
from cairn.core.versioning.merge import Resolution
from cairn.files.artifacts import ArtifactSource, ResolvedArtifact

__all__ = [
    "PARTS",
    "Artifacts",
    "Backend",
    "Entities",
    "Labels",
    "Metrics",
    "Repositories",
    "Roles",
    "Search",
]


class Entities(Protocol):
    """Projects, experiments and runs: get-or-create, lookups and the run lifecycle."""

    def set_project(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
    ) -> ProjectInfo:
        """Get the project called ``name``, creating it if needed (race-safe)."""
        ...

    def get_project(self, project_id: str) -> ProjectInfo: ...

    def get_project_by_name(self, name: str) -> ProjectInfo: ...

    def list_projects(self) -> list[ProjectInfo]:
        """The projects not deleted."""
        ...

    def delete_project(self, project_id: str) -> ProjectInfo:
        """Soft delete: hidden from listings, found by name still, restorable."""
        ...

    def restore_project(self, project_id: str) -> ProjectInfo: ...

    def set_experiment(
        self,
        project_id: str,
        name: str,
        *,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
    ) -> ExperimentInfo: ...

    def get_experiment(self, experiment_id: str) -> ExperimentInfo: ...

    def get_experiment_by_name(self, project_id: str, name: str) -> ExperimentInfo: ...

    def list_experiments(self, project_id: str) -> list[ExperimentInfo]:
        """The experiments of the project not deleted."""
        ...

    def delete_experiment(self, experiment_id: str) -> ExperimentInfo:
        """Soft delete: hidden from listings, found by name still, restorable."""
        ...

    def restore_experiment(self, experiment_id: str) -> ExperimentInfo: ...

    def create_run(
        self,
        experiment_id: str,
        name: str | None = None,
        *,
        parent_id: str | None = None,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
        captures: Mapping[str, tuple[str, str]] | None = None,
    ) -> RunInfo:
        """A new run; a generated unique name when ``name`` is None. ``captures``: what
        it captured as it started, by ingredients stored already (path -> (kind,
        digest)); ``NotFound``, and no run, if one is not stored."""
        ...

    def set_run(
        self,
        experiment_id: str,
        name: str,
        *,
        parent_id: str | None = None,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
    ) -> RunInfo:
        """Get the run called ``name`` in the experiment, creating it if needed."""
        ...

    def get_run(self, run_id: str) -> RunInfo: ...

    def get_run_by_name(self, experiment_id: str, name: str) -> RunInfo: ...

    def find_runs_by_id(self, fragment: str) -> list[RunInfo]:
        """Runs whose id starts or ends with ``fragment`` (8 to 32 hex digits, dashes and
        case ignored): how people give the short ids they see. At most 10."""
        ...

    def list_runs(self, experiment_id: str, *, include_deleted: bool = False) -> list[RunInfo]: ...

    def list_child_runs(self, run_id: str, *, include_deleted: bool = False) -> list[RunInfo]: ...

    def end_run(
        self,
        run_id: str,
        status: RunStatus | str = RunStatus.FINISHED,
        *,
        metrics: MetricBatch | None = None,
        idempotency_key: str | None = None,
    ) -> RunInfo:
        """Close the run's record as finished, failed or killed. Ending it again as the
        same is a no-op (a retry, a second handler); as another status a Conflict: the
        first end stands. ``metrics``: the run's last points, stored in the same
        transaction (a short run's end is one write, not two); a Conflict if the run has
        ended already, unless ``idempotency_key`` says this very call was applied."""
        ...

    def resume_run(self, run_id: str) -> RunInfo:
        """An ended (or crashed) run running again, to record more: its end time is
        cleared; metrics logged without a step continue after the last one."""
        ...

    def heartbeat(self, run_ids: Iterable[str]) -> int:
        """The runs' process is alive: of ``run_ids``, those running and not deleted are
        marked so (how many is returned); the others are left as they are."""
        ...

    def delete_run(self, run_id: str) -> RunInfo:
        """Soft delete: hidden from listings, restorable with restore_run."""
        ...

    def restore_run(self, run_id: str) -> RunInfo: ...

    def set_description(self, entity_id: str, description: str) -> None: ...


class Labels(Protocol):
    """Tags, attributes and hyperparameters: the small key/value metadata of entities."""

    def add_tags(self, entity_id: str, tags: Iterable[str]) -> None: ...

    def remove_tags(self, entity_id: str, tags: Iterable[str]) -> None: ...

    def get_tags(self, entity_id: str) -> list[str]: ...

    def set_attributes(self, entity_id: str, values: Mapping[str, Any]) -> None: ...

    def get_attributes(
        self, entity_id: str, keys: Iterable[str] | None = None
    ) -> dict[str, Any]: ...

    def remove_attributes(self, entity_id: str, keys: Iterable[str]) -> None: ...

    def log_hyperparameters(
        self, run_id: str, values: Mapping[str, Any], *, overwrite: bool = False
    ) -> None: ...

    def get_hyperparameters(self, run_id: str) -> dict[str, HyperparameterValue]: ...


class Metrics(Protocol):
    """Metric series: batched appends and reads of latest values and histories."""

    def log_metric_records(
        self,
        records: Sequence[MetricRecord],
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Append points given one by one (each checked), all or none."""
        ...

    def log_metric_batch(
        self,
        batch: MetricBatch,
        *,
        idempotency_key: str | None = None,
        validated: bool = False,
    ) -> None:
        """Append points, all or none. A batch sent again with the same
        ``idempotency_key`` is applied once; ``validated``: the caller checked every
        point already (the client's batcher), so the backend may skip its own checks."""
        ...

    def get_latest_metrics(
        self, run_id: str, keys: Iterable[str] | None = None
    ) -> dict[str, MetricPoint]:
        """Latest point per key: highest step, then latest timestamp."""
        ...

    def get_metric_history(self, run_id: str, key: str) -> SeriesPoints:
        """Every point of one series, in (step, timestamp) order."""
        ...


class Artifacts(Protocol):
    """Files and folders logged against projects, experiments and runs."""

    def log_artifact(
        self,
        entity_id: str,
        key: str,
        source: ArtifactSource,
        progress: Progress | None = None,
    ) -> ArtifactInfo:
        """Log a file, a folder (kept as a tree), bytes or a binary file object;
        ``progress`` is told of the bytes as they are stored."""
        ...

    def record_artifact(self, entity_id: str, key: str, kind: str, digest: str) -> ArtifactInfo:
        """Record objects that are already stored as an artifact (checked, never trusted)."""
        ...

    def list_artifacts(self, entity_id: str) -> list[ArtifactInfo]: ...

    def list_artifact_files(self, entity_id: str, key: str) -> list[TreeEntry]:
        """The files of an artifact (a tree lists each; a file lists itself)."""
        ...

    def resolve_artifact(self, entity_id: str, key: str) -> ResolvedArtifact:
        """What a key names: an artifact, a file inside a tree, or a folder of one."""
        ...

    def open_artifact(self, entity_id: str, key: str) -> BinaryIO:
        """A verifying read stream of a file artifact, or of a file inside a tree."""
        ...

    def download_artifact(
        self,
        entity_id: str,
        key: str,
        dest: str | os.PathLike[str],
        progress: Progress | None = None,
    ) -> Path:
        """Write an artifact under ``dest``: into it if it is a folder (or ends in '/'),
        else at ``dest`` itself. Every file is verified and written atomically."""
        ...


class Repositories(Protocol):
    """Versioned ingredients: repositories of typed blobs, commits, refs, log, diff, merge,
    revert, and the links of runs to the commits they were built from. A ``ref`` names a
    branch, a tag or a commit id (or a unique prefix of one, from 7 characters)."""

    def set_repository(
        self,
        project_id: str,
        name: str,
        *,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
    ) -> RepositoryInfo:
        """Get the repository called ``name`` in the project, creating it if needed (with
        an empty first commit on the branch ``main``)."""
        ...

    def get_repository(self, repository_id: str) -> RepositoryInfo: ...

    def get_repository_by_name(self, project_id: str, name: str) -> RepositoryInfo: ...

    def list_repositories(self, project_id: str) -> list[RepositoryInfo]: ...

    def get_commit(self, repository_id: str, ref: str) -> CommitInfo: ...

    def list_refs(self, repository_id: str) -> list[RefInfo]: ...

    def list_paths(self, repository_id: str, ref: str) -> dict[str, str]:
        """Every ingredient of a commit: path -> blob kind."""
        ...

    def read_blobs(
        self, repository_id: str, ref: str, paths: Iterable[str] | None = None
    ) -> dict[str, Blob]:
        """The blobs at ``paths`` of a commit (every one if None)."""
        ...

    def log(
        self,
        repository_id: str,
        ref: str,
        *,
        first_parent: bool = False,
        path: str | None = None,
        limit: int | None = None,
    ) -> list[CommitInfo]:
        """The commit ``ref`` names and its ancestors, newest first."""
        ...

    def diff(self, repository_id: str, a: str, b: str) -> list[PathChange]:
        """What changed from ``a`` to ``b``, path by path and field by field."""
        ...

    def save_commit(
        self,
        repository_id: str,
        branch: str,
        changes: Mapping[str, Blob | None],
        *,
        message: str,
        author: str = "",
        base: str | None = None,
    ) -> CommitInfo:
        """A new commit on ``branch`` with ``changes`` made (path -> blob, or None to
        remove); ``Conflict`` if the branch moved since ``base`` was read."""
        ...

    def missing_tree_objects(self, repository_id: str, digests: Iterable[str]) -> list[Digest]:
        """Those of ``digests`` (blobs and tree nodes) the store lacks: what a
        ``save_tree`` must send."""
        ...

    def save_tree(
        self,
        repository_id: str,
        branch: str,
        root: str,
        objects: Sequence[tuple[str, bytes]],
        *,
        message: str,
        author: str = "",
        base: str | None = None,
    ) -> CommitInfo:
        """A new commit on ``branch`` whose tree is ``root``, built by the caller; the
        objects (kind, canonical bytes) the store lacks are given, each checked. A root
        that is the head's is refused as ``save_commit`` refuses a change of nothing;
        ``Conflict`` if the branch moved since ``base`` was read."""
        ...

    def set_branch(
        self,
        repository_id: str,
        name: str,
        commit: str,
        *,
        expected: str | None = None,
        force: bool = False,
    ) -> RefInfo:
        """Create or move a branch (compare-and-swap from ``expected``)."""
        ...

    def create_tag(self, repository_id: str, name: str, commit: str) -> RefInfo: ...

    def merge(
        self,
        repository_id: str,
        source: str,
        into: str,
        *,
        message: str | None = None,
        author: str = "",
        resolutions: Mapping[tuple[str, Field | None], Resolution] | None = None,
        dry_run: bool = False,
        expected_source: str | None = None,
        expected_target: str | None = None,
    ) -> MergeOutcome:
        """Merge ``source`` into the branch ``into`` (three-way); conflicts stop it."""
        ...

    def revert(
        self,
        repository_id: str,
        commit: str,
        branch: str,
        *,
        message: str | None = None,
        author: str = "",
    ) -> CommitInfo:
        """A new commit on ``branch`` that undoes ``commit``."""
        ...

    def log_commit(
        self,
        run_id: str,
        repository_id: str,
        commit: str,
        key_paths: Mapping[str, str] | None = None,
    ) -> RunCommitInfo:
        """Link a run to the commit it was built from."""
        ...

    def get_run_commit(self, run_id: str) -> RunCommitInfo | None: ...

    def list_commit_runs(
        self, repository_id: str, commit: str, *, include_deleted: bool = False
    ) -> list[RunInfo]: ...

    def capture_run(self, run_id: str, captured: Mapping[str, Blob]) -> None:
        """What a run captured as it started (code, environment): path -> blob."""
        ...

    def link_capture(self, run_id: str, refs: Mapping[str, tuple[str, str]]) -> None:
        """What a run captured, named by blobs stored already: path -> (kind, digest).
        ``NotFound`` if one is not stored."""
        ...

    def get_run_capture(self, run_id: str) -> dict[str, Blob]: ...

    # Bytes that blobs name (a snapshot's files, a notebook, a dirty diff) go to the object
    # store before the commit that names them, and come back from it on checkout.
    def store_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo:
        """Store a file's bytes as an object (once per content)."""
        ...

    def store_bytes(self, data: bytes) -> ObjectInfo: ...

    def store_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Store many small objects at once (only those the store lacks are written or
        sent); their infos, in order."""
        ...

    def missing_objects(self, digests: Iterable[str]) -> list[Digest]:
        """Those of ``digests`` the store lacks (one question for many: a dataset captured
        again asks before trusting the digests it remembers)."""
        ...

    def fetch_object(
        self, digest: str, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        """Write an object to ``dest``, verified and atomically; its size."""
        ...


class Search(Protocol):
    """Runs, experiments and projects found with the query language (docs/search.md),
    whole, a keyset page at a time; ``limit`` at most ``max_search_limit``."""

    def find_runs(
        self,
        query: str = "",
        *,
        experiment_ids: Sequence[str] | None = None,
        project_ids: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        columns: Sequence[str] | None = None,
        include_deleted: bool = False,
    ) -> Page[RunRecord]:
        """Runs matching ``query`` (every run when empty), newest first unless
        ``order_by`` says otherwise, each with its values (``columns``: only those)."""
        ...

    def count_runs(
        self,
        query: str = "",
        *,
        experiment_ids: Sequence[str] | None = None,
        project_ids: Sequence[str] | None = None,
        include_deleted: bool = False,
    ) -> int: ...

    def find_experiments(
        self,
        query: str = "",
        *,
        project_ids: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> Page[ExperimentRecord]: ...

    def find_repositories(
        self,
        query: str = "",
        *,
        project_ids: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[RepositoryRecord]: ...

    def find_projects(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> Page[ProjectRecord]: ...


class Roles(Protocol):
    """Who may read, write or own a project (docs/roles.md): its owners' and admins' call."""

    def list_roles(self, project_id: str) -> list[RoleInfo]: ...

    def grant_role(self, project_id: str, user: str, role: Role | str) -> RoleInfo: ...

    def revoke_role(self, project_id: str, user: str) -> None: ...


class Backend(Protocol):
    """Everything the client asks of a store, in-process or over HTTP, one part per
    aggregate."""

    @property
    def entities(self) -> Entities: ...

    @property
    def labels(self) -> Labels: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def artifacts(self) -> Artifacts: ...

    @property
    def repositories(self) -> Repositories: ...

    @property
    def search(self) -> Search: ...

    @property
    def roles(self) -> Roles: ...

    def close(self) -> None: ...


# The parts of a Backend and the protocol each keeps (the contract test walks this).
PARTS: dict[str, type[Any]] = {
    "entities": Entities,
    "labels": Labels,
    "metrics": Metrics,
    "artifacts": Artifacts,
    "repositories": Repositories,
    "search": Search,
    "roles": Roles,
}
