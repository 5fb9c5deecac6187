"""Repositories of versioned ingredients, as users hold them: a Repository, a Commit (read
from a branch, a tag or an id; changes staged on it are saved as a new commit) and the
result of a merge."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from cairn.client._entities import Run, _Entity
from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.versioning.blobs import Blob, Field
from cairn.core.versioning.commit import check_ref_name
from cairn.core.versioning.diff import PathChange
from cairn.core.versioning.info import CommitInfo, MergeOutcome, RefInfo, RepositoryInfo
from cairn.core.versioning.merge import MergeConflict, NewValue, Resolution
from cairn.core.versioning.tree import check_path
from cairn.files.checkout import checkout
from cairn.service.contracts import Repositories

B = TypeVar("B", bound=Blob)

if TYPE_CHECKING:
    from cairn.client._client import Client

__all__ = ["Commit", "MergeResult", "Repository"]


def _ref(value: Commit | str, field: str = "ref") -> str:
    if isinstance(value, Commit):
        return value.id
    if not isinstance(value, str) or not value:
        raise InvalidArgument(field, "must be a commit, or a branch, tag or commit id")
    return value


class Repository(_Entity):
    """A versioned store of ingredients in a project: commits of typed blobs, branches
    and tags. Like a run, it takes tags, attributes, a description and artifacts."""

    def __init__(self, client: Client, info: RepositoryInfo) -> None:
        super().__init__(client, info.id)
        self.name = info.name
        self.project_id = info.project_id

    def __repr__(self) -> str:
        return f"Repository(id={self.id!r}, name={self.name!r})"

    @property
    def info(self) -> RepositoryInfo:
        return self._backend.repositories.get_repository(self.id)

    @property
    def _versions(self) -> Repositories:
        return self._backend.repositories

    # -- commits --------------------------------------------------------------------------
    def get_commit(
        self, *, branch: str | None = None, tag: str | None = None, id: str | None = None
    ) -> Commit:
        """The commit a branch (``main`` if nothing is named), a tag or an id (or a unique
        prefix of one) names. Read from a branch, it saves onto that branch."""
        if sum(v is not None for v in (branch, tag, id)) > 1:
            raise InvalidArgument("branch", "give one of branch, tag and id")
        if tag is not None:
            check_ref_name(tag, "tag")
            return Commit(self, self._versions.get_commit(self.id, f"refs/tags/{tag}"))
        if id is not None:
            return Commit(self, self._versions.get_commit(self.id, id))
        on = check_ref_name(branch, "branch") if branch is not None else "main"
        return Commit(self, self._versions.get_commit(self.id, f"refs/heads/{on}"), branch=on)

    def log(
        self,
        ref: Commit | str = "main",
        *,
        first_parent: bool = False,
        path: str | None = None,
        limit: int | None = None,
    ) -> list[Commit]:
        """``ref`` and its ancestors, newest first; ``path`` keeps the commits that changed
        it."""
        commits = self._versions.log(
            self.id, _ref(ref), first_parent=first_parent, path=path, limit=limit
        )
        return [Commit(self, c) for c in commits]

    def diff(self, a: Commit | str, b: Commit | str) -> list[PathChange]:
        """What changed from ``a`` to ``b``: per path, and inside a blob per field."""
        return list(self._versions.diff(self.id, _ref(a, "a"), _ref(b, "b")))

    def list_refs(self) -> list[RefInfo]:
        return list(self._versions.list_refs(self.id))

    def branches(self) -> dict[str, str]:
        return {r.name: r.commit for r in self.list_refs() if r.kind == "branch"}

    def tags(self) -> dict[str, str]:
        return {r.name: r.commit for r in self.list_refs() if r.kind == "tag"}

    def branch(self, name: str, from_: Commit | str = "main", *, force: bool = False) -> Commit:
        """Create the branch ``name`` at ``from_`` (or, with ``force``, move it there even
        if that loses commits); the commit, ready to save onto the new branch."""
        ref = self._versions.set_branch(self.id, name, _ref(from_, "from_"), force=force)
        return Commit(self, self._versions.get_commit(self.id, ref.commit), branch=name)

    def tag(self, name: str, commit: Commit | str) -> RefInfo:
        """Name ``commit`` for good (a tag never moves)."""
        return self._versions.create_tag(self.id, name, _ref(commit, "commit"))

    def merge(
        self,
        source: Commit | str,
        into: str = "main",
        *,
        message: str | None = None,
        dry_run: bool = False,
    ) -> MergeResult:
        """Merge ``source`` (a branch, a tag, a commit) into the branch ``into``. Without
        conflicts it is done (``result.commit``); else nothing moves until each conflict
        is resolved and ``result.commit()`` is called. A dry run only reports."""
        outcome = self._versions.merge(
            self.id,
            _ref(source, "source"),
            into,
            message=message,
            author=self._client._owner,
            dry_run=dry_run,
        )
        return MergeResult(self, _ref(source, "source"), into, message, outcome, dry_run)

    def checkout(self, ref: Commit | str, dest: str | os.PathLike[str]) -> list[Path]:
        """Write a commit's ingredients under ``dest``, one folder per path: configs as
        JSON, Python environments as ``requirements.txt``, snapshots and notebooks as their
        files, git references as ``git.json`` and the uncommitted diff as a patch, datasets
        as a manifest. Every stored byte is verified. The files written."""
        blobs = self._versions.read_blobs(self.id, _ref(ref))
        return checkout(blobs, dest, self._fetch)

    def _fetch(self, digest: Digest, dest: Path) -> int:
        size: int = self._versions.fetch_object(digest, dest)
        return size


class Commit:
    """A commit of a repository. ``update``/``remove`` stage changes on it; ``save`` makes
    them a new commit on the branch it was read from (``Conflict`` if that branch moved
    meanwhile: merge, then save again) and this handle becomes that commit."""

    def __init__(self, repository: Repository, info: CommitInfo, branch: str | None = None) -> None:
        self.repository = repository
        self.info = info
        self.branch = branch
        self._staged: dict[str, Blob | None] = {}
        self._read: dict[str, Blob] | None = None

    # read through ``info``: a log makes thousands of these, and most are only listed
    @property
    def id(self) -> Digest:
        return self.info.id

    @property
    def parents(self) -> tuple[Digest, ...]:
        return self.info.parents

    @property
    def message(self) -> str:
        return self.info.message

    @property
    def author(self) -> str:
        return self.info.author

    @property
    def time(self) -> int:
        return self.info.time

    def __repr__(self) -> str:
        on = f", branch={self.branch!r}" if self.branch else ""
        return f"Commit(id={self.id[:12]!r}, message={self.message!r}{on})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Commit)
            and other.id == self.id
            and not (self._staged or other._staged)
        )

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def _versions(self) -> Repositories:
        return self.repository._versions

    # -- reading --------------------------------------------------------------------------
    @overload
    def get(self, path: str) -> Blob: ...

    @overload
    def get(self, path: str, kind: type[B]) -> B: ...

    def get(self, path: str, kind: type[Blob] | None = None) -> Blob:
        """The ingredient at ``path`` (as staged, if it is). With ``kind`` (e.g.
        ``Hyperparameters``), it must be one: ``InvalidArgument`` otherwise."""
        check_path(path)
        if path in self._staged:
            found = self._staged[path]
            if found is None:
                raise NotFound(f"{path!r} is removed in this commit's staged changes", path=path)
        else:
            found = self._versions.read_blobs(self.repository.id, self.id, [path])[path]
        if kind is not None and found.KIND != kind.KIND:  # Python is a PythonEnvironment
            raise InvalidArgument(path, f"holds a {found.KIND} blob, not a {kind.KIND} one")
        return found

    def walk(self) -> Iterator[tuple[str, Blob]]:
        """Every (path, ingredient), staged changes included, in path order."""
        if self._read is None:
            self._read = dict(self._versions.read_blobs(self.repository.id, self.id))
        merged = {**self._read, **self._staged}
        for path in sorted(merged):
            blob = merged[path]
            if blob is not None:
                yield path, blob

    def paths(self) -> dict[str, str]:
        """path -> blob kind, without reading the blobs (staged changes not included)."""
        found: dict[str, str] = self._versions.list_paths(self.repository.id, self.id)
        return found

    # -- changing -------------------------------------------------------------------------
    def update(self, path: str, ingredient: Any) -> None:
        """Stage ``ingredient`` at ``path``: a blob (``Hyperparameters``, ``Python``, ...)
        or an ingredient read from disk (``Snapshot``, ``Notebook``, ``Path``,
        ``Git.capture()``), whose files are stored now."""
        check_path(path)
        if isinstance(ingredient, Blob):
            blob = ingredient
        elif callable(getattr(ingredient, "resolve", None)):
            blob = ingredient.resolve(self._versions)
            if not isinstance(blob, Blob):
                raise InvalidArgument(path, "the ingredient did not make a blob")
        else:
            raise InvalidArgument(
                path,
                f"must be an ingredient (see cairn.versioning), got {type(ingredient).__name__}",
            )
        self._staged[path] = blob

    def remove(self, path: str) -> None:
        """Stage the removal of the ingredient at ``path``."""
        self._staged[check_path(path)] = None

    @property
    def staged(self) -> dict[str, Blob | None]:
        return dict(self._staged)

    def save(self, message: str) -> Commit:
        """The staged changes as a new commit on this commit's branch; this handle becomes
        it (and is returned)."""
        if self.branch is None:
            raise InvalidArgument(
                "branch",
                "this commit was not read from a branch: read one with get_commit(branch=...)"
                " or make one with repository.branch(...)",
            )
        if not self._staged:
            raise InvalidArgument("changes", "nothing is staged: update or remove a path first")
        info = self._versions.save_commit(
            self.repository.id,
            self.branch,
            self._staged,
            message=message,
            author=self.repository._client._owner,
            base=self.id,
        )
        self.info = info
        self._staged = {}
        self._read = None
        return self

    def revert(self, message: str | None = None, *, branch: str | None = None) -> Commit:
        """A new commit that undoes this one, on ``branch`` (by default the branch this
        commit was read from), whose history must hold it; that new commit."""
        on = branch or self.branch
        if on is None:
            raise InvalidArgument(
                "branch", "this commit was not read from a branch: say which, revert(branch=...)"
            )
        info = self._versions.revert(
            self.repository.id,
            self.id,
            on,
            message=message,
            author=self.repository._client._owner,
        )
        return Commit(self.repository, info, branch=on)

    def diff(self, other: Commit | str) -> list[PathChange]:
        """What changed from ``other`` to this commit."""
        return self.repository.diff(other, self)

    def checkout(self, dest: str | os.PathLike[str]) -> list[Path]:
        return self.repository.checkout(self, dest)

    def list_runs(self, *, include_deleted: bool = False) -> list[Run]:
        """The runs built from this commit."""
        runs = self._versions.list_commit_runs(
            self.repository.id, self.id, include_deleted=include_deleted
        )
        return [Run(self.repository._client, r) for r in runs]


class MergeResult:
    """A merge: done (``commit`` set), or stopped by ``conflicts`` until each is resolved
    (``resolve``) and ``commit()`` is called; ``abort()`` drops it. Nothing moves before."""

    def __init__(
        self,
        repository: Repository,
        source: str,
        into: str,
        message: str | None,
        outcome: MergeOutcome,
        dry_run: bool,
    ) -> None:
        self.repository = repository
        self.source = source
        self.into = into
        self.message = message
        self.dry_run = dry_run
        self._outcome = outcome
        self._resolutions: dict[tuple[str, Field | None], Resolution] = {}
        self._aborted = False

    def __repr__(self) -> str:
        state = "done" if self.done else f"{len(self.conflicts)} conflict(s)"
        return f"MergeResult({self.source!r} into {self.into!r}: {state})"

    @property
    def conflicts(self) -> list[MergeConflict]:
        """The conflicts not resolved yet."""
        return [c for c in self._outcome.conflicts if c.key not in self._resolutions]

    @property
    def changed(self) -> tuple[str, ...]:
        return self._outcome.changed

    @property
    def done(self) -> bool:
        return self._outcome.commit is not None

    @property
    def commit_info(self) -> CommitInfo | None:
        return self._outcome.commit

    def resolve(
        self,
        path: str,
        key: str | None = None,
        *,
        ours: bool = False,
        theirs: bool = False,
        value: Any = None,
    ) -> None:
        """Settle the conflict at ``path`` and ``key`` (a field such as ``"lr"`` or
        ``"values.lr"``) with our side, their side, or a new ``value`` (the field's value,
        or a blob of the path's kind to take it from). Without ``key``: the conflict on the
        path as a whole, or else every conflict on a field of it (``value``: a blob)."""
        if sum((ours, theirs, value is not None)) != 1:
            raise InvalidArgument("resolve", "give exactly one of ours, theirs and value")
        choice: Resolution
        if ours or theirs:
            choice = "ours" if ours else "theirs"
        else:
            choice = value if isinstance(value, Blob) else NewValue(value)
        for conflict in self._find(path, key):
            self._resolutions[conflict.key] = choice

    def _find(self, path: str, key: str | None) -> list[MergeConflict]:
        here = [c for c in self._outcome.conflicts if c.path == path]
        if key is None:
            whole = [c for c in here if c.field is None]
            matches = whole or here
        else:
            matches = [
                c for c in here if c.field is not None and key in (".".join(c.field), c.field[-1])
            ]
        if not matches or (key is not None and len(matches) > 1):
            names = ", ".join(c.name for c in self._outcome.conflicts) or "none"
            where = path if key is None else f"{path}: {key}"
            raise InvalidArgument(
                "resolve", f"{where!r} names {len(matches)} conflicts (the conflicts: {names})"
            )
        return matches

    def commit(self) -> Commit:
        """Complete the merge with the resolutions given: a commit with both parents, and
        the target branch moved (``Conflict`` if either side moved since)."""
        if self._aborted:
            raise InvalidArgument("merge", "was aborted")
        if self.done:
            assert self._outcome.commit is not None
            return Commit(self.repository, self._outcome.commit, branch=self.into)
        if self.conflicts:
            names = ", ".join(c.name for c in self.conflicts)
            raise InvalidArgument("merge", f"has conflicts left to resolve: {names}")
        outcome = self.repository._versions.merge(
            self.repository.id,
            self.source,
            self.into,
            message=self.message,
            author=self.repository._client._owner,
            resolutions=self._resolutions,
            expected_source=self._outcome.source,
            expected_target=self._outcome.target,
        )
        if outcome.commit is None:  # should not happen: the same merge, resolved
            raise InvalidArgument("merge", "did not complete; merge again")
        self._outcome = outcome
        return Commit(self.repository, outcome.commit, branch=self.into)

    def abort(self) -> None:
        """Drop the merge: nothing was moved, nothing will be."""
        self._aborted = True
        self._resolutions.clear()
