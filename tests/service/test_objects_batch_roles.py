"""A batch of objects is stored like one object (issue 16): by a writer of some project."""

from __future__ import annotations

import pytest

from cairn.core.errors import PermissionDenied
from tests.service.test_roles import NONE, READER, WRITER, World, world

__all__ = ["world"]  # the fixture, imported to be used here


def test_a_batch_is_stored_by_a_writer_of_some_project(world: World) -> None:
    service = world.service
    with world.as_(WRITER):
        stored = service.objects.put_many([b"one", b"two"])
    with world.as_(NONE):
        assert service.objects.missing([info.digest for info in stored]) == []
        with pytest.raises(PermissionDenied, match="writes to no project"):
            service.objects.put_many([b"three"])
    with world.as_(READER), pytest.raises(PermissionDenied):
        service.objects.put_many([b"three"])
