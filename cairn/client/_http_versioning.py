"""Repositories of versioned ingredients over REST (the
:class:`~cairn.service.contracts.Repositories` part of the HTTP backend)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cairn.client._http_artifacts import RemoteObjects
from cairn.client._http_entities import run_from_json
from cairn.client._transport import Transport
from cairn.client._transport import path_id as _id
from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import InvalidArgument
from cairn.core.model import RunInfo
from cairn.core.objects import ObjectInfo, Progress
from cairn.core.settings import Settings
from cairn.core.validation import check_name, check_names, check_text
from cairn.core.versioning.blobs import Blob, Field
from cairn.core.versioning.commit import check_ref_name
from cairn.core.versioning.diff import PathChange
from cairn.core.versioning.info import (
    CommitInfo,
    MergeOutcome,
    RefInfo,
    RepositoryInfo,
    RunCommitInfo,
)
from cairn.core.versioning.merge import Resolution
from cairn.core.versioning.tree import check_path
from cairn.core.versioning.wire import (
    blob_from_json,
    blob_to_json,
    commit_from_json,
    merge_from_json,
    path_change_from_json,
    ref_from_json,
    repository_from_json,
    resolutions_to_json,
    run_commit_from_json,
    tree_objects_to_json,
)

__all__ = ["HttpRepositories"]


def _ref(value: str, field: str = "ref") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(field, "must name a branch, a tag or a commit")
    return value


class HttpRepositories:
    """Repositories of typed ingredients, and their history."""

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self._t = transport
        self.settings = settings
        self._objects = RemoteObjects(transport)

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
        body = {
            "name": check_name(name, "repository name"),
            "description": None if description is None else check_text(description, "description"),
            "owner": check_name(owner, "owner") if owner else "",
            "tags": None if tags is None else check_names(tags, "tag"),
        }
        path = f"/projects/{_id(project_id, 'project_id')}/repositories"
        return repository_from_json(self._t.post(path, body))

    def get_repository(self, repository_id: str) -> RepositoryInfo:
        path = f"/repositories/{_id(repository_id, 'repository_id')}"
        return repository_from_json(self._t.get(path))

    def get_repository_by_name(self, project_id: str, name: str) -> RepositoryInfo:
        path = f"/projects/{_id(project_id, 'project_id')}/repositories"
        found = self._t.get(path, name=check_name(name, "repository name"))
        return repository_from_json(found[0])

    def list_repositories(self, project_id: str) -> list[RepositoryInfo]:
        path = f"/projects/{_id(project_id, 'project_id')}/repositories"
        return [repository_from_json(r) for r in self._t.get(path)]

    # -- reading ------------------------------------------------------------------------
    def get_commit(self, repository_id: str, ref: str) -> CommitInfo:
        return commit_from_json(self._t.get(self._path(repository_id, "commit"), ref=_ref(ref)))

    def list_refs(self, repository_id: str) -> list[RefInfo]:
        return [ref_from_json(r) for r in self._t.get(self._path(repository_id, "refs"))]

    def list_paths(self, repository_id: str, ref: str) -> dict[str, str]:
        found: dict[str, str] = self._t.get(self._path(repository_id, "paths"), ref=_ref(ref))
        return found

    def read_blobs(
        self, repository_id: str, ref: str, paths: Iterable[str] | None = None
    ) -> dict[str, Blob]:
        if isinstance(paths, str):
            raise InvalidArgument("paths", "must be a list of paths, not one string")
        wanted = None if paths is None else [check_path(p) for p in paths]
        found = self._t.post(self._path(repository_id, "read"), {"ref": _ref(ref), "paths": wanted})
        return {path: blob_from_json(blob, path) for path, blob in found.items()}

    def log(
        self,
        repository_id: str,
        ref: str,
        *,
        first_parent: bool = False,
        path: str | None = None,
        limit: int | None = None,
    ) -> list[CommitInfo]:
        found = self._t.get(
            self._path(repository_id, "log"),
            ref=_ref(ref),
            first_parent=first_parent,
            path=None if path is None else check_path(path),
            limit=limit,
        )
        return [commit_from_json(c) for c in found]

    def diff(self, repository_id: str, a: str, b: str) -> list[PathChange]:
        found = self._t.get(self._path(repository_id, "diff"), a=_ref(a, "a"), b=_ref(b, "b"))
        return [path_change_from_json(c) for c in found]

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
        if not isinstance(changes, Mapping):
            raise InvalidArgument("changes", "must map paths to ingredients (or None)")
        encoded: dict[str, Any] = {}
        for path, blob in changes.items():
            check_path(path)
            if blob is not None and not isinstance(blob, Blob):
                raise InvalidArgument(path, f"must be an ingredient, got {type(blob).__name__}")
            encoded[path] = None if blob is None else blob_to_json(blob)
        body = {
            "branch": check_ref_name(branch, "branch"),
            "changes": encoded,
            "message": check_text(message, "message"),
            "author": check_name(author, "author") if author else "",
            "base": base,
        }
        return commit_from_json(self._t.post(self._path(repository_id, "commits"), body))

    def missing_tree_objects(self, repository_id: str, digests: Iterable[str]) -> list[Digest]:
        if isinstance(digests, str):
            raise InvalidArgument("digests", "must be a list of digests, not one string")
        wanted = [parse_digest(d, "digests") for d in digests]
        found = self._t.post(self._path(repository_id, "trees/missing"), {"digests": wanted})
        return [Digest(d) for d in found["missing"]]

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
        if isinstance(objects, str | bytes):
            raise InvalidArgument("objects", "must be a list of (kind, canonical bytes)")
        body = {
            "branch": check_ref_name(branch, "branch"),
            "root": parse_digest(root, "root"),
            "objects": tree_objects_to_json(objects),
            "message": check_text(message, "message"),
            "author": check_name(author, "author") if author else "",
            "base": base,
        }
        return commit_from_json(self._t.post(self._path(repository_id, "trees"), body))

    def set_branch(
        self,
        repository_id: str,
        name: str,
        commit: str,
        *,
        expected: str | None = None,
        force: bool = False,
    ) -> RefInfo:
        # the transport quotes the path: quoting here too sent '<' as '%253C' (kept so)
        branch = check_ref_name(name, "branch")
        body = {"commit": _ref(commit, "commit"), "expected": expected, "force": force}
        response = self._t.request(
            "PUT", self._path(repository_id, f"branches/{branch}"), json=body
        )
        return ref_from_json(response.json())

    def create_tag(self, repository_id: str, name: str, commit: str) -> RefInfo:
        body = {"name": check_ref_name(name, "tag"), "commit": _ref(commit, "commit")}
        return ref_from_json(self._t.post(self._path(repository_id, "tags"), body))

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
        body = {
            "source": _ref(source, "source"),
            "into": check_ref_name(into, "into"),
            "message": None if message is None else check_text(message, "message"),
            "author": check_name(author, "author") if author else "",
            "resolutions": resolutions_to_json(resolutions),
            "dry_run": dry_run,
            "expected_source": expected_source,
            "expected_target": expected_target,
        }
        return merge_from_json(self._t.post(self._path(repository_id, "merge"), body))

    def revert(
        self,
        repository_id: str,
        commit: str,
        branch: str,
        *,
        message: str | None = None,
        author: str = "",
    ) -> CommitInfo:
        body = {
            "commit": _ref(commit, "commit"),
            "branch": check_ref_name(branch, "branch"),
            "message": None if message is None else check_text(message, "message"),
            "author": check_name(author, "author") if author else "",
        }
        return commit_from_json(self._t.post(self._path(repository_id, "revert"), body))

    # -- runs -----------------------------------------------------------------------------
    def log_commit(
        self,
        run_id: str,
        repository_id: str,
        commit: str,
        key_paths: Mapping[str, str] | None = None,
    ) -> RunCommitInfo:
        keys = None
        if key_paths is not None:
            keys = {
                check_name(k, "key"): check_path(v, f"key_paths[{k!r}]")
                for k, v in key_paths.items()
            }
        body = {
            "repository_id": _id(repository_id, "repository_id"),
            "commit": _ref(commit, "commit"),
            "key_paths": keys,
        }
        path = f"/runs/{_id(run_id, 'run_id')}/commit"
        return run_commit_from_json(self._t.request("PUT", path, json=body).json())

    def get_run_commit(self, run_id: str) -> RunCommitInfo | None:
        found = self._t.get(f"/runs/{_id(run_id, 'run_id')}/commit")
        return None if found is None else run_commit_from_json(found)

    def list_commit_runs(
        self, repository_id: str, commit: str, *, include_deleted: bool = False
    ) -> list[RunInfo]:
        found = self._t.get(
            self._path(repository_id, "runs"),
            commit=_ref(commit, "commit"),
            include_deleted=include_deleted,
        )
        return [run_from_json(r) for r in found]

    def capture_run(self, run_id: str, captured: Mapping[str, Blob]) -> None:
        """What a run captured as it started (code, environment): path -> blob."""
        encoded: dict[str, Any] = {}
        for path, blob in captured.items():
            check_path(path)
            if not isinstance(blob, Blob):
                raise InvalidArgument(path, f"must be an ingredient, got {type(blob).__name__}")
            encoded[path] = blob_to_json(blob)
        path = f"/runs/{_id(run_id, 'run_id')}/capture"
        self._t.request("PUT", path, json={"captured": encoded})

    def link_capture(self, run_id: str, refs: Mapping[str, tuple[str, str]]) -> None:
        body = {
            check_path(path): {"kind": kind, "digest": digest}
            for path, (kind, digest) in refs.items()
        }
        path = f"/runs/{_id(run_id, 'run_id')}/capture/refs"
        self._t.request("PUT", path, json={"refs": body})

    def get_run_capture(self, run_id: str) -> dict[str, Blob]:
        found = self._t.get(f"/runs/{_id(run_id, 'run_id')}/capture")
        return {path: blob_from_json(blob, path) for path, blob in found.items()}

    # -- bytes ----------------------------------------------------------------------------
    def store_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo:
        """Store a file's bytes as an object (once per content)."""
        return self._objects.put_file(path, progress)

    def store_bytes(self, data: bytes) -> ObjectInfo:
        return self._objects.put_bytes(bytes(data))

    def store_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Store many small objects at once (only those the server lacks are sent)."""
        return self._objects.put_many([bytes(item) for item in items])

    def missing_objects(self, digests: Iterable[str]) -> list[Digest]:
        """Those of ``digests`` the server lacks (one request for many)."""
        return self._objects.missing([parse_digest(d) for d in digests])

    def fetch_object(
        self, digest: str, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        """Write an object to ``dest``, verified and atomically; its size."""
        return self._objects.copy_to_file(parse_digest(digest), dest, progress)

    def _path(self, repository_id: str, rest: str) -> str:
        return f"/repositories/{_id(repository_id, 'repository_id')}/{rest}"
