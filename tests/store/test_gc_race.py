"""gc against a writer told an old, unreferenced object is present (``missing()`` or a put
of bytes already stored: the writer then names the object without writing it): at every
point of a gc run, the object survives and the writer's row lands on it. Real SQLite,
real objects folder; the writer acts at gc's own hooks, and between its rename and its
check of one object.

The local store renews an object a writer is told of only when it is older than
RENEW_AFTER, so that asking about 20,000 fresh objects costs no utime."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cairn.core.digest import Digest
from cairn.core.settings import Settings
from cairn.service import TrackingService, open_service
from cairn.service.admin import open_metadata
from cairn.service.gc import check_objects, collect_garbage
from cairn.service.object_stores import open_objects
from cairn.store.metadata import MetadataStore
from cairn.store.objects import LocalObjectStore
from cairn.store.objects import local as local_store
from cairn.store.objects.chunked import ChunkedStore

HOUR = 3600.0
DATA = b"old bytes nobody names, about to be named again"


@dataclass
class Scene:
    service: TrackingService  # the writer's rows
    writer: LocalObjectStore  # the writer's view of the objects folder
    metadata: MetadataStore  # gc's
    objects: ChunkedStore  # gc's
    run_id: str
    digest: Digest

    def path(self) -> str:
        return os.path.join(self.writer.root, "objects", self.digest[:2], self.digest[2:])

    def age(self, seconds: float) -> None:
        then = time.time() - seconds
        os.utime(self.path(), (then, then))

    def mtime(self) -> float:
        return os.stat(self.path()).st_mtime

    def ask(self) -> list[Digest]:
        """The writer asks which of its objects the store lacks."""
        return self.writer.missing([self.digest])

    def record(self) -> None:
        """The writer's row, naming the object it was told is stored."""
        self.service.artifacts.record_artifact(self.run_id, "data", "file", self.digest)

    def gc(self, **hooks: Callable[[], object]) -> tuple[int, int]:
        report = collect_garbage(self.metadata, self.objects, grace=HOUR, **hooks)  # type: ignore[arg-type]
        return len(report.removed), report.young


@pytest.fixture
def scene(tmp_path: Path, store_url: str) -> Iterator[Scene]:
    settings = Settings(home=str(tmp_path / "home"), store_uri=store_url, capture="none")
    service = open_service(settings)
    project = service.entities.set_project("p")
    experiment = service.entities.set_experiment(project.id, "e")
    run = service.entities.create_run(experiment.id, "writer")
    writer = LocalObjectStore(os.path.join(settings.home, "objects"))
    digest = writer.put_bytes(DATA).digest
    metadata = open_metadata(settings, create=False)
    objects = open_objects(settings)
    assert isinstance(objects, ChunkedStore) and isinstance(objects.inner, LocalObjectStore)
    found = Scene(service, writer, metadata, objects, run.id, digest)
    found.age(2 * HOUR)  # old and unreferenced: garbage to a gc of grace HOUR
    yield found
    objects.close()
    metadata.close()
    service.close()


def _survives(scene: Scene) -> None:
    scene.record()
    assert scene.objects.open(scene.digest).read() == DATA
    assert check_objects(scene.metadata, scene.objects).ok


def test_asking_renews_an_old_object_and_leaves_a_young_one_alone(scene: Scene) -> None:
    assert scene.ask() == []
    assert scene.mtime() > time.time() - 60  # renewed
    scene.age(local_store.RENEW_AFTER / 2)
    young = scene.mtime()
    assert scene.ask() == []
    assert scene.writer.put_bytes(DATA).digest == scene.digest
    assert scene.mtime() == young  # no utime for an object younger than RENEW_AFTER
    scene.age(2 * HOUR)
    assert scene.writer.put_bytes(DATA).digest == scene.digest
    assert scene.mtime() > time.time() - 60  # a put of bytes stored renews an old one


def test_gc_without_a_writer_takes_the_old_object(scene: Scene) -> None:
    assert scene.gc() == (1, 0)
    assert scene.ask() == [scene.digest]


def test_told_present_before_gc_lists(scene: Scene) -> None:
    assert scene.ask() == []
    assert scene.gc() == (0, 1)
    _survives(scene)


def test_told_present_between_the_listing_and_the_references(scene: Scene) -> None:
    told: list[list[Digest]] = []
    assert scene.gc(after_listing=lambda: told.append(scene.ask())) == (0, 1)
    assert told == [[]]
    _survives(scene)


def test_told_present_after_gc_read_the_references(scene: Scene) -> None:
    told: list[list[Digest]] = []
    assert scene.gc(after_references=lambda: told.append(scene.ask())) == (0, 1)
    assert told == [[]]
    _survives(scene)


def test_told_present_just_before_gc_deletes_it(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After gc's second listing, as it comes to delete this object: the writer's renewal
    is seen once the object is renamed aside, and it is put back."""
    real = LocalObjectStore.delete_unless_renewed
    told: list[list[Digest]] = []

    def writer_first(store: LocalObjectStore, digest: Digest, cutoff: float) -> bool:
        told.append(scene.ask())
        return real(store, digest, cutoff)

    monkeypatch.setattr(LocalObjectStore, "delete_unless_renewed", writer_first)
    assert scene.gc() == (0, 1)
    assert told == [[]]
    _survives(scene)


def test_asking_after_gc_took_it_aside_writes_it_again(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between gc's rename and its check: the writer finds the object missing and stores
    it again; gc deletes only its own old copy."""
    real_rename = os.rename
    told: list[list[Digest]] = []

    def rename_then_writer(src: str, dst: str) -> None:
        real_rename(src, dst)
        if src == scene.path():
            told.append(scene.ask())
            if told[-1]:
                scene.writer.put_bytes(DATA)

    monkeypatch.setattr(local_store.os, "rename", rename_then_writer)
    assert scene.gc() == (1, 0)  # its old copy went
    monkeypatch.setattr(local_store.os, "rename", real_rename)
    assert told == [[scene.digest]]
    _survives(scene)
    assert not [n for n in os.listdir(os.path.dirname(scene.path())) if ".gc-" in n]


@pytest.mark.parametrize("inner", ["local", "memory"])
def test_asking_renews_a_chunked_objects_recipe_with_its_chunks(tmp_path: Path, inner: str) -> None:
    """A chunked object said present keeps its recipe young too: gc drops an old recipe
    whatever its chunks' times, and the object would be lost with it."""
    from cairn.store.objects import MemoryObjectStore

    base: LocalObjectStore | MemoryObjectStore = (
        LocalObjectStore(tmp_path / "objects") if inner == "local" else MemoryObjectStore()
    )
    store = ChunkedStore(base, chunk_size=1024, min_file=8192)
    data = os.urandom(64 * 1024)
    digest = store.put_bytes(data).digest
    assert store.recipe(digest) is not None
    old = time.time() - 2 * HOUR
    if isinstance(base, LocalObjectStore):
        os.utime(base._recipe_path(digest), (old, old))
    else:
        base._recipes[digest] = (base._recipes[digest][0], old)
    assert store.missing([digest]) == []
    (recipe,) = [r for r in base.iter_recipes() if r.digest == digest]
    assert recipe.mtime > time.time() - 60
