"""``cairn gc`` and ``cairn fsck`` on an embedded store (SQLite and a local objects folder),
and on objects kept in S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn import Client
from cairn.core.digest import Digest
from cairn.core.settings import Settings
from cairn.store.objects import LocalObjectStore
from tests.cli.conftest import Invoke
from tests.store.s3_servers import S3Server, moto_server

__all__ = ["moto_server"]  # the session fixture, used here


def _fill(settings: Settings) -> tuple[Digest, Digest]:
    """A run with two artifacts (bytes); returns their objects."""
    with Client(settings=settings) as client, client.start_run("r") as run:
        kept = Digest(run.log_artifact("weights", b"the weights").digest)
        return kept, Digest(run.log_artifact("note", b"a note").digest)


def _object_path(home: Path, digest: str) -> Path:
    return home / "objects" / "objects" / digest[:2] / digest[2:]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_gc_dry_run_then_real_run(invoke: Invoke, home: Path) -> None:
    kept, _ = _fill(Settings(home=str(home), capture="none"))
    objects = LocalObjectStore(home / "objects")
    garbage = objects.put_bytes(b"garbage!").digest
    young = objects.put_bytes(b"just now").digest
    then = time.time() - 7200
    os.utime(_object_path(home, garbage), (then, then))

    dry = invoke("gc", "--dry-run", "--grace", "3600", "--home", home)
    assert dry.exit_code == 0, dry.output
    assert f"{garbage}  8\n" in dry.stdout
    assert "1 unreferenced but younger than 3600 s (kept); would delete 1 objects, 8 bytes" in (
        dry.stdout
    )
    assert objects.exists(garbage)

    real = invoke("gc", "--grace", "3600", "--home", home)
    assert real.exit_code == 0, real.output
    assert "deleted 1 objects, 8 bytes; swept 0 leftover temp files or uploads" in real.stdout
    assert not objects.exists(garbage)
    assert objects.exists(young) and objects.exists(kept)

    as_json = json.loads(invoke("gc", "--json", "--grace", "0", "--home", home).stdout)
    assert as_json["removed_digests"] == [young]
    assert as_json["dry_run"] is False


def test_gc_grace_comes_from_the_setting(
    invoke: Invoke, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(Settings(home=str(home), capture="none"))
    garbage = LocalObjectStore(home / "objects").put_bytes(b"garbage!").digest
    monkeypatch.setenv("CAIRN_GC_GRACE", "86400")
    assert "would delete 0 objects" in invoke("gc", "--dry-run", "--home", home).stdout
    monkeypatch.setenv("CAIRN_GC_GRACE", "0.000001")
    result = invoke("gc", "--dry-run", "--home", home)
    assert garbage in result.stdout


def test_fsck_exit_status_and_report(invoke: Invoke, home: Path) -> None:
    kept, other = _fill(Settings(home=str(home), capture="none"))
    fine = invoke("fsck", "--home", home)
    assert fine.exit_code == 0, fine.output
    assert "0 corrupt, 0 missing, 0 unreferenced" in fine.stdout

    path = _object_path(home, kept)
    path.chmod(0o644)
    path.write_bytes(b"the weightz")
    os.unlink(_object_path(home, other))
    bad = invoke("fsck", "--home", home)
    assert bad.exit_code == 1
    assert f"corrupt  {kept}  (moved to quarantine)" in bad.stdout
    assert f"missing  {other}  referenced by artifact 'note' of " in bad.stdout
    report = json.loads(invoke("fsck", "--json", "--home", home).stdout)
    assert report["ok"] is False
    assert {m["digest"] for m in report["missing"]} == {kept, other}  # kept: quarantined
    assert [q["digest"] for q in report["quarantined"]] == [kept]


def test_fsck_on_a_home_without_a_store_fails(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("fsck", "--home", tmp_path / "nothing")
    assert result.exit_code == 1
    assert "no Cairn store" in result.output


@pytest.fixture
def moto_bucket(moto_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    bucket = moto_server.new_bucket()
    try:
        yield bucket
    finally:
        moto_server.drop_bucket(bucket)


def test_gc_and_fsck_on_s3_objects(
    invoke: Invoke, home: Path, moto_server: S3Server, moto_bucket: str
) -> None:
    from cairn.store.objects.s3 import S3ObjectStore

    uri = f"s3://{moto_bucket}/cairn"
    settings = Settings(
        home=str(home), capture="none", objects_uri=uri, s3_endpoint_url=moto_server.endpoint
    )
    kept, _ = _fill(settings)
    objects = S3ObjectStore(moto_bucket, "cairn", endpoint_url=moto_server.endpoint)
    garbage = objects.put_bytes(b"garbage!").digest
    where = ("--home", home, "--objects-uri", uri)
    env = {"CAIRN_S3_ENDPOINT_URL": moto_server.endpoint}

    assert garbage not in invoke("gc", "--dry-run", *where, env=env).stdout  # young
    time.sleep(1.1)  # S3 keeps whole seconds
    result = invoke("gc", "--grace", "0", *where, env=env)
    assert result.exit_code == 0, result.output
    assert "deleted 1 objects, 8 bytes" in result.stdout
    assert not objects.exists(garbage) and objects.exists(kept)
    fine = invoke("fsck", *where, env=env)
    assert fine.exit_code == 0, fine.output
    objects.delete(kept)
    assert invoke("fsck", *where, env=env).exit_code == 1
    objects.close()
