"""Corrupt objects heal (issue 12): a read that finds an object's bytes wrong moves it to
``quarantine/`` (the store then reports it missing, so the next upload stores it again),
and an upload of the right bytes for a stored digest replaces the damaged copy, over
every way bytes reach the store: the embedded client, ``PUT /objects/{digest}``,
``POST /objects`` and ``POST /objects/compose``.

Before: ``PUT`` answered "already stored", ``log_artifact`` succeeded and the object
stayed corrupt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import cairn
from cairn.core.api import API_PREFIX
from cairn.core.digest import digest_bytes
from cairn.core.settings import Settings
from tests.servers import serve_in_thread

OCTETS = {"Content-Type": "application/octet-stream"}  # a write of bytes says so


def object_path(objects: Path, digest: str) -> Path:
    return objects / "objects" / digest[:2] / digest[2:]


def damage(path: Path, *, truncate: bool = False) -> None:
    """Flip a byte in the middle (same size), or cut the last byte off."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    if truncate:
        del data[-1]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def quarantine(objects: Path) -> list[str]:
    folder = objects / "quarantine"
    return sorted(p.name.split(".")[0] for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Every object whole (these damage an object's file); chunked objects below."""
    home = tmp_path / "server-home"
    with serve_in_thread(Settings(home=str(home), chunk_size=0)) as url:
        yield f"{url}{API_PREFIX}", home / "objects"


def test_a_chunked_object_heals_over_http(tmp_path: Path) -> None:
    """A damaged chunk fails the read of its object, which then reads as missing, and an
    upload of the object's bytes stores the chunk again."""
    home = tmp_path / "server-home"
    settings = Settings(home=str(home), chunk_size=64 * 1024, chunk_min_file=1024 * 1024)
    data = os.urandom(9 * 1024 * 1024)
    digest = digest_bytes(data)
    recipe = home / "objects" / "recipes" / digest[:2] / digest[2:]
    with serve_in_thread(settings) as url:
        api = f"{url}{API_PREFIX}"
        assert httpx.post(f"{api}/objects", headers=OCTETS, content=data).status_code == 201
        assert recipe.exists()  # stored in chunks
        chunks = sorted((home / "objects" / "objects").rglob("*"))
        damage(next(p for p in chunks if p.is_file()))
        assert httpx.get(f"{api}/objects/{digest}/verify").status_code != 200
        assert httpx.head(f"{api}/objects/{digest}").status_code == 404  # missing now
        answer = httpx.post(f"{api}/objects", headers=OCTETS, content=data)
        assert answer.json() == {"digest": digest, "size": len(data)}
        assert httpx.get(f"{api}/objects/{digest}/verify").status_code == 200
        assert httpx.get(f"{api}/objects/{digest}").content == data


def test_the_embedded_client_heals_an_object_by_logging_the_same_bytes(
    tmp_path: Path,
) -> None:
    data = os.urandom(200_000)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    with cairn.Client(home=tmp_path / "home") as client:
        run = client.start_run()
        digest = run.log_artifact("model.bin", source).digest
        damage(object_path(tmp_path / "home" / "objects", digest))  # nothing has read it
        run.log_artifact("again.bin", source)  # stored anew, over the damaged copy
        assert run.open_artifact("model.bin").read() == data


@pytest.mark.parametrize("how", ["flipped", "truncated"])
def test_a_put_of_the_right_bytes_replaces_a_damaged_copy(
    served: tuple[str, Path], how: str
) -> None:
    api, objects = served
    data = os.urandom(3 * 1024 * 1024 + 7)
    digest = digest_bytes(data)
    assert httpx.put(f"{api}/objects/{digest}", headers=OCTETS, content=data).status_code == 201
    damage(object_path(objects, digest), truncate=how == "truncated")
    answer = httpx.put(f"{api}/objects/{digest}", headers=OCTETS, content=data)
    assert answer.status_code == 200, answer.text  # stored already: replaced all the same
    assert answer.json() == {"digest": digest, "size": len(data)}
    assert httpx.get(f"{api}/objects/{digest}/verify").status_code == 200
    assert httpx.get(f"{api}/objects/{digest}").content == data
    assert quarantine(objects) == []


def test_a_streamed_post_of_the_right_bytes_replaces_a_damaged_copy(
    served: tuple[str, Path],
) -> None:
    api, objects = served
    data = os.urandom(9 * 1024 * 1024)  # past the page-cached head: direct I/O on the server
    digest = httpx.post(f"{api}/objects", headers=OCTETS, content=data).json()["digest"]
    damage(object_path(objects, digest))

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    answer = httpx.post(f"{api}/objects", headers=OCTETS, content=pieces())
    assert answer.json() == {"digest": digest, "size": len(data)}
    assert httpx.get(f"{api}/objects/{digest}/verify").status_code == 200


def test_compose_redoes_a_whole_whose_size_is_not_its_parts(served: tuple[str, Path]) -> None:
    api, objects = served
    parts = [os.urandom(1024 * 1024) for _ in range(3)]
    whole = b"".join(parts)
    digests = [digest_bytes(p) for p in parts]
    for part, digest in zip(parts, digests, strict=True):
        httpx.put(f"{api}/objects/{digest}", headers=OCTETS, content=part).raise_for_status()
    body = {"parts": digests, "digest": digest_bytes(whole)}
    httpx.post(f"{api}/objects/compose", json=body).raise_for_status()
    damage(object_path(objects, digest_bytes(whole)), truncate=True)
    answer = httpx.post(f"{api}/objects/compose", json=body)
    assert answer.json() == {"digest": digest_bytes(whole), "size": len(whole)}
    assert httpx.get(f"{api}/objects/{digest_bytes(whole)}").content == whole


def test_a_read_over_http_quarantines_and_the_next_log_stores_it_again(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    api, objects = served
    data = os.urandom(500_000)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    url = api.removesuffix(API_PREFIX)
    with cairn.Client(settings=Settings(url=url, retry_timeout=5.0)) as client:
        run = client.start_run()
        digest = run.log_artifact("weights.bin", source).digest
        damage(object_path(objects, digest))
        with pytest.raises(cairn.CorruptObject):
            run.download_artifact("weights.bin", tmp_path / "out.bin")
        assert quarantine(objects) == [digest]
        assert httpx.head(f"{api}/objects/{digest}").status_code == 404  # missing now
        # Still read as damaged, not absent: the artifact names it.
        with pytest.raises(cairn.CorruptObject, match="moved them aside"):
            run.open_artifact("weights.bin").read()
        run.log_artifact("weights-again.bin", source)  # HEAD says missing: uploaded
        run.download_artifact("weights.bin", tmp_path / "out.bin")
        assert (tmp_path / "out.bin").read_bytes() == data


def test_an_http_log_of_the_same_bytes_heals_a_truncated_copy(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    """The client's HEAD before an upload compares sizes: a stored copy of another size
    is damaged, so the bytes are sent (and installed over it) instead of skipped."""
    api, objects = served
    data = os.urandom(300_000)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    url = api.removesuffix(API_PREFIX)
    with cairn.Client(settings=Settings(url=url, retry_timeout=5.0)) as client:
        run = client.start_run()
        digest = run.log_artifact("weights.bin", source).digest
        damage(object_path(objects, digest), truncate=True)
        run.log_artifact("weights-again.bin", source)
        assert object_path(objects, digest).read_bytes() == data
        assert quarantine(objects) == []
