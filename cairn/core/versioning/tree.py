"""Hierarchical trees: one content-addressed node per folder, as in git.

A node maps each name in a folder to the kind and id of what is there: another node
(``"tree"``) or a blob (its kind, e.g. ``"config.hyperparameters"``). Unchanged folders keep
their ids, so commits share them, and changing one path makes new nodes only along that
path: O(depth), not O(paths). The functions here are pure; they read nodes through a
``load`` callable that the store provides.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Final, NamedTuple

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.validation import check_artifact_key
from cairn.core.versioning.canonical import object_digest

__all__ = [
    "EMPTY_TREE",
    "TREE",
    "Entry",
    "TreeBuilder",
    "TreeNode",
    "apply_changes",
    "build_tree",
    "check_path",
    "find",
    "walk",
]

TREE: Final = "tree"
# A node's canonical form, and one entry of it: name, NUL, kind, NUL, the 32 bytes of the
# id (as (name, the rest)).
_NODE: Final = re.compile(rb"(?:[^\x00]+\x00[a-z][a-z0-9_.-]*\x00.{32})*", re.DOTALL)
_ENTRY: Final = re.compile(rb"([^\x00]+)(\x00[a-z][a-z0-9_.-]*\x00.{32})", re.DOTALL)
_KIND: Final = re.compile(r"[a-z][a-z0-9_.-]*")


class Entry(NamedTuple):
    """What a name in a folder holds: a node (``kind == "tree"``) or a blob of ``kind``.
    (A named tuple: nodes decode thousands of them, and tuples are made fastest.)"""

    kind: str
    digest: Digest

    @property
    def is_tree(self) -> bool:
        return self.kind == TREE


class TreeNode:
    """One folder: name -> entry, names in sorted order.

    A node read from its canonical form keeps its entries as raw bytes (name -> the rest
    of the entry) and decodes them when asked: two versions of a folder of 100 entries
    that differ in one are compared on their bytes, and only that one is decoded."""

    __slots__ = ("_entries", "_raw")

    def __init__(self, entries: tuple[tuple[str, Entry], ...]) -> None:
        self._entries: tuple[tuple[str, Entry], ...] | None = entries
        self._raw: dict[bytes, bytes] | None = None

    @classmethod
    def of(cls, entries: Mapping[str, Entry]) -> TreeNode:
        for name in entries:
            if not name or "/" in name or "\x00" in name or name in (".", ".."):
                raise InvalidArgument("path", f"{name!r} is not a name in a folder")
        return cls(tuple(sorted(entries.items())))

    @property
    def entries(self) -> tuple[tuple[str, Entry], ...]:
        if self._entries is None:
            self._entries = tuple((n.decode(), _entry(rest)) for n, rest in self._bytes().items())
        return self._entries

    def as_dict(self) -> dict[str, Entry]:
        return dict(self.entries)

    def changes(self, other: TreeNode) -> list[tuple[str, Entry | None, Entry | None]]:
        """(name, entry here, entry in ``other``) for each name whose entry differs."""
        mine, theirs = self._bytes(), other._bytes()
        names = {name for name, _ in mine.items() ^ theirs.items()}
        found = []
        for name in names:
            here, there = mine.get(name), theirs.get(name)
            found.append(
                (
                    name.decode(),
                    None if here is None else _entry(here),
                    None if there is None else _entry(there),
                )
            )
        return found

    def canonical(self) -> bytes:
        """Per entry, in name order: the name, NUL, the kind, NUL, the 32 bytes of the id.

        Binary, as git's trees are: a folder of 100 entries is some 6 KB this way against
        10 KB as JSON with hex ids, and the store compresses away the repeated kinds, so a
        commit that changes one path in a large folder writes little."""
        return b"".join(name + rest for name, rest in self._bytes().items())

    def digest(self) -> Digest:
        return object_digest(TREE, self.canonical())

    @classmethod
    def decode(cls, data: bytes) -> TreeNode:
        """The node whose canonical form is ``data``; anything else is refused (names out
        of order or repeated, a kind that is not a plain name, a short id)."""
        if _NODE.fullmatch(data) is None:
            raise InvalidArgument("tree node", "is not a canonical node")
        found = _ENTRY.findall(data)
        raw = dict(found)
        names = list(raw)
        # UTF-8 orders as the code points do, so the bytes must already be sorted
        if len(names) != len(found) or names != sorted(names):
            raise InvalidArgument("tree node", "has names out of order or repeated")
        joined = b"\x00".join(names)  # names hold no NUL: every name checked at once
        try:
            joined.decode()
        except UnicodeDecodeError:
            raise InvalidArgument("tree node", "has a name that is not UTF-8") from None
        if b"." in names or b".." in names or b"/" in joined:
            raise InvalidArgument("tree node", "has an entry that is not a name in a folder")
        node = cls(())
        node._entries, node._raw = None, raw
        return node

    @classmethod
    def raw(cls, entries: dict[bytes, bytes], where: str = "") -> TreeNode:
        """The node of ``entries`` in their canonical form (the UTF-8 name -> NUL, kind,
        NUL, the 32 bytes of the id, in any order), the names checked as :meth:`of`
        checks them."""
        names = sorted(entries)
        joined = b"\x00".join(names)
        bad = b"" in names or b"." in names or b".." in names or b"/" in joined
        if bad or (names and joined.count(b"\x00") != len(names) - 1):  # a NUL in a name
            raise InvalidArgument("path", f"{where!r} holds a name that is not a name in a folder")
        node = cls(())
        node._entries, node._raw = None, {name: entries[name] for name in names}
        return node

    def _bytes(self) -> dict[bytes, bytes]:
        if self._raw is None:
            self._raw = {
                name.encode(): b"\x00%s\x00%s" % (e.kind.encode(), bytes.fromhex(e.digest))
                for name, e in self.entries
            }
        return self._raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TreeNode) and self.entries == other.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return f"TreeNode({self.entries!r})"


def _entry(rest: bytes) -> Entry:
    """An entry from what follows its name: NUL, kind, NUL, 32 bytes of id."""
    return Entry(rest[1:-33].decode(), Digest(rest[-32:].hex()))


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


def build_tree(entries: Mapping[str, Entry]) -> tuple[Digest, dict[Digest, TreeNode]]:
    """The tree that holds exactly ``entries`` (path -> blob entry), built bottom-up from
    nothing (no store read): its root and every node of it, by id. Refused: a path that
    is both a blob and a folder, and names that are not names in a folder."""
    builder = TreeBuilder()
    kinds: dict[str, bytes] = {}
    for path, entry in entries.items():
        kind = kinds.get(entry.kind)
        if kind is None:
            if entry.is_tree or not _KIND.fullmatch(entry.kind):
                raise InvalidArgument("path", f"{path!r} must name a blob, not {entry.kind!r}")
            kind = kinds[entry.kind] = b"\x00%s\x00" % entry.kind.encode()
        builder.put(path, kind + bytes.fromhex(entry.digest))
    return builder.build()


class TreeBuilder:
    """A tree made bottom-up from nothing: each blob put at its path as the rest of its
    entry in canonical form (NUL, kind, NUL, the 32 bytes of its id), then every node
    made at once, the deepest folders first, each folder's id entered in its parent.

    Nodes are made straight in their canonical form, as a node read from a store is: a
    dataset version of 20,000 files is built whole each time it is captured, so this is
    the hot path of capturing it again."""

    __slots__ = ("_folders",)

    def __init__(self) -> None:
        self._folders: dict[str, dict[bytes, bytes]] = {"": {}}

    def put(self, path: str, rest: bytes) -> None:
        folder, _, name = path.rpartition("/")
        self.folder(folder)[name.encode()] = rest

    def folder(self, path: str) -> dict[bytes, bytes]:
        """The entries of the folder at ``path`` ("" for the root), made with the folders
        above it if new: a caller putting many blobs in one folder puts them there."""
        folders = self._folders
        names = folders.get(path)
        if names is None:
            names = folders[path] = {}
            up = path
            while up:  # the folders above it, up to one known already
                up = up.rpartition("/")[0]
                if up in folders:
                    break
                folders[up] = {}
        return names

    def build(self) -> tuple[Digest, dict[Digest, TreeNode]]:
        """The root's id and every node, by id."""
        folders = self._folders
        nodes: dict[Digest, TreeNode] = {}
        for folder in sorted(folders, key=lambda f: f.count("/") + (f != ""), reverse=True):
            node = TreeNode.raw(folders[folder], folder)
            digest = node.digest()
            nodes[digest] = node
            if not folder:
                return digest, nodes
            parent, _, name = folder.rpartition("/")
            key = name.encode()
            if key in folders[parent]:
                raise InvalidArgument("path", f"{folder!r} is both a file and a folder")
            folders[parent][key] = b"\x00tree\x00" + bytes.fromhex(digest)
        raise AssertionError("the root folder is always made last")  # pragma: no cover


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
        nested: dict[str, dict[str, Entry | None]] = {}
        for rest, entry in below.items():
            if rest:
                head, _, tail = rest.partition("/")
                nested.setdefault(head, {})[tail] = entry
        if "" not in below:  # changes inside the folder at this name
            if here is not None and not here.is_tree:
                raise InvalidArgument("path", f"{path!r} holds an ingredient, not a folder")
            folder = None if here is None else here.digest
            _put(entries, name, _rebuild(load, folder, nested, path + "/", made))
            continue
        new = below[""]  # a change at this very name, perhaps with changes under it
        if here is not None and here.is_tree:
            # a folder becomes an ingredient only if the same changes empty it
            if new is None or not nested:
                raise InvalidArgument("path", f"{path!r} is a folder, not an ingredient")
            if _rebuild(load, here.digest, nested, path + "/", made) is not None:
                raise InvalidArgument(
                    "path", f"{path!r} is a folder: remove all under it to put an ingredient there"
                )
            entries[name] = new
            continue
        if new is None and here is None:
            raise NotFound(f"nothing at {path!r} to remove", path=path)
        if not nested:
            if new is None:
                del entries[name]
            else:
                entries[name] = new
            continue
        if new is not None:
            raise InvalidArgument("path", f"{path!r} is changed both as a file and as a folder")
        # an ingredient removed, and a folder made in its place
        _put(entries, name, _rebuild(load, None, nested, path + "/", made))
    if not entries:
        return None
    node = TreeNode.of(entries)
    digest = node.digest()
    if digest != node_id:
        made[digest] = node
    return digest


def _put(entries: dict[str, Entry], name: str, folder: Digest | None) -> None:
    """Set ``name`` to the folder ``folder`` (None: an empty folder, which disappears)."""
    if folder is None:
        entries.pop(name, None)
    else:
        entries[name] = Entry(TREE, folder)
