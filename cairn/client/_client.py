"""cairn.Client: the one entry point of the Python API."""

from __future__ import annotations

import functools
import getpass
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from cairn.client import _search as search
from cairn.client import _signals as signals
from cairn.client._batcher import MetricBatcher
from cairn.client._capture import RunCapture, check_capture
from cairn.client._datasets import Dataset
from cairn.client._entities import Experiment, Project, Run
from cairn.client._find import find_run
from cairn.client._heartbeat import Heartbeat
from cairn.client._repositories import Repository
from cairn.client._search import ExperimentPage, ProjectPage, RepositoryPage, RunPage
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.model import RunStatus
from cairn.core.search import RunRecord
from cairn.core.settings import Settings, settings_from
from cairn.service.contracts import Backend

__all__ = ["Client"]

DEFAULT_PROJECT = "default"
DEFAULT_EXPERIMENT = "default"


def _system_clock() -> int:
    """Milliseconds since the Unix epoch (the service's own, which an HTTP client must not
    import: it would load the stores)."""
    return time.time_ns() // 1_000_000


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        return ""


class Client:
    """Track projects, experiments and runs.

    ``Client()`` opens the embedded store in ``$CAIRN_HOME`` (default ``./.cairn``):
    SQLite plus a local object folder, nothing to start. ``home=`` picks another
    folder; ``store=`` (or ``$CAIRN_STORE_URI``) a database URL such as
    ``postgresql+psycopg://user@host/db``. ``Client("http://host:port")`` (or
    ``$CAIRN_URL``) talks to a ``cairn server`` instead, with the same API; ``token=``
    (or ``$CAIRN_TOKEN``, or the credentials file) is the API token it sends.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        store: str | None = None,
        settings: Settings | None = None,
        clock: Callable[[], int] | None = None,
        environ: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        overrides = {
            "home": None if home is None else os.fspath(home),
            "store_uri": store,
            "url": url,
            "token": token,
        }
        if settings is None:
            self.settings = settings_from(env, **overrides)
        else:
            self.settings = settings.replace(**{k: v for k, v in overrides.items() if v})
        self._clock = clock or _system_clock
        self._backend: Backend
        # Each backend is imported only when chosen: the HTTP one must not load the
        # stores (SQLAlchemy) that the embedded one is built on.
        if self.settings.url is not None and store is None and home is None:
            from cairn.client._http import HttpBackend

            self._backend = HttpBackend(self.settings.url, self.settings)
        else:
            from cairn.service import open_service

            self._backend = open_service(self.settings, self._clock)
        self._batcher = MetricBatcher(
            self._backend.metrics,
            batch_size=self.settings.batch_size,
            interval=self.settings.flush_interval,
            max_queue=self.settings.max_queue,
        )
        self._heartbeat = Heartbeat(
            self._backend.entities, self.settings.heartbeat_interval, self._batcher.last_written
        )
        self._running: dict[str, Run] = {}  # runs started or resumed here and not ended
        self._metric_keys: set[str] = set()  # keys that passed check_name
        self._capture = RunCapture(self._backend.repositories, self.settings.capture_variables, env)
        self._owner = _os_user()
        self._project: Project | None = None
        self._experiment: Experiment | None = None

    # -- lifecycle --------------------------------------------------------------------
    def flush(self) -> None:
        """Wait until every queued metric is stored; raise a failed write."""
        self._batcher.flush()

    def close(self) -> None:
        """Store what is queued and let go of the store. Runs still running stay so
        (their heartbeat stops: in time they read as crashed); end them first."""
        signals.unwatch(self)
        try:
            self._heartbeat.close()
            self._capture.close()
            self._batcher.close()
        finally:
            self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- projects and experiments -----------------------------------------------------
    def set_project(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        owner: str | None = None,
    ) -> Project:
        """Get or create the project ``name`` and make it the current one."""
        info = self._backend.entities.set_project(
            name, description=description, tags=tags, owner=owner or self._owner
        )
        self._project = Project(self, info)
        self._experiment = None
        return self._project

    def get_project(self, name: str | None = None, *, id: str | None = None) -> Project:
        if (name is None) == (id is None):
            raise InvalidArgument("name", "give exactly one of name and id")
        if id is not None:
            return Project(self, self._backend.entities.get_project(id))
        assert name is not None
        return Project(self, self._backend.entities.get_project_by_name(name))

    def list_projects(self) -> list[Project]:
        """Every project not deleted, oldest first, fetched a page at a time."""
        return [Project(self, record.info) for record in search.iter_projects(self._backend)]

    def set_experiment(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        owner: str | None = None,
        project: Project | None = None,
    ) -> Experiment:
        """Get or create an experiment in the current project and make it current."""
        parent = project or self._current_project()
        info = self._backend.entities.set_experiment(
            parent.id, name, description=description, tags=tags, owner=owner or self._owner
        )
        self._project = parent
        self._experiment = Experiment(self, info)
        return self._experiment

    # -- repositories -----------------------------------------------------------------
    def set_repository(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        project: Project | None = None,
    ) -> Repository:
        """Get or create the repository ``name`` in the current project (a new one has an
        empty first commit on the branch ``main``)."""
        parent = project or self._current_project()
        info = self._backend.repositories.set_repository(
            parent.id, name, description=description, owner=self._owner, tags=tags
        )
        return Repository(self, info)

    def get_repository(
        self, name: str | None = None, *, id: str | None = None, project: Project | None = None
    ) -> Repository:
        if (name is None) == (id is None):
            raise InvalidArgument("name", "give exactly one of name and id")
        if id is not None:
            return Repository(self, self._backend.repositories.get_repository(id))
        assert name is not None
        parent = project or self._current_project()
        return Repository(self, self._backend.repositories.get_repository_by_name(parent.id, name))

    def list_repositories(self, project: Project | None = None) -> list[Repository]:
        parent = project or self._current_project()
        found = self._backend.repositories.list_repositories(parent.id)
        return [Repository(self, r) for r in found]

    def set_dataset(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        project: Project | None = None,
    ) -> Dataset:
        """Get or create the dataset ``name`` (a repository of dataset versions) in the
        current project."""
        parent = project or self._current_project()
        return parent.set_dataset(name, description=description, tags=tags)

    def list_datasets(self, project: Project | None = None) -> list[Dataset]:
        return (project or self._current_project()).list_datasets()

    def get_experiment(self, id: str) -> Experiment:
        return Experiment(self, self._backend.entities.get_experiment(id))

    # -- search (docs/search.md) ------------------------------------------------------
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
        """Runs of every project matching ``query``, e.g. ``"metrics.acc > 0.9 and
        (hyperparameters.lr < 0.01 or tags contains 'best')"``, newest first unless
        ``order_by`` says otherwise (``["-metrics.acc", "created_at"]``), each with its
        hyperparameters, latest metrics, tags and attributes (``columns``: only those,
        e.g. ``["metrics.acc", "hyperparameters"]``). One page of at most ``limit``;
        ``page.next_cursor`` (None on the last page) as ``cursor=`` asks for the next."""
        return search.find_runs(
            self._backend,
            query,
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
        return search.iter_runs(
            self._backend,
            query,
            page_size=page_size,
            order_by=order_by,
            columns=columns,
            include_deleted=include_deleted,
        )

    def count_runs(self, query: str = "", *, include_deleted: bool = False) -> int:
        """How many runs of every project match ``query``."""
        return self._backend.search.count_runs(query, include_deleted=include_deleted)

    def find_experiments(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> ExperimentPage:
        """Experiments of every project matching ``query`` (fields: name, tags,
        attributes.K, project.name, created_at...), with their tags and attributes."""
        page = self._backend.search.find_experiments(
            query,
            order_by=order_by,
            limit=limit,
            cursor=cursor,
            include_deleted=include_deleted,
        )
        return ExperimentPage(page.items, page.next_cursor)

    def find_repositories(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RepositoryPage:
        """Repositories of every project matching ``query`` (fields: name, tags,
        attributes.K, project.name, created_at...), with their tags and attributes."""
        page = self._backend.search.find_repositories(
            query,
            order_by=order_by,
            limit=limit,
            cursor=cursor,
        )
        return RepositoryPage(page.items, page.next_cursor)

    def find_projects(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> ProjectPage:
        """Projects matching ``query``, e.g. ``"tags contains 'prod'"``."""
        page = self._backend.search.find_projects(
            query,
            order_by=order_by,
            limit=limit,
            cursor=cursor,
            include_deleted=include_deleted,
        )
        return ProjectPage(page.items, page.next_cursor)

    def _current_project(self) -> Project:
        if self._project is None:
            self.set_project(DEFAULT_PROJECT)
        assert self._project is not None
        return self._project

    def _current_experiment(self) -> Experiment:
        if self._experiment is None:
            self.set_experiment(DEFAULT_EXPERIMENT)
        assert self._experiment is not None
        return self._experiment

    # -- runs -------------------------------------------------------------------------
    def set_experiment_run(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        parent: Run | None = None,
        capture: str | None = None,
    ) -> Run:
        """Get or create the run ``name`` in the current experiment. A run that has not
        recorded its code and environment yet records them (``capture``, see
        :meth:`start_run`)."""
        what = check_capture(capture or self.settings.capture)
        info = self._backend.entities.set_run(
            self._current_experiment().id,
            name,
            parent_id=None if parent is None else parent.id,
            description=description,
            owner=self._owner,
            tags=tags,
        )
        self._capture.start(info.id, what, only_if_new=True)
        run = Run(self, info)
        if info.status in (RunStatus.RUNNING, RunStatus.CRASHED):
            self._track(run)  # this process runs it now
        if hyperparameters:
            run.log_hyperparameters(hyperparameters)
        return run

    def start_run(
        self,
        name: str | None = None,
        *,
        parent: Run | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        capture: str | None = None,
        resume: str | None = None,
    ) -> Run:
        """Create a new run (a generated unique name unless given). Use it in a
        ``with`` block to end it as finished, or failed if the block raises (killed on
        Ctrl-C or SIGTERM).

        The run records its code (the git work tree: remote, commit, branch, the
        uncommitted diff) and its environment (Python version, installed distributions,
        command line, allowed variables) on a thread of its own: ``capture`` is "all"
        (the ``CAIRN_CAPTURE`` setting's default), "code", "environment" or "none".

        ``resume=RUN`` (an id, a short id or ``PROJECT/EXPERIMENT/NAME``) instead makes
        that run running again, as :meth:`resume_run`; ``tags`` and ``hyperparameters``
        are then logged to it."""
        if resume is not None:
            if name is not None or parent is not None or description is not None:
                raise InvalidArgument(
                    "resume", "a resumed run keeps its name, parent and description"
                )
            resumed = self.resume_run(resume)
            if tags:
                resumed.log_tags(tags)
            if hyperparameters:
                resumed.log_hyperparameters(hyperparameters)
            return resumed
        what = check_capture(capture or self.settings.capture)
        experiment_id = parent.experiment_id if parent else self._current_experiment().id
        # In a sweep the capture is known already: the run names it as it is created.
        refs = self._capture.stored_refs(what)
        create = functools.partial(
            self._backend.entities.create_run,
            experiment_id,
            name,
            parent_id=None if parent is None else parent.id,
            description=description,
            owner=self._owner,
            tags=tags,
        )
        if refs is None:
            info = create()
            self._capture.start(info.id, what)
        else:
            try:
                info = create(captures=refs or None)
            except NotFound as missing:
                if missing.details.get("kind") != "object":
                    raise
                self._capture.forget_stored()  # gone from the store: capture it anew
                info = create()
                self._capture.start(info.id, what)
        self._batcher.fresh_run(info.id)  # no metrics stored yet: steps start at 0
        run = self._track(Run(self, info))
        if hyperparameters:
            run.log_hyperparameters(hyperparameters)
        return run

    def get_run(self, ref: str) -> Run:
        """The run ``ref`` names: its id (any case), the start or the end of its id (8
        hex digits at least, as ``cairn runs ls`` shows it), or
        ``PROJECT/EXPERIMENT/RUN_NAME``. A part of an id that several runs share is an
        ``InvalidArgument`` listing them."""
        return Run(self, find_run(self._backend.entities, ref))

    def resume_run(self, ref: str) -> Run:
        """Make an ended (or crashed) run running again, to record more in it: metrics
        logged without a step continue after its last step. ``ref`` as :meth:`get_run`."""
        self._batcher.flush()  # what this process logged to it lands before it changes
        info = self._backend.entities.resume_run(find_run(self._backend.entities, ref).id)
        return self._track(Run(self, info))

    def restore_run(self, ref: str) -> Run:
        """Undo a soft delete."""
        entities = self._backend.entities
        return Run(self, entities.restore_run(find_run(entities, ref).id))

    def delete_run(self, ref: str) -> None:
        self._batcher.flush()
        self._backend.entities.delete_run(find_run(self._backend.entities, ref).id)

    # -- runs this process runs ---------------------------------------------------------
    def _track(self, run: Run) -> Run:
        """``run`` runs in this process: heartbeats, and an end on SIGTERM or exit."""
        self._running[run.id] = run
        self._heartbeat.add(run.id)
        signals.watch(self)
        return run

    def _untrack(self, run_id: str) -> None:
        self._running.pop(run_id, None)
        self._heartbeat.discard(run_id)

    def _end_running(self, status: RunStatus) -> None:
        """End every run this process runs as ``status`` (SIGTERM, exit)."""
        for run in list(self._running.values()):
            run.end(status)
