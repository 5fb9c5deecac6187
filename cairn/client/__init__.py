"""The Python API users hold: a Client and its Project, Experiment, Run and Repository
handles."""

from cairn.client._client import Client
from cairn.client._columns import MetricColumns
from cairn.client._datasets import Dataset, DatasetVersion
from cairn.client._entities import Experiment, Project, Run
from cairn.client._repositories import Commit, MergeResult, Repository

__all__ = [
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
]
