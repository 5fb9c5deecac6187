"""Typed diffs: between two blobs (field by field) and between two trees (path by path,
skipping every folder whose id did not change)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from cairn.core.digest import Digest
from cairn.core.versioning.blobs import Blob, Field
from cairn.core.versioning.canonical import Json, shown
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

    def __str__(self) -> str:
        """``values.lr: 0.5 -> 0.8`` (``+``/``-`` for a field added or removed)."""
        if self.before is None:
            return f"{self.name}: + {shown(self.after)}"
        if self.after is None:
            return f"{self.name}: - {shown(self.before)}"
        return f"{self.name}: {shown(self.before)} -> {shown(self.after)}"


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
# Read many at once: the nodes with these ids, and the blobs these entries name (by id).
LoadNodes = Callable[[Iterable[Digest]], Mapping[Digest, TreeNode]]
LoadBlobs = Callable[[Iterable[Entry]], Mapping[Digest, Blob]]


def diff_trees(
    load_nodes: LoadNodes, load_blobs: LoadBlobs, a: Digest | None, b: Digest | None
) -> list[PathChange]:
    """Every path whose blob differs between the trees ``a`` and ``b`` (None: empty), in
    path order. Folders with the same id on both sides are not read; the others are read
    one depth at a time, each depth's nodes (and then every changed blob) in one call, so
    a store answers a diff in a few queries whatever the number of changed folders."""
    level: list[tuple[Digest | None, Digest | None, str]] = [(a, b, "")] if a != b else []
    pairs: list[tuple[str, Entry | None, Entry | None]] = []
    while level:
        nodes = load_nodes({d for pair in level for d in pair[:2] if d is not None})
        deeper: list[tuple[Digest | None, Digest | None, str]] = []
        for old_id, new_id, prefix in level:
            changed: list[tuple[str, Entry | None, Entry | None]]
            if old_id is not None and new_id is not None:
                # compared on their bytes: only the entries that differ are decoded
                changed = nodes[old_id].changes(nodes[new_id])
            elif new_id is not None:
                changed = [(name, None, e) for name, e in nodes[new_id].entries]
            elif old_id is not None:
                changed = [(name, e, None) for name, e in nodes[old_id].entries]
            for name, old, new in changed:
                path = f"{prefix}{name}"
                old_blob = None if old is None or old.is_tree else old
                new_blob = None if new is None or new.is_tree else new
                if old_blob is not None or new_blob is not None:
                    pairs.append((path, old_blob, new_blob))
                old_tree = old.digest if old is not None and old.is_tree else None
                new_tree = new.digest if new is not None and new.is_tree else None
                if old_tree is not None or new_tree is not None:
                    deeper.append((old_tree, new_tree, path + "/"))
        level = deeper
    blobs = load_blobs([e for _, old, new in pairs for e in (old, new) if e is not None])
    changes = []
    for path, old, new in sorted(pairs, key=lambda pair: pair[0].split("/")):
        before = None if old is None else blobs[old.digest]
        after = None if new is None else blobs[new.digest]
        changes.append(PathChange(path, before, after, diff_blobs(before, after)))
    return changes
