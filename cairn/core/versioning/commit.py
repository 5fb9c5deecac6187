"""Commits and refs: a commit names a root tree, its parents, a message, an author and a
time; its id is the digest of that canonical form. Refs name commits: branches move, tags
never do."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import InvalidArgument
from cairn.core.validation import check_name, check_text
from cairn.core.versioning.canonical import canonical_bytes, object_digest, parse_canonical

__all__ = [
    "COMMIT",
    "DEFAULT_BRANCH",
    "REF_NAME_PATTERN",
    "Commit",
    "RefKind",
    "ancestors",
    "check_ref_name",
    "merge_base",
]

COMMIT: Final = "commit"
DEFAULT_BRANCH: Final = "main"
RefKind = Literal["branch", "tag"]
_COMMIT_KEYS: Final = frozenset({"root", "parents", "message", "author", "time"})

# git's rules for ref names (git check-ref-format), spelled once: the server's JSON Schema
# documents this very pattern. Not "@"; no segment starting with "."; no "..", "@{", "//";
# not ending in ".lock", "/" or "."; no space, control character or ~ ^ : ? * [ \.
REF_NAME_PATTERN: Final = (
    r"^(?!@$)(?![./])(?!refs/)(?!.*(?:\.\.|@\{|//|/\.))(?!.*\.lock(?:/|$))(?!.*[./]$)"
    r"[^\x00-\x20\x7f-\x9f~^:?*\[\\]{1,256}$"
)
_REF_NAME = re.compile(REF_NAME_PATTERN)


def check_ref_name(name: object, field: str = "branch") -> str:
    """A branch or tag name, by git's rules (:data:`REF_NAME_PATTERN`)."""
    check_name(name, field)
    assert isinstance(name, str)
    if not _REF_NAME.match(name):
        raise InvalidArgument(field, f"{name!r} is not a valid ref name (git's rules)")
    return name


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit (its id is :meth:`digest`)."""

    root: Digest
    parents: tuple[Digest, ...]
    message: str
    author: str
    time: int  # ms since the epoch

    def __post_init__(self) -> None:
        parse_digest(self.root, "root")
        for parent in self.parents:
            parse_digest(parent, "parents")
        if len(set(self.parents)) != len(self.parents):
            raise InvalidArgument("parents", "name one commit twice")
        check_text(self.message, "message")
        if self.author:
            check_name(self.author, "author")
        if isinstance(self.time, bool) or not isinstance(self.time, int) or self.time < 0:
            raise InvalidArgument("time", "must be milliseconds since the epoch")

    def canonical(self) -> bytes:
        return canonical_bytes(
            {
                "root": self.root,
                "parents": list(self.parents),
                "message": self.message,
                "author": self.author,
                "time": self.time,
            }
        )

    def digest(self) -> Digest:
        return object_digest(COMMIT, self.canonical())

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        doc = parse_canonical(data, "commit")
        if not isinstance(doc, dict) or set(doc) != {
            "root",
            "parents",
            "message",
            "author",
            "time",
        }:
            raise InvalidArgument("commit", "must have root, parents, message, author and time")
        if not isinstance(doc["parents"], list):
            raise InvalidArgument("commit", "parents must be a list")
        return cls(doc["root"], tuple(doc["parents"]), doc["message"], doc["author"], doc["time"])


# Reads the parents of a commit.
Parents = Callable[[Digest], Sequence[Digest]]


def ancestors(
    start: Iterable[Digest], parents: Parents, *, first_parent: bool = False
) -> Iterator[Digest]:
    """``start`` and every commit it descends from, each once, breadth first."""
    seen: set[Digest] = set()
    queue = list(start)
    while queue:
        following: list[Digest] = []
        for commit in queue:
            if commit in seen:
                continue
            seen.add(commit)
            yield commit
            found = parents(commit)
            following.extend(found[:1] if first_parent else found)
        queue = following


def merge_base(
    a: Digest, b: Digest, parents: Parents, time: Callable[[Digest], int]
) -> Digest | None:
    """The lowest common ancestor of ``a`` and ``b``: a common ancestor that no other common
    ancestor descends from (the newest such one if there are several, as in a criss-cross
    merge); None for unrelated histories."""
    of_a = set(ancestors([a], parents))
    # From b, stop at the first commits a also reaches: what lies beyond them is older.
    candidates: list[Digest] = []
    seen: set[Digest] = set()
    queue = [b]
    while queue:
        following: list[Digest] = []
        for commit in queue:
            if commit in seen:
                continue
            seen.add(commit)
            if commit in of_a:
                candidates.append(commit)
            else:
                following.extend(parents(commit))
        queue = following
    if not candidates:
        return None
    # A candidate that another one descends from is not the lowest (rare: criss-cross).
    lowest = [
        c
        for c in candidates
        if not any(c != other and c in set(ancestors([other], parents)) for other in candidates)
    ]
    return max(lowest, key=lambda c: (time(c), c))
