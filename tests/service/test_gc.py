"""gc and fsck against a real SQLite store and a real local objects folder, filled through
the embedded client: every kind of reference is kept, garbage goes only once old."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cairn import Client
from cairn.core.digest import Digest, digest_bytes
from cairn.core.errors import CorruptObject
from cairn.core.settings import Settings
from cairn.service.admin import open_metadata
from cairn.service.gc import check_objects, collect_garbage, referenced_objects
from cairn.service.object_stores import open_objects
from cairn.store.metadata import MetadataStore
from cairn.store.objects import LocalObjectStore
from cairn.store.objects.chunked import ChunkedStore
from cairn.versioning import GitReference, Notebook, Snapshot
from cairn.versioning import Path as DataPath

HOUR = 3600.0
LATER = 10 * HOUR  # "now" for a gc that should find every object old


@dataclass
class Filled:
    """A store with one reference of every kind, and the objects each names."""

    client: Client
    metadata: MetadataStore
    objects: ChunkedStore  # over a local folder; small chunks, so a 1 MB file is chunked
    kept: dict[str, Digest]  # what -> an object it references


def _root(objects: ChunkedStore) -> str:
    assert isinstance(objects.inner, LocalObjectStore)
    return objects.inner.root


def _age(objects: ChunkedStore, digest: Digest, seconds: float) -> None:
    """Make ``digest`` (and its recipe, if it has one) look written ``seconds`` ago."""
    then = time.time() - seconds
    for side in ("objects", "recipes"):
        path = os.path.join(_root(objects), side, digest[:2], digest[2:])
        if os.path.exists(path):
            os.utime(path, (then, then))


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    """SQLite, then PostgreSQL (the references are read with server-side cursors there)."""
    return Settings(
        home=str(tmp_path / "home"),
        store_uri=store_url,
        capture="none",
        chunk_size=16 * 1024,
        chunk_min_file=100_000,
    )


@pytest.fixture
def filled(settings: Settings, tmp_path: Path) -> Iterator[Filled]:
    client = Client(settings=settings)
    kept: dict[str, Digest] = {}
    with client.start_run("r") as run:
        (tmp_path / "model.bin").write_bytes(b"weights" * 100)
        kept["file artifact"] = Digest(run.log_artifact("model", tmp_path / "model.bin").digest)
        folder = tmp_path / "ckpt"
        (folder / "sub").mkdir(parents=True)
        (folder / "a.txt").write_bytes(b"tree file a")
        (folder / "sub" / "b.txt").write_bytes(b"tree file b")
        tree = run.log_artifact("ckpt", folder)
        kept["folder tree"] = Digest(tree.digest)
        files = {e.path: Digest(e.digest) for e in run.list_artifact_files("ckpt")}
        kept["file in a folder"] = files["sub/b.txt"]
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('train')\n")
    (tmp_path / "nb.ipynb").write_text('{"cells": []}')
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_bytes(b"a,b\n1,2\n")
    metadata = open_metadata(settings, create=False)
    objects = open_objects(settings)
    assert isinstance(objects, ChunkedStore)
    diff = objects.put_bytes(b"diff --git a/x b/x\n").digest
    kept["git diff"] = diff
    repo = client.set_repository("code")
    commit = repo.get_commit()
    commit.update("code/snapshot", Snapshot(code))
    commit.update("code/notebook", Notebook(tmp_path / "nb.ipynb"))
    commit.update("code/git", GitReference(commit="a" * 40, dirty=True, diff=diff))
    commit.save("code")
    snapshot = commit.get("code/snapshot")
    kept["code snapshot file"] = Digest(snapshot.objects()[0])
    kept["notebook"] = Digest(commit.get("code/notebook").objects()[0])
    client.set_dataset("rows").create_version(DataPath(data, capture=True))
    kept["captured dataset file"] = digest_bytes(b"a,b\n1,2\n")  # stored by the capture
    yield Filled(client, metadata, objects, kept)
    metadata.close()
    objects.close()
    client.close()


def test_every_kind_of_reference_is_found(filled: Filled) -> None:
    refs = referenced_objects(filled.metadata, filled.objects)
    for what, digest in filled.kept.items():
        assert digest in refs.named, what
    assert refs.unreadable == {}


def test_gc_deletes_old_garbage_and_keeps_every_referenced_object(filled: Filled) -> None:
    garbage = filled.objects.put_bytes(b"nobody names me").digest
    before = {o.digest for o in filled.objects.iter_objects()}
    report = collect_garbage(filled.metadata, filled.objects, grace=HOUR, now=time.time() + LATER)
    assert [o.digest for o in report.removed] == [garbage]
    assert report.freed_bytes == len(b"nobody names me")
    assert report.referenced == len(before) - 1
    after = {o.digest for o in filled.objects.iter_objects()}
    assert after == before - {garbage}
    assert check_objects(filled.metadata, filled.objects).ok


def test_young_garbage_is_kept_until_the_grace_has_passed(filled: Filled) -> None:
    garbage = filled.objects.put_bytes(b"just written").digest
    report = collect_garbage(filled.metadata, filled.objects, grace=HOUR)
    assert (report.removed, report.young) == ([], 1)
    assert filled.objects.exists(garbage)
    _age(filled.objects, garbage, 2 * HOUR)
    report = collect_garbage(filled.metadata, filled.objects, grace=HOUR)
    assert [o.digest for o in report.removed] == [garbage]
    assert not filled.objects.exists(garbage)


def test_a_dry_run_deletes_nothing(filled: Filled) -> None:
    garbage = filled.objects.put_bytes(b"garbage").digest
    stale = Path(_root(filled.objects), "tmp", "stale.tmp")
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"half an upload")
    os.utime(stale, (time.time() - 2 * HOUR,) * 2)
    before = sorted(filled.objects.iter_objects())
    report = collect_garbage(
        filled.metadata, filled.objects, grace=HOUR, dry_run=True, now=time.time() + LATER
    )
    assert [o.digest for o in report.removed] == [garbage]
    assert report.swept == []
    assert sorted(filled.objects.iter_objects()) == before
    assert stale.exists()
    real = collect_garbage(filled.metadata, filled.objects, grace=HOUR)
    assert real.swept == [str(stale)]  # the real run sweeps leftover temp files
    assert not stale.exists()


def test_a_writer_during_gc_loses_nothing(filled: Filled, tmp_path: Path) -> None:
    """The writer stores an object, then its artifact row, at each point of a gc run."""
    (tmp_path / "late.bin").write_bytes(b"written while gc lists")
    (tmp_path / "dedup.bin").write_bytes(b"old garbage stored again")
    run = filled.client.start_run("writer")

    def between_listing_and_references() -> None:
        run.log_artifact("late", tmp_path / "late.bin")  # object and row, both after listing

    report = collect_garbage(
        filled.metadata, filled.objects, grace=HOUR, after_listing=between_listing_and_references
    )
    assert report.removed == []
    late = Digest(next(a for a in run.list_artifacts() if a.key == "late").digest)
    assert filled.objects.exists(late)

    # A dedup hit: the object is stored already (old, unreferenced); the put renews it,
    # and its row is committed only after gc has read the references.
    old = filled.objects.put_bytes(b"old garbage stored again").digest
    _age(filled.objects, old, 2 * HOUR)
    dedup = filled.objects.put_bytes(b"old garbage stored again").digest
    assert dedup == old
    report = collect_garbage(filled.metadata, filled.objects, grace=HOUR)
    run.log_artifact("dedup", tmp_path / "dedup.bin")
    assert report.removed == []
    assert filled.objects.exists(old)

    # A dedup hit after gc has listed and read the references: the put renews the object,
    # which the second listing sees, and the row follows gc.
    late_hit = filled.objects.put_bytes(b"a late dedup hit").digest
    _age(filled.objects, late_hit, 2 * HOUR)
    report = collect_garbage(
        filled.metadata,
        filled.objects,
        grace=HOUR,
        after_references=lambda: filled.objects.put_bytes(b"a late dedup hit"),
    )
    run.log_artifact("late hit", b"a late dedup hit")
    assert report.removed == [] and report.young >= 1
    assert filled.objects.exists(late_hit)

    # The row lands between listing and references: the object is old, but referenced.
    again = filled.objects.put_bytes(b"aged, then referenced").digest
    _age(filled.objects, again, 2 * HOUR)
    report = collect_garbage(
        filled.metadata,
        filled.objects,
        grace=HOUR,
        after_listing=lambda: run.log_artifact("again", b"aged, then referenced"),
    )
    assert report.removed == []
    run.end()
    assert check_objects(filled.metadata, filled.objects).ok


def test_gc_stops_when_a_folder_tree_cannot_be_read(filled: Filled) -> None:
    garbage = filled.objects.put_bytes(b"garbage").digest
    filled.objects.delete(filled.kept["folder tree"])
    with pytest.raises(CorruptObject, match="folder tree"):
        collect_garbage(filled.metadata, filled.objects, grace=HOUR, now=time.time() + LATER)
    assert filled.objects.exists(garbage)
    assert filled.objects.exists(filled.kept["file in a folder"])


def test_purge_quarantine_removes_old_corrupt_copies(filled: Filled) -> None:
    digest = filled.kept["file artifact"]
    _corrupt(filled.objects, digest)
    assert filled.objects.verify([digest]) == [digest]
    [aside] = filled.objects.quarantined()
    kept = collect_garbage(filled.metadata, filled.objects, grace=HOUR, now=time.time() + LATER)
    assert kept.quarantine_removed == [] and filled.objects.quarantined() == [aside]
    report = collect_garbage(
        filled.metadata,
        filled.objects,
        grace=HOUR,
        purge_quarantine=True,
        now=time.time() + LATER,
    )
    assert report.quarantine_removed == [aside]
    assert filled.objects.quarantined() == []


def test_fsck_finds_corrupt_missing_and_unreferenced_objects(filled: Filled) -> None:
    clean = check_objects(filled.metadata, filled.objects)
    assert clean.ok and clean.corrupt == [] and clean.missing == {}
    assert clean.unreferenced == 0
    filled.objects.put_bytes(b"unreferenced")
    _corrupt(filled.objects, filled.kept["code snapshot file"])
    filled.objects.delete(filled.kept["file in a folder"])
    report = check_objects(filled.metadata, filled.objects)
    assert not report.ok
    assert report.corrupt == [filled.kept["code snapshot file"]]
    assert list(report.missing) == [filled.kept["file in a folder"]]
    assert (
        "'sub/b.txt' in folder artifact 'ckpt'" in report.missing[filled.kept["file in a folder"]]
    )
    assert report.unreferenced == 1
    assert [q.digest for q in report.quarantined] == [filled.kept["code snapshot file"]]
    # Once quarantined, the corrupt object is missing until its bytes are stored again.
    again = check_objects(filled.metadata, filled.objects)
    assert again.corrupt == []
    assert set(again.missing) == {
        filled.kept["code snapshot file"],
        filled.kept["file in a folder"],
    }


def _corrupt(objects: ChunkedStore, digest: Digest) -> None:
    path = Path(_root(objects), "objects", digest[:2], digest[2:])
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _chunks(objects: ChunkedStore, digest: Digest) -> set[Digest]:
    recipe = objects.recipe(digest)
    assert recipe is not None and len(recipe) > 10
    return {chunk for chunk, _ in recipe}


def test_gc_keeps_the_chunks_of_a_referenced_chunked_file_and_frees_the_rest(
    filled: Filled, tmp_path: Path
) -> None:
    data = os.urandom(1_000_000)
    (tmp_path / "big.bin").write_bytes(data)
    with filled.client.start_run("big") as run:
        big = Digest(run.log_artifact("big", tmp_path / "big.bin").digest)
    edited = bytearray(data)
    edited[500_000:500_100] = os.urandom(100)
    unused = filled.objects.put_bytes(bytes(edited)).digest  # chunked, named by nobody
    kept, shared = _chunks(filled.objects, big), _chunks(filled.objects, unused)
    only_unused = shared - kept
    assert 0 < len(only_unused) < 4  # the edit touched a chunk or two
    report = collect_garbage(filled.metadata, filled.objects, grace=HOUR, now=time.time() + LATER)
    assert {o.digest for o in report.removed} == {unused} | only_unused  # in one run
    assert filled.objects.recipe(unused) is None and not filled.objects.exists(unused)
    assert filled.objects.missing(list(kept)) == []
    with filled.objects.open(big) as f:
        assert f.read() == data
    assert check_objects(filled.metadata, filled.objects).ok


def test_a_young_chunked_object_keeps_its_recipe_and_chunks(filled: Filled) -> None:
    data = os.urandom(300_000)
    digest = filled.objects.put_bytes(data).digest
    chunks = _chunks(filled.objects, digest)
    report = collect_garbage(filled.metadata, filled.objects, grace=HOUR)
    assert report.removed == []
    for chunk in chunks:
        _age(filled.objects, chunk, 2 * HOUR)  # the chunks are old, the recipe is young
    assert collect_garbage(filled.metadata, filled.objects, grace=HOUR).removed == []
    with filled.objects.open(digest) as f:
        assert f.read() == data
    _age(filled.objects, digest, 2 * HOUR)
    report = collect_garbage(filled.metadata, filled.objects, grace=HOUR)
    assert digest in {o.digest for o in report.removed}
    assert not filled.objects.exists(digest)


def test_fsck_reports_a_missing_chunk_and_the_object_it_breaks(
    filled: Filled, tmp_path: Path
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(500_000))
    with filled.client.start_run("big") as run:
        big = Digest(run.log_artifact("big", tmp_path / "big.bin").digest)
    lost = sorted(_chunks(filled.objects, big))[0]
    filled.objects.inner.delete(lost)
    report = check_objects(filled.metadata, filled.objects)
    assert not report.ok
    assert report.corrupt == [big]  # read whole, it cannot be rebuilt
    assert list(report.missing) == [lost]
    assert f"a chunk of {big}" in report.missing[lost] and "'big'" in report.missing[lost]
    assert not filled.objects.exists(big)
    filled.client.start_run("again").log_artifact("big", tmp_path / "big.bin")  # heals it
    assert check_objects(filled.metadata, filled.objects).ok


def test_gc_stops_when_a_chunk_recipe_cannot_be_read(filled: Filled) -> None:
    digest = filled.objects.put_bytes(os.urandom(200_000)).digest
    path = Path(_root(filled.objects), "recipes", digest[:2], digest[2:])
    path.chmod(0o644)
    path.write_bytes(b"not a recipe")
    with pytest.raises(CorruptObject, match="chunk recipe"):
        collect_garbage(filled.metadata, filled.objects, grace=HOUR, now=time.time() + LATER)
    assert len(list(filled.objects.iter_objects())) > 10  # nothing deleted


def test_chunk_recipes_are_a_reference_source() -> None:
    from cairn.service import gc

    assert gc._chunk_recipes in gc.REFERENCE_SOURCES
    refs = gc.References()
    gc._chunk_recipes(None, LocalObjectStore("/nonexistent"), refs)  # type: ignore[arg-type]
    assert refs.recipes == {}  # a store without chunks has no recipes


def test_a_chunked_dedup_hit_during_gc_loses_nothing(filled: Filled, tmp_path: Path) -> None:
    """An old, unreferenced chunked object is stored again after gc has read the
    references: the put renews its recipe and every chunk, which the second listing sees."""
    data = os.urandom(400_000)
    digest = filled.objects.put_bytes(data).digest
    chunks = _chunks(filled.objects, digest)
    for old in (digest, *chunks):
        _age(filled.objects, old, 2 * HOUR)
    report = collect_garbage(
        filled.metadata,
        filled.objects,
        grace=HOUR,
        after_references=lambda: filled.objects.put_bytes(data),
    )
    filled.client.start_run("late").log_artifact("late", data)
    assert report.removed == [] and report.young >= len(chunks) + 1
    with filled.objects.open(digest) as f:
        assert f.read() == data
    assert check_objects(filled.metadata, filled.objects).ok
