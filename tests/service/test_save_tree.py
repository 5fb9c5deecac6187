"""Commits of whole trees built by the caller (dataset versions of local files): only the
objects the store lacks are sent, each checked; the branch moves by compare-and-swap; a
one-file change in a version of 20,000 files writes a few kilobytes of metadata."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from cairn.core.datasets import VersionTree, version_tree
from cairn.core.digest import digest_bytes
from cairn.core.errors import Conflict, InvalidArgument, NotFound
from cairn.core.versioning.blobs import Component, DatasetFile, PathDataset
from cairn.core.versioning.canonical import object_digest
from cairn.core.versioning.tree import TREE, Entry, build_tree, walk
from cairn.service import TrackingService
from cairn.store.metadata.schema import commits, version_objects

from .conftest import FakeClock


def _files(folders: int, per_folder: int) -> list[Component]:
    return [
        Component(f"d{i:03}/f{j:04}.bin", 4096, 1_700_000_000_000, digest_bytes(b"%d-%d" % (i, j)))
        for i in range(folders)
        for j in range(per_folder)
    ]


def _save(
    service: TrackingService, repository: str, tree: VersionTree, base: str | None = None
) -> str:
    repos = service.repositories
    missing = repos.missing_tree_objects(repository, list(tree.nodes))
    info = repos.save_tree(
        repository, "main", tree.root, tree.to_send(missing), message="v", base=base
    )
    return info.id


@pytest.fixture
def repository(service: TrackingService) -> str:
    project = service.entities.set_project("p")
    return service.repositories.set_repository(project.id, "data").id


def _stored_bytes(service: TrackingService) -> tuple[int, int]:
    """Rows of versioned objects and commits, and their bytes as stored."""
    with service.context.metadata.read() as tx:
        objects = tx.conn.execute(
            select(
                func.count(),
                func.sum(
                    func.length(version_objects.c.digest)
                    + func.length(version_objects.c.kind)
                    + func.length(version_objects.c.body)
                ),
            )
        ).one()
        rows = tx.conn.execute(select(commits)).all()
    commit_bytes = sum(len(str(value)) for row in rows for value in row)
    return objects[0] + len(rows), int(objects[1] or 0) + commit_bytes


def test_a_tree_is_saved_read_and_asked_about(service: TrackingService, repository: str) -> None:
    repos = service.repositories
    stored = repos.store_bytes(b"bytes of a")
    files = [Component("a.csv", 10, 5, stored.digest), Component("sub/b", 3, 5, "b" * 64)]
    tree = version_tree(PathDataset(files))
    everything = list(tree.nodes) + [object_digest(k, b) for k, b in tree.blobs.values()]
    assert set(repos.missing_tree_objects(repository, everything)) == set(everything)
    first = _save(service, repository, tree)
    assert repos.missing_tree_objects(repository, everything) == []
    assert repos.list_paths(repository, first) == {
        "dataset": "dataset.tree",
        "files/a.csv": "dataset.file",
        "files/sub/b": "dataset.file",
    }
    assert repos.read_blobs(repository, first, ["files/a.csv"])["files/a.csv"] == DatasetFile(
        10, 5, stored.digest
    )
    # the same root again changes nothing, with save_commit's words
    with pytest.raises(InvalidArgument, match="change nothing"):
        repos.save_tree(repository, "main", tree.root, [], message="again")
    # captured: every file it names must be stored
    captured = version_tree(PathDataset(files, captured=True))
    with pytest.raises(NotFound, match="b" * 64):
        _save(service, repository, captured)
    captured = version_tree(PathDataset(files[:1], captured=True))
    second = _save(service, repository, captured, base=first)
    assert [c.id for c in repos.log(repository, "main")][:2] == [second, first]
    assert repos.diff(repository, first, second)[0].path == "dataset"


def test_a_stale_base_is_a_conflict_and_a_retry_is_the_same_commit(
    service: TrackingService, repository: str, clock: FakeClock
) -> None:
    repos = service.repositories
    head = repos.get_commit(repository, "main").id
    tree = version_tree(PathDataset([Component("a", 1, 1, "a" * 64)]))
    objects = tree.to_send(tree.nodes)
    made = repos.save_tree(repository, "main", tree.root, objects, message="v", base=head)
    clock.tick()
    again = repos.save_tree(repository, "main", tree.root, objects, message="v", base=head)
    assert again == made  # its answer was lost: the very commit, not a second one
    other = version_tree(PathDataset([Component("b", 1, 1, "a" * 64)]))
    with pytest.raises(Conflict, match="moved"):
        repos.save_tree(
            repository, "main", other.root, other.to_send(other.nodes), message="w", base=head
        )


def test_every_object_given_is_checked(service: TrackingService, repository: str) -> None:
    repos = service.repositories
    tree = version_tree(PathDataset([Component("x/a", 1, 1, "a" * 64)]))
    objects = tree.to_send(tree.nodes)
    nodes = [o for o in objects if o[0] == TREE]
    blobs = [o for o in objects if o[0] != TREE]
    store = dict(tree.nodes)
    paths = {p: (e.kind, e.digest) for p, e in walk(store.__getitem__, tree.root)}

    def save(given: list[tuple[str, bytes]], root: str = tree.root) -> None:
        repos.save_tree(repository, "main", root, given, message="v")

    with pytest.raises(NotFound, match="send it with the tree"):
        save(nodes)  # a child neither given nor stored
    with pytest.raises(InvalidArgument, match="not in the tree"):
        save(nodes[:-1] + blobs)  # the root (built last) left out: the rest hangs loose
    loose = DatasetFile(9, 9, "c" * 64)
    with pytest.raises(InvalidArgument, match="not in the tree"):
        save([*objects, (loose.KIND, loose.canonical())])
    spaced = json.dumps(json.loads(blobs[0][1]), indent=1).encode()
    with pytest.raises(InvalidArgument, match="canonical"):
        save([*nodes, (blobs[0][0], spaced)])
    with pytest.raises(InvalidArgument):
        save([*nodes, blobs[0], (TREE, b"not a node")])
    with pytest.raises(InvalidArgument):
        save([*nodes, ("no.such.kind", b"{}")])
    # a node naming a blob as another kind than it is
    entries = {
        p: Entry("dataset.tree" if p.startswith("files/") else kind, digest)
        for p, (kind, digest) in paths.items()
    }
    root, made = build_tree(entries)
    with pytest.raises(InvalidArgument, match=r"named as a dataset\.tree"):
        save([(TREE, n.canonical()) for n in made.values()] + blobs, root)
    with pytest.raises(InvalidArgument, match="objects"):
        repos.save_tree(repository, "main", tree.root, "nope", message="v")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="root"):
        repos.save_tree(repository, "main", "nope", objects, message="v")
    with pytest.raises(NotFound):
        repos.missing_tree_objects("00000000-0000-7000-8000-000000000000", [])
    save(objects)  # and all of it, as built, is fine


def test_a_one_file_change_in_20000_files_writes_little(
    service: TrackingService, repository: str
) -> None:
    """Issue 16's row: new metadata for a 1-file change in a 20,000-file version (200
    folders of 100 files) at most 20 KB (DVC: 1.4 MB), counted as the new rows' bytes."""
    files = _files(200, 100)
    first = _save(service, repository, version_tree(PathDataset(files)))
    rows, size = _stored_bytes(service)
    changed = list(files)
    changed[11_700] = Component(files[11_700].path, 4097, 1_700_000_000_001, "e" * 64)
    tree = version_tree(PathDataset(changed))
    missing = service.repositories.missing_tree_objects(repository, list(tree.nodes))
    assert len(missing) == 3  # the folder, files/ and the root
    second = _save(service, repository, tree, base=first)
    more_rows, more_size = _stored_bytes(service)
    # the file, the summary (its size changed), 3 nodes, the commit
    assert more_rows - rows == 6
    assert more_size - size <= 20_000, more_size - size
    changes = service.repositories.diff(repository, first, second)
    assert [c.path for c in changes] == ["dataset", "files/" + files[11_700].path]
