"""How a dataset is laid out on the versioning and tracking records, shared by the client
that writes it and the web UI that reads it.

A dataset is a repository marked by an attribute; a version is a commit on its ``main``
branch holding one dataset blob at ``BLOB_PATH``; a run that used a version carries a tag
naming it (so one search lists a version's runs) and an attribute naming its key.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BLOB_PATH",
    "DATASETS_QUERY",
    "DATASET_ATTRIBUTE",
    "DATASET_KIND",
    "RUN_ATTRIBUTE_PREFIX",
    "RUN_TAG_PREFIX",
    "runs_of_version_query",
]

DATASET_ATTRIBUTE: Final = "cairn.kind"
DATASET_KIND: Final = "dataset"
# find_repositories' query for the datasets among a project's repositories
DATASETS_QUERY: Final = f"attributes.`{DATASET_ATTRIBUTE}` = '{DATASET_KIND}'"
BLOB_PATH: Final = "dataset"
RUN_TAG_PREFIX: Final = "dataset-version:"
RUN_ATTRIBUTE_PREFIX: Final = "dataset."  # + the key (``train``, ``eval``)


def runs_of_version_query(version_id: str) -> str:
    """find_runs' query for the runs that logged a version."""
    return f"tags contains '{RUN_TAG_PREFIX}{version_id}'"
