"""The HTTP backend: the same calls as the in-process TrackingService, over REST.

Arguments are checked here with the same core rules the service applies, so a bad
call raises the same error, naming the same field, as the embedded client, before
anything is sent; the server checks again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from cairn.client._http_artifacts import HttpArtifacts
from cairn.client._transport import Transport
from cairn.core.columns import (
    BATCH_MEDIA_TYPE,
    HISTORY_MEDIA_TYPE,
    MetricBatch,
    SeriesPoints,
    decode_history,
    encode_batch,
)
from cairn.core.errors import AlreadyExists
from cairn.core.model import (
    ExperimentInfo,
    HyperparameterValue,
    MetricPoint,
    ProjectInfo,
    RunInfo,
    RunStatus,
)
from cairn.core.names import generate_run_name
from cairn.core.settings import Settings
from cairn.core.validation import (
    check_entity_id,
    check_hyperparameter_value,
    check_mapping,
    check_name,
    check_names,
    check_text,
    encode_attribute,
)

__all__ = ["HttpBackend"]


def _run(data: dict[str, Any]) -> RunInfo:
    return RunInfo(**{**data, "status": RunStatus(data["status"])})


def _list(value: Iterable[str] | None) -> list[str] | None:
    return None if value is None else list(value)


class HttpBackend(HttpArtifacts):
    def __init__(self, url: str, settings: Settings):
        self.settings = settings
        self._t = Transport(
            url, timeout=settings.request_timeout, retry_timeout=settings.retry_timeout
        )

    def close(self) -> None:
        self._t.close()

    # -- projects and experiments -----------------------------------------------------
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
    ) -> RunInfo:
        generated = name is None
        _id(experiment_id, "experiment_id")
        _run_args(name, parent_id, description, owner, tags)
        for _ in range(20 if generated else 1):
            # The client names the run, so a retried request cannot create two runs.
            chosen = generate_run_name() if generated else name
            body = {
                "name": chosen,
                "parent_id": parent_id,
                "description": description,
                "owner": owner,
                "tags": _list(tags),
            }
            try:
                return _run(self._t.post(f"/experiments/{experiment_id}/runs", body))
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
        return _run(self._t.post(f"/experiments/{experiment_id}/runs", body))

    def get_run(self, run_id: str) -> RunInfo:
        return _run(self._t.get(f"/runs/{_id(run_id, 'run_id')}"))

    def get_run_by_name(self, experiment_id: str, name: str) -> RunInfo:
        path = f"/experiments/{_id(experiment_id, 'experiment_id')}/runs"
        return _run(self._t.get(path, name=check_name(name, "run name"))[0])

    def list_runs(self, experiment_id: str, *, include_deleted: bool = False) -> list[RunInfo]:
        path = f"/experiments/{_id(experiment_id, 'experiment_id')}/runs"
        found = self._t.get(path, include_deleted=include_deleted)
        return [_run(r) for r in found]

    def list_child_runs(self, run_id: str, *, include_deleted: bool = False) -> list[RunInfo]:
        path = f"/runs/{_id(run_id, 'run_id')}/children"
        found = self._t.get(path, include_deleted=include_deleted)
        return [_run(r) for r in found]

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> RunInfo:
        final = RunStatus.parse(status)
        path = f"/runs/{_id(run_id, 'run_id')}"
        response = self._t.request("PATCH", path, json={"status": final.value})
        return _run(response.json())

    def delete_run(self, run_id: str) -> RunInfo:
        return _run(self._t.request("DELETE", f"/runs/{_id(run_id, 'run_id')}").json())

    def restore_run(self, run_id: str) -> RunInfo:
        return _run(self._t.post(f"/runs/{_id(run_id, 'run_id')}/restore"))

    def set_description(self, entity_id: str, description: str) -> None:
        body = {"description": check_text(description, "description")}
        self._t.request("PUT", f"/entities/{_id(entity_id, 'entity_id')}/description", json=body)

    # -- tags, attributes, hyperparameters --------------------------------------------
    def add_tags(self, entity_id: str, tags: Iterable[str]) -> None:
        body = {"tags": check_names(tags, "tag")}
        self._t.post(f"/entities/{_id(entity_id, 'entity_id')}/tags", body)

    def remove_tags(self, entity_id: str, tags: Iterable[str]) -> None:
        body = {"tags": check_names(tags, "tag")}
        self._t.post(f"/entities/{_id(entity_id, 'entity_id')}/tags/remove", body)

    def get_tags(self, entity_id: str) -> list[str]:
        tags: list[str] = self._t.get(f"/entities/{_id(entity_id, 'entity_id')}/tags")
        return tags

    def set_attributes(self, entity_id: str, values: Mapping[str, Any]) -> None:
        check_mapping(values, "attributes")
        limit = self.settings.max_attribute_bytes
        for key, value in values.items():
            encode_attribute(value, f"attribute {check_name(key, 'attribute key')!r}", limit)
        path = f"/entities/{_id(entity_id, 'entity_id')}/attributes"
        self._t.request("PATCH", path, json={"attributes": dict(values)})

    def get_attributes(self, entity_id: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = None if keys is None else check_names(keys, "attribute key")
        path = f"/entities/{_id(entity_id, 'entity_id')}/attributes"
        found: dict[str, Any] = self._t.get(path, key=wanted)
        return found

    def remove_attributes(self, entity_id: str, keys: Iterable[str]) -> None:
        body = {"keys": check_names(keys, "attribute key")}
        self._t.post(f"/entities/{_id(entity_id, 'entity_id')}/attributes/remove", body)

    def log_hyperparameters(
        self, run_id: str, values: Mapping[str, Any], *, overwrite: bool = False
    ) -> None:
        check_mapping(values, "hyperparameters")
        checked = {  # numpy scalars become plain int/float/bool here, as in the service
            check_name(k, "hyperparameter key"): check_hyperparameter_value(
                v, f"hyperparameter {k!r}"
            )
            for k, v in values.items()
        }
        body = {"hyperparameters": checked, "overwrite": overwrite}
        self._t.post(f"/runs/{_id(run_id, 'run_id')}/hyperparameters", body)

    def get_hyperparameters(self, run_id: str) -> dict[str, HyperparameterValue]:
        path = f"/runs/{_id(run_id, 'run_id')}/hyperparameters"
        found: dict[str, HyperparameterValue] = self._t.get(path)
        return found

    # -- metrics ----------------------------------------------------------------------
    def log_metric_batch(self, batch: MetricBatch, *, idempotency_key: str | None = None) -> None:
        """One request per batch; a retry carries the same idempotency key, so the
        server applies it once however often it arrives."""
        if not batch:
            return
        key = idempotency_key or secrets.token_hex(16)
        self._t.request(
            "POST",
            "/metrics",
            content=encode_batch(batch),
            headers={"content-type": BATCH_MEDIA_TYPE, "idempotency-key": key},
        )

    def log_metric_batch_validated(self, batch: MetricBatch) -> None:
        self.log_metric_batch(batch)

    def get_latest_metrics(
        self, run_id: str, keys: Iterable[str] | None = None
    ) -> dict[str, MetricPoint]:
        wanted = None if keys is None else [check_name(k, "metric key") for k in keys]
        found = self._t.get(f"/runs/{_id(run_id, 'run_id')}/metrics", key=wanted)
        return {k: MetricPoint(p["step"], p["timestamp"], p["value"]) for k, p in found.items()}

    def get_metric_history(self, run_id: str, key: str) -> SeriesPoints:
        response = self._t.request(
            "GET",
            f"/runs/{_id(run_id, 'run_id')}/metrics/history",
            params={"key": check_name(key, "metric key")},
            headers={"accept": HISTORY_MEDIA_TYPE},
        )
        return decode_history(response.content)


def _id(value: str, field: str) -> str:
    """An id that goes into a URL path: checked, so it cannot change the path."""
    return check_entity_id(value, field)


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
