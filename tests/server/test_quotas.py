"""Quotas (issue 14): the largest object a server stores (413) and the bytes of artifacts a
project may hold (507 ``quota_exceeded``), refused before a byte is written.

The usage count (``project_storage``) moves in the transaction that records, replaces or
removes an artifact, on SQLite and PostgreSQL; over HTTP an upload names the entity it is
for, so the server refuses it from its declared length, or as its bytes arrive.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

import cairn
from cairn.core import frames
from cairn.core.digest import digest_bytes
from cairn.core.errors import CairnError, QuotaExceeded
from cairn.core.settings import Settings
from cairn.service import TrackingService, open_service
from cairn.store.metadata.schema import project_storage
from tests.servers import serve_in_thread

QUOTA = 1000
API = "/api/v1"
OCTETS = {"content-type": "application/octet-stream"}


# -- usage, in the store's transactions -------------------------------------------------------
@pytest.fixture
def service(tmp_path: Path, store_url: str) -> Iterator[TrackingService]:
    settings = Settings(home=str(tmp_path / "home"), store_uri=store_url, project_quota_bytes=QUOTA)
    opened = open_service(settings)
    try:
        yield opened
    finally:
        opened.close()


def usage(service: TrackingService, project_id: str) -> int:
    with service.context.metadata.read() as tx:
        return tx.artifacts.usage(project_id)


def stored_row(service: TrackingService, project_id: str) -> int | None:
    with service.context.metadata.read() as tx:
        query = select(project_storage.c.bytes).where(project_storage.c.project_id == project_id)
        found = tx.conn.execute(query).scalar()
        return None if found is None else int(found)


def test_usage_follows_records_replacements_and_removals(service: TrackingService) -> None:
    entities = service.entities
    project = entities.set_project("p")
    experiment = entities.set_experiment(project.id, "e")
    run = entities.create_run(experiment.id, "r")
    other = entities.set_project("other")
    artifacts = service.artifacts
    artifacts.log_artifact(run.id, "model", b"x" * 400)
    artifacts.log_artifact(experiment.id, "notes", b"n" * 100)
    artifacts.log_artifact(project.id, "readme", b"r" * 50)
    artifacts.log_artifact(other.id, "elsewhere", b"o" * 900)
    assert usage(service, project.id) == stored_row(service, project.id) == 550
    assert usage(service, other.id) == 900
    artifacts.log_artifact(run.id, "model", b"y" * 100)  # replaced, smaller
    assert usage(service, project.id) == 250
    artifacts.log_artifact(run.id, "model", b"z" * 100)  # replaced, same size
    assert usage(service, project.id) == 250
    entities.delete_run(run.id)  # a soft delete keeps its artifacts' bytes counted
    assert usage(service, project.id) == 250
    with service.context.metadata.write() as tx:
        assert tx.artifacts.remove(experiment.id, "notes")
        assert not tx.artifacts.remove(experiment.id, "notes")
    assert usage(service, project.id) == stored_row(service, project.id) == 150


def test_an_artifact_past_the_quota_is_refused_and_nothing_changes(
    service: TrackingService,
) -> None:
    project = service.entities.set_project("p")
    run = service.entities.create_run(service.entities.set_experiment(project.id, "e").id, "r")
    service.artifacts.log_artifact(run.id, "a", b"a" * 600)
    with pytest.raises(QuotaExceeded) as raised:
        service.artifacts.log_artifact(run.id, "b", b"b" * 401)
    assert raised.value.details == {
        "project_id": project.id,
        "quota": QUOTA,
        "used": 600,
        "incoming": 401,
    }
    assert "CAIRN_PROJECT_QUOTA_BYTES" in raised.value.message
    # Refused before its bytes were stored (the embedded store knows the size of bytes).
    assert not service.objects.exists(digest_bytes(b"b" * 401))
    service.artifacts.log_artifact(run.id, "b", b"b" * 400)  # exactly full
    assert usage(service, project.id) == QUOTA
    # The record checks too: an object already stored, named past the quota.
    digest = service.context.objects.put_bytes(b"c" * 10).digest
    with pytest.raises(QuotaExceeded):
        service.artifacts.record_artifact(run.id, "c", "file", digest)
    # A replacement that grows is refused; one that shrinks is taken.
    with pytest.raises(QuotaExceeded):
        service.artifacts.log_artifact(run.id, "a", b"a" * 601)
    assert [a.size for a in service.artifacts.list_artifacts(run.id)] == [600, 400]
    service.artifacts.log_artifact(run.id, "a", b"a" * 500)
    assert usage(service, project.id) == 900
    # A folder's size is known only once stored: its record refuses it.
    with pytest.raises(QuotaExceeded):
        service.artifacts.log_artifact(run.id, "tree", _folder(service, {"f": b"t" * 200}))
    assert usage(service, project.id) == 900


def _folder(service: TrackingService, files: dict[str, bytes]) -> Path:
    root = Path(service.settings.home) / "folder"
    root.mkdir(exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def test_a_store_without_usage_rows_counts_them_from_its_artifacts(
    service: TrackingService,
) -> None:
    """Artifacts recorded before usage was kept (a store migrated to 0006): the project's
    row is made from its artifacts the first time it is needed, then kept."""
    project = service.entities.set_project("p")
    experiment = service.entities.set_experiment(project.id, "e")
    run = service.entities.create_run(experiment.id, "r")
    service.artifacts.log_artifact(run.id, "a", b"a" * 300)
    service.artifacts.log_artifact(experiment.id, "b", b"b" * 200)
    with service.context.metadata.write() as tx:
        tx.conn.execute(delete(project_storage))
    assert stored_row(service, project.id) is None
    assert usage(service, project.id) == 500  # counted, not kept by a read
    assert stored_row(service, project.id) is None
    with pytest.raises(QuotaExceeded):
        service.artifacts.log_artifact(run.id, "c", b"c" * 501)
    service.artifacts.log_artifact(run.id, "c", b"c" * 500)
    assert stored_row(service, project.id) == QUOTA


# -- over HTTP: a real server ------------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "server"
    settings = Settings(home=str(home), max_upload_bytes=4096, project_quota_bytes=QUOTA * 10)
    with serve_in_thread(settings) as url:
        yield url, home


def object_files(home: Path) -> list[Path]:
    root = home / "objects"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def call(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=url + API, timeout=30) as http:
        return http.request(method, path, **kwargs)


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()["error"]
    assert found["code"] == code
    return found


def chunked(data: bytes, piece: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


@pytest.fixture
def run_id(server: tuple[str, Path]) -> str:
    """A running run (made over REST: a client's exit would end it)."""
    url, _ = server
    project = call(url, "POST", "/projects", json={"name": "p"}).json()
    experiment = call(url, "POST", f"/projects/{project['id']}/experiments", json={"name": "e"})
    run = call(url, "POST", f"/experiments/{experiment.json()['id']}/runs", json={})
    return str(run.json()["id"])


def test_an_upload_over_the_limit_is_refused_before_a_byte_is_written(
    server: tuple[str, Path],
) -> None:
    url, home = server
    big = os.urandom(4097)
    for method, path in (("PUT", f"/objects/{digest_bytes(big)}"), ("POST", "/objects")):
        found = error(
            call(url, method, path, content=big, headers=OCTETS), 413, "payload_too_large"
        )
        assert found["details"] == {"field": "body", "limit": 4096}
        assert "CAIRN_MAX_UPLOAD_BYTES" in found["message"]
        # Without a length (chunked), counted as it arrives.
        streamed = call(url, method, path, content=chunked(big), headers=OCTETS)
        error(streamed, 413, "payload_too_large")
    assert object_files(home) == []
    fits = os.urandom(4096)
    assert call(url, "POST", "/objects", content=fits, headers=OCTETS).status_code == 201


def test_a_composition_over_the_limit_is_refused(server: tuple[str, Path]) -> None:
    url, home = server
    parts = [os.urandom(3000), os.urandom(3000)]
    digests = [
        call(url, "POST", "/objects", content=p, headers=OCTETS).json()["digest"] for p in parts
    ]
    body = {"parts": digests, "digest": digest_bytes(b"".join(parts))}
    found = error(call(url, "POST", "/objects/compose", json=body), 413, "payload_too_large")
    assert "6000" in found["message"]
    assert call(url, "HEAD", f"/objects/{body['digest']}").status_code == 404
    assert len(object_files(home)) == 2


def test_an_upload_for_a_full_project_is_refused_before_a_byte_is_written(
    server: tuple[str, Path], run_id: str
) -> None:
    url, home = server
    with cairn.Client(url) as client:
        run = client.get_run(run_id)
        project_id = run.info.project_id
        for i in range(3):
            run.log_artifact(f"part{i}", os.urandom(3000))
        before = object_files(home)
        data = os.urandom(1001)
        with pytest.raises(QuotaExceeded) as raised:
            run.log_artifact("over", data)  # PUT /objects with the run's id: 507 up front
        assert raised.value.details["used"] == 9000
        assert raised.value.details["incoming"] == 1001
        assert object_files(home) == before
        run.log_artifact("last", os.urandom(1000))  # exactly full
        with pytest.raises(QuotaExceeded):
            run.log_artifact("part0", os.urandom(3001))  # a replacement that grows
        run.log_artifact("part0", b"")  # one that shrinks frees room
        run.log_artifact("again", os.urandom(3000))
        # Full now: a new version of a key needs room only for what it adds.
        run.log_artifact("again", os.urandom(3000))
        assert sorted(a.size for a in run.list_artifacts()) == [0, 1000, 3000, 3000, 3000]
    for content in (data, chunked(data, 300)):
        response = call(
            url, "POST", "/objects", content=content, headers=OCTETS, params={"entity": run_id}
        )
        found = error(response, 507, "quota_exceeded")
        assert found["details"]["project_id"] == project_id
    assert call(url, "HEAD", f"/objects/{digest_bytes(data)}").status_code == 404


def test_a_batch_for_a_full_project_is_refused_before_a_byte_is_written(
    server: tuple[str, Path], run_id: str
) -> None:
    url, home = server
    objects = [os.urandom(4000) for _ in range(10)]  # 40,000 bytes: past the 10,000 quota
    body = frames.encode([(digest_bytes(data), data) for data in objects])
    refused = call(
        url, "POST", "/objects/batch", content=body, headers=OCTETS, params={"entity": run_id}
    )
    assert error(refused, 507, "quota_exceeded")["details"]["incoming"] == 40_000
    assert object_files(home) == []
    fits = frames.encode([(digest_bytes(data), data) for data in objects[:2]])
    stored = call(
        url, "POST", "/objects/batch", content=fits, headers=OCTETS, params={"entity": run_id}
    )
    assert stored.status_code == 201, stored.text
    assert len(object_files(home)) == 2


def test_an_artifact_record_past_the_quota_is_refused(
    server: tuple[str, Path], run_id: str
) -> None:
    """An upload that names no entity is bounded by the upload limit alone; the record
    that would make its bytes an artifact checks the quota."""
    url, _ = server
    digests = []
    for _ in range(4):
        blob = os.urandom(3000)
        digests.append(call(url, "POST", "/objects", content=blob, headers=OCTETS).json()["digest"])
    for i, digest in enumerate(digests[:3]):
        body = {"key": f"k{i}", "kind": "file", "digest": digest}
        assert call(url, "POST", f"/entities/{run_id}/artifacts", json=body).status_code == 200
    body = {"key": "k3", "kind": "file", "digest": digests[3]}
    found = error(
        call(url, "POST", f"/entities/{run_id}/artifacts", json=body), 507, "quota_exceeded"
    )
    assert found["details"]["used"] == 9000
    listed = call(url, "GET", f"/entities/{run_id}/artifacts").json()
    assert [a["key"] for a in listed] == ["k0", "k1", "k2"]


def test_an_upload_naming_an_unknown_entity_is_refused(server: tuple[str, Path]) -> None:
    url, home = server
    unknown = {"entity": "01a24c29-0000-7000-8000-000000000000"}
    error(
        call(url, "POST", "/objects", content=b"x", headers=OCTETS, params=unknown),
        404,
        "not_found",
    )
    malformed = {"entity": "not-an-id"}
    response = call(url, "POST", "/objects", content=b"x", headers=OCTETS, params=malformed)
    assert error(response, 400, "invalid_argument")["details"]["field"] == "entity"
    assert object_files(home) == []


def test_without_settings_nothing_is_bounded(tmp_path: Path) -> None:
    with serve_in_thread(Settings(home=str(tmp_path / "h"))) as url:
        response = call(url, "POST", "/objects", content=os.urandom(100_000), headers=OCTETS)
        assert response.status_code == 201
        unknown = {"entity": "01a24c29-0000-7000-8000-000000000000", "key": "k"}
        response = call(url, "POST", "/objects", content=b"x", headers=OCTETS, params=unknown)
        assert response.status_code == 201


def test_the_client_sees_a_413_as_an_error_naming_the_limit(
    server: tuple[str, Path], run_id: str
) -> None:
    url, _ = server
    with cairn.Client(url) as client, pytest.raises(CairnError, match="CAIRN_MAX_UPLOAD_BYTES"):
        client.get_run(run_id).log_artifact("big", os.urandom(5000))
