"""What the versioning calls return: repositories, commits, refs, run links, merges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cairn.core.digest import Digest
from cairn.core.versioning.commit import Commit, RefKind
from cairn.core.versioning.merge import MergeConflict

__all__ = ["CommitInfo", "MergeOutcome", "RefInfo", "RepositoryInfo", "RunCommitInfo"]


@dataclass(frozen=True, slots=True)
class RepositoryInfo:
    """A versioned store of ingredients, in a project (its name is unique there). Its id
    is an entity id: tags, attributes, a description and artifacts hang off it."""

    id: str
    project_id: str
    name: str
    description: str
    owner: str
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """A commit of a repository: its id (the digest of its canonical form) and fields."""

    id: Digest
    repository_id: str
    root: Digest
    parents: tuple[Digest, ...]
    message: str
    author: str
    time: int

    @classmethod
    def of(cls, repository_id: str, commit: Commit) -> CommitInfo:
        return cls(
            commit.digest(),
            repository_id,
            commit.root,
            commit.parents,
            commit.message,
            commit.author,
            commit.time,
        )

    def commit(self) -> Commit:
        return Commit(self.root, self.parents, self.message, self.author, self.time)


@dataclass(frozen=True, slots=True)
class RefInfo:
    """A branch (moves) or a tag (never moves) and the commit it names."""

    name: str
    kind: RefKind
    commit: Digest


@dataclass(frozen=True, slots=True)
class RunCommitInfo:
    """The commit a run was built from, and which of its paths were which ingredient
    (``{"data": "data/train"}``)."""

    run_id: str
    repository_id: str
    commit: Digest
    key_paths: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """A merge of ``source`` into the branch ``into``: done (``commit`` set, the branch
    moved), or stopped by ``conflicts`` (nothing moved). ``base`` is the common ancestor
    the merge was computed against; a dry run sets neither a commit nor moves anything."""

    source: Digest
    target: Digest
    base: Digest | None
    conflicts: tuple[MergeConflict, ...]
    commit: CommitInfo | None
    changed: tuple[str, ...]  # the paths the merge changes on the target
