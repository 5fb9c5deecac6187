"""Versioning of ingredients: repositories, commits of typed blobs, branches and tags,
log, diff, merge, revert, and the links of runs to the commits they were built from.

Blobs and tree nodes are stored by content id (``version_objects``), commits per
repository; a commit and the move of its branch are one transaction, and a branch moves
only from the commit the caller read (compare-and-swap). Bytes that blobs name (a snapshot's
files, a notebook, a dirty diff) are objects of the object store, stored first.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import AlreadyExists, Conflict, CorruptObject, InvalidArgument, NotFound
from cairn.core.identity import Role
from cairn.core.ids import new_id
from cairn.core.model import EntityKind, RunInfo
from cairn.core.objects import ObjectInfo, Progress
from cairn.core.validation import check_entity_id, check_name, check_names, check_text
from cairn.core.versioning.blobs import Blob, Field, blob_from_canonical
from cairn.core.versioning.canonical import object_digest
from cairn.core.versioning.commit import (
    DEFAULT_BRANCH,
    Commit,
    RefKind,
    check_ref_name,
    merge_base,
)
from cairn.core.versioning.diff import PathChange, diff_trees
from cairn.core.versioning.info import (
    CommitInfo,
    MergeOutcome,
    RefInfo,
    RepositoryInfo,
    RunCommitInfo,
)
from cairn.core.versioning.merge import Resolution, merge_trees
from cairn.core.versioning.tree import (
    EMPTY_TREE,
    TREE,
    Entry,
    TreeNode,
    apply_changes,
    check_path,
    find,
)
from cairn.core.versioning.wire import tree_object
from cairn.service.access import not_found
from cairn.service.base import ServicePart, check_refs
from cairn.store.metadata.tx import MetadataTx

__all__ = ["RepositoryService"]

_HEX = frozenset("0123456789abcdef")
# Refs that name one kind only, as git spells them.
_QUALIFIED: tuple[tuple[str, RefKind], ...] = (("refs/heads/", "branch"), ("refs/tags/", "tag"))
_SHORT_ID = 7  # the shortest commit id prefix accepted, as git's default abbreviation


class _Objects:
    """Blobs and tree nodes read in one transaction, each verified against its id once."""

    def __init__(self, tx: MetadataTx) -> None:
        self._tx = tx
        self._nodes: dict[Digest, TreeNode] = {EMPTY_TREE.digest(): EMPTY_TREE}
        self._blobs: dict[Digest, Blob] = {}

    def node(self, digest: Digest) -> TreeNode:
        found = self._nodes.get(digest)
        return found if found is not None else self.nodes([digest])[digest]

    def blob(self, entry: Entry) -> Blob:
        found = self._blobs.get(entry.digest)
        return found if found is not None else self.blobs([entry])[entry.digest]

    def nodes(self, digests: Iterable[Digest]) -> dict[Digest, TreeNode]:
        """The nodes with these ids, those not read yet in one query."""
        wanted = set(digests)
        for digest, (kind, body) in self._read(wanted - self._nodes.keys()).items():
            if kind != TREE:
                raise CorruptObject(f"object {digest} is a {kind}, not a tree", digest=digest)
            self._nodes[digest] = TreeNode.decode(body)
        return {d: self._nodes[d] for d in wanted}

    def blobs(self, entries: Iterable[Entry]) -> dict[Digest, Blob]:
        """The blobs these entries name, by id; those not read yet in one query."""
        kinds = {e.digest: e.kind for e in entries}
        for digest, (kind, body) in self._read(kinds.keys() - self._blobs.keys()).items():
            if kind != kinds[digest]:
                raise CorruptObject(
                    f"object {digest} is a {kind}, not a {kinds[digest]}", digest=digest
                )
            self._blobs[digest] = blob_from_canonical(kind, body)
        return {d: self._blobs[d] for d in kinds}

    def every_blob(self, root: Digest) -> list[tuple[str, Entry]]:
        """(path, entry) of every blob under ``root`` in path order, the nodes of each
        depth read in one query."""
        found: list[tuple[str, Entry]] = []
        level = [(root, "")]
        while level:
            nodes = self.nodes({digest for digest, _ in level})
            deeper = []
            for digest, prefix in level:
                for name, entry in nodes[digest].entries:
                    if entry.is_tree:
                        deeper.append((entry.digest, f"{prefix}{name}/"))
                    else:
                        found.append((f"{prefix}{name}", entry))
            level = deeper
        found.sort(key=_path_order)
        return found

    def _read(self, digests: set[Digest]) -> dict[Digest, tuple[str, bytes]]:
        if not digests:
            return {}
        found = self._tx.versioning.objects(digests)
        for digest in digests:
            if digest not in found:
                raise NotFound(f"no versioned object {digest}", digest=digest)
            kind, body = found[digest]
            if object_digest(kind, body) != digest:
                raise CorruptObject(
                    f"versioned object {digest} does not match its id", digest=digest
                )
        return found


class RepositoryService(ServicePart):
    """Repositories of typed ingredients, and their history."""

    # -- repositories ---------------------------------------------------------------------
    def set_repository(
        self,
        project_id: str,
        name: str,
        *,
        description: str | None = None,
        owner: str = "",
        tags: Iterable[str] | None = None,
    ) -> RepositoryInfo:
        """Get the repository called ``name`` in the project, creating it if needed: a new
        one starts with an empty commit on the branch ``main``."""
        check_entity_id(project_id, "project_id")
        check_name(name, "repository name")
        tag_list = [] if tags is None else check_names(tags, "tag")
        text = check_text(description or "", "description")
        self._allow(project_id, Role.WRITER, "project")
        owner = self._owner(owner)
        owner = check_name(owner, "owner") if owner else ""
        with self.metadata.write() as tx:
            if tx.entities.project(project_id) is None:
                raise not_found("project", project_id)
            now = self.clock()
            repository_id: str = new_id(now)
            row = {
                "id": repository_id,
                "project_id": project_id,
                "name": name,
                "description": text,
                "owner": owner,
                "created_at": now,
                "updated_at": now,
            }
            if tx.entities.insert_ignore(EntityKind.REPOSITORY, row):
                root = EMPTY_TREE.digest()
                tx.versioning.put_objects([(root, TREE, EMPTY_TREE.canonical())])
                first = tx.versioning.put_commit(
                    repository_id, Commit(root, (), "Initial commit", owner, now)
                )
                tx.versioning.create_ref(repository_id, "branch", DEFAULT_BRANCH, first.id, now)
            found = tx.versioning.repository_by_name(project_id, name)
            assert found is not None  # inserted or already there, in this transaction
            changed = description is not None and text != found.description
            if changed:
                tx.entities.update(
                    EntityKind.REPOSITORY, found.id, {"description": text, "updated_at": now}
                )
            if tag_list:
                tx.labels.add_tags(found.id, tag_list, now)
            made = tx.versioning.repository(found.id) or found
        self.access.remember(made.id, project_id)
        return made

    def get_repository(self, repository_id: str) -> RepositoryInfo:
        self._allow(repository_id, Role.READER, "repository")
        with self.metadata.read() as tx:
            return self._repository(tx, repository_id)

    def get_repository_by_name(self, project_id: str, name: str) -> RepositoryInfo:
        check_entity_id(project_id, "project_id")
        check_name(name, "repository name")
        with self.metadata.read() as tx:
            found = tx.versioning.repository_by_name(project_id, name)
        if found is None or not self._readable(project_id):
            raise NotFound(f"no repository named {name!r}", kind="repository", name=name)
        return found

    def list_repositories(self, project_id: str) -> list[RepositoryInfo]:
        check_entity_id(project_id, "project_id")
        self._allow(project_id, Role.READER, "project")
        with self.metadata.read() as tx:
            if tx.entities.project(project_id) is None:
                raise not_found("project", project_id)
            return tx.versioning.repositories(project_id)

    # -- reading ------------------------------------------------------------------------
    def get_commit(self, repository_id: str, ref: str) -> CommitInfo:
        """The commit a ref names: a branch, a tag, or a commit id (or a unique prefix of
        one, from 7 characters)."""
        self._allow(repository_id, Role.READER, "repository")
        with self.metadata.read() as tx:
            return self._commit_of(tx, repository_id, ref)

    def list_refs(self, repository_id: str) -> list[RefInfo]:
        self._allow(repository_id, Role.READER, "repository")
        with self.metadata.read() as tx:
            self._repository(tx, repository_id)
            return tx.versioning.refs(repository_id)

    def list_paths(self, repository_id: str, ref: str) -> dict[str, str]:
        """Every ingredient of a commit: path -> blob kind, in path order."""
        self._allow(repository_id, Role.READER, "repository")
        with self.metadata.read() as tx:
            commit = self._commit_of(tx, repository_id, ref)
            objects = _Objects(tx)
            return {path: entry.kind for path, entry in objects.every_blob(commit.root)}

    def read_blobs(
        self, repository_id: str, ref: str, paths: Iterable[str] | None = None
    ) -> dict[str, Blob]:
        """The blobs at ``paths`` of a commit (every one if None); ``NotFound`` for a path
        that holds none."""
        wanted = None if paths is None else [check_path(p) for p in _strings(paths, "paths")]
        self._allow(repository_id, Role.READER, "repository")
        with self.metadata.read() as tx:
            commit = self._commit_of(tx, repository_id, ref)
            objects = _Objects(tx)
            if wanted is None:
                everything = objects.every_blob(commit.root)
                blobs = objects.blobs(e for _, e in everything)
                return {path: blobs[entry.digest] for path, entry in everything}
            found: dict[str, Blob] = {}
            for path in wanted:
                entry = find(objects.node, commit.root, path)
                if entry is None or entry.is_tree:
                    raise NotFound(
                        f"no ingredient at {path!r} in commit {commit.id[:12]}", path=path
                    )
                found[path] = objects.blob(entry)
            return found

    def log(
        self,
        repository_id: str,
        ref: str,
        *,
        first_parent: bool = False,
        path: str | None = None,
        limit: int | None = None,
    ) -> list[CommitInfo]:
        """The commit ``ref`` names and its ancestors, newest first (by time, a commit
        always before its parents). ``first_parent`` follows merges' first parents only;
        ``path`` keeps the commits that changed what is at that path."""
        if path is not None:
            check_path(path)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidArgument("limit", "must be a positive number of commits")
        self._allow(repository_id, Role.READER, "repository")
        with self.metadata.read() as tx:
            self._repository(tx, repository_id)
            start = self._resolve(tx, repository_id, ref)
            everything = tx.versioning.all_commits(repository_id)
            objects = _Objects(tx) if path is not None else None
            found: list[CommitInfo] = []
            for commit in _newest_first(start, everything, first_parent=first_parent):
                if objects is not None and path is not None:
                    parent = everything.get(commit.parents[0]) if commit.parents else None
                    here = find(objects.node, commit.root, path)
                    before = None if parent is None else find(objects.node, parent.root, path)
                    if here == before:
                        continue
                found.append(commit)
                if limit is not None and len(found) >= limit:
                    break
            return found

    def diff(self, repository_id: str, a: str, b: str) -> list[PathChange]:
        """What changed from commit ``a`` to commit ``b``, path by path and, inside a blob,
        field by field."""
        self._allow(repository_id, Role.READER, "repository")
        with self.metadata.read() as tx:
            first = self._commit_of(tx, repository_id, a)
            second = self._commit_of(tx, repository_id, b)
            objects = _Objects(tx)
            return diff_trees(objects.nodes, objects.blobs, first.root, second.root)

    # -- writing ------------------------------------------------------------------------
    def save_commit(
        self,
        repository_id: str,
        branch: str,
        changes: Mapping[str, Blob | None],
        *,
        message: str,
        author: str = "",
        base: str | None = None,
    ) -> CommitInfo:
        """A new commit on ``branch``: its head with ``changes`` made (path -> blob, or None
        to remove). With ``base`` (the commit the caller started from), the branch must
        still be there: ``Conflict`` if it moved meanwhile (merge, then save again)."""
        check_ref_name(branch, "branch")
        check_text(message, "message")
        entries, blobs = self._staged(changes)
        self._allow(repository_id, Role.WRITER, "repository")
        author = self._owner(author, "author")
        with self.metadata.write() as tx:
            self._repository(tx, repository_id)
            head = self._branch(tx, repository_id, branch)
            objects = _Objects(tx)
            if base is not None and head != (seen := self._resolve(tx, repository_id, base)):
                found = self._commit(tx, repository_id, head)
                made = Commit(found.root, (seen,), message, author, found.time)
                if (
                    found.commit() == made
                    and found.root
                    == apply_changes(
                        objects.node, self._commit(tx, repository_id, seen).root, entries
                    )[0]
                ):
                    return found  # this very save, retried after its answer was lost
                raise _moved(branch, head, base)
            parent = self._commit(tx, repository_id, head)
            root, nodes = apply_changes(objects.node, parent.root, entries)
            if root == parent.root:
                raise InvalidArgument("changes", "change nothing: the tree is the head's")
            self._store(tx, blobs, nodes)
            commit = Commit(root, (head,), message, author, self.clock())
            return self._advance(tx, repository_id, branch, head, commit)

    def missing_tree_objects(self, repository_id: str, digests: Iterable[str]) -> list[Digest]:
        """Those of ``digests`` (blobs and tree nodes) the store lacks: what a
        :meth:`save_tree` must send. One question for a whole tree's nodes."""
        wanted = [parse_digest(d, "digests") for d in _strings(digests, "digests")]
        self._allow(repository_id, Role.WRITER, "repository")
        with self.metadata.read() as tx:
            self._repository(tx, repository_id)
            stored = tx.versioning.kinds(wanted)
        return [d for d in dict.fromkeys(wanted) if d not in stored]

    def save_tree(
        self,
        repository_id: str,
        branch: str,
        root: str,
        objects: Sequence[tuple[str, bytes]],
        *,
        message: str,
        author: str = "",
        base: str | None = None,
    ) -> CommitInfo:
        """A new commit on ``branch`` whose tree is ``root``, built by the caller: the
        objects (kind, canonical bytes) of the tree that the store lacks are given, the
        rest must be stored already (see :meth:`missing_tree_objects`). Each given object
        is checked (its id is the digest of its bytes, a blob decodes and is canonical, a
        node's children are given or stored with the kind it names, every file a blob
        names is in the object store) and must be in the tree. A root that is the head's
        is refused as :meth:`save_commit` refuses a change of nothing; ``base`` as there."""
        check_ref_name(branch, "branch")
        check_text(message, "message")
        top = parse_digest(root, "root")
        given = _tree_objects(objects)
        named = [d for _, _, o in given.values() if isinstance(o, Blob) for d in o.objects()]
        for digest in self.objects.missing(list(dict.fromkeys(named)))[:1]:
            raise NotFound(
                f"the tree names object {digest}, which is not stored: upload it first",
                digest=digest,
            )
        self._allow(repository_id, Role.WRITER, "repository")
        author = self._owner(author, "author")
        with self.metadata.write() as tx:
            self._repository(tx, repository_id)
            head = self._branch(tx, repository_id, branch)
            _check_tree(tx, top, given)
            if base is not None and head != (seen := self._resolve(tx, repository_id, base)):
                found = self._commit(tx, repository_id, head)
                if found.commit() == Commit(top, (seen,), message, author, found.time):
                    return found  # this very save, retried after its answer was lost
                raise _moved(branch, head, base)
            parent = self._commit(tx, repository_id, head)
            if top == parent.root:
                raise InvalidArgument("changes", "change nothing: the tree is the head's")
            tx.versioning.put_objects((d, kind, body) for d, (kind, body, _) in given.items())
            commit = Commit(top, (head,), message, author, self.clock())
            return self._advance(tx, repository_id, branch, head, commit)

    def set_branch(
        self,
        repository_id: str,
        name: str,
        commit: str,
        *,
        expected: str | None = None,
        force: bool = False,
    ) -> RefInfo:
        """Create the branch ``name`` at ``commit`` (``AlreadyExists`` if it exists), or move
        it there: from ``expected`` (the commit the caller saw: ``Conflict`` if it moved
        meanwhile), or whatever it is at with ``force``. A move to a commit that does not
        descend from the branch's also needs ``force``."""
        check_ref_name(name, "branch")
        self._allow(repository_id, Role.WRITER, "repository")
        with self.metadata.write() as tx:
            self._repository(tx, repository_id)
            target = self._resolve(tx, repository_id, commit)
            now = self.clock()
            current = tx.versioning.ref(repository_id, "branch", name)
            if current is None:
                if expected is not None:
                    raise NotFound(f"no branch {name!r}", kind="branch", name=name)
                tx.versioning.create_ref(repository_id, "branch", name, target, now)
                return RefInfo(name, "branch", target)
            if current == target:  # already there (a retry, or nothing to do)
                return RefInfo(name, "branch", target)
            if expected is None and not force:
                raise AlreadyExists(
                    f"branch {name!r} exists (at {current[:12]}): give force=True to move it",
                    kind="branch",
                    name=name,
                )
            if expected is not None and current != self._resolve(tx, repository_id, expected):
                raise Conflict(f"branch {name!r} moved meanwhile", branch=name, head=current)
            if not force and current not in _ancestry(
                target, tx.versioning.all_commits(repository_id)
            ):
                raise Conflict(
                    f"{target[:12]} does not descend from branch {name!r} ({current[:12]}): "
                    "moving it there loses commits; give force=True to do it anyway",
                    branch=name,
                )
            if not tx.versioning.move_ref(repository_id, "branch", name, current, target, now):
                raise Conflict(f"branch {name!r} moved meanwhile", branch=name)
            return RefInfo(name, "branch", target)

    def create_tag(self, repository_id: str, name: str, commit: str) -> RefInfo:
        """Name ``commit`` for good: a tag never moves (``AlreadyExists`` if it exists)."""
        check_ref_name(name, "tag")
        self._allow(repository_id, Role.WRITER, "repository")
        with self.metadata.write() as tx:
            self._repository(tx, repository_id)
            target = self._resolve(tx, repository_id, commit)
            if not tx.versioning.create_ref(repository_id, "tag", name, target, self.clock()):
                if tx.versioning.ref(repository_id, "tag", name) == target:
                    return RefInfo(name, "tag", target)  # already so (a retry)
                raise AlreadyExists(f"tag {name!r} exists; tags never move", kind="tag", name=name)
            return RefInfo(name, "tag", target)

    def merge(
        self,
        repository_id: str,
        source: str,
        into: str,
        *,
        message: str | None = None,
        author: str = "",
        resolutions: Mapping[tuple[str, Field | None], Resolution] | None = None,
        dry_run: bool = False,
        expected_source: str | None = None,
        expected_target: str | None = None,
    ) -> MergeOutcome:
        """Merge ``source`` (a ref) into the branch ``into``: three-way against their lowest
        common ancestor, per path and per field. Without conflicts (or with each one
        resolved) a commit with both parents moves ``into``; else nothing moves and the
        conflicts are listed. ``expected_*``: the commits the caller saw, to refuse a merge
        of something else than what was resolved."""
        check_ref_name(into, "into")
        if message is not None:
            check_text(message, "message")
        self._allow(repository_id, Role.READER if dry_run else Role.WRITER, "repository")
        author = self._owner(author, "author")
        with self.metadata.write() as tx:
            self._repository(tx, repository_id)
            theirs = self._resolve(tx, repository_id, source)
            ours = head = self._branch(tx, repository_id, into)
            everything = tx.versioning.all_commits(repository_id)
            if expected_source is not None:
                seen = self._resolve(tx, repository_id, expected_source)
                if seen != theirs:
                    raise Conflict("source moved since the merge was computed: merge again")
            if expected_target is not None:
                ours = self._resolve(tx, repository_id, expected_target)
                if ours != head and everything[head].parents != (ours, theirs):
                    raise Conflict("into moved since the merge was computed: merge again")
                # else: this very merge, retried after its answer was lost (checked below)
            base = merge_base(
                ours, theirs, lambda c: everything[c].parents, lambda c: everything[c].time
            )
            if base is None:
                raise InvalidArgument(
                    "source", f"{source!r} and {into!r} have unrelated histories: nothing to merge"
                )
            if base == theirs:  # already in the target
                return MergeOutcome(theirs, ours, base, (), everything[ours], ())
            objects = _Objects(tx)
            plan = merge_trees(
                objects.node,
                objects.blob,
                everything[base].root,
                everything[ours].root,
                everything[theirs].root,
                resolutions,
            )
            changed = tuple(sorted(plan.changes))
            if plan.conflicts or dry_run:
                return MergeOutcome(theirs, ours, base, tuple(plan.conflicts), None, changed)
            entries, blobs = self._staged(plan.changes)
            root, nodes = apply_changes(objects.node, everything[ours].root, entries)
            text = message if message is not None else f"Merge {source} into {into}"
            if ours != head:
                done = everything[head]
                if done.root != root or done.message != text or done.author != author:
                    raise Conflict("into moved since the merge was computed: merge again")
                return MergeOutcome(theirs, ours, base, (), done, changed)
            self._store(tx, blobs, nodes)
            commit = Commit(root, (ours, theirs), text, author, self.clock())
            info = self._advance(tx, repository_id, into, ours, commit)
            return MergeOutcome(theirs, ours, base, (), info, changed)

    def revert(
        self,
        repository_id: str,
        commit: str,
        branch: str,
        *,
        message: str | None = None,
        author: str = "",
    ) -> CommitInfo:
        """A new commit on ``branch`` that undoes ``commit`` (what it changed against its
        first parent), merged three-way into the branch's head: ``Conflict`` if later
        commits changed the same fields."""
        check_ref_name(branch, "branch")
        self._allow(repository_id, Role.WRITER, "repository")
        author = self._owner(author, "author")
        with self.metadata.write() as tx:
            undone = self._commit_of(tx, repository_id, commit)
            head = self._branch(tx, repository_id, branch)
            if undone.id not in _ancestry(head, tx.versioning.all_commits(repository_id)):
                raise InvalidArgument(
                    "commit", f"{undone.id[:12]} is not in the history of branch {branch!r}"
                )
            current = self._commit(tx, repository_id, head)
            before = (
                self._commit(tx, repository_id, undone.parents[0]).root
                if undone.parents
                else EMPTY_TREE.digest()
            )
            first_line = undone.message.splitlines()[0] if undone.message else undone.id[:12]
            text = message if message is not None else f'Revert "{first_line}"'
            objects = _Objects(tx)
            plan = merge_trees(objects.node, objects.blob, undone.root, current.root, before)
            if not plan.changes and current.message == text and current.parents:
                # perhaps this very revert, retried after its answer was lost
                parent = self._commit(tx, repository_id, current.parents[0])
                again = merge_trees(objects.node, objects.blob, undone.root, parent.root, before)
                if again.changes and not again.conflicts:
                    entries, _ = self._staged(again.changes)
                    if apply_changes(objects.node, parent.root, entries)[0] == current.root:
                        return current
            if plan.conflicts:
                names = ", ".join(c.name for c in plan.conflicts[:5])
                raise Conflict(
                    f"cannot revert {undone.id[:12]} on {branch!r}: later commits changed the "
                    f"same ingredients ({names})",
                    conflicts=[c.name for c in plan.conflicts],
                )
            if not plan.changes:
                raise InvalidArgument("commit", f"{undone.id[:12]} changed nothing left to undo")
            entries, blobs = self._staged(plan.changes)
            root, nodes = apply_changes(objects.node, current.root, entries)
            self._store(tx, blobs, nodes)
            return self._advance(
                tx, repository_id, branch, head, Commit(root, (head,), text, author, self.clock())
            )

    # -- runs -----------------------------------------------------------------------------
    def log_commit(
        self,
        run_id: str,
        repository_id: str,
        commit: str,
        key_paths: Mapping[str, str] | None = None,
    ) -> RunCommitInfo:
        """Link a run to the commit it was built from; ``key_paths`` names the ingredients
        it used (``{"data": "data/train"}``), each of which must be in the commit. A run
        links to one commit: another one is a ``Conflict`` (the same one with more keys is
        fine)."""
        keys = {
            check_name(k, "key"): check_path(v, f"key_paths[{k!r}]")
            for k, v in (key_paths or {}).items()
        }
        self._allow(run_id, Role.WRITER, "run")
        self._allow(repository_id, Role.READER, "repository")
        with self.metadata.write() as tx:
            tx.versioning.lock_run(run_id)
            self._require_run(tx, run_id, live=True)
            self._repository(tx, repository_id)
            target = self._resolve(tx, repository_id, commit)
            found = self._commit(tx, repository_id, target)
            objects = _Objects(tx)
            for key, path in keys.items():
                entry = find(objects.node, found.root, path)
                if entry is None or entry.is_tree:
                    raise InvalidArgument(
                        f"key_paths[{key!r}]", f"{path!r} holds no ingredient in {target[:12]}"
                    )
            existing = tx.versioning.run_link(run_id)
            if existing is not None and (existing.repository_id, existing.commit) != (
                repository_id,
                target,
            ):
                raise Conflict(
                    f"run {run_id} is linked to commit {existing.commit[:12]} already",
                    id=run_id,
                    commit=existing.commit,
                )
            merged = {**(existing.key_paths if existing else {}), **keys}
            tx.versioning.link_run(run_id, repository_id, target, merged, self.clock())
            tx.entities.update(EntityKind.RUN, run_id, {"updated_at": self.clock()})
            return RunCommitInfo(run_id, repository_id, target, merged)

    def get_run_commit(self, run_id: str) -> RunCommitInfo | None:
        self._allow(run_id, Role.READER, "run")
        with self.metadata.read() as tx:
            self._require_run(tx, run_id)
            return tx.versioning.run_link(run_id)

    def list_commit_runs(
        self, repository_id: str, commit: str, *, include_deleted: bool = False
    ) -> list[RunInfo]:
        self._allow(repository_id, Role.READER, "repository")
        with self.metadata.read() as tx:
            self._repository(tx, repository_id)
            target = self._resolve(tx, repository_id, commit)
            ids = tx.versioning.runs_of_commit(
                repository_id, target, include_deleted=include_deleted
            )
            found = [r for r in map(tx.entities.run, ids) if r is not None]
        # Runs of other projects may use the commit: only those the caller may read.
        return [self._present(r) for r in found if self._readable(r.project_id)]

    def capture_run(self, run_id: str, captured: Mapping[str, Blob]) -> None:
        """What a run captured as it started (its code, its environment): path -> blob,
        replacing what it had. Blobs are stored once, however many runs share them."""
        _, blobs = self._staged(captured, allow_removal=False)
        self._allow(run_id, Role.WRITER, "run")
        with self.metadata.write() as tx:
            tx.versioning.lock_run(run_id)
            self._require_run(tx, run_id, live=True)
            self._store(tx, blobs, {})
            tx.versioning.set_captures(
                run_id, {path: (b.KIND, b.digest()) for path, b in captured.items()}
            )

    def link_capture(self, run_id: str, refs: Mapping[str, tuple[str, str]]) -> None:
        """What a run captured, named by blobs stored already: path -> (kind, digest),
        replacing what it had. A sweep's runs capture the same code and environment: the
        later ones name them instead of sending them again. ``NotFound`` if one is not
        stored (then send it with capture_run)."""
        wanted = check_refs(refs, "refs")
        self._allow(run_id, Role.WRITER, "run")
        with self.metadata.write() as tx:
            tx.versioning.lock_run(run_id)
            self._require_run(tx, run_id, live=True)
            self._link_stored(tx, run_id, wanted)

    def get_run_capture(self, run_id: str) -> dict[str, Blob]:
        """What a run captured as it started: path -> blob (empty if nothing)."""
        self._allow(run_id, Role.READER, "run")
        with self.metadata.read() as tx:
            self._require_run(tx, run_id)
            objects = _Objects(tx)
            return {
                path: objects.blob(Entry(kind, digest))
                for path, (kind, digest) in tx.versioning.captures(run_id).items()
            }

    # -- bytes ----------------------------------------------------------------------------
    def store_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo:
        """Store a file's bytes as an object (once per content)."""
        self.access.require_uploader()
        return self.objects.put_file(path, progress)

    def store_bytes(self, data: bytes) -> ObjectInfo:
        self.access.require_uploader()
        return self.objects.put_bytes(bytes(data))

    def store_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Store many small objects at once (only those the store lacks are written)."""
        self.access.require_uploader()
        return self.objects.put_many([bytes(item) for item in items])

    def missing_objects(self, digests: Iterable[str]) -> list[Digest]:
        """Those of ``digests`` the store lacks."""
        return self.objects.missing([parse_digest(d) for d in digests])

    def fetch_object(
        self, digest: str, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        """Write an object to ``dest``, verified and atomically; its size."""
        return self.objects.copy_to_file(parse_digest(digest), dest, progress)

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _repository(tx: MetadataTx, repository_id: str) -> RepositoryInfo:
        check_entity_id(repository_id, "repository_id")
        found = tx.versioning.repository(repository_id)
        if found is None:
            raise not_found("repository", repository_id)
        return found

    @staticmethod
    def _commit(tx: MetadataTx, repository_id: str, digest: Digest) -> CommitInfo:
        found = tx.versioning.commit(repository_id, digest)
        if found is None:
            raise NotFound(f"no commit {digest[:12]} in this repository", commit=digest)
        if found.commit().digest() != found.id:
            raise CorruptObject(f"commit {digest} does not match its id", digest=digest)
        return found

    @staticmethod
    def _branch(tx: MetadataTx, repository_id: str, name: str) -> Digest:
        head = tx.versioning.ref(repository_id, "branch", name)
        if head is None:
            raise NotFound(f"no branch {name!r}", kind="branch", name=name)
        return head

    @classmethod
    def _commit_of(cls, tx: MetadataTx, repository_id: str, ref: str) -> CommitInfo:
        """The commit ``ref`` names in the repository (``NotFound`` for either); a whole id
        is looked up first, as git does, and when it is found the repository exists."""
        check_entity_id(repository_id, "repository_id")
        if isinstance(ref, str) and len(ref) == 64 and set(ref) <= _HEX:
            found = tx.versioning.commit(repository_id, ref)
            if found is not None:
                return found
        cls._repository(tx, repository_id)
        return cls._commit(tx, repository_id, cls._resolve(tx, repository_id, ref))

    @staticmethod
    def _resolve(tx: MetadataTx, repository_id: str, ref: str) -> Digest:
        """``refs/heads/NAME`` (a branch only), ``refs/tags/NAME`` (a tag only), or a name
        looked up as a tag, then a branch (git's order), then as a commit id or a unique
        prefix of one (7+ hex characters)."""
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("ref", "must name a branch, a tag or a commit")
        for prefix, only in _QUALIFIED:
            if ref.startswith(prefix):
                name = ref.removeprefix(prefix)
                found = tx.versioning.ref(repository_id, only, name)
                if found is None:
                    raise NotFound(f"no {only} {name!r}", kind=only, name=name)
                return found
        for kind in ("tag", "branch"):
            found = tx.versioning.ref(repository_id, kind, ref)
            if found is not None:
                return found
        if len(ref) >= _SHORT_ID and set(ref) <= _HEX:
            matches = tx.versioning.commits_with_prefix(repository_id, ref)
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument("ref", f"{ref!r} names more than one commit: give more of it")
        raise NotFound(f"no branch, tag or commit {ref!r}", ref=ref)

    def _staged(
        self, changes: Mapping[str, Blob | None], *, allow_removal: bool = True
    ) -> tuple[dict[str, Entry | None], list[Blob]]:
        """Changes as tree entries, and the blobs to store; every object a blob names must
        be in the object store already (``NotFound`` otherwise: upload it first)."""
        if not isinstance(changes, Mapping):
            raise InvalidArgument("changes", "must map paths to ingredients (or None)")
        entries: dict[str, Entry | None] = {}
        blobs: list[Blob] = []
        for path, blob in changes.items():
            check_path(path)
            if blob is None and allow_removal:
                entries[path] = None
                continue
            if not isinstance(blob, Blob):
                raise InvalidArgument(
                    path, f"must be an ingredient (a blob), got {type(blob).__name__}"
                )
            # one question for all of a blob's objects (a dataset names thousands)
            for digest in self.objects.missing(blob.objects())[:1]:
                raise NotFound(
                    f"{path!r} names object {digest}, which is not stored: upload it first",
                    path=path,
                    digest=digest,
                )
            entries[path] = Entry(blob.KIND, blob.digest())
            blobs.append(blob)
        return entries, blobs

    @staticmethod
    def _store(tx: MetadataTx, blobs: list[Blob], nodes: Mapping[Digest, TreeNode]) -> None:
        tx.versioning.put_objects(
            [(b.digest(), b.KIND, b.canonical()) for b in blobs]
            + [(d, TREE, n.canonical()) for d, n in nodes.items()]
        )

    def _advance(
        self, tx: MetadataTx, repository_id: str, branch: str, head: Digest, commit: Commit
    ) -> CommitInfo:
        """Store ``commit`` and move ``branch`` to it from ``head`` (compare-and-swap)."""
        info = tx.versioning.put_commit(repository_id, commit)
        if not tx.versioning.move_ref(repository_id, "branch", branch, head, info.id, commit.time):
            raise Conflict(
                f"branch {branch!r} moved meanwhile: nothing was saved; merge, then save again",
                branch=branch,
            )
        tx.entities.update(EntityKind.REPOSITORY, repository_id, {"updated_at": commit.time})
        return info


def _tree_objects(
    objects: Sequence[tuple[str, bytes]],
) -> dict[Digest, tuple[str, bytes, Blob | TreeNode]]:
    """Objects given for a tree, by id: each a node (kind ``tree``) or a blob, checked to
    be canonical (so that its id is the one any other writer of it would compute)."""
    if isinstance(objects, str | bytes) or not isinstance(objects, Iterable):
        raise InvalidArgument("objects", "must be a list of (kind, canonical bytes)")
    found: dict[Digest, tuple[str, bytes, Blob | TreeNode]] = {}
    for item in objects:
        kind, body = tree_object(item)
        value: Blob | TreeNode
        if kind == TREE:
            value = TreeNode.decode(body)  # refused unless canonical
        else:
            value = blob_from_canonical(kind, body)
            if value.canonical() != body:
                raise InvalidArgument("objects", f"a {kind} blob is not in its canonical form")
        found[object_digest(kind, body)] = (kind, body, value)
    return found


def _check_tree(
    tx: MetadataTx, root: Digest, given: Mapping[Digest, tuple[str, bytes, Blob | TreeNode]]
) -> None:
    """Every given object is in the tree of ``root``, and every object the given nodes
    name (and the root) is given or stored, as the kind named. A stored node is whole:
    nodes are stored only with (or after) their children."""
    stored: dict[Digest, str] = {}  # not given: digest -> the kind it must be
    reached: set[Digest] = set()
    pending = [(root, TREE)]
    while pending:
        digest, kind = pending.pop()
        here = given.get(digest)
        if here is None:
            if stored.setdefault(digest, kind) != kind:
                raise InvalidArgument("objects", f"{digest} is named as two kinds")
            continue
        if here[0] != kind:
            raise InvalidArgument("objects", f"{digest} is a {here[0]}, named as a {kind}")
        if digest in reached:
            continue
        reached.add(digest)
        if isinstance(here[2], TreeNode):
            pending += ((e.digest, e.kind) for _, e in here[2].entries)
    for digest in given.keys() - reached:
        raise InvalidArgument("objects", f"{digest} is not in the tree of the root given")
    kinds = tx.versioning.kinds(stored)
    for digest, kind in stored.items():
        if kinds.get(digest) != kind:
            what = "not stored" if digest not in kinds else f"stored as a {kinds[digest]}"
            raise NotFound(
                f"the tree names {kind} {digest}, {what}: send it with the tree", digest=digest
            )


def _path_order(item: tuple[str, Entry]) -> str:
    """Paths in folder order (each folder's entries before a longer name): the separator
    as the smallest character there is, which no name holds (cheaper than a split)."""
    return item[0].replace("/", "\x00")


def _moved(branch: str, head: Digest, base: str) -> Conflict:
    """What a save from ``base`` raises when ``branch`` has moved on to ``head``."""
    return Conflict(
        f"branch {branch!r} moved to {head[:12]} since {base[:12]} was read: "
        "merge it, then save again",
        branch=branch,
        head=head,
    )


def _not_count(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int) or value < 1


def _strings(values: Iterable[str], what: str) -> list[str]:
    if isinstance(values, str):
        raise InvalidArgument(what, "must be a list of paths, not one string")
    return list(values)


def _ancestry(start: Digest, everything: Mapping[Digest, CommitInfo]) -> set[Digest]:
    seen: set[Digest] = set()
    stack = [start]
    while stack:
        commit = stack.pop()
        if commit in seen or commit not in everything:
            continue
        seen.add(commit)
        stack.extend(everything[commit].parents)
    return seen


def _newest_first(
    start: Digest, everything: Mapping[Digest, CommitInfo], *, first_parent: bool
) -> Iterator[CommitInfo]:
    """Commits from ``start`` back, newest first, each after every commit that descends
    from it on the walk (a commit's time may be older than its parent's)."""
    waiting: dict[Digest, int] = {}  # commit -> children on the walk not yet shown
    stack = [start]
    seen: set[Digest] = set()
    while stack:  # first, who points at whom, within what start reaches
        commit = stack.pop()
        if commit in seen:
            continue
        seen.add(commit)
        parents = everything[commit].parents
        for parent in parents[:1] if first_parent else parents:
            waiting[parent] = waiting.get(parent, 0) + 1
            stack.append(parent)
    heap: list[tuple[int, str, Digest]] = []
    current: Digest | None = start
    while current is not None:
        info = everything[current]
        yield info
        ready = []
        for parent in info.parents[:1] if first_parent else info.parents:
            waiting[parent] -= 1
            if waiting[parent] == 0:
                ready.append(parent)
        if not heap and len(ready) == 1:  # a line of history: no choice to make
            current = ready[0]
            continue
        for parent in ready:
            heapq.heappush(heap, (-everything[parent].time, parent, parent))
        current = heapq.heappop(heap)[2] if heap else None
