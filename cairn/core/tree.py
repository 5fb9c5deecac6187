"""A tree: the canonical manifest of a folder (relative path -> digest and size).

Its id is the digest of its canonical bytes: sorted paths, sorted keys, no
whitespace, so the same folder content always gives the same tree digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cairn.core.digest import Digest, digest_bytes, parse_digest
from cairn.core.errors import InvalidArgument
from cairn.core.validation import check_artifact_key

__all__ = ["Tree", "TreeEntry"]


@dataclass(frozen=True, slots=True, order=True)
class TreeEntry:
    path: str
    digest: Digest
    size: int


@dataclass(frozen=True, slots=True)
class Tree:
    entries: tuple[TreeEntry, ...]

    @classmethod
    def of(cls, entries: Iterable[TreeEntry]) -> Tree:
        ordered = tuple(sorted(entries))
        seen: set[str] = set()
        for entry in ordered:
            check_artifact_key(entry.path, "tree path")
            parse_digest(entry.digest, "tree digest")
            if entry.size < 0:
                raise InvalidArgument("tree size", "must not be negative")
            if entry.path in seen:
                raise InvalidArgument("tree path", f"appears twice: {entry.path!r}")
            # A file cannot also be a folder of the same tree.
            for prefix in _prefixes(entry.path):
                if prefix in seen:
                    raise InvalidArgument("tree path", f"{prefix!r} is both a file and a folder")
            seen.add(entry.path)
        return cls(ordered)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def encode(self) -> bytes:
        doc = {
            "entries": [{"digest": e.digest, "path": e.path, "size": e.size} for e in self.entries],
            "kind": "tree",
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def digest(self) -> Digest:
        return digest_bytes(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Tree:
        try:
            doc = json.loads(data)
            if doc.get("kind") != "tree":
                raise ValueError("not a tree")
            entries = [
                TreeEntry(e["path"], Digest(e["digest"]), int(e["size"])) for e in doc["entries"]
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidArgument("tree", f"is not a valid tree manifest: {exc}") from None
        return cls.of(entries)

    def __iter__(self) -> Iterator[TreeEntry]:
        return iter(self.entries)

    def find(self, path: str) -> TreeEntry | None:
        for entry in self.entries:
            if entry.path == path:
                return entry
        return None

    def under(self, prefix: str) -> list[TreeEntry]:
        """Entries inside folder ``prefix``, with paths made relative to it."""
        start = prefix + "/"
        return [
            TreeEntry(e.path[len(start) :], e.digest, e.size)
            for e in self.entries
            if e.path.startswith(start)
        ]


def _prefixes(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])
