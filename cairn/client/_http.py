"""The HTTP backend: the same calls as the in-process TrackingService, over REST."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

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

__all__ = ["HttpBackend"]


def _run(data: dict[str, Any]) -> RunInfo:
    return RunInfo(**{**data, "status": RunStatus(data["status"])})


def _list(value: Iterable[str] | None) -> list[str] | None:
    return None if value is None else list(value)


class HttpBackend(HttpArtifacts):
    def __init__(self, url: str, settings: Settings, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self._t = Transport(
            url,
            timeout=settings.request_timeout,
            retry_timeout=settings.retry_timeout,
            transport=transport,
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
        body = {"name": name, "description": description, "owner": owner, "tags": _list(tags)}
        return ProjectInfo(**self._t.post("/projects", body))

    def get_project(self, project_id: str) -> ProjectInfo:
        return ProjectInfo(**self._t.get(f"/projects/{project_id}"))

    def get_project_by_name(self, name: str) -> ProjectInfo:
        return ProjectInfo(**self._t.get("/projects", name=name)[0])

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
        body = {"name": name, "description": description, "owner": owner, "tags": _list(tags)}
        return ExperimentInfo(**self._t.post(f"/projects/{project_id}/experiments", body))

    def get_experiment(self, experiment_id: str) -> ExperimentInfo:
        return ExperimentInfo(**self._t.get(f"/experiments/{experiment_id}"))

    def get_experiment_by_name(self, project_id: str, name: str) -> ExperimentInfo:
        return ExperimentInfo(**self._t.get(f"/projects/{project_id}/experiments", name=name)[0])

    def list_experiments(self, project_id: str) -> list[ExperimentInfo]:
        return [ExperimentInfo(**e) for e in self._t.get(f"/projects/{project_id}/experiments")]

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
        return _run(self._t.get(f"/runs/{run_id}"))

    def get_run_by_name(self, experiment_id: str, name: str) -> RunInfo:
        return _run(self._t.get(f"/experiments/{experiment_id}/runs", name=name)[0])

    def list_runs(self, experiment_id: str, *, include_deleted: bool = False) -> list[RunInfo]:
        found = self._t.get(f"/experiments/{experiment_id}/runs", include_deleted=include_deleted)
        return [_run(r) for r in found]

    def list_child_runs(self, run_id: str, *, include_deleted: bool = False) -> list[RunInfo]:
        found = self._t.get(f"/runs/{run_id}/children", include_deleted=include_deleted)
        return [_run(r) for r in found]

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> RunInfo:
        final = RunStatus.parse(status)
        response = self._t.request("PATCH", f"/runs/{run_id}", json={"status": final.value})
        return _run(response.json())

    def delete_run(self, run_id: str) -> RunInfo:
        return _run(self._t.request("DELETE", f"/runs/{run_id}").json())

    def restore_run(self, run_id: str) -> RunInfo:
        return _run(self._t.post(f"/runs/{run_id}/restore"))

    def set_description(self, entity_id: str, description: str) -> None:
        self._t.request(
            "PUT", f"/entities/{entity_id}/description", json={"description": description}
        )

    # -- tags, attributes, hyperparameters --------------------------------------------
    def add_tags(self, entity_id: str, tags: Iterable[str]) -> None:
        self._t.post(f"/entities/{entity_id}/tags", {"tags": _tag_list(tags)})

    def remove_tags(self, entity_id: str, tags: Iterable[str]) -> None:
        self._t.post(f"/entities/{entity_id}/tags/remove", {"tags": _tag_list(tags)})

    def get_tags(self, entity_id: str) -> list[str]:
        tags: list[str] = self._t.get(f"/entities/{entity_id}/tags")
        return tags

    def set_attributes(self, entity_id: str, values: Mapping[str, Any]) -> None:
        self._t.request(
            "PATCH", f"/entities/{entity_id}/attributes", json={"attributes": dict(values)}
        )

    def get_attributes(self, entity_id: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self._t.get(f"/entities/{entity_id}/attributes", key=_list(keys))
        return found

    def remove_attributes(self, entity_id: str, keys: Iterable[str]) -> None:
        self._t.post(f"/entities/{entity_id}/attributes/remove", {"keys": _tag_list(keys)})

    def log_hyperparameters(
        self, run_id: str, values: Mapping[str, Any], *, overwrite: bool = False
    ) -> None:
        body = {"hyperparameters": dict(values), "overwrite": overwrite}
        self._t.post(f"/runs/{run_id}/hyperparameters", body)

    def get_hyperparameters(self, run_id: str) -> dict[str, HyperparameterValue]:
        found: dict[str, HyperparameterValue] = self._t.get(f"/runs/{run_id}/hyperparameters")
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
        found = self._t.get(f"/runs/{run_id}/metrics", key=_list(keys))
        return {k: MetricPoint(p["step"], p["timestamp"], p["value"]) for k, p in found.items()}

    def get_metric_history(self, run_id: str, key: str) -> SeriesPoints:
        response = self._t.request(
            "GET",
            f"/runs/{run_id}/metrics/history",
            params={"key": key},
            headers={"accept": HISTORY_MEDIA_TYPE},
        )
        return decode_history(response.content)


def _tag_list(values: Iterable[str]) -> list[str]:
    if isinstance(values, str):
        from cairn.core.errors import InvalidArgument

        raise InvalidArgument("tags", "must be a list of strings, not one string")
    return list(values)
