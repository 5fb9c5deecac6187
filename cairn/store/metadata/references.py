"""The object digests metadata names, one query per kind of row (for gc and fsck).

Each function reads one source of references and yields ``(digest, what)`` pairs, where
``what`` says which row names the object (for fsck's report of missing objects). Reading
a whole table streams its rows: a store with millions of artifacts is read in one pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.engine import Connection

from cairn.core.digest import Digest
from cairn.core.errors import CorruptObject, InvalidArgument
from cairn.core.versioning.blobs import BLOB_KINDS, blob_from_body
from cairn.store.metadata.schema import artifacts, version_objects

# The one way versioned bodies are unpacked (raw or zlib), shared with their writer.
from cairn.store.metadata.versioning import _unpack

__all__ = ["artifact_files", "artifact_trees", "version_blob_objects"]

_BATCH = 1000  # rows fetched at a time


def artifact_files(conn: Connection) -> Iterator[tuple[Digest, str]]:
    """The object of every file artifact."""
    rows = conn.execution_options(yield_per=_BATCH).execute(
        select(artifacts.c.digest, artifacts.c.entity_id, artifacts.c.key).where(
            artifacts.c.kind == "file"
        )
    )
    for digest, entity_id, key in rows:
        yield Digest(digest), f"artifact {key!r} of {entity_id}"


def artifact_trees(conn: Connection) -> Iterator[tuple[Digest, str]]:
    """The tree object of every folder artifact (the files it lists are read from the
    object store, by the caller: they are not in metadata)."""
    rows = conn.execution_options(yield_per=_BATCH).execute(
        select(artifacts.c.digest, artifacts.c.entity_id, artifacts.c.key).where(
            artifacts.c.kind == "tree"
        )
    )
    for digest, entity_id, key in rows:
        yield Digest(digest), f"folder artifact {key!r} of {entity_id}"


def version_blob_objects(conn: Connection) -> Iterator[tuple[Digest, str]]:
    """The objects every versioned blob names (code snapshot files, notebooks, git diffs,
    captured dataset files: :meth:`Blob.objects`). Every stored blob counts, reachable
    from a commit or not: a blob is written before the commit that holds it. Tree nodes
    and other kinds name no objects. A blob that cannot be read is an error, not an
    empty list: gc must not delete what it might name."""
    kinds = list(BLOB_KINDS)
    rows = conn.execution_options(yield_per=_BATCH).execute(
        select(version_objects.c.digest, version_objects.c.kind, version_objects.c.body).where(
            version_objects.c.kind.in_(kinds)
        )
    )
    for blob_digest, kind, stored in rows:
        try:
            blob = blob_from_body(kind, json.loads(_unpack(blob_digest, bytes(stored))))
        except (InvalidArgument, ValueError, TypeError, KeyError) as exc:
            raise CorruptObject(
                f"versioned {kind} blob {blob_digest} cannot be read ({exc}): the objects it "
                "names are unknown, so nothing can be judged unreferenced",
                digest=blob_digest,
            ) from exc
        for digest in blob.objects():
            yield Digest(digest), f"{kind} blob {blob_digest}"
