"""Cairn: versioning and metadata for machine-learning models.

``import cairn`` stays cheap (no database or hashing libraries load until a
Client is made): training scripts start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cairn.core.errors import (
    AlreadyExists,
    CairnError,
    Conflict,
    CorruptObject,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QueryError,
    SchemaOutOfDate,
    StorageFull,
    StoreBusy,
    StoreUnavailable,
    Unauthenticated,
)
from cairn.core.model import ArtifactInfo, MetricPoint, RunStatus
from cairn.core.version import VERSION

if TYPE_CHECKING:
    from cairn.client import (
        Client,
        Commit,
        Dataset,
        DatasetVersion,
        Experiment,
        MergeResult,
        MetricColumns,
        Project,
        Repository,
        Run,
    )

__version__ = VERSION

__all__ = [
    "AlreadyExists",
    "ArtifactInfo",
    "CairnError",
    "Client",
    "Commit",
    "Conflict",
    "CorruptObject",
    "Dataset",
    "DatasetVersion",
    "Experiment",
    "InvalidArgument",
    "MergeResult",
    "MetricColumns",
    "MetricPoint",
    "NotFound",
    "PermissionDenied",
    "Project",
    "QueryError",
    "Repository",
    "Run",
    "RunStatus",
    "SchemaOutOfDate",
    "StorageFull",
    "StoreBusy",
    "StoreUnavailable",
    "Unauthenticated",
    "__version__",
]

_LAZY = {
    "Client",
    "Commit",
    "Dataset",
    "DatasetVersion",
    "Experiment",
    "MergeResult",
    "MetricColumns",
    "Project",
    "Repository",
    "Run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import cairn.client

        value = getattr(cairn.client, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cairn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
