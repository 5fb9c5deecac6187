"""The batch object routes through a real server: which digests it lacks, framed uploads
checked object by object before anything is stored, framed downloads verified."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from cairn.core import frames
from cairn.core.digest import Digest, digest_bytes
from cairn.core.settings import Settings
from cairn.server.routes import objects_batch
from tests.servers import serve_in_thread

OCTETS = {"content-type": "application/octet-stream"}


class Batches:
    def __init__(self, url: str, home: Path) -> None:
        self.http = httpx.Client(base_url=f"{url}/api/v1", timeout=60.0)
        self.home = home

    def stored(self) -> set[str]:
        root = self.home / "objects" / "objects"
        if not root.exists():
            return set()
        return {p.parent.name + p.name for p in root.rglob("*") if p.is_file()}

    def temp_files(self) -> list[Path]:
        root = self.home / "objects" / "tmp"
        return list(root.iterdir()) if root.exists() else []

    def send(self, body: bytes) -> httpx.Response:
        return self.http.post("/objects/batch", content=body, headers=OCTETS)

    def missing(self, digests: Sequence[str]) -> httpx.Response:
        return self.http.post("/objects/missing", json={"digests": list(digests)})

    def read(self, digests: Sequence[str]) -> httpx.Response:
        return self.http.post("/objects/batch/read", json={"digests": list(digests)})


@pytest.fixture
def batches(tmp_path: Path) -> Iterator[Batches]:
    home = tmp_path / "server-home"
    with serve_in_thread(Settings(home=str(home))) as url:
        batches = Batches(url, home)
        yield batches
        batches.http.close()


def framed(items: list[bytes]) -> bytes:
    return frames.encode([(digest_bytes(item), item) for item in items])


def test_missing_names_what_the_server_lacks_in_order(batches: Batches) -> None:
    have = os.urandom(100)
    assert batches.send(framed([have])).status_code == 201
    a, b = digest_bytes(b"a"), digest_bytes(b"b")
    answer = batches.missing([b, digest_bytes(have), a, b])
    assert answer.status_code == 200
    assert answer.json() == {"missing": [b, a]}
    assert batches.missing([]).json() == {"missing": []}


def test_missing_refuses_a_malformed_digest_and_too_many(batches: Batches) -> None:
    bad = batches.missing(["../etc"])
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_argument"
    assert (
        batches.http.post(
            "/objects/missing", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    many = [digest_bytes(str(i).encode()) for i in range(objects_batch.MAX_DIGESTS + 1)]
    assert batches.missing(many).status_code in (400, 413)


def test_a_batch_is_stored_and_read_back(batches: Batches) -> None:
    items = [os.urandom(n) for n in (0, 1, 4096, 200_000)] + [b"twice", b"twice"]
    answer = batches.send(framed(items))
    assert answer.status_code == 201
    assert answer.json() == {"count": 6, "stored": 5, "bytes": sum(map(len, items))}
    digests = [digest_bytes(item) for item in items]
    assert batches.stored() == set(digests)
    assert batches.send(framed(items)).json()["stored"] == 0  # all there already
    back = batches.read(digests)
    assert back.status_code == 200
    assert back.headers["content-type"] == "application/octet-stream"
    got = frames.decode(back.content)
    assert [d for d, _ in got] == list(dict.fromkeys(digests))  # each once, in order
    assert [bytes(b) for _, b in got] == list(dict.fromkeys(items))
    one = httpx.get(f"{batches.http.base_url}objects/{digests[3]}")
    assert one.content == items[3]


def test_a_bad_digest_refuses_the_whole_batch(batches: Batches) -> None:
    good = [os.urandom(1000) for _ in range(5)]
    body = frames.encode(
        [(digest_bytes(item), item) for item in good[:3]]
        + [(digest_bytes(b"what it claims"), b"what it holds")]
        + [(digest_bytes(item), item) for item in good[3:]]
    )
    answer = batches.send(body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_argument"
    assert "object 3" in error["message"] and "nothing of the batch" in error["message"]
    assert batches.stored() == set()  # not even the good ones before it
    assert batches.temp_files() == []


@pytest.mark.parametrize("cut", [1, 20, 40, 41, 500])
def test_a_batch_cut_short_stores_nothing(batches: Batches, cut: int) -> None:
    body = framed([os.urandom(1000), os.urandom(1000)])
    answer = batches.send(body[:-cut])
    assert answer.status_code == 400
    assert answer.json()["error"]["details"]["field"] == "body"
    assert batches.stored() == set()


def test_an_oversize_batch_is_refused(batches: Batches, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames, "MAX_BATCH_BYTES", 64 * 1024)
    big = framed([os.urandom(40_000), os.urandom(40_000)])
    assert batches.send(big).status_code == 413
    assert batches.stored() == set()
    monkeypatch.setattr(frames, "MAX_BATCH_OBJECTS", 3)
    many = framed([b"1", b"2", b"3", b"4"])
    answer = batches.send(many)
    assert answer.status_code == 400
    assert "at most 3 objects" in answer.json()["error"]["message"]
    assert batches.stored() == set()


def test_a_batch_read_names_what_is_missing_or_corrupt(
    batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [os.urandom(3000), os.urandom(3000)]
    batches.send(framed(items))
    digests: list[Digest] = [digest_bytes(item) for item in items]
    absent = digest_bytes(b"never stored")
    answer = batches.read([digests[0], absent])
    assert answer.status_code == 404
    assert absent in answer.json()["error"]["message"]

    path = batches.home / "objects" / "objects" / digests[1][:2] / digests[1][2:]
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[7] ^= 0xFF
    path.write_bytes(bytes(data))
    answer = batches.read(digests)
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "corrupt_object"
    assert not path.exists()  # quarantined: missing until sent again
    assert batches.missing(digests).json() == {"missing": [digests[1]]}
    assert batches.read(digests).json()["error"]["code"] == "corrupt_object"
    batches.send(framed(items))  # the same bytes heal it
    assert batches.read(digests).status_code == 200

    monkeypatch.setattr(frames, "MAX_BATCH_BYTES", 5000)
    too_much = batches.read(digests)
    assert too_much.status_code == 400
    assert "ask for fewer" in too_much.json()["error"]["message"]


def test_every_batch_route_is_in_the_api_document(batches: Batches) -> None:
    paths = batches.http.get("/openapi.json").json()["paths"]
    for route in ("/objects/missing", "/objects/batch", "/objects/batch/read"):
        assert "post" in paths[f"/api/v1{route}"]


def test_a_batch_is_no_way_around_the_upload_limit(tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    with serve_in_thread(Settings(home=str(home), max_upload_bytes=1000)) as url:
        batches = Batches(url, home)
        answer = batches.send(framed([b"small", os.urandom(1001)]))
        assert answer.status_code == 413
        assert "CAIRN_MAX_UPLOAD_BYTES" in answer.json()["error"]["message"]
        assert batches.stored() == set()
        assert batches.send(framed([b"small", os.urandom(1000)])).status_code == 201
        batches.http.close()
