"""Frozen values the layers pass to each other: entities, metric points, artifacts."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import NamedTuple

from cairn.core.errors import InvalidArgument

__all__ = [
    "ArtifactInfo",
    "EntityKind",
    "ExperimentInfo",
    "HyperparameterValue",
    "MetricPoint",
    "MetricRecord",
    "ProjectInfo",
    "RunInfo",
    "RunStatus",
    "decode_hyperparameter",
    "encode_hyperparameter",
]

HyperparameterValue = int | float | str | bool


class EntityKind(enum.StrEnum):
    PROJECT = "project"
    EXPERIMENT = "experiment"
    RUN = "run"
    REPOSITORY = "repository"


class RunStatus(enum.StrEnum):
    """Where a run stands. ``crashed`` is how a ``running`` run reads once its heartbeat
    is older than ``CAIRN_HEARTBEAT_TIMEOUT`` (its process died without ending it); a
    write from it (it was only cut off) brings it back to ``running``."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"
    CRASHED = "crashed"

    @property
    def ended(self) -> bool:
        """Finished, failed or killed: its record is closed (crashed is not: it may be
        written to again, or ended)."""
        return self in _ENDED

    @classmethod
    def parse(cls, value: object, field: str = "status") -> RunStatus:
        try:
            return cls(str(value)) if isinstance(value, str) else cls(value)  # type: ignore[arg-type]
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise InvalidArgument(field, f"must be one of {allowed}, got {value!r}") from None


_ENDED = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED})


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    id: str
    name: str
    description: str
    owner: str
    created_at: int
    updated_at: int
    deleted_at: int | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, slots=True)
class ExperimentInfo:
    id: str
    project_id: str
    name: str
    description: str
    owner: str
    created_at: int
    updated_at: int
    deleted_at: int | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: str
    experiment_id: str
    project_id: str
    name: str
    description: str
    owner: str
    status: RunStatus
    parent_id: str | None
    start_time: int
    end_time: int | None
    created_at: int
    updated_at: int
    deleted_at: int | None
    # When its process last said it was alive (start, a metric batch, a heartbeat).
    heartbeat_at: int | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


class MetricPoint(NamedTuple):
    """One point of a metric series, as read back."""

    step: int
    timestamp: int
    value: float


class MetricRecord(NamedTuple):
    """One point on its way in: which run and key it belongs to."""

    run_id: str
    key: str
    step: int
    timestamp: int
    value: float


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """An artifact logged against an entity: one file or a tree of files."""

    key: str
    kind: str  # "file" or "tree"
    digest: str
    size: int  # total bytes (a tree: sum of its files)
    file_count: int
    created_at: int


# Hyperparameters are stored as (kind, text) so each type comes back exactly:
# 1, 1.0, "1" and True are four different values.
def encode_hyperparameter(value: HyperparameterValue) -> tuple[str, str, float | None]:
    """(kind, canonical text, numeric value or None)."""
    if isinstance(value, bool):
        return "bool", "true" if value else "false", None
    if isinstance(value, int):
        return "int", str(value), float(value)
    if isinstance(value, float):
        return "float", repr(value), value if math.isfinite(value) else None
    return "str", value, None


def decode_hyperparameter(kind: str, text: str) -> HyperparameterValue:
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        return text == "true"
    return text
