"""Request bodies and parameters of the REST API. Responses reuse the frozen values of
cairn.core.model.

Every body refuses unknown fields; names and keys carry the same limits as the Python
API so the OpenAPI document tells clients the rules. Structure (types, lengths, counts)
is checked here; content rules (no control characters in names, ids that are UUIDs) are
checked by the service, which names the rule in its message, and are only *documented*
here, as ``pattern``: one rule, one message, for the embedded client and the server alike.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import Header, Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
)

from cairn.core import digest, validation
from cairn.core.digest import parse_digest
from cairn.core.validation import MAX_NAME_LENGTH, check_entity_id

__all__ = [
    "ARTIFACT_KEY_PATTERN",
    "DIGEST_PATTERN",
    "NAME_PATTERN",
    "TEXT_PATTERN",
    "UUID_PATTERN",
    "ArtifactKey",
    "ArtifactKeyQuery",
    "AttributesIn",
    "CountOut",
    "CountRunsIn",
    "CreateRunIn",
    "DescriptionIn",
    "DigestPath",
    "EndRunIn",
    "EntityId",
    "EntityIdPath",
    "ExperimentIdPath",
    "FindExperimentsIn",
    "FindProjectsIn",
    "FindRepositoriesIn",
    "FindRunsIn",
    "HeartbeatIn",
    "HeartbeatOut",
    "HyperparametersIn",
    "IdFragmentQuery",
    "IdempotencyKeyHeader",
    "IngredientPath",
    "KeysIn",
    "KeysQuery",
    "MetricPointIn",
    "MetricsIn",
    "NameQuery",
    "ProjectIdPath",
    "RunIdPath",
    "SetEntityIn",
    "StoredBlobIn",
    "TagsIn",
    "keys_are_names",
]

# The service's rules (cairn.core.validation), spelled as JSON Schema patterns.
UUID_PATTERN: Final = f"^{validation.UUID_PATTERN}$"
NAME_PATTERN: Final = r"^[^\u0000-\u001f\u007f-\u009f]*$"  # no C0, DEL or C1 controls
TEXT_PATTERN: Final = r"^[^\u0000]*$"  # no NUL
DIGEST_PATTERN: Final = f"^{digest.DIGEST_PATTERN}$"
# A relative POSIX path: no drive, no empty, '.' or '..' segments, no '\\' or controls.
_SEGMENT = r"[^/\\\u0000-\u001f\u007f-\u009f]+"
ARTIFACT_KEY_PATTERN: Final = (
    rf"^(?![^\W\d_]:)(?!\.{{1,2}}(?:/|$))(?!.*/\.{{1,2}}(?:/|$)){_SEGMENT}(?:/{_SEGMENT})*$"
)
IDEMPOTENCY_KEY_PATTERN: Final = f"^{validation.IDEMPOTENCY_KEY_PATTERN}$"
MAX_INT64: Final = 2**63 - 1


def _documented(pattern: str) -> dict[str, Any]:
    return {"pattern": pattern}


def keys_are_names(schema: dict[str, Any]) -> None:
    """pydantic documents a key pattern as ``patternProperties``, which lets keys that do
    not match through unchecked; the rule is that every key is a name."""
    patterns = schema.pop("patternProperties", None)
    if patterns:
        ((pattern, values),) = patterns.items()
        schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}
        schema["additionalProperties"] = values


Name = Annotated[
    str,
    Field(min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra=_documented(NAME_PATTERN)),
]
Owner = Annotated[
    str, Field(max_length=MAX_NAME_LENGTH, json_schema_extra=_documented(NAME_PATTERN))
]
Text = Annotated[str, Field(max_length=65_536, json_schema_extra=_documented(TEXT_PATTERN))]
EntityId = Annotated[
    str, Field(min_length=36, max_length=36, json_schema_extra=_documented(UUID_PATTERN))
]


def _whole(value: object) -> object:
    """JSON Schema counts 3.0 as an integer; a strict int does not. Take whole floats,
    refuse strings and booleans (a lax int would take "3" and true)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Int64 = Annotated[
    StrictInt,
    Field(ge=0, le=MAX_INT64, json_schema_extra={"format": "int64"}),
    BeforeValidator(_whole),  # after the Field, so the bounds stay JSON Schema keywords
]


def _id_path(what: str) -> Any:
    return Path(description=f"UUID of {what}", json_schema_extra=_documented(UUID_PATTERN))


def _checked_id(field: str) -> AfterValidator:
    """Ids in the path are checked at the door, by the service's own rule (its
    InvalidArgument passes through pydantic untouched, so the message is the same)."""
    return AfterValidator(lambda value: check_entity_id(value, field))


ProjectIdPath = Annotated[str, _id_path("a project"), _checked_id("project_id")]
ExperimentIdPath = Annotated[str, _id_path("an experiment"), _checked_id("experiment_id")]
RunIdPath = Annotated[str, _id_path("a run"), _checked_id("run_id")]
EntityIdPath = Annotated[
    str, _id_path("a project, an experiment or a run"), _checked_id("entity_id")
]
DigestPath = Annotated[
    str,
    Path(
        description="BLAKE3 digest of the object, in hex",
        json_schema_extra=_documented(DIGEST_PATTERN),
    ),
    AfterValidator(lambda value: str(parse_digest(value))),
]
ArtifactKey = Annotated[
    str, Field(min_length=1, max_length=1024, json_schema_extra=_documented(ARTIFACT_KEY_PATTERN))
]
ArtifactKeyQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=1024,
        description="An artifact's key, or a path inside a tree artifact",
        json_schema_extra=_documented(ARTIFACT_KEY_PATTERN),
    ),
]
ID_FRAGMENT_PATTERN: Final = "^-*([0-9a-fA-F]-*){8,32}$"
IdFragmentQuery = Annotated[
    str,
    Query(
        max_length=72,
        description="8 to 32 hex digits of a run id, its start or its end (dashes and case "
        "ignored); at most 10 runs are listed",
        json_schema_extra=_documented(ID_FRAGMENT_PATTERN),
    ),
]
NameQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Find the one with this name (404 if there is none)",
        json_schema_extra=_documented(NAME_PATTERN),
    ),
]
KeysQuery = Annotated[
    list[Name] | None, Query(max_length=1000, description="Only these keys (repeat the parameter)")
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        max_length=128,
        description="A batch sent again with the same key is applied once",
        json_schema_extra=_documented(IDEMPOTENCY_KEY_PATTERN),
    ),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetEntityIn(_In):
    """Get-or-create a project or an experiment by name."""

    name: Name
    description: Text | None = None
    owner: Owner = ""
    tags: Annotated[list[Name], Field(max_length=1000)] | None = None


IngredientPath = Annotated[
    str, Field(min_length=1, max_length=1024, json_schema_extra={"pattern": ARTIFACT_KEY_PATTERN})
]


class StoredBlobIn(_In):
    """An ingredient stored already, by its kind and digest."""

    kind: Annotated[
        str, Field(min_length=1, max_length=64, json_schema_extra=_documented(NAME_PATTERN))
    ]
    digest: Annotated[str, Field(json_schema_extra={"pattern": DIGEST_PATTERN})]


class CreateRunIn(_In):
    name: Name | None = None
    parent_id: EntityId | None = None
    description: Text | None = None
    owner: Owner = ""
    tags: Annotated[list[Name], Field(max_length=1000)] | None = None
    get_or_create: StrictBool = Field(
        False, description="Return the run of that name if it exists (needs a name)."
    )
    captures: (
        Annotated[
            dict[IngredientPath, StoredBlobIn],
            Field(
                max_length=100,
                description="What the new run captured, by ingredients stored already "
                "(404, and no run, if one is not)",
                json_schema_extra=keys_are_names,
            ),
        ]
        | None
    ) = None


class MetricPointIn(_In):
    run_id: EntityId
    key: Name
    step: Int64
    timestamp: Int64
    value: StrictFloat = Field(description="NaN and infinities are allowed (as JSON extensions)")


class RunPointIn(_In):
    """A metric point of the run the path names."""

    key: Name
    step: Int64
    timestamp: Int64
    value: StrictFloat = Field(description="NaN and infinities are allowed (as JSON extensions)")


class EndRunIn(_In):
    status: Literal["finished", "failed", "killed"]
    points: (
        Annotated[
            list[RunPointIn],
            Field(
                max_length=10_000,
                description="The run's last metric points, stored with its end (once per "
                "Idempotency-Key)",
            ),
        ]
        | None
    ) = None


class HeartbeatIn(_In):
    run_ids: Annotated[list[EntityId], Field(max_length=10_000)]


class HeartbeatOut(BaseModel):
    running: int


class DescriptionIn(_In):
    description: Text


class TagsIn(_In):
    tags: Annotated[list[Name], Field(max_length=10_000)]


class KeysIn(_In):
    keys: Annotated[list[Name], Field(max_length=10_000)]


class AttributesIn(_In):
    attributes: Annotated[
        dict[Name, Any], Field(max_length=10_000, json_schema_extra=keys_are_names)
    ]


# Hyperparameter values are checked by the service alone (its message names the key and
# the allowed types; a pydantic union would name the union's members instead). Documented:
# JSON Schema cannot tell 3 from 3.0, Python's json can, and the type is kept. So an
# integer must fit in 64 bits, and a float is a number with a fraction (a float literal
# without one, such as 1e20, is accepted too, though not documented).
HyperparameterValue = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "integer", "format": "int64"},
                {"type": "number", "not": {"type": "integer"}},
                {"type": "string", "maxLength": 65_536, "pattern": TEXT_PATTERN},
            ]
        }
    ),
]


class HyperparametersIn(_In):
    hyperparameters: Annotated[
        dict[Name, HyperparameterValue],
        Field(max_length=10_000, json_schema_extra=keys_are_names),
    ]
    overwrite: StrictBool = False


class MetricsIn(_In):
    """JSON form of a metric batch (the client uses the compact binary form)."""

    points: Annotated[list[MetricPointIn], Field(max_length=100_000)]


# -- search -----------------------------------------------------------------------------
# The parser bounds a query's length (16,384 characters) and says where it stops, as a
# QueryError; the schema's bound is only a backstop, far above it.
QueryText = Annotated[
    str,
    Field(max_length=1_048_576, description="The search language (docs/search.md); empty: all"),
]
OrderBy = Annotated[
    list[Annotated[str, Field(max_length=1024)]],
    Field(max_length=16, description="Fields, '-' first for descending: ['-metrics.acc']"),
]
Ids = Annotated[list[EntityId], Field(max_length=10_000)]


class _FindIn(_In):
    query: QueryText = ""
    order_by: OrderBy | None = None
    limit: Annotated[int, Field(ge=1, description="At most max_search_limit")] = 100
    cursor: Annotated[str, Field(max_length=65_536)] | None = Field(
        None, description="next_cursor of the page before"
    )
    include_deleted: StrictBool = False


class FindRunsIn(_FindIn):
    experiment_ids: Ids | None = None
    project_ids: Ids | None = None
    columns: (
        Annotated[
            list[Annotated[str, Field(max_length=1024)]],
            Field(max_length=1000, description="Values a page carries: ['metrics.acc', 'tags']"),
        ]
        | None
    ) = None


class CountRunsIn(_In):
    query: QueryText = ""
    experiment_ids: Ids | None = None
    project_ids: Ids | None = None
    include_deleted: StrictBool = False


class CountOut(BaseModel):
    count: int


class FindExperimentsIn(_FindIn):
    project_ids: Ids | None = None


class FindProjectsIn(_FindIn):
    pass


class FindRepositoriesIn(_In):
    query: QueryText = ""
    project_ids: Ids | None = None
    order_by: OrderBy | None = None
    limit: Annotated[int, Field(ge=1, description="At most max_search_limit")] = 100
    cursor: Annotated[str, Field(max_length=65_536)] | None = Field(
        None, description="next_cursor of the page before"
    )
