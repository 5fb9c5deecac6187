"""Projects, experiments and runs over REST (the :class:`~cairn.service.contracts.Entities`
part of the HTTP backend)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from cairn.client._transport import Transport
from cairn.client._transport import path_id as _id
from cairn.core.columns import MetricBatch
from cairn.core.errors import AlreadyExists, InvalidArgument
from cairn.core.model import ExperimentInfo, ProjectInfo, RunInfo, RunStatus
from cairn.core.names import generate_run_name
from cairn.core.settings import Settings
from cairn.core.validation import (
    check_entity_id,
    check_id_fragment,
    check_name,
    check_names,
    check_text,
)

__all__ = ["HttpEntities", "run_from_json"]


def run_from_json(data: dict[str, Any]) -> RunInfo:
    return RunInfo(**{**data, "status": RunStatus(data["status"])})


def _list(value: Iterable[str] | None) -> list[str] | None:
    return None if value is None else list(value)


class HttpEntities:
    """Projects, experiments and runs."""

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self._t = transport
        self.settings = settings

    def set_project(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
    ) -> ProjectInfo:
        body = _entity_body(name, "project name", description, owner, tags)
        return ProjectInfo(**self._t.post("/projects", body))

    def get_project(self, project_id: str) -> ProjectInfo:
        return ProjectInfo(**self._t.get(f"/projects/{_id(project_id, 'project_id')}"))

    def get_project_by_name(self, name: str) -> ProjectInfo:
        return ProjectInfo(**self._t.get("/projects", name=check_name(name, "project name"))[0])

    def list_projects(self) -> list[ProjectInfo]:
        return [ProjectInfo(**p) for p in self._t.get("/projects")]

    def delete_project(self, project_id: str) -> ProjectInfo:
        path = f"/projects/{_id(project_id, 'project_id')}"
        return ProjectInfo(**self._t.request("DELETE", path).json())

    def restore_project(self, project_id: str) -> ProjectInfo:
        return ProjectInfo(**self._t.post(f"/projects/{_id(project_id, 'project_id')}/restore"))

    def set_experiment(
        self,
        project_id: str,
        name: str,
        *,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
    ) -> ExperimentInfo:
        body = _entity_body(name, "experiment name", description, owner, tags)
        path = f"/projects/{_id(project_id, 'project_id')}/experiments"
        return ExperimentInfo(**self._t.post(path, body))

    def get_experiment(self, experiment_id: str) -> ExperimentInfo:
        return ExperimentInfo(**self._t.get(f"/experiments/{_id(experiment_id, 'experiment_id')}"))

    def get_experiment_by_name(self, project_id: str, name: str) -> ExperimentInfo:
        path = f"/projects/{_id(project_id, 'project_id')}/experiments"
        return ExperimentInfo(**self._t.get(path, name=check_name(name, "experiment name"))[0])

    def list_experiments(self, project_id: str) -> list[ExperimentInfo]:
        path = f"/projects/{_id(project_id, 'project_id')}/experiments"
        return [ExperimentInfo(**e) for e in self._t.get(path)]

    def delete_experiment(self, experiment_id: str) -> ExperimentInfo:
        path = f"/experiments/{_id(experiment_id, 'experiment_id')}"
        return ExperimentInfo(**self._t.request("DELETE", path).json())

    def restore_experiment(self, experiment_id: str) -> ExperimentInfo:
        path = f"/experiments/{_id(experiment_id, 'experiment_id')}/restore"
        return ExperimentInfo(**self._t.post(path))

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
        generated = name is None
        _id(experiment_id, "experiment_id")
        _run_args(name, parent_id, description, owner, tags)
        for _ in range(20 if generated else 1):
            # The client names the run, so a retried request cannot create two runs.
            chosen = generate_run_name() if generated else name
            body: dict[str, Any] = {
                "name": chosen,
                "parent_id": parent_id,
                "description": description,
                "owner": owner,
                "tags": _list(tags),
            }
            if captures:
                body["captures"] = {
                    path: {"kind": kind, "digest": digest}
                    for path, (kind, digest) in captures.items()
                }
            try:
                return run_from_json(self._t.post(f"/experiments/{experiment_id}/runs", body))
            except AlreadyExists:
                if not generated:
                    raise
        raise AlreadyExists("could not generate a unique run name; give the run a name")

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
        _id(experiment_id, "experiment_id")
        _run_args(check_name(name, "run name"), parent_id, description, owner, tags)
        body = {
            "name": name,
            "parent_id": parent_id,
            "description": description,
            "owner": owner,
            "tags": _list(tags),
            "get_or_create": True,
        }
        return run_from_json(self._t.post(f"/experiments/{experiment_id}/runs", body))

    def get_run(self, run_id: str) -> RunInfo:
        return run_from_json(self._t.get(f"/runs/{_id(run_id, 'run_id')}"))

    def get_run_by_name(self, experiment_id: str, name: str) -> RunInfo:
        path = f"/experiments/{_id(experiment_id, 'experiment_id')}/runs"
        return run_from_json(self._t.get(path, name=check_name(name, "run name"))[0])

    def find_runs_by_id(self, fragment: str) -> list[RunInfo]:
        found = self._t.get("/runs", id_fragment=check_id_fragment(fragment, "run id"))
        return [run_from_json(r) for r in found]

    def list_runs(self, experiment_id: str, *, include_deleted: bool = False) -> list[RunInfo]:
        path = f"/experiments/{_id(experiment_id, 'experiment_id')}/runs"
        found = self._t.get(path, include_deleted=include_deleted)
        return [run_from_json(r) for r in found]

    def list_child_runs(self, run_id: str, *, include_deleted: bool = False) -> list[RunInfo]:
        path = f"/runs/{_id(run_id, 'run_id')}/children"
        found = self._t.get(path, include_deleted=include_deleted)
        return [run_from_json(r) for r in found]

    def end_run(
        self,
        run_id: str,
        status: RunStatus | str = RunStatus.FINISHED,
        *,
        metrics: MetricBatch | None = None,
        idempotency_key: str | None = None,
    ) -> RunInfo:
        final = RunStatus.parse(status)
        path = f"/runs/{_id(run_id, 'run_id')}"
        body: dict[str, Any] = {"status": final.value}
        headers = {}
        if metrics:
            if any(owner != run_id for owner, _ in metrics):
                raise InvalidArgument("metrics", f"must all be points of run {run_id}")
            body["points"] = [
                {"key": key, "step": step, "timestamp": ts, "value": value}
                for (_, key), points in metrics.items()
                for step, ts, value in zip(
                    points.steps, points.timestamps, points.values, strict=True
                )
            ]
            # A retry (the answer was lost) must not store the points twice.
            headers["idempotency-key"] = idempotency_key or secrets.token_hex(16)
        response = self._t.request("PATCH", path, json=body, headers=headers)
        return run_from_json(response.json())

    def resume_run(self, run_id: str) -> RunInfo:
        return run_from_json(self._t.post(f"/runs/{_id(run_id, 'run_id')}/resume"))

    def heartbeat(self, run_ids: Iterable[str]) -> int:
        ids = [check_entity_id(r, "run_ids") for r in run_ids]
        if not ids:
            return 0
        return int(self._t.post("/heartbeats", {"run_ids": ids})["running"])

    def delete_run(self, run_id: str) -> RunInfo:
        return run_from_json(self._t.request("DELETE", f"/runs/{_id(run_id, 'run_id')}").json())

    def restore_run(self, run_id: str) -> RunInfo:
        return run_from_json(self._t.post(f"/runs/{_id(run_id, 'run_id')}/restore"))

    def set_description(self, entity_id: str, description: str) -> None:
        body = {"description": check_text(description, "description")}
        self._t.request("PUT", f"/entities/{_id(entity_id, 'entity_id')}/description", json=body)


def _entity_body(
    name: str, field: str, description: str | None, owner: str, tags: Iterable[str] | None
) -> dict[str, Any]:
    return {
        "name": check_name(name, field),
        "description": None if description is None else check_text(description, "description"),
        "owner": check_name(owner, "owner") if owner else "",
        "tags": None if tags is None else check_names(tags, "tag"),
    }


def _run_args(
    name: str | None,
    parent_id: str | None,
    description: str | None,
    owner: str,
    tags: Iterable[str] | None,
) -> None:
    if name is not None:
        check_name(name, "run name")
    if parent_id is not None:
        check_entity_id(parent_id, "parent_id")
    if description is not None:
        check_text(description, "description")
    if owner:
        check_name(owner, "owner")
    if tags is not None:
        check_names(tags, "tag")
