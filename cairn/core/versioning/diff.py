"""Typed diffs: between two blobs (field by field) and between two trees (path by path,
skipping every folder whose id did not change)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from cairn.core.digest import Digest
from cairn.core.versioning.blobs import Blob, Field
from cairn.core.versioning.canonical import Json
from cairn.core.versioning.tree import Entry, TreeNode

__all__ = ["FieldChange", "PathChange", "Status", "diff_blobs", "diff_trees"]

Status = Literal["added", "deleted", "modified"]


def _status(before: object, after: object) -> Status:
    if before is None:
        return "added"
    if after is None:
        return "deleted"
    return "modified"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a blob that differs: a hyperparameter, a requirement, a component...
    ``before``/``after`` are canonical values (None: absent on that side)."""

    field: Field
    before: Json
    after: Json

    @property
    def status(self) -> Status:
        return _status(self.before, self.after)

    @property
    def name(self) -> str:
        """The field for people: ``values.lr``, ``requirements.numpy``, ``command_line``."""
        return ".".join(self.field)


@dataclass(frozen=True, slots=True)
class PathChange:
    """What changed at one path: the blobs on each side (None: absent) and, for a blob
    modified in place, its changed fields."""

    path: str
    before: Blob | None
    after: Blob | None
    fields: tuple[FieldChange, ...]

    @property
    def status(self) -> Status:
        return _status(self.before, self.after)


def diff_blobs(before: Blob | None, after: Blob | None) -> tuple[FieldChange, ...]:
    """The fields that differ, in field order (a blob against nothing: all its fields)."""
    old = {} if before is None else before.fields()
    new = {} if after is None else after.fields()
    return tuple(
        FieldChange(key, old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    )


LoadNode = Callable[[Digest], TreeNode]
LoadBlob = Callable[[Entry], Blob]


def diff_trees(
    load_node: LoadNode, load_blob: LoadBlob, a: Digest | None, b: Digest | None
) -> list[PathChange]:
    """Every path whose blob differs between the trees ``a`` and ``b`` (None: empty), in
    path order. Folders with the same id on both sides are not read."""
    return list(_diff(load_node, load_blob, a, b, ""))


def _diff(
    load_node: LoadNode, load_blob: LoadBlob, a: Digest | None, b: Digest | None, prefix: str
) -> Iterator[PathChange]:
    if a == b:
        return
    left = {} if a is None else load_node(a).as_dict()
    right = {} if b is None else load_node(b).as_dict()
    for name in sorted(left.keys() | right.keys()):
        old, new = left.get(name), right.get(name)
        if old == new:
            continue
        path = f"{prefix}{name}"
        old_tree = old.digest if old is not None and old.is_tree else None
        new_tree = new.digest if new is not None and new.is_tree else None
        old_blob = None if old is None or old.is_tree else old
        new_blob = None if new is None or new.is_tree else new
        if old_blob is not None or new_blob is not None:
            before = None if old_blob is None else load_blob(old_blob)
            after = None if new_blob is None else load_blob(new_blob)
            yield PathChange(path, before, after, diff_blobs(before, after))
        if old_tree is not None or new_tree is not None:
            yield from _diff(load_node, load_blob, old_tree, new_tree, path + "/")
