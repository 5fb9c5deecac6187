"""Hierarchical trees: one content-addressed node per folder, as in git.

A node maps each name in a folder to the kind and id of what is there: another node
(``"tree"``) or a blob (its kind, e.g. ``"config.hyperparameters"``). Unchanged folders keep
their ids, so commits share them, and changing one path makes new nodes only along that
path: O(depth), not O(paths). The functions here are pure; they read nodes through a
``load`` callable that the store provides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.validation import check_artifact_key
from cairn.core.versioning.canonical import canonical_bytes, object_digest, parse_canonical

__all__ = [
    "EMPTY_TREE",
    "TREE",
    "Entry",
    "TreeNode",
    "apply_changes",
    "check_path",
    "find",
    "walk",
]

TREE: Final = "tree"


@dataclass(frozen=True, slots=True)
class Entry:
    """What a name in a folder holds: a node (``kind == "tree"``) or a blob of ``kind``."""

    kind: str
    digest: Digest

    @property
    def is_tree(self) -> bool:
        return self.kind == TREE


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One folder: name -> entry, names in sorted order."""

    entries: tuple[tuple[str, Entry], ...]

    @classmethod
    def of(cls, entries: Mapping[str, Entry]) -> TreeNode:
        for name in entries:
            if not name or "/" in name or name in (".", ".."):
                raise InvalidArgument("path", f"{name!r} is not a name in a folder")
        return cls(tuple(sorted(entries.items())))

    def as_dict(self) -> dict[str, Entry]:
        return dict(self.entries)

    def canonical(self) -> bytes:
        return canonical_bytes({name: [e.kind, e.digest] for name, e in self.entries})

    def digest(self) -> Digest:
        return object_digest(TREE, self.canonical())

    @classmethod
    def decode(cls, data: bytes) -> TreeNode:
        doc = parse_canonical(data, "tree node")
        if not isinstance(doc, dict):
            raise InvalidArgument("tree node", "must be a JSON object")
        entries: dict[str, Entry] = {}
        for name, value in doc.items():
            if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str):
                raise InvalidArgument("tree node", f"entry {name!r} must be [kind, digest]")
            entries[name] = Entry(value[0], parse_digest(value[1], "tree entry"))
        return cls.of(entries)


EMPTY_TREE: Final = TreeNode(())

# Reads the node whose id is given (NotFound if there is none).
Load = Callable[[Digest], TreeNode]


def check_path(path: object, field: str = "path") -> str:
    """A path in a commit: like an artifact key ('config/hp'): relative, no empty, '.' or
    '..' segments, no control characters."""
    return check_artifact_key(path, field)


def walk(load: Load, root: Digest, prefix: str = "") -> Iterator[tuple[str, Entry]]:
    """Every blob under the node ``root``: (path, entry), in path order."""
    for name, entry in load(root).entries:
        path = f"{prefix}{name}"
        if entry.is_tree:
            yield from walk(load, entry.digest, path + "/")
        else:
            yield path, entry


def find(load: Load, root: Digest, path: str) -> Entry | None:
    """The entry at ``path`` (a blob or a folder), or None."""
    node_id = root
    parts = path.split("/")
    for depth, name in enumerate(parts):
        entry = load(node_id).as_dict().get(name)
        if entry is None:
            return None
        if depth == len(parts) - 1:
            return entry
        if not entry.is_tree:
            return None  # a blob where a folder would be
        node_id = entry.digest
    return None


def apply_changes(
    load: Load, root: Digest | None, changes: Mapping[str, Entry | None]
) -> tuple[Digest, dict[Digest, TreeNode]]:
    """The root of the tree ``root`` with ``changes`` made (path -> new blob entry, or None
    to remove it), and the nodes that are new. Only the folders along changed paths are
    read and rebuilt; a folder left empty disappears. Refused: a blob where a folder is (or
    the other way round), and removing a path that holds nothing."""
    by_first: dict[str, dict[str, Entry | None]] = {}
    for path, entry in changes.items():
        check_path(path)
        head, _, rest = path.partition("/")
        by_first.setdefault(head, {})[rest] = entry
    made: dict[Digest, TreeNode] = {}
    new_root = _rebuild(load, root, by_first, "", made)
    if new_root is None:
        new_root = EMPTY_TREE.digest()
        made.setdefault(new_root, EMPTY_TREE)
    return new_root, made


def _rebuild(
    load: Load,
    node_id: Digest | None,
    changes: dict[str, dict[str, Entry | None]],
    prefix: str,
    made: dict[Digest, TreeNode],
) -> Digest | None:
    entries = {} if node_id is None else load(node_id).as_dict()
    for name, below in changes.items():
        here = entries.get(name)
        path = f"{prefix}{name}"
        if "" in below:  # the change is at this very name
            if len(below) > 1:
                raise InvalidArgument("path", f"{path!r} is changed both as a file and as a folder")
            new = below[""]
            if here is not None and here.is_tree:
                raise InvalidArgument("path", f"{path!r} is a folder, not an ingredient")
            if new is None:
                if here is None:
                    raise NotFound(f"nothing at {path!r} to remove", path=path)
                del entries[name]
            else:
                entries[name] = new
            continue
        if here is not None and not here.is_tree:
            raise InvalidArgument("path", f"{path!r} holds an ingredient, not a folder")
        nested: dict[str, dict[str, Entry | None]] = {}
        for rest, entry in below.items():
            head, _, tail = rest.partition("/")
            nested.setdefault(head, {})[tail] = entry
        child = _rebuild(load, None if here is None else here.digest, nested, path + "/", made)
        if child is None:
            entries.pop(name, None)
        else:
            entries[name] = Entry(TREE, child)
    if not entries:
        return None
    node = TreeNode.of(entries)
    digest = node.digest()
    if digest != node_id:
        made[digest] = node
    return digest
