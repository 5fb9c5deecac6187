"""How a dataset is laid out on the versioning and tracking records, shared by the client
that writes it and the web UI that reads it.

A dataset is a repository marked by an attribute; a version is a commit on its ``main``
branch holding one dataset blob at ``BLOB_PATH``; a run that used a version carries a tag
naming it (so one search lists a version's runs) and an attribute naming its key.

A version of local files is a tree (:func:`version_tree`): at ``BLOB_PATH`` a
``dataset.tree`` blob (how many files, their size, captured or not), and each file a
``dataset.file`` blob at ``FILES_PATH/<its path>``, so versioning's per-folder nodes share
every unchanged folder between versions and a one-file change makes new nodes only along
that file's path. Versions made before hold one ``dataset.path`` blob listing every file
at ``BLOB_PATH``; they are read as they are. S3 prefixes and queries are one blob at
``BLOB_PATH``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from blake3 import blake3

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument
from cairn.core.versioning.blobs import Blob, Component, DatasetFile, DatasetTree, PathDataset
from cairn.core.versioning.canonical import object_digest
from cairn.core.versioning.tree import TREE, TreeBuilder, TreeNode

__all__ = [
    "BLOB_PATH",
    "DATASETS_QUERY",
    "DATASET_ATTRIBUTE",
    "DATASET_KIND",
    "FILES_PATH",
    "RUN_ATTRIBUTE_PREFIX",
    "RUN_TAG_PREFIX",
    "VersionTree",
    "files_of",
    "runs_of_version_query",
    "version_tree",
]

DATASET_ATTRIBUTE: Final = "cairn.kind"
DATASET_KIND: Final = "dataset"
# find_repositories' query for the datasets among a project's repositories
DATASETS_QUERY: Final = f"attributes.`{DATASET_ATTRIBUTE}` = '{DATASET_KIND}'"
BLOB_PATH: Final = "dataset"
FILES_PATH: Final = "files"  # a tree version's files: FILES_PATH/<path in the dataset>
_PREFIX: Final = FILES_PATH + "/"
FILE_KIND: Final = DatasetFile.KIND.encode()
RUN_TAG_PREFIX: Final = "dataset-version:"
RUN_ATTRIBUTE_PREFIX: Final = "dataset."  # + the key (``train``, ``eval``)


def runs_of_version_query(version_id: str) -> str:
    """find_runs' query for the runs that logged a version."""
    return f"tags contains '{RUN_TAG_PREFIX}{version_id}'"


@dataclass(frozen=True, slots=True)
class VersionTree:
    """A version's whole tree, built where its files were read: the root's id, every node
    by id, and every blob (kind, canonical bytes) by the 32 bytes of its id. Its objects
    go to the store only if the store lacks them."""

    root: Digest
    nodes: dict[Digest, TreeNode]
    blobs: dict[bytes, tuple[str, bytes]]

    def to_send(self, missing: Iterable[Digest]) -> list[tuple[str, bytes]]:
        """(kind, canonical bytes) of the nodes among ``missing`` and of the blobs those
        nodes hold: a node the store has already has every object below it (nodes are
        stored only with their children), so unchanged folders send nothing."""
        lacking = [d for d in dict.fromkeys(missing) if d in self.nodes]
        sent: list[tuple[str, bytes]] = []
        blobs: dict[bytes, None] = {}
        for digest in lacking:
            node = self.nodes[digest]
            sent.append((TREE, node.canonical()))
            blobs.update((bytes.fromhex(e.digest), None) for _, e in node.entries if not e.is_tree)
        sent += [self.blobs[d] for d in blobs]
        return sent


def version_tree(record: Blob) -> VersionTree:
    """The tree of a version recording ``record``: files as a tree (see the module) for
    a ``PathDataset``, else the record alone at ``BLOB_PATH``."""
    builder = TreeBuilder()
    blobs: dict[bytes, tuple[str, bytes]] = {}

    def put(path: str, blob: Blob) -> None:
        kind, body = blob.KIND, blob.canonical()
        raw = bytes.fromhex(object_digest(kind, body))
        blobs[raw] = (kind, body)
        builder.put(path, b"\x00%s\x00%s" % (kind.encode(), raw))

    if isinstance(record, PathDataset):
        captured = record.captured
        size = sum(c.size for c in record.components if c.link is None)
        put(BLOB_PATH, DatasetTree(len(record.components), size, captured))
        # the hot loop of capturing 20,000 files again: each file's blob spelled out,
        # hashed and entered as raw bytes, with no value made in between
        kind, plain, file = DatasetFile.KIND, DatasetFile.plain_canonical, (FILE_KIND + b"\x00")
        rest = b"\x00" + FILE_KIND + b"\x00"
        seen, names = None, builder.folder(FILES_PATH)
        for c in record.components:  # in path order: a folder's files one after another
            if c.link is None:
                body = plain(c.size, c.modified, c.digest, captured)
            else:
                body = DatasetFile.of(c, captured).canonical()
            raw = blake3(file + body).digest()
            blobs[raw] = (kind, body)
            folder, _, name = c.path.rpartition("/")
            if folder != seen:
                seen, names = folder, builder.folder(_PREFIX + folder if folder else FILES_PATH)
            names[name.encode()] = rest + raw
    elif record.KIND.startswith("dataset.") and not isinstance(record, DatasetFile | DatasetTree):
        put(BLOB_PATH, record)
    else:
        raise InvalidArgument("source", f"must make a dataset blob, made {record.KIND}")
    root, nodes = builder.build()
    return VersionTree(root, nodes, blobs)


def files_of(blobs: Mapping[str, Blob]) -> tuple[PathDataset | None, tuple[Component, ...]]:
    """A version's files from its blobs (path -> blob, as read from its commit): the
    ``dataset.path`` blob of a version made before trees (None for a tree version), and
    the files as components, in path order."""
    record = blobs.get(BLOB_PATH)
    if isinstance(record, PathDataset):
        return record, record.components
    found = [
        blob.component(path.removeprefix(_PREFIX))
        for path, blob in blobs.items()
        if path.startswith(_PREFIX) and isinstance(blob, DatasetFile)
    ]
    found.sort(key=lambda c: c.path.replace("/", "\x00"))  # folder order, as read
    return None, tuple(found)
