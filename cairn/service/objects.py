"""Objects: the content-addressed bytes behind artifacts, as the server's object routes
use them (the HTTP client's uploads and downloads land here)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO, Final

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import CairnError, InvalidArgument, NotFound
from cairn.core.identity import Role
from cairn.core.objects import ObjectInfo, ObjectWriter, Progress
from cairn.core.tree import Tree
from cairn.service.base import ServicePart
from cairn.store.metadata.artifacts import check_room
from cairn.store.objects import ObjectStore
from cairn.store.objects.port import Quarantined

__all__ = ["ObjectService", "read_tree", "stored_size"]

_CHUNK: Final = 4 << 20  # reads of whole objects: big, for few calls


def read_tree(objects: ObjectStore, digest: Digest) -> Tree:
    """The tree manifest stored as ``digest``."""
    with objects.open(digest) as stream:
        return Tree.decode(stream.read())


def stored_size(objects: ObjectStore, digest: Digest) -> int:
    """The size of an object that must already be stored (uploaded before it is named)."""
    try:
        return objects.size(digest)
    except NotFound:
        raise NotFound(
            f"no object {digest}: upload it before recording it", digest=digest
        ) from None


class ObjectService(ServicePart):
    """Stored objects by digest: size, read, write piece by piece, verify, compose."""

    def exists(self, digest: str) -> bool:
        return self.objects.exists(parse_digest(digest))

    def size(self, digest: str) -> int:
        """Size of a stored object; ``NotFound`` if there is none."""
        return self.objects.size(parse_digest(digest))

    def missing(self, digests: Sequence[str]) -> list[Digest]:
        """Those of ``digests`` not stored, each once, in the order given."""
        return self.objects.missing([parse_digest(d, "digests") for d in digests])

    def put_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Store many small objects, durable together (each hashed by the store).
        With a principal: a writer of some project, as :meth:`writer`."""
        self.access.require_uploader()
        return self.objects.put_many(items)

    def open(self, digest: str) -> BinaryIO:
        """A verifying read stream of one object."""
        return self.objects.open(parse_digest(digest))

    def writer(self) -> ObjectWriter:
        """A writer for one object arriving piece by piece (commit with its digest).
        With a principal: a writer of some project (see docs/roles.md, *Objects*)."""
        self.access.require_uploader()
        return self.objects.open_writer()

    def copy_to_file(
        self, digest: str, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        """Write an object to ``dest``, verified and atomically; its size."""
        return self.objects.copy_to_file(parse_digest(digest), dest, progress)

    def read_many(self, entries: Sequence[tuple[Digest, int]]) -> Iterator[tuple[Digest, bytes]]:
        """The verified bytes of small objects (digest, size), each digest once: each
        read to its end through the store's verifying stream (``CorruptObject``, and
        the copy quarantined, if its bytes lie)."""
        for digest, size in dict.fromkeys((parse_digest(d), n) for d, n in entries):
            with self.objects.open(digest) as stream:
                data = stream.read(size + 1)
                if len(data) > size:
                    stream.read()  # to the end: verified before the size is blamed
                if len(data) != size:
                    raise CairnError(
                        f"object {digest} holds {len(data)} bytes where {size} were expected",
                        digest=digest,
                    )
            yield digest, data

    def link_to(self, digest: str, dest: str | os.PathLike[str]) -> bool:
        """Make ``dest`` (new) a read-only hard link to the stored object, its bytes
        verified; False where the store cannot link (the caller copies)."""
        wanted = parse_digest(digest)
        if not self.objects.link_to(wanted, dest):
            return False
        try:
            with self.objects.open(wanted) as stream:
                while stream.read(_CHUNK):
                    pass
        except BaseException:
            os.unlink(dest)  # a link to bytes that lie is no checkout
            raise
        return True

    def quarantined(self) -> list[Quarantined]:
        """Objects reads found corrupt and moved aside (what ``cairn fsck`` reports)."""
        return self.objects.quarantined()

    def verify_all(self) -> list[Digest]:
        """Read every stored object; the corrupt ones, quarantined now (a full read of
        the store: for ``cairn fsck``, not for requests)."""
        return self.objects.verify()

    def sweep(self, grace: float) -> list[str]:
        """Remove the temp files of writes abandoned ``grace`` seconds ago or more."""
        return self.objects.sweep(grace)

    def verify(self, digest: str) -> ObjectInfo:
        """Read a whole object and check it; ``CorruptObject`` if its bytes lie (and the
        object is quarantined: missing until its bytes are stored again)."""
        digest = parse_digest(digest)
        size = 0
        with self.objects.open(digest) as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
        return ObjectInfo(digest, size)

    def compose(self, parts: Sequence[str], digest: str) -> ObjectInfo:
        """Store the concatenation of stored objects as the object ``digest``.

        Each part is verified as it is read and the result must hash to ``digest``
        (else ``InvalidArgument`` and nothing is stored). The parts stay stored.
        """
        if not parts:
            raise InvalidArgument("parts", "must list at least one object")
        self.access.require_uploader()
        wanted = parse_digest(digest)
        digests = [parse_digest(p, "parts") for p in parts]
        if self.objects.exists(wanted):
            size = self.objects.size(wanted)
            try:
                parts_size = sum(self.objects.size(part) for part in digests)
            except NotFound:
                parts_size = size  # parts gone: nothing to compare the copy with
            if size == parts_size:
                return ObjectInfo(wanted, size)
            # A copy whose size is not its parts' is damaged: composed again, over it.
        for part in digests:  # every part there before a byte is copied
            stored_size(self.objects, part)
        with self.objects.open_writer() as writer:
            for part in digests:
                with self.objects.open(part) as stream:
                    while chunk := stream.read(_CHUNK):
                        writer.write(chunk)
            return writer.commit(expected=wanted)

    def room_for(self, entity_id: str, incoming: int = 0, key: str | None = None) -> int | None:
        """Bytes an upload for the entity's project may still bring once ``incoming`` (what
        it says it brings) are taken (None: no ``project_quota_bytes``); ``QuotaExceeded``
        if they do not fit. With ``key``, the bytes of the artifact it replaces count as
        room. Checked before a byte is written; the record of the artifact checks again."""
        quota = self.settings.project_quota_bytes
        if quota is None:
            return None
        self._allow(entity_id, Role.WRITER)
        with self.metadata.read() as tx:
            self._require_kind(tx, entity_id)
            project_id = tx.artifacts.project_of(entity_id) or entity_id
            replaced = tx.artifacts.get(entity_id, key) if key is not None else None
            used = tx.artifacts.usage(project_id)
        freed = replaced.size if replaced is not None else 0
        return check_room(project_id, used - freed, quota, incoming)
