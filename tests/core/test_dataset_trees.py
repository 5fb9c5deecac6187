"""Dataset versions of local files as trees: the dataset.file and dataset.tree blobs, trees
built bottom-up from nothing (the same as applying every path to an empty tree), and a
one-file change that makes new nodes only along that file's path."""

from __future__ import annotations

import random

import pytest

from cairn.core.datasets import BLOB_PATH, files_of, version_tree
from cairn.core.digest import digest_bytes
from cairn.core.errors import InvalidArgument
from cairn.core.versioning.blobs import (
    Component,
    DatasetFile,
    DatasetTree,
    Hyperparameters,
    PathDataset,
    QueryDataset,
    blob_from_body,
    blob_from_canonical,
)
from cairn.core.versioning.canonical import canonical_bytes, parse_canonical
from cairn.core.versioning.tree import (
    TREE,
    Entry,
    TreeNode,
    apply_changes,
    build_tree,
    walk,
)

DIGEST = "a" * 64


def _files(folders: int, per_folder: int) -> list[Component]:
    return [
        Component(
            f"dir_{i:03}/file_{j:04}.bin",
            4096,
            1_733_500_000_000 + j,
            digest_bytes(b"%d" % (i * per_folder + j)),
        )
        for i in range(folders)
        for j in range(per_folder)
    ]


@pytest.mark.parametrize(
    "blob",
    [
        DatasetFile(3, 5, DIGEST),
        DatasetFile(3, 5, DIGEST, captured=True),
        DatasetFile(7, 5, DIGEST, link='../x é"\\', captured=True),
        DatasetFile(0, -1, DIGEST, link="y"),
    ],
)
def test_a_file_blob_is_spelled_as_its_canonical_json(blob: DatasetFile) -> None:
    assert blob.canonical() == canonical_bytes(blob.body())
    again = blob_from_body(blob.KIND, parse_canonical(blob.canonical(), blob.KIND))
    assert again == blob and again.digest() == blob.digest()


def test_a_file_blob_names_its_bytes_only_when_captured() -> None:
    assert DatasetFile(3, 5, DIGEST).objects() == ()
    assert DatasetFile(3, 5, DIGEST, captured=True).objects() == (DIGEST,)
    assert DatasetFile(3, 5, DIGEST, link="x", captured=True).objects() == ()
    assert DatasetFile(3, 5, DIGEST).digest() != DatasetFile(3, 5, DIGEST, captured=True).digest()
    assert DatasetFile(3, 5, DIGEST).component("a/b") == Component("a/b", 3, 5, DIGEST)
    for bad in (
        {"size": 1, "modified": 1},
        {"size": 1, "modified": 1, "digest": DIGEST, "captured": False},
    ):
        with pytest.raises(InvalidArgument):
            blob_from_body(DatasetFile.KIND, bad)
    with pytest.raises(InvalidArgument, match="file digest"):
        DatasetFile(1, 1, "nope")
    with pytest.raises(InvalidArgument, match="file size"):
        DatasetFile(-1, 1, DIGEST)


def test_a_tree_summary_round_trips() -> None:
    summary = DatasetTree(3, 12, True)
    assert summary.body() == {"files": 3, "size": 12, "captured": True}
    assert blob_from_body(summary.KIND, summary.body()) == summary
    assert DatasetTree(3, 12).body() == {"files": 3, "size": 12}
    with pytest.raises(InvalidArgument, match="files"):
        DatasetTree(-1, 0)


def test_a_tree_built_from_nothing_is_the_tree_every_path_applied_makes() -> None:
    rng = random.Random(7)
    entries: dict[str, Entry] = {}
    for n in range(300):
        depth = rng.randint(1, 4)
        path = "/".join(f"d{rng.randint(0, 3)}" for _ in range(depth - 1)) + f"/f{n}"
        entries[path.lstrip("/")] = Entry("dataset.file", digest_bytes(b"%d" % n))
    root, nodes = build_tree(entries)
    store = dict(nodes)
    applied, made = apply_changes(store.__getitem__, None, entries)
    assert applied == root and made.keys() == nodes.keys()
    assert dict(walk(store.__getitem__, root)) == entries
    assert build_tree({})[0] == TreeNode(()).digest()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"a": Entry("x", DIGEST), "a/b": Entry("x", DIGEST)}, "both a file and a folder"),
        ({"a/../b": Entry("x", DIGEST)}, "not a name in a folder"),
        ({"a//b": Entry("x", DIGEST)}, "not a name in a folder"),
        ({"a": Entry(TREE, DIGEST)}, "must name a blob"),
        ({"a": Entry("Bad Kind", DIGEST)}, "must name a blob"),
    ],
)
def test_a_tree_that_cannot_be_is_refused(entries: dict[str, Entry], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        build_tree(entries)


def test_a_one_file_change_makes_new_nodes_only_along_its_path() -> None:
    files = _files(200, 100)
    before = version_tree(PathDataset(files, captured=True))
    assert len(before.nodes) == 202  # 200 folders, files/, the root
    assert len(before.blobs) == 20_001  # every file, and the summary
    changed = list(files)
    changed[11_700] = Component(files[11_700].path, 4096, 1, DIGEST)
    after = version_tree(PathDataset(changed, captured=True))
    new_nodes = after.nodes.keys() - before.nodes.keys()
    new_blobs = after.blobs.keys() - before.blobs.keys()
    assert len(new_nodes) == 3 and len(new_blobs) == 1  # the size did not change
    sent = after.to_send(new_nodes)
    assert [kind for kind, _ in sent].count(TREE) == 3
    # and the blobs the new nodes hold (the changed folder's, and the summary the root
    # holds); the other folders are stored whole
    assert len(sent) == 3 + 100 + 1
    node_bytes = sum(len(body) for kind, body in sent if kind == TREE)
    assert node_bytes < 16_000  # before compression: 100 entries, 200 entries, 2 entries


def test_a_version_tree_holds_the_summary_and_each_file() -> None:
    files = [Component("a.csv", 3, 5, DIGEST), Component("sub/l", 1, 5, "b" * 64, link="../a.csv")]
    built = version_tree(PathDataset(files, captured=True))
    store = dict(built.nodes)
    paths = dict(walk(store.__getitem__, built.root))
    assert set(paths) == {BLOB_PATH, "files/a.csv", "files/sub/l"}
    blobs = {
        path: blob_from_body(
            e.kind, parse_canonical(built.blobs[bytes.fromhex(e.digest)][1], e.kind)
        )
        for path, e in paths.items()
    }
    assert blobs[BLOB_PATH] == DatasetTree(2, 3, True)
    assert files_of(blobs) == (None, tuple(files))
    old = PathDataset(files, captured=True)
    assert files_of({BLOB_PATH: old}) == (old, tuple(files))

    query = QueryDataset("select 1", "postgresql://db/x")
    alone = version_tree(query)
    assert dict(walk(dict(alone.nodes).__getitem__, alone.root)) == {
        BLOB_PATH: Entry(query.KIND, query.digest())
    }
    for bad in (Hyperparameters({"lr": 1}), DatasetTree(1, 1), DatasetFile(1, 1, DIGEST)):
        with pytest.raises(InvalidArgument, match="dataset blob"):
            version_tree(bad)


@pytest.mark.parametrize(
    "path", ["../x", "a//b", "/a", "a/./b", "C:/x", "a\\b", "a\x00b", "a/..", ".", "a/\x01", ""]
)
def test_a_file_path_is_checked_by_every_rule(path: str) -> None:
    with pytest.raises(InvalidArgument, match="file path"):
        Component(path, 1, 1, DIGEST)


@pytest.mark.parametrize("path", [".hidden/x", "données/é", "a b/c,d=e@f+g-h.i", "x" * 1024])
def test_a_file_path_that_is_not_plain_may_still_be_fine(path: str) -> None:
    assert Component(path, 1, 1, DIGEST).path == path


@pytest.mark.parametrize(
    "blob",
    [
        DatasetFile(3, 5, DIGEST),
        DatasetFile(0, 0, DIGEST, captured=True),
        DatasetFile(4096, -1_700_000_000_000, DIGEST, captured=True),
        DatasetFile(1, 1, DIGEST, link="x"),  # not plain: read as JSON
    ],
)
def test_a_file_read_from_its_canonical_bytes_is_the_same_blob(blob: DatasetFile) -> None:
    again = blob_from_canonical(blob.KIND, blob.canonical())
    assert isinstance(again, DatasetFile) and again == blob
    assert (again.size, again.modified, again.content, again.link, again.captured) == (
        blob.size,
        blob.modified,
        blob.content,
        blob.link,
        blob.captured,
    )


@pytest.mark.parametrize(
    "data",
    [
        b'{"digest":"' + DIGEST.encode() + b'","modified":-0,"size":1}',
        b'{"digest":"' + DIGEST.encode() + b'","modified":01,"size":1}',
        b'{"digest":"' + DIGEST.encode() + b'", "modified":1,"size":1}',
        b'{"captured":false,"digest":"' + DIGEST.encode() + b'","modified":1,"size":1}',
    ],
)
def test_bytes_not_in_canonical_form_are_read_as_json_or_refused(data: bytes) -> None:
    try:
        blob = blob_from_canonical(DatasetFile.KIND, data)
    except InvalidArgument:
        return
    assert blob.canonical() != data  # so a store that checks refuses them
