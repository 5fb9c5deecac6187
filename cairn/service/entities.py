"""Projects, experiments and runs: get-or-create, lookups and the run lifecycle."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

from cairn.core.columns import MetricBatch
from cairn.core.digest import Digest
from cairn.core.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from cairn.core.identity import Role
from cairn.core.ids import new_id
from cairn.core.model import EntityKind, ExperimentInfo, ProjectInfo, RunInfo, RunStatus
from cairn.core.names import generate_run_name
from cairn.core.validation import (
    check_batch,
    check_entity_id,
    check_id_fragment,
    check_idempotency_key,
    check_name,
    check_names,
    check_text,
)
from cairn.service.access import denied, not_found
from cairn.service.base import ServicePart, check_refs, not_stored
from cairn.service.identity import current_principal
from cairn.store.metadata.roles import RoleRows
from cairn.store.metadata.tx import MetadataTx

__all__ = ["EntityService"]

_NAME_ATTEMPTS = 20


def _check_tags(tags: Iterable[str] | None) -> list[str]:
    return [] if tags is None else check_names(tags, "tag")


class EntityService(ServicePart):
    """Projects, experiments and runs."""

    # -- projects ---------------------------------------------------------------------
    def set_project(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
    ) -> ProjectInfo:
        """Get the project called ``name``, creating it if needed (race-safe). With a
        principal, a new project is the principal's, who becomes its owner; an existing one
        needs the writer role (a name taken by a project the caller cannot read is an
        ``AlreadyExists``: names are unique across the server)."""
        check_name(name, "project name")
        tag_list = _check_tags(tags)
        principal = current_principal()
        owner = self._owner(owner)
        with self.metadata.write() as tx:
            now = self.clock()
            inserted = tx.entities.insert_ignore(
                EntityKind.PROJECT,
                {
                    "id": new_id(now),
                    "name": name,
                    "description": check_text(description or "", "description"),
                    "owner": check_name(owner, "owner") if owner else "",
                    "created_at": now,
                    "updated_at": now,
                },
            )
            project = tx.entities.project_by_name(name)
            assert project is not None  # inserted or already there, in this transaction
            if principal is not None and inserted:  # its creator owns it, from the start
                RoleRows(tx.conn).put(
                    project.id, principal.user_id, Role.OWNER, now, principal.name
                )
            elif self.access.restricted() is not None:
                self._may_set_project(tx, project, name)
            if project.deleted:
                raise Conflict(
                    f"project {name!r} is deleted; restore it (project.undelete()) or choose "
                    "another name",
                    kind="project",
                    id=project.id,
                )
            self._apply_common(tx, EntityKind.PROJECT, project, description, tag_list)
            found = tx.entities.project(project.id) or project
        if principal is not None and inserted:
            self.access.remember(found.id, found.id)
            self.access.changed(principal.user_id, found.id, Role.OWNER)
        return found

    def _may_set_project(self, tx: MetadataTx, project: ProjectInfo, name: str) -> None:
        """set_project of an existing project: the caller writes to it."""
        principal = self.access.restricted()
        assert principal is not None
        held = RoleRows(tx.conn).role(principal.user_id, project.id)
        if held is None:  # as a name taken: it does not say more
            raise AlreadyExists(
                f"the project name {name!r} is taken; choose another name",
                kind="project",
                name=name,
            )
        if held < Role.WRITER:
            raise denied(principal, project.id, held, Role.WRITER)

    def get_project(self, project_id: str) -> ProjectInfo:
        check_entity_id(project_id, "project_id")
        self._allow(project_id, Role.READER, "project")
        with self.metadata.read() as tx:
            project = tx.entities.project(project_id)
        if project is None:
            raise not_found("project", project_id)
        return project

    def get_project_by_name(self, name: str) -> ProjectInfo:
        check_name(name, "project name")
        with self.metadata.read() as tx:
            project = tx.entities.project_by_name(name)
        principal = self.access.restricted()
        if project is None or (
            principal is not None and not self.access.can_read(principal, project.id)
        ):
            raise NotFound(f"no project named {name!r}", kind="project", name=name)
        return project

    def list_projects(self) -> list[ProjectInfo]:
        """The projects not deleted (that the caller may read)."""
        principal = self.access.restricted()
        with self.metadata.read() as tx:
            if principal is not None:
                return RoleRows(tx.conn).readable_projects(principal.user_id)
            return tx.entities.projects()

    def delete_project(self, project_id: str) -> ProjectInfo:
        """Soft delete: hidden from listings (its experiments and runs with it), kept,
        restorable with restore_project. Found by name still, so it can be restored."""
        return self._set_deleted(EntityKind.PROJECT, project_id, deleted=True)

    def restore_project(self, project_id: str) -> ProjectInfo:
        return self._set_deleted(EntityKind.PROJECT, project_id, deleted=False)

    # -- experiments ------------------------------------------------------------------
    def set_experiment(
        self,
        project_id: str,
        name: str,
        *,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
    ) -> ExperimentInfo:
        check_entity_id(project_id, "project_id")
        check_name(name, "experiment name")
        tag_list = _check_tags(tags)
        self._allow(project_id, Role.WRITER, "project")
        owner = self._owner(owner)
        with self.metadata.write() as tx:
            project = tx.entities.project(project_id)
            if project is None:
                raise not_found("project", project_id)
            if project.deleted:
                raise Conflict(
                    f"project {project.name!r} is deleted; restore it first", id=project_id
                )
            now = self.clock()
            tx.entities.insert_ignore(
                EntityKind.EXPERIMENT,
                {
                    "id": new_id(now),
                    "project_id": project_id,
                    "name": name,
                    "description": check_text(description or "", "description"),
                    "owner": check_name(owner, "owner") if owner else "",
                    "created_at": now,
                    "updated_at": now,
                },
            )
            experiment = tx.entities.experiment_by_name(project_id, name)
            assert experiment is not None
            if experiment.deleted:
                raise Conflict(
                    f"experiment {name!r} is deleted; restore it (experiment.undelete()) or "
                    "choose another name",
                    kind="experiment",
                    id=experiment.id,
                )
            self._apply_common(tx, EntityKind.EXPERIMENT, experiment, description, tag_list)
            found = tx.entities.experiment(experiment.id) or experiment
        self.access.remember(found.id, project_id)
        return found

    def get_experiment(self, experiment_id: str) -> ExperimentInfo:
        check_entity_id(experiment_id, "experiment_id")
        self._allow(experiment_id, Role.READER, "experiment")
        with self.metadata.read() as tx:
            experiment = tx.entities.experiment(experiment_id)
        if experiment is None:
            raise not_found("experiment", experiment_id)
        return experiment

    def get_experiment_by_name(self, project_id: str, name: str) -> ExperimentInfo:
        check_entity_id(project_id, "project_id")
        check_name(name, "experiment name")
        with self.metadata.read() as tx:
            experiment = tx.entities.experiment_by_name(project_id, name)
        if experiment is None or not self._readable(project_id):
            raise NotFound(f"no experiment named {name!r}", kind="experiment", name=name)
        return experiment

    def list_experiments(self, project_id: str) -> list[ExperimentInfo]:
        """The experiments of the project not deleted."""
        check_entity_id(project_id, "project_id")
        self._allow(project_id, Role.READER, "project")
        with self.metadata.read() as tx:
            if tx.entities.project(project_id) is None:
                raise not_found("project", project_id)
            return tx.entities.experiments(project_id)

    def delete_experiment(self, experiment_id: str) -> ExperimentInfo:
        """Soft delete: hidden from listings, kept, restorable with restore_experiment."""
        return self._set_deleted(EntityKind.EXPERIMENT, experiment_id, deleted=True)

    def restore_experiment(self, experiment_id: str) -> ExperimentInfo:
        return self._set_deleted(EntityKind.EXPERIMENT, experiment_id, deleted=False)

    # -- runs -------------------------------------------------------------------------
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
        return self._insert_run(
            experiment_id,
            name,
            parent_id,
            description,
            owner,
            tags,
            get_existing=False,
            captures=None if captures is None else check_refs(captures, "captures"),
        )

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
        check_name(name, "run name")
        return self._insert_run(
            experiment_id, name, parent_id, description, owner, tags, get_existing=True
        )

    def _insert_run(
        self,
        experiment_id: str,
        name: str | None,
        parent_id: str | None,
        description: str | None,
        owner: str,
        tags: Iterable[str] | None,
        *,
        get_existing: bool,
        captures: dict[str, tuple[str, Digest]] | None = None,
    ) -> RunInfo:
        check_entity_id(experiment_id, "experiment_id")
        if name is not None:
            check_name(name, "run name")
        if parent_id is not None:
            check_entity_id(parent_id, "parent_id")
        tag_list = _check_tags(tags)
        text = check_text(description or "", "description")
        self._allow(experiment_id, Role.WRITER, "experiment")
        owner = self._owner(owner)
        owner = check_name(owner, "owner") if owner else ""

        def new_row() -> dict[str, Any]:
            now = self.clock()
            return {
                "id": new_id(now),
                "experiment_id": experiment_id,
                "name": name if name is not None else generate_run_name(),
                "description": text,
                "owner": owner,
                "status": RunStatus.RUNNING.value,
                "parent_id": parent_id,
                "start_time": now,
                "end_time": None,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
                "heartbeat_at": now,
            }

        # The usual case first, in one statement: the experiment (and parent) exist and
        # the name is free. Anything else writes nothing and takes the path below, which
        # tells the cases apart, retries generated names or gets the existing run.
        row = new_row()
        with self.metadata.run_writer() as writer:
            project_id = writer.insert(row)
            if project_id is not None:
                writer.add_tags(row["id"], tag_list, row["created_at"])
                if captures:
                    missing = writer.add_captures(row["id"], captures)
                    if missing is not None:  # and the run is not created either
                        raise not_stored(missing, *captures[missing])
        if project_id is not None:
            self.access.remember(row["id"], project_id)
            return RunInfo(**{**row, "project_id": project_id, "status": RunStatus.RUNNING})

        with self.metadata.write() as tx:
            experiment = tx.entities.experiment(experiment_id)
            if experiment is None:
                raise not_found("experiment", experiment_id)
            if parent_id is not None:
                parent = self._require_run(tx, parent_id)
                if parent.project_id != experiment.project_id:
                    raise InvalidArgument("parent_id", "must be a run of the same project")
            for _ in range(_NAME_ATTEMPTS if name is None else 1):
                row = {**new_row(), "project_id": experiment.project_id}
                if tx.entities.insert_ignore(EntityKind.RUN, row):
                    tx.labels.add_tags(row["id"], tag_list, row["created_at"])
                    if captures:
                        self._link_stored(tx, row["id"], captures)
                    return RunInfo(**{**row, "status": RunStatus.RUNNING})  # as inserted
                if get_existing:
                    run = tx.entities.run_by_name(experiment_id, row["name"])
                    assert run is not None
                    self._apply_common(tx, EntityKind.RUN, run, description, tag_list)
                    return self._present(tx.entities.run(run.id) or run)
            if name is not None:
                raise AlreadyExists(
                    f"a run named {name!r} already exists in experiment {experiment_id}",
                    kind="run",
                    name=name,
                )
            raise Conflict("could not generate a unique run name; give the run a name")

    def get_run(self, run_id: str) -> RunInfo:
        self._allow(run_id, Role.READER, "run")
        with self.metadata.read() as tx:
            return self._present(self._require_run(tx, run_id))

    def get_run_by_name(self, experiment_id: str, name: str) -> RunInfo:
        check_entity_id(experiment_id, "experiment_id")
        check_name(name, "run name")
        with self.metadata.read() as tx:
            run = tx.entities.run_by_name(experiment_id, name)
        if run is None or not self._readable(run.project_id):
            raise NotFound(f"no run named {name!r}", kind="run", name=name)
        return self._present(run)

    def find_runs_by_id(self, fragment: str) -> list[RunInfo]:
        """Runs whose id starts or ends with ``fragment`` (8 to 32 hex digits, dashes and
        case ignored): how people give the short ids they see. At most 10."""
        bare = check_id_fragment(fragment, "run id")
        with self.metadata.read() as tx:
            found = tx.entities.runs_by_id_fragment(bare, 10)
        return [self._present(r) for r in found if self._readable(r.project_id)]

    def list_runs(self, experiment_id: str, *, include_deleted: bool = False) -> list[RunInfo]:
        check_entity_id(experiment_id, "experiment_id")
        self._allow(experiment_id, Role.READER, "experiment")
        with self.metadata.read() as tx:
            if tx.entities.experiment(experiment_id) is None:
                raise not_found("experiment", experiment_id)
            found = tx.entities.runs(experiment_id=experiment_id, include_deleted=include_deleted)
        return [self._present(r) for r in found]

    def list_child_runs(self, run_id: str, *, include_deleted: bool = False) -> list[RunInfo]:
        self._allow(run_id, Role.READER, "run")
        with self.metadata.read() as tx:
            self._require_run(tx, run_id)
            found = tx.entities.runs(parent_id=run_id, include_deleted=include_deleted)
        return [self._present(r) for r in found]

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
        final = RunStatus.parse(status)
        if not final.ended:
            raise InvalidArgument(
                "status",
                f"a run ends as finished, failed or killed, not {final.value} "
                "(resume_run makes an ended run running again)",
            )
        check_entity_id(run_id, "run_id")
        points = None
        if metrics is not None and any(len(p) for p in metrics.values()):
            check_batch(metrics)
            if any(owner != run_id for owner, _ in metrics):
                raise InvalidArgument("metrics", f"must all be points of run {run_id}")
            points = metrics
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        self._allow(run_id, Role.WRITER, "run")
        with self.metadata.write() as tx:
            now = self.clock()
            if idempotency_key is not None and not tx.idempotency.claim(idempotency_key, now):
                return self._require_run(tx, run_id)  # applied before: a retry
            if points is not None:
                self._require_recording(tx, {run_id}, now)  # running: its last points first
                tx.metrics.append(points)
            values = {"status": final.value, "end_time": now, "updated_at": now}
            ended = tx.entities.end_running(run_id, values)  # the usual case: one statement
            if ended is not None:
                return ended
            run = self._require_run(tx, run_id, live=True)
            if run.status.ended:
                if run.status is final:
                    return run
                raise Conflict(
                    f"run {run_id} already ended as {run.status.value}; it cannot end as "
                    f"{final.value} (resume it first to change that)",
                    id=run_id,
                    status=run.status.value,
                )
            raise AssertionError(f"run {run_id} is running, yet could not be ended")

    def resume_run(self, run_id: str) -> RunInfo:
        """An ended (or crashed) run running again, to record more: its end time is
        cleared; metrics logged without a step continue after the last one."""
        self._allow(run_id, Role.WRITER, "run")
        with self.metadata.write() as tx:
            self._require_run(tx, run_id, live=True)
            now = self.clock()
            tx.entities.update(
                EntityKind.RUN,
                run_id,
                {
                    "status": RunStatus.RUNNING.value,
                    "end_time": None,
                    "heartbeat_at": now,
                    "updated_at": now,
                },
            )
            return self._require_run(tx, run_id)

    def heartbeat(self, run_ids: Iterable[str]) -> int:
        """The runs' process is alive: of ``run_ids``, those running and not deleted are
        marked so (how many is returned); the others are left as they are."""
        ids = [check_entity_id(r, "run_ids") for r in run_ids]
        if self.access.restricted() is not None:  # a run it cannot read is as none
            ids = [r for r in ids if self._readable(self.access.project_of(r))]
            for run_id in ids:
                self._allow(run_id, Role.WRITER, "run")
        if not ids:
            return 0
        with self.metadata.write() as tx:
            return tx.entities.heartbeat(ids, self.clock())

    def delete_run(self, run_id: str) -> RunInfo:
        """Soft delete: hidden from listings, restorable with restore_run."""
        self._allow(run_id, Role.WRITER, "run")
        with self.metadata.write() as tx:
            run = self._require_run(tx, run_id)
            if not run.deleted:
                now = self.clock()
                tx.entities.update(EntityKind.RUN, run_id, {"deleted_at": now, "updated_at": now})
            return self._present(self._require_run(tx, run_id))

    def restore_run(self, run_id: str) -> RunInfo:
        self._allow(run_id, Role.WRITER, "run")
        with self.metadata.write() as tx:
            run = self._require_run(tx, run_id)
            if run.deleted:
                tx.entities.update(
                    EntityKind.RUN, run_id, {"deleted_at": None, "updated_at": self.clock()}
                )
            return self._present(self._require_run(tx, run_id))

    def set_description(self, entity_id: str, description: str) -> None:
        text = check_text(description, "description")
        self._allow(entity_id, Role.WRITER)
        with self.metadata.write() as tx:
            kind = self._require_writable(tx, entity_id)
            tx.entities.update(kind, entity_id, {"description": text})

    # -- helpers ----------------------------------------------------------------------
    @overload
    def _set_deleted(
        self, kind: Literal[EntityKind.PROJECT], entity_id: str, *, deleted: bool
    ) -> ProjectInfo: ...

    @overload
    def _set_deleted(
        self, kind: Literal[EntityKind.EXPERIMENT], entity_id: str, *, deleted: bool
    ) -> ExperimentInfo: ...

    def _set_deleted(
        self, kind: EntityKind, entity_id: str, *, deleted: bool
    ) -> ProjectInfo | ExperimentInfo:
        check_entity_id(entity_id, f"{kind.value}_id")
        # Deleting a project hides everything in it: its owners' call.
        self._allow(
            entity_id, Role.OWNER if kind is EntityKind.PROJECT else Role.WRITER, kind.value
        )
        with self.metadata.write() as tx:
            read = tx.entities.project if kind is EntityKind.PROJECT else tx.entities.experiment
            found = read(entity_id)
            if found is None:
                raise not_found(kind.value, entity_id)
            if found.deleted != deleted:
                now = self.clock()
                tx.entities.update(
                    kind, entity_id, {"deleted_at": now if deleted else None, "updated_at": now}
                )
                found = read(entity_id)
                assert found is not None
            return found

    def _apply_common(
        self,
        tx: MetadataTx,
        kind: EntityKind,
        entity: ProjectInfo | ExperimentInfo | RunInfo,
        description: str | None,
        tags: list[str],
    ) -> None:
        """On get-or-create of an existing entity: a given description and tags apply."""
        now = self.clock()
        changes: dict[str, Any] = {}
        if description is not None and description != entity.description:
            changes["description"] = description
        if tags:
            tx.labels.add_tags(entity.id, tags, now)
        if changes or tags:
            tx.entities.update(kind, entity.id, {**changes, "updated_at": now})
