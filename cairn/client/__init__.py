"""The Python API users hold: a Client and its Project, Experiment and Run handles."""

from cairn.client._client import Client
from cairn.client._entities import Experiment, Project, Run

__all__ = ["Client", "Experiment", "Project", "Run"]
