"""Chunked objects: big objects stored as content-defined chunks and a recipe, behind the
same port (docs/architecture.md, *Chunked objects*).

:class:`ChunkedStore` wraps any adapter that keeps recipes (:class:`RecipeStore`: the
local folder, memory, S3). An object of at least ``min_file`` bytes is cut into chunks
(:mod:`cairn.files.chunking`), the chunks are stored as objects of the inner store through
``put_many`` (a batch at a time, made durable together), and then its recipe
(:class:`cairn.core.chunks.Recipe`) is recorded under the digest of its whole bytes.
Smaller objects go to the inner store whole. An object's digest is the BLAKE3 of its
whole bytes either way, so callers never know how it is stored.

Reads try the inner store first (whole objects are most), then the recipe: the chunks
are read ahead on a few threads, each verified by the inner store (which quarantines a
corrupt one), and the whole is verified again against its digest. A chunk that is
missing or corrupt makes the read raise ``CorruptObject`` naming the object; the object
then reads as missing (``exists``, ``size``, ``missing``), so the next put of its bytes
stores the chunk again and heals it. Chunks are written before their recipe, and gc keeps
the chunks of every recipe it keeps (cairn/service/gc.py).
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO, Final

from cairn.core.chunks import Recipe
from cairn.core.digest import Digest, new_hasher, parse_digest
from cairn.core.errors import CorruptObject, InvalidArgument, NotFound
from cairn.core.objects import ObjectInfo, Progress
from cairn.files.chunking import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MIN_FILE,
    Chunk,
    Chunker,
    check_chunk_size,
)
from cairn.files.reading import ReadInto, VerifyingReader, counting, open_source
from cairn.files.writing import readinto_of, write_file_atomically
from cairn.store.objects.port import (
    AbortingWriter,
    ClosingStore,
    Quarantined,
    RecipeStore,
    StoredObject,
    check_expected_digest,
    fill_by_writes,
    verify_each,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["ChunkedStore", "ChunkedWriter"]

log = logging.getLogger("cairn.objects")

_BATCH: Final = 8 << 20  # chunk bytes stored per put_many (held in memory, 2 in flight)
_IN_FLIGHT: Final = 2  # batches a writer has being stored while it cuts the next
_READ: Final = 4 << 20  # bytes read from a source at a time
_READ_AHEAD: Final = 8  # chunks fetched ahead of a reader


class ChunkedStore(ClosingStore):
    """The object-store port over ``inner``, with objects of ``min_file`` bytes or more
    stored as chunks of ``chunk_size`` bytes on average and a recipe."""

    def __init__(
        self,
        inner: RecipeStore,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        min_file: int = DEFAULT_MIN_FILE,
        batch_bytes: int = _BATCH,
    ) -> None:
        check_chunk_size(chunk_size)
        if not isinstance(min_file, int) or min_file < 1:
            raise InvalidArgument("chunk_min_file", f"must be a positive integer, not {min_file!r}")
        self._inner = inner
        self._chunk_size = chunk_size
        self._min_file = min_file
        self._batch = batch_bytes
        self._threads: ThreadPoolExecutor | None = None  # chunk read-ahead, made on use
        self._storers: ThreadPoolExecutor | None = None  # batches of chunks, made on use
        self._pool_lock = threading.Lock()

    @property
    def inner(self) -> RecipeStore:
        return self._inner

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    @property
    def min_file(self) -> int:
        return self._min_file

    def __repr__(self) -> str:
        return (
            f"ChunkedStore({self._inner!r}, chunk_size={self._chunk_size}, "
            f"min_file={self._min_file})"
        )

    def chunker(self) -> Chunker:
        """A chunker cutting as this store does (for a client that sends chunks)."""
        return Chunker(self._chunk_size)

    # -- writes ---------------------------------------------------------------

    def put_bytes(self, data: bytes) -> ObjectInfo:
        if len(data) < self._min_file:
            return self._inner.put_bytes(data)
        with self.open_writer() as writer:
            writer.write(data)
            return writer.commit()

    def put_stream(self, src: BinaryIO, progress: Progress | None = None) -> ObjectInfo:
        return self._put_from(counting(readinto_of(src), progress))

    def put_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo:
        with open_source(path) as src:
            if os.fstat(src.fileno()).st_size < self._min_file:
                return self._inner.put_file(path, progress)  # small: the inner store's path
            return self._put_from(counting(src.readinto, progress))

    def open_writer(self) -> ChunkedWriter:
        return ChunkedWriter(self)

    def put_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Small items in one batch of the inner store; big ones chunked, one by one."""
        small = [i for i, item in enumerate(items) if len(item) < self._min_file]
        infos: list[ObjectInfo | None] = [None] * len(items)
        for i, info in zip(small, self._inner.put_many([items[i] for i in small]), strict=True):
            infos[i] = info
        for i, item in enumerate(items):
            if infos[i] is None:
                infos[i] = self.put_bytes(item)
        return [info for info in infos if info is not None]

    def put_chunked(self, digest: Digest, chunks: Sequence[tuple[Digest, int]]) -> ObjectInfo:
        """Record the object ``digest`` made of ``chunks`` (digest, size), already stored
        (a client sent them): they are read back, in order, and must hash to ``digest``
        whole. ``NotFound`` naming the first chunk the store lacks, ``InvalidArgument``
        naming the field if they do not make that object; nothing is recorded then."""
        digest = parse_digest(digest)
        if not chunks:
            raise InvalidArgument("chunks", "must list at least one chunk")
        recipe = Recipe(
            digest,
            sum(_size(n, i) for i, (_, n) in enumerate(chunks)),
            tuple((parse_digest(d, f"chunks[{i}].digest"), n) for i, (d, n) in enumerate(chunks)),
        )
        lacking = set(self._inner.missing(d for d, _ in recipe.chunks))
        for i, (chunk, _) in enumerate(recipe.chunks):
            if chunk in lacking:
                raise NotFound(
                    f"chunks[{i}]: no chunk {chunk} is stored (send the chunks first)",
                    digest=chunk,
                    field=f"chunks[{i}]",
                )
        self._inner.renew(d for d, _ in recipe.chunks)  # young again: gc keeps them
        hasher = new_hasher()
        for i, ((chunk, size), data) in enumerate(
            zip(recipe.chunks, self._fetch(recipe, owner=digest), strict=True)
        ):
            if len(data) != size:
                raise InvalidArgument(
                    f"chunks[{i}].size",
                    f"the chunk {chunk} holds {len(data)} bytes, not {size}: nothing was stored",
                )
            hasher.update(data)
        check_expected_digest(digest, Digest(hasher.hexdigest()))
        self._inner.put_recipe(digest, recipe.encode())
        return ObjectInfo(digest, recipe.size)

    def recipe(self, digest: Digest) -> list[tuple[Digest, int]] | None:
        """The chunks of a chunked object; None if it is stored whole, or not at all."""
        found = self._recipe(parse_digest(digest))
        return None if found is None else list(found.chunks)

    def delete(self, digest: Digest) -> None:
        """The whole copy and the recipe; the chunks stay until gc finds them unused
        (another object may share them)."""
        self._inner.delete(digest)
        self._inner.delete_recipe(digest)

    # -- reads ----------------------------------------------------------------

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return self._inner.open(digest)
        except (NotFound, CorruptObject) as exc:
            recipe = self._recipe(parse_digest(digest))
            if recipe is None:
                raise exc from None
        return io.BufferedReader(self._reader(recipe), buffer_size=64 * 1024)

    def exists(self, digest: Digest) -> bool:
        return not self.missing([digest])

    def size(self, digest: Digest) -> int:
        try:
            return self._inner.size(digest)
        except NotFound:
            recipe = self._recipe(parse_digest(digest))
            if recipe is None:
                raise
            lacking = self._inner.missing(d for d, _ in recipe.chunks)
            if lacking:
                raise NotFound(
                    f"no object {digest}: its chunk {lacking[0]} is missing or was found "
                    "corrupt and moved aside",
                    digest=digest,
                    chunk=lacking[0],
                ) from None
            return recipe.size

    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        try:
            return self._inner.copy_to_file(digest, dest, progress)
        except (NotFound, CorruptObject) as exc:
            if exc.details.get("digest") != digest:
                raise  # about the destination, not the object
            recipe = self._recipe(parse_digest(digest))
            if recipe is None:
                raise exc from None
        with self._reader(recipe) as reader:
            return write_file_atomically(counting(reader.readinto, progress), dest)

    def link_to(self, digest: Digest, dest: str | os.PathLike[str]) -> bool:
        """A hard link to a whole stored copy, as the inner store makes them; False for
        an object kept as chunks (the caller copies it)."""
        try:
            return self._inner.link_to(digest, dest)
        except NotFound:
            if self._recipe(parse_digest(digest)) is None:
                raise
            return False

    def missing(self, digests: Iterable[Digest]) -> list[Digest]:
        lacking = self._inner.missing(digests)
        if not lacking:
            return lacking
        found = self._inner.get_recipes(lacking).items()
        recipes = {d: r for d, data in found if (r := _decode(data, d)) is not None}
        if recipes:
            chunks = {c for r in recipes.values() for c, _ in r.chunks}
            broken = set(self._inner.missing(chunks))
            whole = {d for d, r in recipes.items() if not any(c in broken for c, _ in r.chunks)}
            # the caller will name these without sending them: gc must keep their recipes
            # as inner.missing kept their chunks (its answer renewed the old ones)
            self._inner.renew_recipes(whole)
            lacking = [d for d in lacking if d not in whole]
        return lacking

    # -- listing, damage and leftovers ---------------------------------------------

    def iter_objects(self) -> Iterator[StoredObject]:
        """The inner store's objects (whole objects and chunks: a chunk is an object
        too), then each chunked object with its recipe's own size (its bytes are its
        chunks', listed already) and time."""
        yield from self._inner.iter_objects()
        yield from self._inner.iter_recipes()

    def iter_recipes(self) -> Iterator[tuple[StoredObject, Recipe | None]]:
        """Each recipe as listed, and decoded (None if it cannot be read)."""
        for listed in self._inner.iter_recipes():
            yield listed, self._recipe(listed.digest)

    def verify(self, digests: Iterable[Digest] | None = None) -> list[Digest]:
        """By default every object: chunked ones read whole (which reads, verifies and
        quarantines their chunks), and the chunks no recipe names on their own."""
        if digests is None:
            recipes = [(listed.digest, r) for listed, r in self.iter_recipes()]
            named = {c for _, r in recipes if r is not None for c, _ in r.chunks}
            alone = (o.digest for o in self._inner.iter_objects() if o.digest not in named)
            digests = list(dict.fromkeys([*alone, *(d for d, _ in recipes)]))
        return verify_each(self, digests)

    def quarantined(self) -> list[Quarantined]:
        return self._inner.quarantined()

    def sweep(self, grace: float) -> list[str]:
        return self._inner.sweep(grace)

    def close(self) -> None:
        with self._pool_lock:
            pools = [self._threads, self._storers]
            self._threads = self._storers = None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)
        self._inner.close()

    # -- internals ------------------------------------------------------------

    def _recipe(self, digest: Digest) -> Recipe | None:
        """The recipe of ``digest``; None if there is none, or none that can be read (the
        object then reads as missing, and a put of its bytes records a new recipe)."""
        data = self._inner.get_recipe(digest)
        return None if data is None else _decode(data, digest)

    def _put_from(self, readinto: ReadInto) -> ObjectInfo:
        with self.open_writer() as writer:
            writer.fill(readinto)
            return writer.commit()

    def _store_chunks(self, chunks: list[Chunk]) -> list[ObjectInfo]:
        # put_many, not a check of what is there first: a put heals a damaged copy, and
        # renews a stored one for gc, like any put. It hashes each chunk: their digests.
        return self._inner.put_many([c.data for c in chunks])

    def _storer(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._storers is None:
                self._storers = ThreadPoolExecutor(_IN_FLIGHT, thread_name_prefix="cairn-store")
            return self._storers

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(_READ_AHEAD, thread_name_prefix="cairn-chunks")
            return self._threads

    def _fetch(self, recipe: Recipe, owner: Digest) -> Iterator[bytes]:
        """The bytes of each chunk in order, read (and verified) a few ahead on threads;
        ``CorruptObject`` naming ``owner`` if a chunk is missing or corrupt."""
        pool = self._pool()
        ahead: collections.deque[Future[bytes]] = collections.deque()
        todo = iter(recipe.chunks)
        try:
            for chunk, size in todo:
                ahead.append(pool.submit(self._read_chunk, chunk, size, owner))
                if len(ahead) >= _READ_AHEAD:
                    break
            while ahead:
                data = ahead.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    ahead.append(pool.submit(self._read_chunk, *nxt, owner))
                yield data
        finally:
            for future in ahead:
                future.cancel()

    def _read_chunk(self, chunk: Digest, size: int, owner: Digest) -> bytes:
        try:
            with self._inner.open(chunk) as stream:
                # One byte more than the recipe says: the reader meets EOF, where it
                # checks the digest; a chunk of another size makes the whole check fail.
                data: bytes = stream.read(size + 1)
                return data
        except (NotFound, CorruptObject) as exc:
            what = "is missing" if isinstance(exc, NotFound) else "is corrupt"
            raise CorruptObject(
                f"object {owner} is corrupt: its chunk {chunk} {what} ({exc}); storing the "
                "same bytes again restores it",
                digest=owner,
                chunk=chunk,
            ) from None

    def _reader(self, recipe: Recipe) -> VerifyingReader:
        digest = recipe.digest
        return VerifyingReader(
            _ChunksSource(self._fetch(recipe, owner=digest)),
            digest,
            recipe.size,
            on_corrupt=lambda: self._drop_recipe(digest),
        )

    def _drop_recipe(self, digest: Digest) -> str:
        """Every chunk was intact yet the whole is wrong: the recipe lies. Removed, so
        the object reads as missing and the next put records a right one."""
        self._inner.delete_recipe(digest)
        return "its recipe was wrong and was removed; storing the same bytes again restores it"


class ChunkedWriter(AbortingWriter):
    """One new object of a :class:`ChunkedStore`: held in memory until it reaches the
    store's ``min_file`` (then stored whole if it ends there), cut into chunks beyond,
    which are stored a batch at a time; the recipe is recorded at ``commit``."""

    def __init__(self, store: ChunkedStore) -> None:
        self._store = store
        self._head: bytearray | None = bytearray()  # until min_file: maybe a whole object
        self._chunker: Chunker | None = None
        self._batch: list[Chunk] = []
        self._batched = 0
        self._chunks: list[tuple[Digest, int]] = []
        # Batches being stored on the store's threads while this one cuts the next: the
        # writes' system calls and flushes overlap the hashing. Their infos, in order,
        # make the recipe.
        self._storing: collections.deque[Future[list[ObjectInfo]]] = collections.deque()
        self._open = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        try:
            view = memoryview(data).cast("B")
            if self._head is not None:
                self._head += view  # a private copy: the caller may reuse its buffer
                if len(self._head) >= self._store.min_file:
                    head, self._head = self._head, None
                    self._chunker = Chunker(self._store.chunk_size, digests=False)
                    self._take(self._chunker.feed(head))
            else:
                assert self._chunker is not None
                self._take(self._chunker.feed(view))
        except BaseException:
            self.abort()
            raise

    def fill(self, readinto: ReadInto) -> None:
        """Append everything ``readinto`` gives until EOF."""
        fill_by_writes(self.write, readinto, _READ)

    def commit(self, expected: Digest | None = None) -> ObjectInfo:
        self._check_open()
        self._open = False
        try:
            if self._head is not None:  # small: whole, through the inner store's writer
                with self._store.inner.open_writer() as writer:
                    writer.write(self._head)
                    return writer.commit(expected)
            assert self._chunker is not None
            last = self._chunker.finish()
            digest = self._chunker.digest
            check_expected_digest(expected, digest)  # before the last batch: often the only one
            self._take(last, flush=True)
            self._wait()  # every chunk stored before the recipe that names them
            recipe = Recipe(digest, self._chunker.size, tuple(self._chunks))
            self._store.inner.put_recipe(digest, recipe.encode())
            return ObjectInfo(digest, recipe.size)
        finally:
            self._release()

    def abort(self) -> None:
        """Nothing recorded; chunks of a batch already stored stay for gc (another
        object may share them, so they cannot be deleted here)."""
        if self._open:
            self._open = False
            self._release()

    def _take(self, chunks: list[Chunk], *, flush: bool = False) -> None:
        for chunk in chunks:
            self._batch.append(chunk)
            self._batched += len(chunk.data)
        if self._batch and (flush or self._batched >= self._store._batch):
            batch, self._batch, self._batched = self._batch, [], 0
            while len(self._storing) >= _IN_FLIGHT:
                self._collect(self._storing.popleft().result())
            self._storing.append(self._store._storer().submit(self._store._store_chunks, batch))

    def _collect(self, infos: list[ObjectInfo]) -> None:
        self._chunks.extend((info.digest, info.size) for info in infos)

    def _wait(self) -> None:
        """Wait for every batch in flight; the first error, once all are done."""
        error: BaseException | None = None
        while self._storing:
            try:
                self._collect(self._storing.popleft().result())
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error

    def _release(self) -> None:
        with contextlib.suppress(BaseException):
            self._wait()  # an abort or a failure: nothing more may land after it returns
        self._head = None
        self._chunker = None
        self._batch = []

    def _check_open(self) -> None:
        if not self._open:
            raise ValueError("the object writer is already committed or aborted")


class _ChunksSource:
    """A :class:`~cairn.files.reading.RawSource` over a chunked object's chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = memoryview(b"")

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        while not self._chunk:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._chunk = memoryview(nxt)
        n = min(len(view), len(self._chunk))
        view[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n

    def close(self) -> None:
        self._chunk = memoryview(b"")
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()  # a generator: cancels the chunks read ahead


def _decode(data: bytes, digest: Digest) -> Recipe | None:
    try:
        return Recipe.decode(data, digest)
    except InvalidArgument as exc:
        log.error(
            "the recipe of %s cannot be read, so the object reads as missing: %s", digest, exc
        )
        return None


def _size(n: object, i: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise InvalidArgument(f"chunks[{i}].size", f"must be a positive integer, not {n!r}")
    return n
