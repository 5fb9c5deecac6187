"""The objects users hold: Project, Experiment and Run handles over a backend."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, overload

from cairn.client import _search
from cairn.client._search import ExperimentPage, RepositoryPage, RunPage
from cairn.core.errors import Conflict, InvalidArgument, NotFound
from cairn.core.model import (
    ArtifactInfo,
    ExperimentInfo,
    HyperparameterValue,
    MetricPoint,
    ProjectInfo,
    RunInfo,
    RunStatus,
)
from cairn.core.search import RunRecord
from cairn.core.tree import TreeEntry
from cairn.core.validation import check_metric_value, check_name, check_step, check_timestamp

if TYPE_CHECKING:
    from cairn.client._client import Client
    from cairn.client._columns import MetricColumns
    from cairn.client._datasets import Dataset, DatasetVersion
    from cairn.client._repositories import Commit
    from cairn.client._restore import RestoreReport
    from cairn.core.identity import Role
    from cairn.core.objects import Progress
    from cairn.core.roles import RoleInfo
    from cairn.core.versioning.blobs import Blob
    from cairn.files.artifacts import ArtifactSource

__all__ = ["Experiment", "Project", "Run"]

_POINTS_WITH_END = 1_000  # more than that at a run's end are flushed first, in batches


class _Entity:
    """What projects, experiments and runs share: tags, attributes, artifacts."""

    def __init__(self, client: Client, entity_id: str) -> None:
        self._client = client
        self._backend = client._backend
        self.id = entity_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Entity) and type(other) is type(self) and other.id == self.id

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.id))

    def set_description(self, description: str) -> None:
        self._backend.entities.set_description(self.id, description)

    # -- tags -------------------------------------------------------------------------
    def log_tag(self, tag: str) -> None:
        self._backend.labels.add_tags(self.id, [tag])

    def log_tags(self, tags: Iterable[str]) -> None:
        self._backend.labels.add_tags(self.id, tags)

    def remove_tag(self, tag: str) -> None:
        self._backend.labels.remove_tags(self.id, [tag])

    def get_tags(self) -> list[str]:
        return self._backend.labels.get_tags(self.id)

    # -- attributes -------------------------------------------------------------------
    def log_attribute(self, key: str, value: Any) -> None:
        self._backend.labels.set_attributes(self.id, {check_name(key, "attribute key"): value})

    def log_attributes(self, values: Mapping[str, Any]) -> None:
        self._backend.labels.set_attributes(self.id, values)

    def get_attribute(self, key: str) -> Any:
        found = self._backend.labels.get_attributes(self.id, [check_name(key, "attribute key")])
        if key not in found:
            raise NotFound(f"no attribute {key!r} on {self.id}", id=self.id, key=key)
        return found[key]

    def get_attributes(self) -> dict[str, Any]:
        return self._backend.labels.get_attributes(self.id)

    def remove_attribute(self, key: str) -> None:
        self._backend.labels.remove_attributes(self.id, [key])

    # -- artifacts --------------------------------------------------------------------
    def log_artifact(
        self, key: str, source: ArtifactSource, *, progress: Progress | None = None
    ) -> ArtifactInfo:
        """Log a file, a folder (kept as a tree), bytes or a binary file object.
        ``progress(n)`` is called as bytes of the source are stored, ``n`` new ones each
        time (bytes the store has already count at once)."""
        return self._backend.artifacts.log_artifact(self.id, key, source, progress)

    def list_artifacts(self) -> list[ArtifactInfo]:
        return self._backend.artifacts.list_artifacts(self.id)

    def list_artifact_files(self, key: str) -> list[TreeEntry]:
        return self._backend.artifacts.list_artifact_files(self.id, key)

    def download_artifact(
        self, key: str, dest: str | os.PathLike[str] = ".", *, progress: Progress | None = None
    ) -> Path:
        """Write an artifact (every file verified, written atomically) into ``dest`` if it
        is a folder or ends in '/', else at ``dest``; ``progress(n)`` as bytes land."""
        return self._backend.artifacts.download_artifact(self.id, key, dest, progress)

    def open_artifact(self, key: str) -> BinaryIO:
        return self._backend.artifacts.open_artifact(self.id, key)


class Project(_Entity):
    def __init__(self, client: Client, info: ProjectInfo) -> None:
        super().__init__(client, info.id)
        self.name = info.name

    @property
    def info(self) -> ProjectInfo:
        return self._backend.entities.get_project(self.id)

    def __repr__(self) -> str:
        return f"Project(id={self.id!r}, name={self.name!r})"

    def list_experiments(self) -> list[Experiment]:
        """Every experiment of the project not deleted, oldest first, fetched a page at a
        time."""
        return [
            Experiment(self._client, record.info)
            for record in _search.iter_experiments(self._backend, project_ids=[self.id])
        ]

    def find_runs(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        columns: Sequence[str] | None = None,
        include_deleted: bool = False,
    ) -> RunPage:
        """The project's runs matching ``query`` (see :meth:`Client.find_runs`)."""
        return _search.find_runs(
            self._backend,
            query,
            project_ids=[self.id],
            order_by=order_by,
            limit=limit,
            cursor=cursor,
            columns=columns,
            include_deleted=include_deleted,
        )

    def count_runs(self, query: str = "", *, include_deleted: bool = False) -> int:
        return self._backend.search.count_runs(
            query, project_ids=[self.id], include_deleted=include_deleted
        )

    def find_repositories(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RepositoryPage:
        """The project's repositories matching ``query``."""
        page = self._backend.search.find_repositories(
            query,
            project_ids=[self.id],
            order_by=order_by,
            limit=limit,
            cursor=cursor,
        )
        return _search.RepositoryPage(page.items, page.next_cursor)

    def set_dataset(self, name: str, **options: Any) -> Dataset:
        """Get or create the dataset ``name`` in this project (cairn.client._datasets)."""
        from cairn.client._datasets import set_dataset

        return set_dataset(self._client, self, name, **options)

    def list_datasets(self) -> list[Dataset]:
        from cairn.client._datasets import list_datasets

        return list_datasets(self._client, self)

    def find_experiments(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> ExperimentPage:
        """The project's experiments matching ``query``."""
        page = self._backend.search.find_experiments(
            query,
            project_ids=[self.id],
            order_by=order_by,
            limit=limit,
            cursor=cursor,
            include_deleted=include_deleted,
        )
        return _search.ExperimentPage(page.items, page.next_cursor)

    def set_experiment(self, name: str, **options: Any) -> Experiment:
        return self._client.set_experiment(name, project=self, **options)

    def get_experiment(self, name: str) -> Experiment:
        """The experiment called ``name`` (a deleted one too: ``info.deleted``);
        ``NotFound`` if there is none."""
        return Experiment(
            self._client, self._backend.entities.get_experiment_by_name(self.id, name)
        )

    def delete(self) -> None:
        """Soft delete: hidden from listings with its experiments and runs, kept,
        found by name still; :meth:`undelete` brings it back."""
        self._backend.entities.delete_project(self.id)

    def undelete(self) -> None:
        self._backend.entities.restore_project(self.id)

    # -- roles (docs/roles.md): the project's owners and admins ----------------------------
    def roles(self) -> list[RoleInfo]:
        """Who holds which role in the project (reader, writer, owner), by user name."""
        return self._backend.roles.list_roles(self.id)

    def grant(self, user: str, role: Role | str) -> RoleInfo:
        """Give ``user`` ``role`` (``"reader"``, ``"writer"`` or ``"owner"``) in the
        project, replacing the role it held."""
        return self._backend.roles.grant_role(self.id, user, role)

    def revoke(self, user: str) -> None:
        """Take away the role ``user`` holds in the project (the last owner stays)."""
        self._backend.roles.revoke_role(self.id, user)


class Experiment(_Entity):
    def __init__(self, client: Client, info: ExperimentInfo) -> None:
        super().__init__(client, info.id)
        self.name = info.name
        self.project_id = info.project_id

    @property
    def info(self) -> ExperimentInfo:
        return self._backend.entities.get_experiment(self.id)

    def __repr__(self) -> str:
        return f"Experiment(id={self.id!r}, name={self.name!r})"

    def list_runs(self, *, include_deleted: bool = False) -> list[Run]:
        """Every run of the experiment, oldest first, fetched a page at a time (use
        :meth:`find_runs` for one page, with values)."""
        found = _search.iter_runs(
            self._backend,
            "",
            page_size=_search.LIST_PAGE,
            experiment_ids=[self.id],
            order_by=["id"],
            columns=[],
            include_deleted=include_deleted,
        )
        return [Run(self._client, record.info) for record in found]

    def find_runs(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        columns: Sequence[str] | None = None,
        include_deleted: bool = False,
    ) -> RunPage:
        """The experiment's runs matching ``query``, e.g. ``"status = 'finished' and
        hyperparameters.model in ('gbm', 'rf')"`` (see :meth:`Client.find_runs`)."""
        return _search.find_runs(
            self._backend,
            query,
            experiment_ids=[self.id],
            order_by=order_by,
            limit=limit,
            cursor=cursor,
            columns=columns,
            include_deleted=include_deleted,
        )

    def iter_runs(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | str | None = None,
        columns: Sequence[str] | None = None,
        include_deleted: bool = False,
        page_size: int = 1000,
    ) -> Iterator[RunRecord]:
        """Every run :meth:`find_runs` finds, fetched a page at a time."""
        return _search.iter_runs(
            self._backend,
            query,
            page_size=page_size,
            experiment_ids=[self.id],
            order_by=order_by,
            columns=columns,
            include_deleted=include_deleted,
        )

    def count_runs(self, query: str = "", *, include_deleted: bool = False) -> int:
        return self._backend.search.count_runs(
            query, experiment_ids=[self.id], include_deleted=include_deleted
        )

    def delete(self) -> None:
        """Soft delete: hidden from listings, kept, found by name still;
        :meth:`undelete` brings it back."""
        self._backend.entities.delete_experiment(self.id)

    def undelete(self) -> None:
        self._backend.entities.restore_experiment(self.id)


class Run(_Entity):
    """One training or evaluation execution. A context manager: leaving the block
    ends the run as finished, or failed if the block raised."""

    def __init__(self, client: Client, info: RunInfo) -> None:
        super().__init__(client, info.id)
        self.name = info.name
        self.experiment_id = info.experiment_id
        self.project_id = info.project_id
        self.parent_id = info.parent_id
        self._batcher = client._batcher
        self._clock = client._clock
        self._keys = client._metric_keys  # keys that passed check_name
        self._ended = False  # this handle ended the run (a with block then leaves it be)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.name!r})"

    @property
    def info(self) -> RunInfo:
        return self._backend.entities.get_run(self.id)

    @property
    def status(self) -> RunStatus:
        return self.info.status

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ended:  # ended inside the block, or by SIGTERM: that end stands
            return
        if exc_type is None or (
            isinstance(exc, SystemExit) and exc.code in (0, None)  # sys.exit(0)
        ):
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED)
        else:
            try:
                self.end(RunStatus.FAILED)
            except Exception as end_error:  # the block's own error matters more
                if exc is not None:
                    exc.add_note(f"cairn: could not mark run {self.id} failed: {end_error}")

    # -- hyperparameters --------------------------------------------------------------
    def log_hyperparameter(self, key: str, value: Any, *, overwrite: bool = False) -> None:
        self._backend.labels.log_hyperparameters(
            self.id, {check_name(key, "hyperparameter key"): value}, overwrite=overwrite
        )

    def log_hyperparameters(self, values: Mapping[str, Any], *, overwrite: bool = False) -> None:
        self._backend.labels.log_hyperparameters(self.id, values, overwrite=overwrite)

    def get_hyperparameters(self) -> dict[str, HyperparameterValue]:
        return self._backend.labels.get_hyperparameters(self.id)

    def get_hyperparameter(self, key: str) -> HyperparameterValue:
        values = self.get_hyperparameters()
        if check_name(key, "hyperparameter key") not in values:
            raise NotFound(f"no hyperparameter {key!r} on run {self.id}", id=self.id, key=key)
        return values[key]

    # -- metrics (queued; written in the background) -----------------------------------
    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Queue one point. ``step`` defaults to the next step of the key, ``timestamp``
        (ms) to now. Returns at once; a write error surfaces on a later call."""
        if self._ended:
            raise self._closed()
        if type(value) is not float:
            value = check_metric_value(value, f"metric {key!r}")
        ts = self._clock() if timestamp is None else check_timestamp(timestamp)
        if type(key) is not str or key not in self._keys:  # each key checked once
            self._keys.add(check_name(key, "metric key"))
        self._batcher.log(self.id, key, None if step is None else check_step(step), ts, value)

    def log_metrics(
        self, values: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Queue one point per key, all with the same step and timestamp. All or
        nothing: a bad key or value refuses the whole call."""
        if self._ended:
            raise self._closed()
        if not isinstance(values, Mapping):
            raise InvalidArgument("metrics", f"must be a mapping, got {type(values).__name__}")
        ts = self._clock() if timestamp is None else check_timestamp(timestamp)
        if step is not None:
            step = check_step(step)
        keys = self._keys
        points = []
        for key, raw in values.items():  # check everything before anything is queued
            value = raw if type(raw) is float else check_metric_value(raw, f"metric {key!r}")
            if type(key) is not str or key not in keys:
                keys.add(check_name(key, "metric key"))
            points.append((key, value))
        self._batcher.log_many(self.id, points, step, ts)

    def flush(self) -> None:
        """Wait until every metric queued so far is stored; raise a failed write."""
        self._batcher.flush()

    def get_metric(self, key: str) -> float:
        """The latest value of a metric (highest step, then latest timestamp)."""
        point = self.get_metrics_latest([check_name(key, "metric key")]).get(key)
        if point is None:
            raise NotFound(f"no metric {key!r} on run {self.id}", id=self.id, key=key)
        return point.value

    def get_metrics(self) -> dict[str, float]:
        """Latest value of every metric."""
        return {k: p.value for k, p in self.get_metrics_latest().items()}

    def get_metrics_latest(self, keys: Iterable[str] | None = None) -> dict[str, MetricPoint]:
        self._batcher.flush()  # read-your-writes
        return self._backend.metrics.get_latest_metrics(self.id, keys)

    def get_metric_history(self, key: str) -> list[MetricPoint]:
        """Every (step, timestamp, value) of a metric, in step order. For a long one,
        :meth:`get_metric_columns` costs a tenth of the memory."""
        self._batcher.flush()
        history = self._backend.metrics.get_metric_history(self.id, key)
        # The collector is paused while the points are made: they hold only numbers, so
        # they form no cycles, and a million new tuples would trigger dozens of useless
        # collections (twice as slow).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return history.points()
        finally:
            if enabled:
                gc.enable()

    def get_metric_columns(self, key: str) -> MetricColumns:
        """Every point of a metric as three arrays (``steps``, ``timestamps`` in ms,
        ``values``), in (step, timestamp) order: 24 bytes a point, no object per point.
        ``.to_pandas()`` makes a DataFrame of them (needs pandas)."""
        from cairn.client._columns import MetricColumns

        self._batcher.flush()
        found = self._backend.metrics.get_metric_history(self.id, key)
        return MetricColumns(found.steps, found.timestamps, found.values)

    # -- lifecycle --------------------------------------------------------------------
    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush queued metrics, then close the run's record: ``finished``, ``failed``
        or ``killed``, with its end time. Its metrics, hyperparameters and artifacts are
        closed from then on (a ``Conflict``) until :meth:`resume`; tags, attributes and
        the description stay editable. Ending it again as the same is a no-op; as
        another status a ``Conflict``."""
        final = RunStatus.parse(status)
        taken = None
        try:
            self._client._capture.wait(self.id)
            # The run's last points go with its end, in one write (a short run's two
            # metrics and its end: one transaction, or one request); else a flush first.
            taken = self._batcher.take(self.id, _POINTS_WITH_END)
            if taken is None:
                self._batcher.flush()
        finally:
            try:
                metrics = None if taken is None else taken[0]
                self._backend.entities.end_run(self.id, final, metrics=metrics or None)
            finally:
                if taken is not None:
                    self._batcher.settle(taken[1])
            self._batcher.forget(self.id)  # a sweep of many runs keeps no state per run
            self._ended = True
            self._client._untrack(self.id)

    def _closed(self) -> Conflict:
        """What logging a metric through a handle that ended its run raises at once (the
        store would refuse it anyway, but only on a later call)."""
        return Conflict(
            f"run {self.id} has ended: its metrics are closed; resume it first (run.resume())",
            id=self.id,
        )

    def resume(self) -> None:
        """Make the ended (or crashed) run running again, to record more: metrics logged
        without a step continue after its last step."""
        self._client.resume_run(self.id)
        self._ended = False

    # -- versioning -------------------------------------------------------------------
    def log_commit(self, commit: Commit, key_paths: Mapping[str, str] | None = None) -> None:
        """Link this run to the commit of ingredients it was built from; ``key_paths`` says
        which path was which (``{"data": "data/train", "hp": "config/hp"}``). A run links
        to one commit (the same one again may add keys)."""
        from cairn.client._repositories import Commit

        if not isinstance(commit, Commit):
            raise InvalidArgument("commit", f"must be a Commit, got {type(commit).__name__}")
        self._backend.repositories.log_commit(self.id, commit.repository.id, commit.id, key_paths)

    def log_dataset_version(self, key: str, version: DatasetVersion) -> None:
        """Say that this run used a dataset version as its ``key`` (``train``, ``eval``);
        ``version.list_runs()`` lists it, ``get_dataset_versions()`` reads it back."""
        from cairn.client._datasets import log_dataset_version

        log_dataset_version(self, key, version)

    def get_dataset_versions(self) -> dict[str, str]:
        """key -> ``DATASET@VERSION_ID`` for each dataset version the run logged."""
        from cairn.core.datasets import RUN_ATTRIBUTE_PREFIX

        return {
            key.removeprefix(RUN_ATTRIBUTE_PREFIX): value
            for key, value in self.get_attributes().items()
            if key.startswith(RUN_ATTRIBUTE_PREFIX) and isinstance(value, str)
        }

    def get_commit(self) -> Commit | None:
        """The commit this run was built from, or None."""
        from cairn.client._repositories import Commit, Repository

        link = self._backend.repositories.get_run_commit(self.id)
        if link is None:
            return None
        repository = Repository(
            self._client, self._backend.repositories.get_repository(link.repository_id)
        )
        return Commit(repository, self._backend.repositories.get_commit(repository.id, link.commit))

    def get_capture(self) -> dict[str, Blob]:
        """What the run recorded of itself as it started: ``code/git`` (a git reference,
        with the uncommitted diff stored) and ``environment/python`` (a Python
        environment), as captured."""
        self._client._capture.wait(self.id)
        return self._backend.repositories.get_run_capture(self.id)

    @overload
    def restore(self) -> None: ...

    @overload
    def restore(self, dest: str | os.PathLike[str]) -> RestoreReport: ...

    def restore(self, dest: str | os.PathLike[str] | None = None) -> RestoreReport | None:
        """Time travel: write everything this run was built from under ``dest``: its
        commit's ingredients (``ingredients/``), the code and environment it recorded as it
        started (``captured/``) and its hyperparameters, verified; the report says what
        could not be restored exactly (a git commit never pushed: its reference and diff
        only). Without ``dest``, undo a soft delete (as :meth:`undelete`)."""
        if dest is None:
            self.undelete()
            return None
        from cairn.client._restore import restore_run

        return restore_run(self, dest)

    def get_commit_paths(self) -> dict[str, str]:
        """Which path of the linked commit was which ingredient (``{}`` if none)."""
        link = self._backend.repositories.get_run_commit(self.id)
        return {} if link is None else dict(link.key_paths)

    def get_children(self) -> list[Run]:
        return [Run(self._client, r) for r in self._backend.entities.list_child_runs(self.id)]

    def delete(self) -> None:
        """Soft delete (flushes first); ``client.restore_run(run.id)`` brings it back."""
        self._batcher.flush()
        self._backend.entities.delete_run(self.id)

    def undelete(self) -> None:
        """Undo a soft delete."""
        self._backend.entities.restore_run(self.id)
