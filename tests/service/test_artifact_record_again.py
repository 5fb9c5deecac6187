"""Recording an artifact again (issue 16): an unchanged tree logged again at its key is not
checked file by file again (it was when first recorded; recording it again refers to
nothing new), while the same tree under another key is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cairn.core.digest import Digest
from cairn.core.errors import NotFound
from cairn.files import artifacts
from cairn.service import TrackingService
from cairn.service.artifacts import ArtifactService


def make_folder(root: Path, count: int) -> int:
    for i in range(count):
        path = root / f"d{i % 3}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(100 + i))
    return count


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[Digest]:
    """The objects whose size the record of an artifact checks."""
    seen: list[Digest] = []
    real = ArtifactService._object_size

    def counted(self: ArtifactService, digest: Digest) -> int:
        seen.append(digest)
        return real(self, digest)

    monkeypatch.setattr(ArtifactService, "_object_size", counted)
    return seen


def test_an_unchanged_tree_recorded_again_is_not_checked_file_by_file(
    service: TrackingService, tmp_path: Path, checked: list[Digest]
) -> None:
    count = make_folder(tmp_path / "ckpt", 20)
    project = service.entities.set_project("p")
    run = service.entities.create_run(service.entities.set_experiment(project.id, "e").id, "r")
    stored = artifacts.store_source(service.context.objects, tmp_path / "ckpt")
    first = service.artifacts.record_artifact(run.id, "ckpt", "tree", stored.digest)
    assert len(checked) == count  # each file's object, once
    checked.clear()
    again = service.artifacts.record_artifact(run.id, "ckpt", "tree", stored.digest)
    assert checked == []
    assert (again.digest, again.size, again.file_count) == (
        first.digest,
        first.size,
        first.file_count,
    )
    # Elsewhere (another key), the same tree is checked: a lost object is named.
    tree = service.artifacts.resolve_artifact(run.id, "ckpt")
    service.context.objects.delete(tree.entries[0].digest)
    with pytest.raises(NotFound, match="upload it before recording it"):
        service.artifacts.record_artifact(run.id, "elsewhere", "tree", stored.digest)
