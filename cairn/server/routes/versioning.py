"""Repositories of versioned ingredients: commits, refs, log, diff, merge, revert, and the
links of runs to commits. Blobs travel as ``{kind, body}`` (their canonical form); a ``ref``
names a branch, a tag or a commit id (or a unique prefix of one)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParameter
from pydantic import BaseModel, Field, StrictBool

from cairn.core.model import RunInfo
from cairn.core.versioning.commit import REF_NAME_PATTERN
from cairn.core.versioning.info import RepositoryInfo
from cairn.core.versioning.wire import (
    blob_from_json,
    blob_to_json,
    commit_to_json,
    merge_to_json,
    path_change_to_json,
    ref_to_json,
    resolutions_from_json,
    run_commit_to_json,
    tree_objects_from_json,
)
from cairn.server.deps import JSON, Service
from cairn.server.errors import error_responses
from cairn.server.schemas import (
    ARTIFACT_KEY_PATTERN,
    DIGEST_PATTERN,
    NAME_PATTERN,
    EntityId,
    EntityIdPath,
    IngredientPath,
    Name,
    NameQuery,
    Owner,
    ProjectIdPath,
    RunIdPath,
    StoredBlobIn,
    Text,
    keys_are_names,
)

__all__ = ["router"]

router = APIRouter(tags=["versioning"])
MISSING = error_responses(404)  # the repository, the ref or the path names nothing
WRITE = error_responses(404, 409)  # ... or a branch moved meanwhile, a tag that exists

_REF_DOC = "A branch, a tag or a commit id (or a unique prefix of one, from 7 characters)"
Ref = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        description=_REF_DOC,
        json_schema_extra={"pattern": NAME_PATTERN},
    ),
]
RefQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=256,
        description=_REF_DOC,
        json_schema_extra={"pattern": NAME_PATTERN},
    ),
]
# A branch or a tag, by git's rules for ref names.
RefName = Annotated[
    str, Field(min_length=1, max_length=256, json_schema_extra={"pattern": REF_NAME_PATTERN})
]
# A path in a commit, like an artifact key: "config/hp".
PathQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=1024,
        description="Only the commits that changed this path",
        json_schema_extra={"pattern": ARTIFACT_KEY_PATTERN},
    ),
]
BranchPath = Annotated[
    str,
    PathParameter(
        description="A branch name, by git's rules", json_schema_extra={"pattern": REF_NAME_PATTERN}
    ),
]
_OBJECT: dict[str, Any] = {"type": "object"}
_ARRAY: dict[str, Any] = {"type": "array", "items": {"type": "object"}}


def _documented(schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"schema": schema}}}}


class _In(BaseModel):
    model_config = {"extra": "forbid"}


class RepositoryIn(_In):
    name: Name
    description: Text | None = None
    owner: Owner = ""
    tags: Annotated[list[Name], Field(max_length=1000)] | None = None


class BlobIn(_In):
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    body: dict[str, Any]


class ReadIn(_In):
    ref: Ref
    paths: Annotated[list[IngredientPath], Field(max_length=100_000)] | None = None


class SaveCommitIn(_In):
    branch: RefName
    changes: Annotated[
        dict[IngredientPath, BlobIn | None],
        Field(max_length=100_000, json_schema_extra=keys_are_names),
    ]
    message: Text
    author: Owner = ""
    base: Ref | None = None


Digest64 = Annotated[
    str, Field(min_length=64, max_length=64, json_schema_extra={"pattern": DIGEST_PATTERN})
]


class TreeDigestsIn(_In):
    digests: Annotated[list[Digest64], Field(max_length=1_000_000)]


class TreeObjectIn(_In):
    kind: Annotated[
        str,
        Field(min_length=1, max_length=32, json_schema_extra={"pattern": "^[a-z][a-z0-9_.-]*$"}),
    ]
    body: Annotated[
        str,
        Field(
            max_length=64 * 1024 * 1024,
            description="The object's canonical bytes, in base64",
            json_schema_extra={"contentEncoding": "base64"},
        ),
    ]


class SaveTreeIn(_In):
    branch: RefName
    root: Digest64
    objects: Annotated[list[TreeObjectIn], Field(max_length=1_000_000)]
    message: Text
    author: Owner = ""
    base: Ref | None = None


class BranchIn(_In):
    commit: Ref
    expected: Ref | None = None
    force: StrictBool = False


class TagIn(_In):
    name: RefName
    commit: Ref


class ResolutionIn(_In):
    path: IngredientPath
    field: Annotated[list[Name], Field(min_length=1, max_length=2)] | None
    choice: Any = Field(description='"ours", "theirs", {"value": ...} or {"blob": {kind, body}}')


class MergeIn(_In):
    source: Ref
    into: RefName
    message: Text | None = None
    author: Owner = ""
    resolutions: Annotated[list[ResolutionIn], Field(max_length=10_000)] = []
    dry_run: StrictBool = False
    expected_source: Ref | None = None
    expected_target: Ref | None = None


class RevertIn(_In):
    commit: Ref
    branch: RefName
    message: Text | None = None
    author: Owner = ""


class CaptureIn(_In):
    captured: Annotated[
        dict[IngredientPath, BlobIn], Field(max_length=1000, json_schema_extra=keys_are_names)
    ]


class CaptureRefsIn(_In):
    refs: Annotated[
        dict[IngredientPath, StoredBlobIn],
        Field(max_length=1000, json_schema_extra=keys_are_names),
    ]


class LinkCommitIn(_In):
    repository_id: EntityId
    commit: Ref
    key_paths: (
        Annotated[
            dict[Name, IngredientPath],
            Field(max_length=10_000, json_schema_extra=keys_are_names),
        ]
        | None
    ) = None


# -- repositories ---------------------------------------------------------------------------
@router.post(
    "/projects/{project_id}/repositories",
    summary="Get or create a repository (a new one has an empty commit on main)",
    responses=MISSING,
)
def set_repository(
    project_id: ProjectIdPath, body: RepositoryIn, service: Service
) -> RepositoryInfo:
    return service.repositories.set_repository(
        project_id, body.name, description=body.description, owner=body.owner, tags=body.tags
    )


@router.get(
    "/projects/{project_id}/repositories",
    summary="List a project's repositories, or find one by name",
    responses=MISSING,
)
def list_repositories(
    project_id: ProjectIdPath, service: Service, name: NameQuery = None
) -> list[RepositoryInfo]:
    if name is not None:
        return [service.repositories.get_repository_by_name(project_id, name)]
    return service.repositories.list_repositories(project_id)


@router.get("/repositories/{repository_id}", responses=MISSING)
def get_repository(repository_id: EntityIdPath, service: Service) -> RepositoryInfo:
    return service.repositories.get_repository(repository_id)


# -- reading --------------------------------------------------------------------------------
@router.get(
    "/repositories/{repository_id}/refs",
    summary="Branches and tags",
    response_class=JSON,
    responses={**_documented(_ARRAY), **MISSING},
)
def list_refs(repository_id: EntityIdPath, service: Service) -> Any:
    return JSON([ref_to_json(r) for r in service.repositories.list_refs(repository_id)])


@router.get(
    "/repositories/{repository_id}/commit",
    summary="The commit a ref names",
    response_class=JSON,
    responses={**_documented(_OBJECT), **MISSING},
)
def get_commit(repository_id: EntityIdPath, ref: RefQuery, service: Service) -> Any:
    return JSON(commit_to_json(service.repositories.get_commit(repository_id, ref)))


@router.get(
    "/repositories/{repository_id}/paths",
    summary="Every ingredient of a commit: path -> blob kind",
    response_class=JSON,
    responses={**_documented(_OBJECT), **MISSING},
)
def list_paths(repository_id: EntityIdPath, ref: RefQuery, service: Service) -> Any:
    return JSON(service.repositories.list_paths(repository_id, ref))


@router.post(
    "/repositories/{repository_id}/read",
    summary="The blobs at some paths of a commit (every one if paths is null)",
    response_class=JSON,
    responses={**_documented(_OBJECT), **MISSING},
)
def read_blobs(repository_id: EntityIdPath, body: ReadIn, service: Service) -> Any:
    found = service.repositories.read_blobs(repository_id, body.ref, body.paths)
    return JSON({path: blob_to_json(blob) for path, blob in found.items()})


@router.get(
    "/repositories/{repository_id}/log",
    summary="A commit and its ancestors, newest first",
    response_class=JSON,
    responses={**_documented(_ARRAY), **MISSING},
)
def log(
    repository_id: EntityIdPath,
    ref: RefQuery,
    service: Service,
    first_parent: bool = False,
    path: PathQuery = None,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> Any:
    commits = service.repositories.log(
        repository_id, ref, first_parent=first_parent, path=path, limit=limit
    )
    return JSON([commit_to_json(c) for c in commits])


@router.get(
    "/repositories/{repository_id}/diff",
    summary="What changed from commit a to commit b, path by path and field by field",
    response_class=JSON,
    responses={**_documented(_ARRAY), **MISSING},
)
def diff(repository_id: EntityIdPath, a: RefQuery, b: RefQuery, service: Service) -> Any:
    changes = service.repositories.diff(repository_id, a, b)
    return JSON([path_change_to_json(c) for c in changes])


# -- writing --------------------------------------------------------------------------------
@router.post(
    "/repositories/{repository_id}/commits",
    status_code=201,
    summary="Commit changes on a branch (moved by compare-and-swap from base)",
    response_class=JSON,
    responses={201: {"content": {"application/json": {"schema": _OBJECT}}}, **WRITE},
)
def save_commit(repository_id: EntityIdPath, body: SaveCommitIn, service: Service) -> Any:
    changes = {
        path: None if blob is None else blob_from_json(blob.model_dump(), path)
        for path, blob in body.changes.items()
    }
    commit = service.repositories.save_commit(
        repository_id,
        body.branch,
        changes,
        message=body.message,
        author=body.author,
        base=body.base,
    )
    return JSON(commit_to_json(commit), status_code=201)


@router.post(
    "/repositories/{repository_id}/trees/missing",
    summary="Which of these blobs and tree nodes the store lacks (what a tree commit sends)",
    response_class=JSON,
    responses={**_documented({"type": "object"}), **MISSING},
)
def missing_tree_objects(repository_id: EntityIdPath, body: TreeDigestsIn, service: Service) -> Any:
    missing = service.repositories.missing_tree_objects(repository_id, body.digests)
    return JSON({"missing": missing})


@router.post(
    "/repositories/{repository_id}/trees",
    status_code=201,
    summary="Commit a whole tree built by the caller, sending only the objects the store lacks",
    response_class=JSON,
    responses={201: {"content": {"application/json": {"schema": _OBJECT}}}, **WRITE},
)
def save_tree(repository_id: EntityIdPath, body: SaveTreeIn, service: Service) -> Any:
    objects = tree_objects_from_json([o.model_dump() for o in body.objects])
    commit = service.repositories.save_tree(
        repository_id,
        body.branch,
        body.root,
        objects,
        message=body.message,
        author=body.author,
        base=body.base,
    )
    return JSON(commit_to_json(commit), status_code=201)


@router.put(
    "/repositories/{repository_id}/branches/{name:path}",
    summary="Create a branch, or move it (compare-and-swap from expected)",
    response_class=JSON,
    responses={**_documented(_OBJECT), **WRITE},
)
def set_branch(
    repository_id: EntityIdPath, name: BranchPath, body: BranchIn, service: Service
) -> Any:
    ref = service.repositories.set_branch(
        repository_id, name, body.commit, expected=body.expected, force=body.force
    )
    return JSON(ref_to_json(ref))


@router.post(
    "/repositories/{repository_id}/tags",
    status_code=201,
    summary="Tag a commit (a tag never moves)",
    response_class=JSON,
    responses={201: {"content": {"application/json": {"schema": _OBJECT}}}, **WRITE},
)
def create_tag(repository_id: EntityIdPath, body: TagIn, service: Service) -> Any:
    ref = service.repositories.create_tag(repository_id, body.name, body.commit)
    return JSON(ref_to_json(ref), status_code=201)


@router.post(
    "/repositories/{repository_id}/merge",
    summary="Merge a ref into a branch: done, or stopped by listed conflicts",
    response_class=JSON,
    responses={**_documented(_OBJECT), **WRITE},
)
def merge(repository_id: EntityIdPath, body: MergeIn, service: Service) -> Any:
    resolutions = resolutions_from_json([r.model_dump() for r in body.resolutions])
    outcome = service.repositories.merge(
        repository_id,
        body.source,
        body.into,
        message=body.message,
        author=body.author,
        resolutions=resolutions,
        dry_run=body.dry_run,
        expected_source=body.expected_source,
        expected_target=body.expected_target,
    )
    return JSON(merge_to_json(outcome))


@router.post(
    "/repositories/{repository_id}/revert",
    status_code=201,
    summary="A new commit on a branch that undoes a commit",
    response_class=JSON,
    responses={201: {"content": {"application/json": {"schema": _OBJECT}}}, **WRITE},
)
def revert(repository_id: EntityIdPath, body: RevertIn, service: Service) -> Any:
    commit = service.repositories.revert(
        repository_id, body.commit, body.branch, message=body.message, author=body.author
    )
    return JSON(commit_to_json(commit), status_code=201)


# -- runs -----------------------------------------------------------------------------------
@router.put(
    "/runs/{run_id}/commit",
    summary="Link a run to the commit it was built from",
    response_class=JSON,
    responses={**_documented(_OBJECT), **WRITE},
)
def log_commit(run_id: RunIdPath, body: LinkCommitIn, service: Service) -> Any:
    link = service.repositories.log_commit(run_id, body.repository_id, body.commit, body.key_paths)
    return JSON(run_commit_to_json(link))


@router.get(
    "/runs/{run_id}/commit",
    summary="The commit a run was built from (null if none)",
    response_class=JSON,
    responses={**_documented({"type": ["object", "null"]}), **MISSING},
)
def get_run_commit(run_id: RunIdPath, service: Service) -> Any:
    link = service.repositories.get_run_commit(run_id)
    return JSON(None if link is None else run_commit_to_json(link))


@router.get(
    "/repositories/{repository_id}/runs",
    summary="The runs built from a commit",
    responses=MISSING,
)
def list_commit_runs(
    repository_id: EntityIdPath,
    commit: RefQuery,
    service: Service,
    include_deleted: bool = False,
) -> list[RunInfo]:
    return service.repositories.list_commit_runs(
        repository_id, commit, include_deleted=include_deleted
    )


@router.put(
    "/runs/{run_id}/capture",
    status_code=204,
    summary="What a run captured as it started (code, environment), path by path",
    responses=WRITE,
)
def capture_run(run_id: RunIdPath, body: CaptureIn, service: Service) -> None:
    captured = {path: blob_from_json(b.model_dump(), path) for path, b in body.captured.items()}
    service.repositories.capture_run(run_id, captured)


@router.put(
    "/runs/{run_id}/capture/refs",
    status_code=204,
    summary="What a run captured, named by ingredients stored already (a sweep's runs share them)",
    responses=WRITE,
)
def link_capture(run_id: RunIdPath, body: CaptureRefsIn, service: Service) -> None:
    refs = {path: (ref.kind, ref.digest) for path, ref in body.refs.items()}
    service.repositories.link_capture(run_id, refs)


@router.get(
    "/runs/{run_id}/capture",
    summary="What a run captured as it started: path -> {kind, body}",
    response_class=JSON,
    responses={**_documented(_OBJECT), **MISSING},
)
def get_run_capture(run_id: RunIdPath, service: Service) -> Any:
    found = service.repositories.get_run_capture(run_id)
    return JSON({path: blob_to_json(blob) for path, blob in found.items()})
