"""The ingredients a commit holds, for users: pure blobs, and ingredients read from this
machine (captured environments and code, files whose bytes are stored on commit).

    from cairn.versioning import Git, Notebook, Snapshot, Hyperparameters, Path, Python, Docker
    from cairn.versioning import S3, Query          # dataset sources besides Path
"""

from cairn.core.versioning.blobs import (
    Blob,
    Component,
    FileEntry,
    GitReference,
    Hyperparameters,
    NotebookCode,
    PathDataset,
    PythonEnvironment,
    QueryDataset,
    Range,
    S3Dataset,
    S3Object,
    SnapshotCode,
)
from cairn.core.versioning.blobs import DockerEnvironment as Docker
from cairn.core.versioning.diff import FieldChange, PathChange
from cairn.core.versioning.merge import MergeConflict
from cairn.versioning._remote import S3, Query
from cairn.versioning._sources import (
    DEFAULT_VARIABLES,
    Git,
    Ingredient,
    Notebook,
    Path,
    Python,
    Snapshot,
)

__all__ = [
    "DEFAULT_VARIABLES",
    "S3",
    "Blob",
    "Component",
    "Docker",
    "FieldChange",
    "FileEntry",
    "Git",
    "GitReference",
    "Hyperparameters",
    "Ingredient",
    "MergeConflict",
    "Notebook",
    "NotebookCode",
    "Path",
    "PathChange",
    "PathDataset",
    "Python",
    "PythonEnvironment",
    "Query",
    "QueryDataset",
    "Range",
    "S3Dataset",
    "S3Object",
    "Snapshot",
    "SnapshotCode",
]
