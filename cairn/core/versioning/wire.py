"""The JSON forms of versioning values on the wire (the REST API and its client), so the
server and the HTTP backend encode and decode them one way."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument
from cairn.core.versioning.blobs import Blob, Field, blob_from_body
from cairn.core.versioning.commit import RefKind
from cairn.core.versioning.diff import FieldChange, PathChange
from cairn.core.versioning.info import (
    CommitInfo,
    MergeOutcome,
    RefInfo,
    RepositoryInfo,
    RunCommitInfo,
)
from cairn.core.versioning.merge import FOLDER, MergeConflict, NewValue, Resolution

__all__ = [
    "blob_from_json",
    "blob_to_json",
    "commit_from_json",
    "commit_to_json",
    "merge_from_json",
    "merge_to_json",
    "path_change_from_json",
    "path_change_to_json",
    "ref_from_json",
    "ref_to_json",
    "repository_from_json",
    "resolutions_from_json",
    "resolutions_to_json",
    "run_commit_from_json",
    "run_commit_to_json",
    "tree_objects_from_json",
    "tree_objects_to_json",
]


def blob_to_json(blob: Blob) -> dict[str, Any]:
    return {"kind": blob.KIND, "body": blob.body()}


def blob_from_json(value: Any, what: str = "blob") -> Blob:
    if not isinstance(value, Mapping) or set(value) != {"kind", "body"}:
        raise InvalidArgument(what, "must be {kind, body}")
    kind = value["kind"]
    if not isinstance(kind, str):
        raise InvalidArgument(what, "kind must be a string")
    return blob_from_body(kind, value["body"])


def repository_from_json(value: Mapping[str, Any]) -> RepositoryInfo:
    return RepositoryInfo(**value)


def commit_to_json(commit: CommitInfo) -> dict[str, Any]:
    return {
        "id": commit.id,
        "repository_id": commit.repository_id,
        "root": commit.root,
        "parents": list(commit.parents),
        "message": commit.message,
        "author": commit.author,
        "time": commit.time,
    }


def commit_from_json(value: Mapping[str, Any]) -> CommitInfo:
    return CommitInfo(
        Digest(value["id"]),
        value["repository_id"],
        Digest(value["root"]),
        tuple(Digest(p) for p in value["parents"]),
        value["message"],
        value["author"],
        value["time"],
    )


def ref_to_json(ref: RefInfo) -> dict[str, Any]:
    return {"name": ref.name, "kind": ref.kind, "commit": ref.commit}


def ref_from_json(value: Mapping[str, Any]) -> RefInfo:
    kind: RefKind = "tag" if value["kind"] == "tag" else "branch"
    return RefInfo(value["name"], kind, Digest(value["commit"]))


def run_commit_to_json(link: RunCommitInfo) -> dict[str, Any]:
    return {
        "run_id": link.run_id,
        "repository_id": link.repository_id,
        "commit": link.commit,
        "key_paths": dict(link.key_paths),
    }


def run_commit_from_json(value: Mapping[str, Any]) -> RunCommitInfo:
    return RunCommitInfo(
        value["run_id"], value["repository_id"], Digest(value["commit"]), value["key_paths"]
    )


def _side(blob: Blob | None) -> dict[str, Any] | None:
    return None if blob is None else blob_to_json(blob)


def path_change_to_json(change: PathChange) -> dict[str, Any]:
    return {
        "path": change.path,
        "status": change.status,
        "before": _side(change.before),
        "after": _side(change.after),
        "fields": [
            {"field": list(f.field), "before": f.before, "after": f.after} for f in change.fields
        ],
    }


def path_change_from_json(value: Mapping[str, Any]) -> PathChange:
    before = None if value["before"] is None else blob_from_json(value["before"])
    after = None if value["after"] is None else blob_from_json(value["after"])
    fields = tuple(FieldChange(tuple(f["field"]), f["before"], f["after"]) for f in value["fields"])
    return PathChange(value["path"], before, after, fields)


def _conflict_side(value: Any) -> Any:
    """A conflict's side: a field value as is; for a whole path, a blob, a folder or None."""
    if isinstance(value, Blob):
        return {"blob": blob_to_json(value)}
    if value is FOLDER:
        return {"folder": True}
    return {"value": value}


def _conflict_side_from(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise InvalidArgument("conflict", "a side must be {value}, {blob} or {folder}")
    if "blob" in value:
        return blob_from_json(value["blob"])
    if "folder" in value:
        return FOLDER
    return value.get("value")


def merge_to_json(outcome: MergeOutcome) -> dict[str, Any]:
    return {
        "source": outcome.source,
        "target": outcome.target,
        "base": outcome.base,
        "commit": None if outcome.commit is None else commit_to_json(outcome.commit),
        "changed": list(outcome.changed),
        "conflicts": [
            {
                "path": c.path,
                "field": None if c.field is None else list(c.field),
                "base": _conflict_side(c.base),
                "ours": _conflict_side(c.ours),
                "theirs": _conflict_side(c.theirs),
            }
            for c in outcome.conflicts
        ],
    }


def merge_from_json(value: Mapping[str, Any]) -> MergeOutcome:
    conflicts = tuple(
        MergeConflict(
            c["path"],
            None if c["field"] is None else tuple(c["field"]),
            _conflict_side_from(c["base"]),
            _conflict_side_from(c["ours"]),
            _conflict_side_from(c["theirs"]),
        )
        for c in value["conflicts"]
    )
    commit = None if value["commit"] is None else commit_from_json(value["commit"])
    return MergeOutcome(
        Digest(value["source"]),
        Digest(value["target"]),
        None if value["base"] is None else Digest(value["base"]),
        conflicts,
        commit,
        tuple(value["changed"]),
    )


def resolutions_to_json(
    resolutions: Mapping[tuple[str, Field | None], Resolution] | None,
) -> list[dict[str, Any]]:
    """Each resolution as ``{path, field, choice}`` with ``choice`` "ours", "theirs",
    ``{"value": ...}`` (a field's new value) or ``{"blob": {kind, body}}`` (a path's)."""
    found: list[dict[str, Any]] = []
    for (path, key), choice in (resolutions or {}).items():
        if isinstance(choice, Blob):
            encoded: Any = {"blob": blob_to_json(choice)}
        elif isinstance(choice, NewValue):
            encoded = {"value": choice.value}
        else:
            encoded = choice  # "ours" or "theirs"
        found.append({"path": path, "field": None if key is None else list(key), "choice": encoded})
    return found


def resolutions_from_json(value: Any) -> dict[tuple[str, Field | None], Resolution]:
    if not isinstance(value, list):
        raise InvalidArgument("resolutions", "must be a list")
    found: dict[tuple[str, Field | None], Resolution] = {}
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"path", "field", "choice"}:
            raise InvalidArgument("resolutions", "each must be {path, field, choice}")
        path, key, choice = item["path"], item["field"], item["choice"]
        if not isinstance(path, str):
            raise InvalidArgument("resolutions", "path must be a string")
        if key is not None and (
            not isinstance(key, list) or not all(isinstance(k, str) for k in key)
        ):
            raise InvalidArgument("resolutions", "field must be a list of strings or null")
        if choice in ("ours", "theirs"):
            decided: Resolution = choice
        elif isinstance(choice, Mapping) and set(choice) == {"blob"}:
            decided = blob_from_json(choice["blob"], "resolutions")
        elif isinstance(choice, Mapping) and set(choice) == {"value"}:
            decided = NewValue(choice["value"])
        else:
            raise InvalidArgument(
                "resolutions", 'choice must be "ours", "theirs", {"value": ...} or {"blob": ...}'
            )
        found[(path, None if key is None else tuple(key))] = decided
    return found


def tree_objects_to_json(objects: Iterable[tuple[str, bytes]]) -> list[dict[str, str]]:
    """Objects of a tree as ``{kind, body}``, the canonical bytes in base64 (a node's are
    binary)."""
    found: list[dict[str, str]] = []
    for item in objects:
        kind, body = tree_object(item)
        found.append({"kind": kind, "body": base64.b64encode(body).decode()})
    return found


def tree_object(item: object) -> tuple[str, bytes]:
    """One object given for a tree, as (kind, canonical bytes); ``InvalidArgument`` if it
    is not such a pair."""
    if (
        not isinstance(item, tuple | list)
        or len(item) != 2
        or not isinstance(item[0], str)
        or not isinstance(item[1], bytes | bytearray | memoryview)
    ):
        raise InvalidArgument("objects", "each must be (kind, canonical bytes)")
    return item[0], bytes(item[1])


def tree_objects_from_json(value: Any) -> list[tuple[str, bytes]]:
    if not isinstance(value, list):
        raise InvalidArgument("objects", "must be a list of {kind, body}")
    found: list[tuple[str, bytes]] = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"kind", "body"}:
            raise InvalidArgument("objects", "each must be {kind, body}")
        kind, body = item["kind"], item["body"]
        if not isinstance(kind, str) or not isinstance(body, str):
            raise InvalidArgument("objects", "kind and body must be strings")
        try:
            found.append((kind, base64.b64decode(body, validate=True)))
        except (binascii.Error, ValueError):
            raise InvalidArgument("objects", f"the body of a {kind} is not base64") from None
    return found
