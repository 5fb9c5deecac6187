"""Garbage collection and checking of the object store, against what metadata references.

What is referenced is the union of :data:`REFERENCE_SOURCES`, one function per kind of
thing that names objects (a new kind is one more function). gc is safe while writers
go on because of two orders: a write stores its object before the row that names it, so
gc lists the objects first and reads the references after (a row committed in between is
seen), and an object younger than the grace period is never deleted (its row may not be
committed yet). A put of bytes already stored, or ``missing()`` saying an object is
stored, renews an old object's time in the local store, so a dedup hit is young again
before its row is written; and gc deletes each local object only after renaming it aside
and finding it still old (``delete_unless_renewed``). S3 cannot renew: there a writer told
an old object is present can still lose it to a gc between its question and its row.

A chunked object (cairn/store/objects/chunked.py) is its recipe plus its chunks, which
are objects of their own: a recipe is kept while its object is referenced or the recipe
is young, and its chunks while it is kept; a chunk of no kept recipe is garbage like any
object. Chunks are stored before their recipe and recipes are deleted before chunks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from cairn.core.chunks import Recipe
from cairn.core.digest import Digest
from cairn.core.errors import CorruptObject, InvalidArgument, NotFound
from cairn.core.settings import Settings
from cairn.core.tree import Tree
from cairn.store.metadata import MetadataStore, references
from cairn.store.objects.chunked import ChunkedStore
from cairn.store.objects.port import ObjectStore, Quarantined, StoredObject

__all__ = [
    "REFERENCE_SOURCES",
    "FsckReport",
    "GcReport",
    "References",
    "check_objects",
    "collect_garbage",
    "open_stores",
    "referenced_objects",
]


@contextmanager
def open_stores(settings: Settings) -> Iterator[tuple[MetadataStore, ObjectStore]]:
    """The metadata store (which must exist: gc never makes one) and the object store of
    ``settings`` (its ``objects_uri``), closed after."""
    from cairn.service.admin import open_metadata
    from cairn.service.object_stores import open_objects

    metadata = open_metadata(settings, create=False)
    try:
        objects = open_objects(settings)
        try:
            yield metadata, objects
        finally:
            objects.close()
    finally:
        metadata.close()


@dataclass
class References:
    """The objects metadata names: digest -> the first row found naming it; and the
    objects that name others (folder trees) but could not be read."""

    named: dict[Digest, str] = field(default_factory=dict)
    unreadable: dict[Digest, str] = field(default_factory=dict)
    # chunked object -> its recipe as listed (size, time) and decoded
    recipes: dict[Digest, tuple[StoredObject, Recipe]] = field(default_factory=dict)

    def add(self, pairs: Iterable[tuple[Digest, str]]) -> None:
        named = self.named
        for digest, what in pairs:
            named.setdefault(digest, what)

    def with_chunks(self, cutoff: float | None = None) -> dict[Digest, str]:
        """``named`` plus the chunks of every recipe kept: one whose object is named, or
        (with ``cutoff``) written after it; without ``cutoff``, of every recipe."""
        named = dict(self.named)
        for digest, (listed, recipe) in self.recipes.items():
            why = self.named.get(digest)
            if why is None:
                if cutoff is not None and listed.mtime <= cutoff:
                    continue
                why = "an unreferenced chunked object"
            for chunk, _ in recipe.chunks:
                named.setdefault(chunk, f"a chunk of {digest} ({why})")
        return named


_DELETERS = 8  # deletes in flight at once

ReferenceSource = Callable[[MetadataStore, ObjectStore, References], None]


def _artifact_files(metadata: MetadataStore, objects: ObjectStore, refs: References) -> None:
    with metadata.read() as tx:
        refs.add(references.artifact_files(tx.conn))


def _artifact_trees(metadata: MetadataStore, objects: ObjectStore, refs: References) -> None:
    """A folder artifact names its tree object, and the tree names every file in it."""
    with metadata.read() as tx:
        trees = dict(references.artifact_trees(tx.conn))
    for tree_digest, what in trees.items():
        refs.add([(tree_digest, what)])
        try:
            with objects.open(tree_digest) as stream:
                tree = Tree.decode(stream.read())
        except (NotFound, CorruptObject, InvalidArgument, ValueError, KeyError) as exc:
            refs.unreadable[tree_digest] = f"{what}: {exc}"
            continue
        refs.add((e.digest, f"{e.path!r} in {what}") for e in tree)


def _version_blobs(metadata: MetadataStore, objects: ObjectStore, refs: References) -> None:
    """Code snapshots, notebooks, git diffs, captured dataset files; commits, refs and
    run captures name blobs, and every stored blob is read, so they are covered."""
    with metadata.read() as tx:
        refs.add(references.version_blob_objects(tx.conn))


def _chunk_recipes(metadata: MetadataStore, objects: ObjectStore, refs: References) -> None:
    """Every recipe of a chunked store; which of their chunks are kept depends on the
    recipe's object and age (:meth:`References.with_chunks`). A recipe that cannot be
    read stops gc, as an unreadable folder tree does: its chunks cannot be told apart."""
    if not isinstance(objects, ChunkedStore):
        return
    for listed, recipe in objects.iter_recipes():
        if recipe is None:
            refs.unreadable[listed.digest] = "a chunk recipe that cannot be decoded"
        else:
            refs.recipes[listed.digest] = (listed, recipe)


REFERENCE_SOURCES: tuple[ReferenceSource, ...] = (
    _artifact_files,
    _artifact_trees,
    _version_blobs,
    _chunk_recipes,
)


def referenced_objects(metadata: MetadataStore, objects: ObjectStore) -> References:
    refs = References()
    for source in REFERENCE_SOURCES:
        source(metadata, objects, refs)
    return refs


@dataclass
class GcReport:
    """What a gc found and did (or, in a dry run, would do)."""

    dry_run: bool
    grace: float
    stored: int = 0
    stored_bytes: int = 0
    referenced: int = 0
    young: int = 0  # unreferenced, but written within the grace period: kept
    removed: list[StoredObject] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)  # temp files, multipart uploads
    quarantine_removed: list[Quarantined] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return sum(o.size for o in self.removed) + sum(q.size for q in self.quarantine_removed)

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "grace": self.grace,
            "stored": self.stored,
            "stored_bytes": self.stored_bytes,
            "referenced": self.referenced,
            "young": self.young,
            "removed": len(self.removed),
            "removed_digests": [o.digest for o in self.removed],
            "swept": self.swept,
            "quarantine_removed": [q.digest for q in self.quarantine_removed],
            "freed_bytes": self.freed_bytes,
        }


def collect_garbage(
    metadata: MetadataStore,
    objects: ObjectStore,
    *,
    grace: float,
    dry_run: bool = False,
    purge_quarantine: bool = False,
    now: float | None = None,
    after_listing: Callable[[], object] | None = None,
    after_references: Callable[[], object] | None = None,
) -> GcReport:
    """Delete the objects nothing references that were last written more than ``grace``
    seconds ago, and sweep temp files and multipart uploads as old; with
    ``purge_quarantine``, remove the quarantined copies moved aside as long ago too (local
    folders only). A dry run changes nothing (and does not look at temp files).
    ``after_listing`` runs between the listing and the reading of references, and
    ``after_references`` after that (tests interleave writers there)."""
    if grace < 0:
        raise InvalidArgument("grace", f"must be 0 seconds or more, not {grace}")
    cutoff = (time.time() if now is None else now) - grace
    report = GcReport(dry_run=dry_run, grace=grace)
    stored = list(objects.iter_objects())  # first: see the module's docstring
    if after_listing is not None:
        after_listing()
    refs = referenced_objects(metadata, objects)
    if refs.unreadable:
        listed = "; ".join(f"{d} ({what})" for d, what in sorted(refs.unreadable.items()))
        raise CorruptObject(
            f"gc stopped, nothing deleted: {len(refs.unreadable)} folder tree(s) or chunk "
            f"recipe(s) cannot be read, so the files or chunks they list cannot be told "
            f"from garbage: {listed}. Store the folder or file again (that restores its "
            "tree or recipe) and run gc again; `cairn fsck` lists what is missing",
            unreadable=sorted(refs.unreadable),
        )
    named = refs.with_chunks(cutoff)
    for obj in stored:
        report.stored += 1
        report.stored_bytes += obj.size
        if obj.digest in named:
            report.referenced += 1
        elif obj.mtime > cutoff:
            report.young += 1
        else:
            report.removed.append(obj)
    if purge_quarantine:
        report.quarantine_removed = [q for q in objects.quarantined() if q.since <= cutoff]
        for q in report.quarantine_removed:
            if q.path is None or "://" in q.path:
                raise InvalidArgument(
                    "purge_quarantine",
                    f"quarantined objects can be removed from a local folder only; "
                    f"{q.path or 'this store'} is not one",
                )
    if after_references is not None:
        after_references()
    if dry_run:
        return report
    if report.removed:
        # Listed again: a put that found one of them stored has renewed it since the first
        # listing, and its row may be on its way. What is left is the instant between
        # this listing and the delete.
        renewed = {o.digest for o in objects.iter_objects() if o.mtime > cutoff}
        report.young += sum(o.digest in renewed for o in report.removed)
        report.removed = [o for o in report.removed if o.digest not in renewed]
    # Deletes in parallel: an S3 DELETE is a round trip, and even a local unlink waits on
    # the file system's journal (10,000 objects of 4 KiB under load: 26 s one by one, 2 s
    # eight at a time).
    # Recipes first: a crash in between leaves chunks of no recipe, never a recipe
    # naming deleted chunks.
    kept = _delete(objects, [o.digest for o in report.removed], refs, cutoff)
    if kept:
        report.young += len(kept)
        report.removed = [o for o in report.removed if o.digest not in kept]
    for q in report.quarantine_removed:
        assert q.path is not None  # checked above
        try:
            os.unlink(q.path)
        except FileNotFoundError:
            continue
    report.swept = objects.sweep(grace)
    return report


def _delete(
    objects: ObjectStore, doomed: list[Digest], refs: References, cutoff: float
) -> set[Digest]:
    """Delete ``doomed``, recipes first; the objects kept because they were renewed after
    ``cutoff`` after all. A local folder checks each object's time once more as it deletes
    it, closing the instant since the second listing (LocalObjectStore.
    delete_unless_renewed); elsewhere a plain delete."""
    inner = objects.inner if isinstance(objects, ChunkedStore) else objects
    guarded = getattr(inner, "delete_unless_renewed", None)
    guarded_recipe = getattr(inner, "delete_recipe_unless_renewed", None)

    def delete(digest: Digest) -> bool:
        if digest not in refs.recipes:
            if guarded is None:
                objects.delete(digest)
                return True
            return bool(guarded(digest, cutoff))
        if guarded is None or guarded_recipe is None:
            objects.delete(digest)
            return True
        # The recipe, and a whole copy if there is one (both checked: no short circuit).
        return bool(guarded_recipe(digest, cutoff)) & bool(guarded(digest, cutoff))

    with ThreadPoolExecutor(_DELETERS, thread_name_prefix="cairn-gc") as pool:
        recipes = [d for d in doomed if d in refs.recipes]
        kept = {d for d, gone in zip(recipes, pool.map(delete, recipes), strict=True) if not gone}
        whole = [d for d in doomed if d not in refs.recipes]
        kept |= {d for d, gone in zip(whole, pool.map(delete, whole), strict=True) if not gone}
        return kept


@dataclass
class FsckReport:
    """What a check of every object found."""

    stored: int = 0
    stored_bytes: int = 0
    corrupt: list[Digest] = field(default_factory=list)  # found now, moved to quarantine
    missing: dict[Digest, str] = field(default_factory=dict)  # referenced, not stored
    unreferenced: int = 0
    unreferenced_bytes: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "stored": self.stored,
            "stored_bytes": self.stored_bytes,
            "corrupt": self.corrupt,
            "missing": [{"digest": d, "referenced_by": w} for d, w in self.missing.items()],
            "unreferenced": self.unreferenced,
            "unreferenced_bytes": self.unreferenced_bytes,
            "quarantined": [
                {"digest": q.digest, "size": q.size, "since": q.since, "path": q.path}
                for q in self.quarantined
            ],
        }


def check_objects(metadata: MetadataStore, objects: ObjectStore) -> FsckReport:
    """Read every stored object whole (a corrupt one is quarantined, as any read that
    finds it so), then compare with what metadata references."""
    report = FsckReport()
    stored = {o.digest: o for o in objects.iter_objects()}
    # A chunk store reads each chunked object whole, and on their own only the chunks no
    # recipe names (reading every chunk again would double the work).
    chunked = isinstance(objects, ChunkedStore)
    report.corrupt = sorted(objects.verify(None if chunked else list(stored)))
    for digest in report.corrupt:
        stored.pop(digest, None)
    refs = referenced_objects(metadata, objects)
    named = refs.with_chunks()  # the chunks of every recipe must be there
    lacking = [d for d in named if d not in stored and d not in report.corrupt]
    # Stored since the listing: asked again, so a write in progress is not reported.
    for digest in objects.missing(lacking):
        report.missing[digest] = named[digest]
    for obj in stored.values():
        report.stored += 1
        report.stored_bytes += obj.size
        if obj.digest not in named:
            report.unreferenced += 1
            report.unreferenced_bytes += obj.size
    report.quarantined = objects.quarantined()
    return report
