"""Big files through a server go up as the chunks it lacks (cairn/client/_http_chunks.py):
a real server on loopback, a real proxy in front of it counting every byte the client
sends, and the server's object folder as it grows."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.client import _http_chunks
from cairn.client._http_artifacts import _StreamSource
from cairn.core.digest import Digest
from cairn.core.settings import Settings
from cairn.files.chunking import Chunker
from cairn.versioning import Path as DataPath
from tests.proxy import DroppingProxy
from tests.servers import serve_in_thread

KiB, MiB = 1 << 10, 1 << 20
SIZE = 24 * MiB


def noise(size: int, seed: int = 16) -> bytes:
    """Random bytes, the same on every run (so the same chunks, and the same counts)."""
    return random.Random(seed).randbytes(size)


class Served:
    """A server, a counting proxy in front of it, and a client through the proxy."""

    def __init__(self, url: str, home: Path) -> None:
        self.home = home
        self.proxy = DroppingProxy(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        settings = Settings(url=self.proxy.url, retry_timeout=5.0, request_timeout=60.0)
        self.client = cairn.Client(settings=settings)
        self.client.set_project("p")
        self.client.set_experiment("e")
        self.run = self.client.start_run("r", capture="none")

    def sent(self) -> int:
        """Body bytes the client has sent so far."""
        return sum(int(seen.headers.get("content-length", 0)) for seen in self.proxy.seen)

    def paths(self) -> list[str]:
        return [f"{seen.method} {seen.path.removeprefix('/api/v1')}" for seen in self.proxy.seen]

    def stored(self) -> int:
        return sum(p.stat().st_size for p in (self.home / "objects").rglob("*") if p.is_file())

    def close(self) -> None:
        self.client.close()
        self.proxy.close()


def served(tmp_path: Path, **settings: Any) -> Iterator[Served]:
    home = tmp_path / "server-home"
    with serve_in_thread(Settings(home=str(home), **settings)) as url:
        made = Served(url, home)
        try:
            yield made
        finally:
            made.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    yield from served(tmp_path)


def log_counting(server: Served, key: str, path: Path) -> tuple[int, list[str]]:
    """Log ``path`` as ``key``: the bytes sent, and the requests made."""
    before, seen = server.sent(), len(server.proxy.seen)
    server.run.log_artifact(key, path)
    return server.sent() - before, server.paths()[seen:]


def test_a_file_logged_again_sends_the_chunks_that_changed(server: Served, tmp_path: Path) -> None:
    data = bytearray(noise(SIZE))
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    sent, requests = log_counting(server, "model", src)
    assert SIZE <= sent < SIZE + 64 * KiB
    assert "POST /objects" in requests  # a new file: whole, hashed while it is sent
    assert "POST /objects/chunked" not in requests

    data[SIZE // 2 : SIZE // 2 + MiB] = noise(MiB, 1)  # 1 MiB overwritten
    src.write_bytes(data)
    grown = server.stored()
    sent, requests = log_counting(server, "model", src)
    assert sent <= 2 * MiB + 64 * KiB, sent
    assert "POST /objects/chunked" in requests
    assert requests.count("POST /objects/missing") == 2  # the first chunks, then all
    assert server.stored() - grown <= 2 * MiB + 16 * KiB

    data[:0] = b"!"  # one byte inserted at the start
    src.write_bytes(data)
    sent, _ = log_counting(server, "model", src)
    assert sent <= MiB + 64 * KiB, sent

    sent, requests = log_counting(server, "copy", src)  # unchanged: nothing but questions
    assert sent < 64 * KiB
    assert not any(r.startswith(("POST /objects/batch", "PUT")) for r in requests)

    out = server.run.download_artifact("model", tmp_path / "out.bin")
    assert out.read_bytes() == bytes(data)


def test_progress_counts_every_byte_once(server: Served, tmp_path: Path) -> None:
    data = bytearray(noise(8 * MiB))
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    server.run.log_artifact("weights", src)
    data[100:200] = noise(100, 1)
    src.write_bytes(data)
    told: list[int] = []
    server.run.log_artifact("weights", src, progress=told.append)
    assert sum(told) == len(data)
    assert "POST /objects/chunked" in server.paths()


def test_a_stream_goes_up_as_chunks_too(server: Served, tmp_path: Path) -> None:
    data = bytearray(noise(6 * MiB))
    server.run.log_artifact("stream", io.BytesIO(bytes(data)))
    data[-10:] = b"0123456789"
    before = server.sent()
    server.run.log_artifact("stream", io.BytesIO(bytes(data)))
    assert server.sent() - before < 2 * MiB
    out = server.run.download_artifact("stream", tmp_path / "stream.bin")
    assert out.read_bytes() == bytes(data)


def test_a_server_that_keeps_files_whole_gets_them_whole(tmp_path: Path) -> None:
    for server in served(tmp_path, chunk_size=0):
        data = bytearray(noise(6 * MiB))
        src = tmp_path / "model.bin"
        src.write_bytes(data)
        server.run.log_artifact("model", src)
        data[:10] = b"0123456789"
        src.write_bytes(data)
        sent, requests = log_counting(server, "model", src)
        assert sent >= len(data)
        assert "POST /objects/chunked" not in requests
        assert "GET /objects/chunked/settings" not in requests  # asked once per client
        assert server.run.download_artifact("model", tmp_path / "o.bin").read_bytes() == data


def test_a_dataset_file_captured_again_sends_its_changed_chunks(
    server: Served, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    data = bytearray(noise(12 * MiB))
    (folder / "table.parquet").write_bytes(data)
    dataset = server.client.set_dataset("churn")
    dataset.create_version(DataPath(str(folder) + "/", capture=True))
    data[5 * MiB : 5 * MiB + 4096] = noise(4096, 1)
    (folder / "table.parquet").write_bytes(data)
    before = server.sent()
    second = dataset.create_version(DataPath(str(folder) + "/", capture=True))
    assert server.sent() - before < 2 * MiB
    restored = tmp_path / "restored"
    second.checkout(restored)
    assert (restored / "table.parquet").read_bytes() == bytes(data)


# -- the cut is the server's --------------------------------------------------------------
def reference(data: bytes, average: int) -> tuple[list[tuple[int, int, Digest]], Digest]:
    """The server's chunker, fed in uneven pieces."""
    chunker = Chunker(average)
    chunks = []
    for start in range(0, len(data), 777_777):
        chunks += chunker.feed(data[start : start + 777_777])
    chunks += chunker.finish()
    out: list[tuple[int, int, Digest]] = []
    offset = 0
    for chunk in chunks:
        out.append((offset, len(chunk.data), chunk.digest))
        offset += len(chunk.data)
    return out, chunker.digest


@pytest.mark.parametrize("average", [1 * KiB, 16 * KiB, 256 * KiB])
@pytest.mark.parametrize("size", [0, 1, 5000, 3 * MiB + 12_345])
def test_the_client_cuts_as_the_server_does(
    average: int, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = noise(size)
    expected, digest = reference(data, average)
    for window in (MiB, 16 * MiB):  # files cut in several windows, and in one
        monkeypatch.setattr(_http_chunks, "_READ", window)
        cut = _http_chunks._cut(
            _http_chunks.Chunking(average, 1), _StreamSource(io.BytesIO(data), 0), size
        )
        assert list(cut.chunks) == expected
        assert cut.digest == digest
