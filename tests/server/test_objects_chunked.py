"""Big files recorded from chunks through a real server (POST /objects/chunked): the
chunks go up as any small objects do, the server checks them joined against the file's
digest before it records anything, and the file then reads back like any object."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cairn.core import frames
from cairn.core.digest import digest_bytes
from cairn.core.settings import Settings
from cairn.service import open_service
from cairn.service.chunks import MAX_CHUNKS
from tests.servers import serve_in_thread

OCTETS = {"content-type": "application/octet-stream"}
KiB, MiB = 1 << 10, 1 << 20


class Api:
    def __init__(self, url: str, home: Path, token: str | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=f"{url}/api/v1", timeout=60.0, headers=headers)
        self.home = home

    def send(self, *parts: bytes) -> httpx.Response:
        body = frames.encode([(digest_bytes(part), part) for part in parts])
        return self.http.post("/objects/batch", content=body, headers=OCTETS)

    def record(
        self, digest: str, size: int, chunks: list[list[object]], **params: str
    ) -> httpx.Response:
        body = {"digest": digest, "size": size, "chunks": chunks}
        return self.http.post("/objects/chunked", json=body, params=params)

    def recipes(self) -> list[Path]:
        root = self.home / "objects" / "recipes"
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    home = tmp_path / "home"
    with serve_in_thread(Settings(home=str(home))) as url:
        api = Api(url, home)
        yield api
        api.http.close()


def split(data: bytes, *cuts: int) -> list[bytes]:
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def listed(parts: list[bytes]) -> list[list[object]]:
    return [[digest_bytes(part), len(part)] for part in parts]


def test_the_settings_say_how_the_store_cuts(api: Api, tmp_path: Path) -> None:
    assert api.http.get("/objects/chunked/settings").json() == {
        "chunk_size": 256 * KiB,
        "threshold": 4 * MiB,
    }
    whole = Settings(home=str(tmp_path / "whole"), chunk_size=0)
    with serve_in_thread(whole) as url:
        said = httpx.get(f"{url}/api/v1/objects/chunked/settings").json()
    assert said == {"chunk_size": 0, "threshold": 0}


def test_a_file_recorded_from_its_chunks_reads_back_whole(api: Api) -> None:
    data = os.urandom(5 * MiB + 7)
    parts = split(data, 1 * MiB, 3 * MiB)
    assert api.send(*parts).status_code == 201
    digest = digest_bytes(data)
    answer = api.record(digest, len(data), listed(parts))
    assert answer.status_code == 201
    assert answer.json() == {"digest": digest, "size": len(data)}
    assert api.http.head(f"/objects/{digest}").headers["content-length"] == str(len(data))
    assert api.http.get(f"/objects/{digest}").content == data
    recipe = api.http.get(f"/objects/{digest}/recipe").json()
    assert recipe == {"digest": digest, "size": len(data), "chunks": listed(parts)}
    assert api.record(digest, len(data), listed(parts)).status_code == 201  # again: the same
    # A chunk is an object stored whole; an object not stored has no recipe.
    first = api.http.get(f"/objects/{digest_bytes(parts[0])}/recipe").json()
    assert first == {"digest": digest_bytes(parts[0]), "size": MiB, "chunks": None}
    assert api.http.get(f"/objects/{digest_bytes(b'absent')}/recipe").status_code == 404


def test_a_missing_chunk_is_named_and_nothing_is_recorded(api: Api) -> None:
    data = os.urandom(2 * MiB)
    parts = split(data, 100_000, 1_500_000)
    assert api.send(parts[0], parts[2]).status_code == 201
    answer = api.record(digest_bytes(data), len(data), listed(parts))
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "not_found"
    assert error["details"] == {"digest": digest_bytes(parts[1]), "field": "chunks[1]"}
    assert api.http.head(f"/objects/{digest_bytes(data)}").status_code == 404
    assert api.recipes() == []


def test_chunks_that_do_not_make_the_file_are_refused(api: Api) -> None:
    data = os.urandom(MiB)
    parts = split(data, 300_000)
    assert api.send(*parts).status_code == 201
    digest = digest_bytes(data)
    # Another file's digest: the joined bytes hash otherwise.
    other = api.record(digest_bytes(b"another file"), len(data), listed(parts))
    assert other.status_code == 400
    assert other.json()["error"]["details"]["field"] == "digest"
    # Out of order: the same bytes, not the same file.
    swapped = api.record(digest, len(data), listed(parts[::-1]))
    assert swapped.status_code == 400
    # Sizes that do not add up to the file's, or not a chunk's own.
    short = api.record(digest, len(data) + 1, listed(parts))
    assert short.status_code == 400
    assert short.json()["error"]["details"]["field"] == "size"
    lying = [[digest_bytes(parts[0]), 300_001], [digest_bytes(parts[1]), len(parts[1]) - 1]]
    answer = api.record(digest, len(data), lying)
    assert answer.status_code == 400
    assert answer.json()["error"]["details"]["field"] == "chunks[0].size"
    assert api.http.head(f"/objects/{digest}").status_code == 404
    assert api.recipes() == []


@pytest.mark.parametrize(
    "body",
    [
        {"digest": "0" * 64, "size": 0, "chunks": []},
        {"digest": "../etc", "size": 1, "chunks": [["0" * 64, 1]]},
        {"digest": "0" * 64, "size": 1, "chunks": [["0" * 64, 0]]},
        {"digest": "0" * 64, "size": 1, "chunks": [["0" * 64]]},
        {"digest": "0" * 64, "size": 1, "chunks": [["0" * 64, 1]], "extra": True},
    ],
)
def test_a_malformed_body_is_a_400(api: Api, body: dict[str, object]) -> None:
    answer = api.http.post("/objects/chunked", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_argument"


def test_a_chunk_list_is_bounded(api: Api) -> None:
    chunk = [digest_bytes(b"c"), 1]
    many = api.record("0" * 64, MAX_CHUNKS + 1, [chunk] * (MAX_CHUNKS + 1))
    assert many.status_code == 400
    assert "chunks" in many.json()["error"]["message"]
    padding = json.dumps({"digest": "0" * 64, "size": 1, "chunks": [chunk]}).encode()
    huge = padding[:-1] + b" " * (MAX_CHUNKS * 100) + b"}"
    refused = api.http.post(
        "/objects/chunked", content=huge, headers={"content-type": "application/json"}
    )
    assert refused.status_code == 413


def test_a_store_that_keeps_files_whole_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve_in_thread(Settings(home=str(home), chunk_size=0)) as url:
        api = Api(url, home)
        data = os.urandom(100_000)
        parts = split(data, 40_000)
        assert api.send(*parts).status_code == 201
        answer = api.record(digest_bytes(data), len(data), listed(parts))
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "conflict"
        assert "whole" in answer.json()["error"]["message"]
        api.http.close()


def test_the_upload_limit_and_the_quota_hold(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=str(home), max_upload_bytes=MiB, project_quota_bytes=5 * MiB // 2)
    service = open_service(settings)
    try:
        project = service.entities.set_project("p")
        run = service.entities.create_run(service.entities.set_experiment(project.id, "e").id)
    finally:
        service.close()
    with serve_in_thread(settings) as url:
        api = Api(url, home)
        data = os.urandom(4 * MiB)
        parts = split(data, MiB, 2 * MiB, 3 * MiB)  # each within the upload limit
        assert api.send(*parts).status_code == 201
        big = api.record(digest_bytes(data), len(data), listed(parts))
        assert big.status_code == 413  # the file is no way around the limit
        small = os.urandom(MiB)
        halves = split(small, MiB // 2)
        assert api.send(*halves).status_code == 201
        digest = digest_bytes(small)
        fits = api.record(digest, MiB, listed(halves), entity=run.id, key="model")
        assert fits.status_code == 201
        api.http.post(
            f"/entities/{run.id}/artifacts", json={"key": "a", "kind": "file", "digest": digest}
        ).raise_for_status()
        api.http.post(
            f"/entities/{run.id}/artifacts", json={"key": "b", "kind": "file", "digest": digest}
        ).raise_for_status()
        full = api.record(digest, MiB, listed(halves), entity=run.id, key="c")
        assert full.status_code == 507
        assert full.json()["error"]["code"] == "quota_exceeded"
        api.http.close()


def test_recording_chunks_needs_a_writer_of_some_project(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=str(home), auth=True)
    service = open_service(settings)
    try:
        service.auth.create_user("writer")
        service.auth.create_user("nobody")
        project = service.entities.set_project("p")
        service.roles.grant_role(project.id, "writer", "writer")
        tokens = {
            name: service.auth.create_token(f"{name}-token", user=name).secret
            for name in ("writer", "nobody")
        }
    finally:
        service.close()
    data = os.urandom(100_000)
    parts = split(data, 60_000)
    with serve_in_thread(settings) as url:
        anonymous = Api(url, home)
        assert anonymous.http.get("/objects/chunked/settings").status_code == 401
        assert anonymous.record(digest_bytes(data), len(data), listed(parts)).status_code == 401
        writer, nobody = Api(url, home, tokens["writer"]), Api(url, home, tokens["nobody"])
        assert writer.send(*parts).status_code == 201
        refused = nobody.record(digest_bytes(data), len(data), listed(parts))
        assert refused.status_code == 403
        assert "writes to no project" in refused.json()["error"]["message"]
        assert nobody.http.get("/objects/chunked/settings").status_code == 200
        assert writer.record(digest_bytes(data), len(data), listed(parts)).status_code == 201
        recipe = nobody.http.get(f"/objects/{digest_bytes(data)}/recipe")
        assert recipe.status_code == 200  # reads by digest, as GET /objects/{digest}
        for api in (anonymous, writer, nobody):
            api.http.close()
