"""How versioned objects are kept, on both databases: large bodies compressed, every body
read back exactly, and a damaged one refused rather than misread."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from cairn.core.errors import CorruptObject
from cairn.core.versioning.blobs import Hyperparameters, PythonEnvironment
from cairn.service import TrackingService
from cairn.store.metadata.schema import version_objects


def test_large_bodies_are_compressed_and_read_back_exactly(service: TrackingService) -> None:
    project = service.entities.set_project("p")
    repo = service.repositories.set_repository(project.id, "r")
    env = PythonEnvironment([f"library-{i}=={i}.0" for i in range(200)], version="3.11.7")
    changes = {f"folder/f{i:03d}": Hyperparameters({"i": i}) for i in range(300)}
    changes["env/python"] = env
    service.repositories.save_commit(repo.id, "main", changes, message="many")
    blobs = service.repositories.read_blobs(repo.id, "main")
    assert blobs["env/python"] == env
    assert blobs["folder/f299"] == Hyperparameters({"i": 299})
    with service.context.metadata.read() as tx:
        stored = {
            kind: body
            for kind, body in tx.conn.execute(
                select(version_objects.c.kind, version_objects.c.body)
            )
        }
    assert stored["environment.python"][:1] == b"\x01"  # zlib: 200 lines compress well
    assert len(stored["environment.python"]) < len(env.canonical()) / 2
    assert stored["config.hyperparameters"][:1] == b"\x00"  # 30 bytes: kept as they are


@pytest.mark.parametrize("damage", [b"\x01not zlib", b"\x07" + b"{}", b"\x00{}"])
def test_a_damaged_object_is_refused(service: TrackingService, damage: bytes) -> None:
    project = service.entities.set_project("p")
    repo = service.repositories.set_repository(project.id, "r")
    hp = Hyperparameters({"lr": 0.1})
    service.repositories.save_commit(repo.id, "main", {"hp": hp}, message="hp")
    with service.context.metadata.write() as tx:
        tx.conn.execute(
            update(version_objects)
            .where(version_objects.c.digest == hp.digest())
            .values(body=damage)
        )
    with pytest.raises(CorruptObject):
        service.repositories.read_blobs(repo.id, "main", ["hp"])
