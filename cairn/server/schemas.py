"""Request bodies of the REST API. Responses reuse the frozen values of cairn.core.model.

Every body refuses unknown fields; names and keys carry the same limits as the
Python API so the OpenAPI document tells clients the rules.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from cairn.core.model import RunStatus

__all__ = [
    "AttributesIn",
    "CreateRunIn",
    "DescriptionIn",
    "EndRunIn",
    "HyperparametersIn",
    "KeysIn",
    "MetricPointIn",
    "MetricsIn",
    "SetEntityIn",
    "TagsIn",
]

Name = Annotated[str, Field(min_length=1, max_length=256)]
Text = Annotated[str, Field(max_length=65_536)]
EntityId = Annotated[str, Field(min_length=36, max_length=36)]
Int64 = Annotated[int, Field(ge=0, le=2**63 - 1)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetEntityIn(_In):
    """Get-or-create a project or an experiment by name."""

    name: Name
    description: Text | None = None
    owner: Annotated[str, Field(max_length=256)] = ""
    tags: Annotated[list[Name], Field(max_length=1000)] | None = None


class CreateRunIn(_In):
    name: Name | None = None
    parent_id: EntityId | None = None
    description: Text | None = None
    owner: Annotated[str, Field(max_length=256)] = ""
    tags: Annotated[list[Name], Field(max_length=1000)] | None = None
    get_or_create: bool = Field(
        False, description="Return the run of that name if it exists (needs a name)."
    )


class EndRunIn(_In):
    status: RunStatus


class DescriptionIn(_In):
    description: Text


class TagsIn(_In):
    tags: Annotated[list[Name], Field(max_length=10_000)]


class KeysIn(_In):
    keys: Annotated[list[Name], Field(max_length=10_000)]


class AttributesIn(_In):
    attributes: Annotated[dict[Name, Any], Field(max_length=10_000)]


HyperparameterValue = StrictBool | StrictInt | StrictFloat | StrictStr


class HyperparametersIn(_In):
    hyperparameters: Annotated[dict[Name, HyperparameterValue], Field(max_length=10_000)]
    overwrite: bool = False


class MetricPointIn(_In):
    run_id: EntityId
    key: Name
    step: Int64
    timestamp: Int64
    value: float


class MetricsIn(_In):
    """JSON form of a metric batch (the client uses the compact binary form)."""

    points: Annotated[list[MetricPointIn], Field(max_length=100_000)]
