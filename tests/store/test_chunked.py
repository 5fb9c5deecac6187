"""The chunk store: the object-store contract over ChunkedStore (memory, local folder; S3
in test_objects_s3.py), and what chunking adds: cuts that survive edits, recipes,
dedup of a changed big file, damaged chunks, ``put_chunked``."""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.core.chunks import Recipe
from cairn.core.digest import Digest, digest_bytes
from cairn.core.errors import CorruptObject, InvalidArgument, NotFound
from cairn.core.objects import ObjectInfo
from cairn.files.chunking import Chunker, chunk_stream
from cairn.store.objects import LocalObjectStore, MemoryObjectStore, ObjectStore
from cairn.store.objects.chunked import ChunkedStore
from cairn.store.objects.port import RecipeStore
from tests.store import test_objects as adapters  # a module: its classes not collected twice
from tests.store.test_objects import ObjectStoreContract

CHUNK = 16 * 1024  # small chunks: the contract's objects of 200 KB and more are chunked
MIN_FILE = 100_000  # the contract's small objects (up to 70 KB) stay whole


def chunked(inner: RecipeStore) -> ChunkedStore:
    return ChunkedStore(inner, chunk_size=CHUNK, min_file=MIN_FILE)


def target(store: ObjectStore, digest: Digest) -> Digest:
    """What to damage for ``digest``: its middle chunk if it is chunked, else itself."""
    assert isinstance(store, ChunkedStore)
    recipe = store.recipe(digest)
    return digest if recipe is None else recipe[len(recipe) // 2][0]


class ChunkedContract(ObjectStoreContract):
    """The contract over a ChunkedStore; ``hooks`` damage and count the inner store."""

    hooks: Any  # the inner adapter's contract class, whose hooks reach its bytes

    def corrupt(self, store: ObjectStore, digest: Digest) -> None:
        assert isinstance(store, ChunkedStore)
        self.hooks.corrupt(store.inner, target(store, digest))

    def truncate(self, store: ObjectStore, digest: Digest) -> None:
        assert isinstance(store, ChunkedStore)
        self.hooks.truncate(store.inner, target(store, digest))

    def stored_count(self, store: ObjectStore) -> int:
        """Whole objects and chunked ones (a recipe and its chunks count once)."""
        assert isinstance(store, ChunkedStore)
        inner = store.inner
        if not isinstance(inner, LocalObjectStore) or Path(inner.root, "tmp").exists():
            self.hooks.stored_count(inner)  # its own checks (no temp file left)
        recipes = [recipe for _, recipe in store.iter_recipes()]
        chunks = {c for recipe in recipes if recipe for c, _ in recipe.chunks}
        whole = {o.digest for o in store.inner.iter_objects()} - chunks
        return len(whole) + len(recipes)

    def test_big_objects_are_stored_in_chunks(self, store: ObjectStore) -> None:
        assert isinstance(store, ChunkedStore)
        data = os.urandom(1_000_000)
        info = store.put_bytes(data)
        recipe = store.recipe(info.digest)
        assert recipe is not None and len(recipe) >= len(data) // (4 * store.chunk_size)
        assert sum(n for _, n in recipe) == len(data)
        assert store.inner.missing([c for c, _ in recipe]) == []
        assert store.missing([info.digest]) == [] and store.size(info.digest) == len(data)
        assert store.recipe(store.put_bytes(b"small").digest) is None


class TestChunkedMemory(ChunkedContract):
    hooks = adapters.TestMemoryObjectStore()

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ObjectStore]:
        with chunked(MemoryObjectStore()) as s:
            yield s


class TestChunkedLocal(ChunkedContract):
    hooks = adapters.TestLocalObjectStore()

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ObjectStore]:
        with chunked(LocalObjectStore(tmp_path / "store")) as s:
            yield s

    def test_layout(self, store: ObjectStore) -> None:
        assert isinstance(store, ChunkedStore) and isinstance(store.inner, LocalObjectStore)
        digest = store.put_bytes(os.urandom(300_000)).digest
        root = Path(store.inner.root)
        recipe = root / "recipes" / digest[:2] / digest[2:]
        assert Recipe.decode(recipe.read_bytes(), digest).size == 300_000
        assert oct(recipe.stat().st_mode & 0o777) == oct(0o444)
        assert not (root / "objects" / digest[:2] / digest[2:]).exists()
        assert list((root / "tmp").iterdir()) == []


class TestChunkedLocalWithDirectIO(TestChunkedLocal):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ObjectStore]:
        with chunked(LocalObjectStore(tmp_path / "store", direct_io=True)) as s:
            yield s


# -- chunking -------------------------------------------------------------------------


def test_cuts_do_not_depend_on_how_the_bytes_arrive() -> None:
    data = random.Random(1).randbytes(3_000_000)
    whole = Chunker(CHUNK)
    reference = whole.feed(data) + whole.finish()
    assert b"".join(c.data for c in reference) == data
    assert all(c.digest == digest_bytes(c.data) for c in reference)
    assert all(CHUNK // 4 <= len(c.data) <= 4 * CHUNK for c in reference[:-1])
    pieces = Chunker(CHUNK)
    got, at, rng = [], 0, random.Random(2)
    while at < len(data):
        n = rng.randint(1, 200_000)
        got += pieces.feed(data[at : at + n])
        at += n
    got += pieces.finish()
    assert got == reference
    assert pieces.digest == whole.digest == digest_bytes(data)
    stream = chunk_stream(io.BytesIO(data), CHUNK)
    assert list(stream) == reference and stream.digest == digest_bytes(data)


def test_an_edit_moves_only_the_cuts_near_it() -> None:
    data = random.Random(3).randbytes(4_000_000)
    before = {c.digest for c in chunk_stream(io.BytesIO(data), CHUNK)}
    inserted = {c.digest for c in chunk_stream(io.BytesIO(b"!" + data), CHUNK)}
    overwritten = bytearray(data)
    overwritten[2_000_000:2_040_000] = bytes(40_000)
    changed = {c.digest for c in chunk_stream(io.BytesIO(bytes(overwritten)), CHUNK)}
    assert len(inserted - before) <= 2
    assert len(changed - before) <= 2 + 40_000 // (CHUNK // 4)


def test_chunk_sizes_are_checked() -> None:
    for bad in (0, 1000, 3 * 1024, 8 << 20, -CHUNK):
        with pytest.raises(InvalidArgument) as caught:
            Chunker(bad)
        assert caught.value.field == "chunk_size"
    with pytest.raises(InvalidArgument, match="chunk_min_file"):
        ChunkedStore(MemoryObjectStore(), chunk_size=CHUNK, min_file=0)


# -- recipes --------------------------------------------------------------------------


def test_a_recipe_round_trips_and_bad_bytes_are_named() -> None:
    chunks = ((digest_bytes(b"a"), 1), (digest_bytes(b"bc"), 2))
    recipe = Recipe(digest_bytes(b"abc"), 3, chunks)
    data = recipe.encode()
    assert len(data) == 9 + 44 + 2 * 40
    assert Recipe.decode(data) == recipe
    assert Recipe.decode(data, digest_bytes(b"abc")) == recipe
    for bad, why in (
        (b"", "magic"),
        (b"nonsense" * 20, "magic"),
        (data[:20], "cut short"),
        (data[:-1], "bytes, where"),
        (data + b"x", "bytes, where"),
    ):
        with pytest.raises(InvalidArgument, match=why) as caught:
            Recipe.decode(bad)
        assert caught.value.field == "recipe"
    with pytest.raises(InvalidArgument, match="not of"):
        Recipe.decode(data, digest_bytes(b"other"))
    with pytest.raises(InvalidArgument, match="add up"):
        Recipe(digest_bytes(b"abc"), 4, chunks)
    with pytest.raises(InvalidArgument) as caught:
        Recipe(digest_bytes(b"abc"), 3, ((digest_bytes(b"a"), 0), (digest_bytes(b"bc"), 3)))
    assert caught.value.field == "chunks[0].size"


# -- dedup: the storage rows of issue 16, at a small scale ------------------------------


def _stored_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("edit", ["overwrite", "insert"])
def test_a_changed_big_file_stores_about_the_change(tmp_path: Path, edit: str) -> None:
    """The issue's rows at 1/16 scale (chunks 1/16 of the default too): 100 MiB -> 6.4 MB,
    1 MiB overwritten -> 64 KiB, new storage <= 2x the change; a 1-byte insert at the start
    -> at most a few chunks."""
    store = ChunkedStore(LocalObjectStore(tmp_path / "store"), chunk_size=CHUNK, min_file=MIN_FILE)
    data = random.Random(4).randbytes(6_553_600)
    (tmp_path / "v1.bin").write_bytes(data)
    store.put_file(tmp_path / "v1.bin")
    before = _stored_bytes(tmp_path / "store")
    if edit == "overwrite":
        changed = bytearray(data)
        middle = len(data) // 2
        changed[middle : middle + 65_536] = random.Random(5).randbytes(65_536)
        budget = 2 * 65_536
    else:
        changed = bytearray(b"\x00" + data)
        budget = 65_536
    (tmp_path / "v2.bin").write_bytes(changed)
    info = store.put_file(tmp_path / "v2.bin")
    grown = _stored_bytes(tmp_path / "store") - before
    assert grown <= budget, f"{edit}: {grown} new bytes stored"
    with store.open(info.digest) as f:
        assert f.read() == changed


# -- damage ------------------------------------------------------------------------


def test_a_missing_or_corrupt_chunk_fails_the_read_naming_the_object(tmp_path: Path) -> None:
    inner = LocalObjectStore(tmp_path / "store")
    store = chunked(inner)
    data = os.urandom(500_000)
    digest = store.put_bytes(data).digest
    recipe = store.recipe(digest)
    assert recipe is not None
    lost, damaged = recipe[1][0], recipe[-2][0]
    inner.delete(lost)
    assert not store.exists(digest) and store.missing([digest]) == [digest]
    with pytest.raises(NotFound, match=lost):
        store.size(digest)
    with pytest.raises(CorruptObject, match=f"object {digest}.*chunk {lost} is missing") as caught:
        store.open(digest).read()
    assert caught.value.details["digest"] == digest
    with pytest.raises(CorruptObject):
        store.copy_to_file(digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert store.verify() == [digest]
    store.put_bytes(data)  # heals
    adapters.TestLocalObjectStore().corrupt(inner, damaged)
    with pytest.raises(CorruptObject, match=f"chunk {damaged} is corrupt"):
        store.copy_to_file(digest, tmp_path / "out")
    assert [q.digest for q in store.quarantined()] == [damaged]  # the chunk, moved aside
    assert not store.exists(digest)
    assert store.put_stream(io.BytesIO(data)) == ObjectInfo(digest, len(data))
    assert store.copy_to_file(digest, tmp_path / "out") == len(data)
    assert (tmp_path / "out").read_bytes() == data


def test_a_recipe_that_lies_is_dropped_on_read(tmp_path: Path) -> None:
    inner = MemoryObjectStore()
    store = chunked(inner)
    a, b = os.urandom(300_000), os.urandom(300_000)
    da, db = store.put_bytes(a).digest, store.put_bytes(b).digest
    lie = inner.get_recipe(db)
    assert lie is not None
    inner.put_recipe(da, Recipe(da, 300_000, Recipe.decode(lie).chunks).encode())
    with pytest.raises(CorruptObject, match="recipe was wrong"):
        store.open(da).read()
    assert store.recipe(da) is None and not store.exists(da)
    store.put_bytes(a)
    assert store.open(da).read() == a


# -- put_chunked ------------------------------------------------------------------------


def test_put_chunked_records_an_object_from_chunks_already_stored() -> None:
    store = chunked(MemoryObjectStore())
    data = os.urandom(700_000)
    chunker = store.chunker()
    chunks = chunker.feed(data) + chunker.finish()
    store.inner.put_many([c.data for c in chunks])  # as a client's upload of chunks does
    listed = [(c.digest, len(c.data)) for c in chunks]
    assert store.put_chunked(chunker.digest, listed) == ObjectInfo(chunker.digest, len(data))
    assert store.recipe(chunker.digest) == listed
    assert store.open(chunker.digest).read() == data


def test_put_chunked_checks_its_chunks_and_records_nothing_otherwise() -> None:
    store = chunked(MemoryObjectStore())
    data = os.urandom(400_000)
    chunker = store.chunker()
    chunks = chunker.feed(data) + chunker.finish()
    store.inner.put_many([c.data for c in chunks[1:]])  # all but the first
    listed = [(c.digest, len(c.data)) for c in chunks]
    whole = chunker.digest
    with pytest.raises(NotFound, match=r"chunks\[0\]") as missing:
        store.put_chunked(whole, listed)
    assert missing.value.details["digest"] == chunks[0].digest
    store.inner.put_bytes(chunks[0].data)
    swapped = [listed[1], listed[0], *listed[2:]]
    with pytest.raises(InvalidArgument) as wrong:
        store.put_chunked(whole, swapped)
    assert wrong.value.field == "digest"
    sizes = [(listed[0][0], listed[0][1] + 1), (listed[1][0], listed[1][1] - 1), *listed[2:]]
    with pytest.raises(InvalidArgument) as size:
        store.put_chunked(whole, sizes)
    assert size.value.field == "chunks[0].size"
    for bad, field in (
        ([], "chunks"),
        ([("nope", 5)], "chunks[0].digest"),
        ([(listed[0][0], 0)], "chunks[0].size"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            store.put_chunked(whole, bad)  # type: ignore[arg-type]
        assert caught.value.field == field
    with pytest.raises(InvalidArgument) as caught:
        store.put_chunked(Digest("../x"), listed)
    assert caught.value.field == "digest"
    assert store.recipe(whole) is None and not store.exists(whole)
    assert store.put_chunked(whole, listed).digest == whole


def test_an_unreadable_recipe_reads_as_missing_and_a_put_restores_it() -> None:
    inner = MemoryObjectStore()
    store = chunked(inner)
    data = os.urandom(300_000)
    digest = store.put_bytes(data).digest
    inner.put_recipe(digest, b"garbage")
    assert store.missing([digest]) == [digest] and not store.exists(digest)
    assert store.recipe(digest) is None
    with pytest.raises(NotFound):
        store.open(digest)
    [(listed, recipe)] = list(store.iter_recipes())
    assert (listed.digest, recipe) == (digest, None)  # gc stops on it (tests/service)
    store.put_bytes(data)
    assert store.open(digest).read() == data


def test_gc_deletes_a_recipe_only_if_it_was_not_renewed(tmp_path: Path) -> None:
    inner = LocalObjectStore(tmp_path / "store")
    store = chunked(inner)
    digest = store.put_bytes(os.urandom(300_000)).digest
    path = Path(inner.root, "recipes", digest[:2], digest[2:])
    before = path.stat().st_mtime
    assert not inner.delete_recipe_unless_renewed(digest, cutoff=before - 10)  # renewed
    assert store.recipe(digest) is not None
    assert list(path.parent.iterdir()) == [path]  # nothing left aside
    assert inner.delete_recipe_unless_renewed(digest, cutoff=before + 10)
    assert store.recipe(digest) is None and not path.exists()
    assert inner.delete_recipe_unless_renewed(digest, cutoff=before)  # gone already
