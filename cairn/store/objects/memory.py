"""Objects in a dict: for tests, with the same semantics as the real stores."""

from __future__ import annotations

import io
import os
import threading
from types import TracebackType
from typing import BinaryIO, Self

from cairn.core.digest import Digest, digest_bytes, parse_digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.store.objects.local import write_file_atomically
from cairn.store.objects.port import ObjectInfo, VerifyingReader

__all__ = ["MemoryObjectStore"]

_CHUNK = 1 << 20


class MemoryObjectStore:
    """Objects kept in memory. ``copy_to_file`` still writes a real file, atomically."""

    def __init__(self) -> None:
        # Tests may poke this dict to simulate corruption.
        self._objects: dict[Digest, bytes] = {}
        self._lock = threading.Lock()

    def put_stream(self, src: BinaryIO) -> ObjectInfo:
        chunks: list[bytes] = []
        while chunk := src.read(_CHUNK):
            if not isinstance(chunk, bytes):
                raise InvalidArgument("src", "must be a binary stream (read() returned no bytes)")
            chunks.append(chunk)
        return self.put_bytes(b"".join(chunks))

    def put_bytes(self, data: bytes) -> ObjectInfo:
        data = bytes(data)  # a private, immutable copy (a no-op for bytes)
        digest = digest_bytes(data)
        with self._lock:
            self._objects.setdefault(digest, data)
        return ObjectInfo(digest, len(data))

    def put_file(self, path: str | os.PathLike[str]) -> ObjectInfo:
        try:
            with open(path, "rb") as src:
                return self.put_stream(src)
        except FileNotFoundError:
            raise NotFound(f"no file at {os.fspath(path)!r}", path=os.fspath(path)) from None
        except IsADirectoryError:
            raise InvalidArgument("path", f"{os.fspath(path)!r} is a folder, not a file") from None

    def open(self, digest: Digest) -> BinaryIO:
        return io.BufferedReader(self._reader(digest))

    def exists(self, digest: Digest) -> bool:
        return parse_digest(digest) in self._objects

    def size(self, digest: Digest) -> int:
        return len(self._get(digest))

    def copy_to_file(self, digest: Digest, dest: str | os.PathLike[str]) -> int:
        with self._reader(digest) as reader:
            return write_file_atomically(reader.readinto, dest)

    def delete(self, digest: Digest) -> None:
        digest = parse_digest(digest)
        with self._lock:
            self._objects.pop(digest, None)

    def close(self) -> None:
        """Nothing to release; the objects stay readable."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _get(self, digest: Digest) -> bytes:
        digest = parse_digest(digest)
        try:
            return self._objects[digest]
        except KeyError:
            raise NotFound(f"no object {digest}", digest=digest) from None

    def _reader(self, digest: Digest) -> VerifyingReader:
        data = self._get(digest)
        return VerifyingReader(io.BytesIO(data), parse_digest(digest), len(data))
