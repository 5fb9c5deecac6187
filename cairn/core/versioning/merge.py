"""Three-way merges: per path, and inside a blob per field (a hyperparameter, a requirement,
a component), against the two sides' lowest common ancestor.

A side that did not change a path (or a field) yields to the side that did; both changing it
the same way agree; both changing it differently is a conflict, listed with the base, ours
and theirs, until a resolution picks ours, theirs or a new value. Folders whose id did not
change are not read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument
from cairn.core.versioning.blobs import BLOB_KINDS, Blob, Field
from cairn.core.versioning.canonical import shown
from cairn.core.versioning.diff import LoadBlob, LoadNode
from cairn.core.versioning.tree import Entry

__all__ = ["FOLDER", "MergeConflict", "MergePlan", "NewValue", "Resolution", "merge_trees"]


class _Folder:
    """What a conflict shows where one side has a folder (one object: no field's value
    can be mistaken for it)."""

    def __repr__(self) -> str:
        return "FOLDER"


FOLDER: Final = _Folder()


# How to settle a conflict: one side, or a new value (a field's value, or a whole blob).
@dataclass(frozen=True, slots=True)
class NewValue:
    """A conflict settled by a value given for the field (neither side's)."""

    value: Any


# How a conflict is settled: one side, a new value for a field, or a blob (for a whole path,
# or a field taken from it).
Resolution = Literal["ours", "theirs"] | NewValue | Blob


@dataclass(frozen=True, slots=True)
class MergeConflict:
    """A path (``field`` None: as a whole) or one field of the blob at it, changed
    differently on both sides. For a field, the values are canonical field values; for a
    path, blobs (or :data:`FOLDER`). None: absent on that side."""

    path: str
    field: Field | None
    base: Any
    ours: Any
    theirs: Any

    @property
    def key(self) -> tuple[str, Field | None]:
        return (self.path, self.field)

    @property
    def name(self) -> str:
        """The conflict for people: ``config/hp`` or ``config/hp: values.lr``."""
        return self.path if self.field is None else f"{self.path}: {'.'.join(self.field)}"

    def __str__(self) -> str:
        """``config/hp: values.lr: base 0.5, ours 0.3, theirs 0.8``."""
        sides = (("base", self.base), ("ours", self.ours), ("theirs", self.theirs))
        return f"{self.name}: " + ", ".join(f"{n} {_side(v)}" for n, v in sides)


def _side(value: Any) -> str:
    if value is None:
        return "(absent)"
    if value is FOLDER:
        return "(a folder)"
    if isinstance(value, Blob):
        return f"(a {value.KIND} blob)"
    return shown(value)


@dataclass(slots=True)
class MergePlan:
    """What merging theirs into ours gives: the changes to make on ours (path -> the blob
    to put there, or None to remove it) and the conflicts left unresolved."""

    changes: dict[str, Blob | None] = field(default_factory=dict)
    conflicts: list[MergeConflict] = field(default_factory=list)


def merge_trees(
    load_node: LoadNode,
    load_blob: LoadBlob,
    base: Digest | None,
    ours: Digest,
    theirs: Digest,
    resolutions: Mapping[tuple[str, Field | None], Resolution] | None = None,
) -> MergePlan:
    """Merge the tree ``theirs`` into ``ours``, with ``base`` their common ancestor's tree
    (None: unrelated, as if empty)."""
    plan = MergePlan()
    merger = _Merger(load_node, load_blob, dict(resolutions or {}), plan)
    merger.folder(base, ours, theirs, "")
    unknown = set(merger.resolutions) - merger.used
    if unknown:
        path, key = sorted(unknown, key=str)[0]
        where = path if key is None else f"{path}: {'.'.join(key)}"
        raise InvalidArgument("resolutions", f"{where!r} is not a conflict of this merge")
    return plan


class _Merger:
    def __init__(
        self,
        load_node: LoadNode,
        load_blob: LoadBlob,
        resolutions: dict[tuple[str, Field | None], Resolution],
        plan: MergePlan,
    ) -> None:
        self.load_node = load_node
        self.load_blob = load_blob
        self.resolutions = resolutions
        self.used: set[tuple[str, Field | None]] = set()
        self.plan = plan

    def entries(self, node: Digest | None) -> dict[str, Entry]:
        return {} if node is None else self.load_node(node).as_dict()

    def folder(
        self, base: Digest | None, ours: Digest | None, theirs: Digest | None, prefix: str
    ) -> None:
        if theirs in (ours, base):
            return  # nothing of theirs to take
        b, o, t = self.entries(base), self.entries(ours), self.entries(theirs)
        for name in sorted(o.keys() | t.keys()):
            self.entry(b.get(name), o.get(name), t.get(name), f"{prefix}{name}")

    def entry(self, b: Entry | None, o: Entry | None, t: Entry | None, path: str) -> None:
        if t in (o, b):
            return
        if o == b:
            self.take(o, t, path)
            return
        trees = [e for e in (b, o, t) if e is not None and e.is_tree]
        both_folders = o is not None and t is not None and o.is_tree and t.is_tree
        if both_folders and (b is None or b.is_tree):
            assert o is not None and t is not None
            self.folder(None if b is None else b.digest, o.digest, t.digest, path + "/")
            return
        if o is not None and t is not None and not trees and o.kind == t.kind:
            self.fields(b, o, t, path)
            return
        self.whole(b, o, t, path)

    def take(self, o: Entry | None, t: Entry | None, path: str) -> None:
        """Make ``path`` on ours what it is on theirs."""
        if o is not None and not o.is_tree:
            self.plan.changes[path] = None
        if t is not None and not t.is_tree:
            self.plan.changes[path] = self.load_blob(t)
        old_tree = o.digest if o is not None and o.is_tree else None
        new_tree = t.digest if t is not None and t.is_tree else None
        if old_tree is not None or new_tree is not None:
            for sub, blob in self.difference(old_tree, new_tree, path + "/"):
                self.plan.changes[sub] = blob

    def difference(
        self, old: Digest | None, new: Digest | None, prefix: str
    ) -> Iterator[tuple[str, Blob | None]]:
        if old == new:
            return
        left, right = self.entries(old), self.entries(new)
        for name in sorted(left.keys() | right.keys()):
            a, b = left.get(name), right.get(name)
            if a == b:
                continue
            path = f"{prefix}{name}"
            if a is not None and not a.is_tree:
                yield path, None
            if b is not None and not b.is_tree:
                yield path, self.load_blob(b)
            sub_old = a.digest if a is not None and a.is_tree else None
            sub_new = b.digest if b is not None and b.is_tree else None
            if sub_old is not None or sub_new is not None:
                yield from self.difference(sub_old, sub_new, path + "/")

    def fields(self, b: Entry | None, o: Entry, t: Entry, path: str) -> None:
        """Both sides changed the blob at ``path``, which has one kind: merge its fields."""
        ours, theirs = self.load_blob(o), self.load_blob(t)
        base = None if b is None or b.is_tree or b.kind != o.kind else self.load_blob(b)
        bf = {} if base is None else base.fields()
        of, tf = ours.fields(), theirs.fields()
        merged: dict[Field, Any] = {}
        unresolved = False
        for key in sorted(bf.keys() | of.keys() | tf.keys()):
            bv, ov, tv = bf.get(key), of.get(key), tf.get(key)
            if tv in (ov, bv):
                value = ov
            elif ov == bv:
                value = tv
            else:
                choice = self.resolution((path, key))
                if choice is None:
                    self.plan.conflicts.append(MergeConflict(path, key, bv, ov, tv))
                    unresolved = True
                    continue
                if choice == "ours":
                    value = ov
                elif choice == "theirs":
                    value = tv
                else:
                    given = choice.value if isinstance(choice, NewValue) else choice
                    value = BLOB_KINDS[o.kind].encode_field(key, given)
            if value is not None:
                merged[key] = value
        if unresolved:
            return
        result = BLOB_KINDS[o.kind].from_fields(merged)
        if result != ours:
            self.plan.changes[path] = result

    def whole(self, b: Entry | None, o: Entry | None, t: Entry | None, path: str) -> None:
        """A conflict on the path as a whole: deleted on one side and changed on the other,
        or another kind, or a folder against a blob."""
        choice = self.resolution((path, None))
        if choice is None:
            self.plan.conflicts.append(
                MergeConflict(path, None, self.show(b), self.show(o), self.show(t))
            )
        elif choice == "theirs":
            self.take(o, t, path)
        elif choice != "ours":
            if not isinstance(choice, Blob):
                raise InvalidArgument(
                    "resolutions", f"{path!r} is settled by ours, theirs or a blob"
                )
            if o is not None and o.is_tree:
                raise InvalidArgument(
                    "resolutions", f"{path!r} is a folder on our side: settle it by ours or theirs"
                )
            self.plan.changes[path] = choice

    def show(self, entry: Entry | None) -> Any:
        if entry is None:
            return None
        return FOLDER if entry.is_tree else self.load_blob(entry)

    def resolution(self, key: tuple[str, Field | None]) -> Resolution | None:
        if key in self.resolutions:
            self.used.add(key)
            return self.resolutions[key]
        return None
