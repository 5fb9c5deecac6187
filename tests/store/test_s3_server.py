"""A real ``cairn server`` keeping its objects in S3 (moto, Swift) while its metadata stays
in SQLite, and the embedded client doing the same; S3 errors at start-up are one line."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.core.errors import InvalidArgument, StoreUnavailable
from tests.cli.test_server import Served, cairn_server, clean_env, kill_tree, start
from tests.store.s3_servers import S3Server

MiB = 1 << 20


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[Served]]:
    running: list[Served] = []
    yield running
    for one in running:
        kill_tree(one.process)


def make_folder(root: Path) -> dict[str, bytes]:
    files = {
        "config.json": b'{"layers": 12}',
        "tokenizer/vocab.txt": b"a\nb\nc\n" * 1000,
        "tokenizer/empty": b"",
        "weights.bin": os.urandom(9 * MiB),  # past one part: a multipart upload
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def bucket_keys(server: S3Server, bucket: str, prefix: str) -> list[str]:
    listed = server.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def log_and_fetch(client: cairn.Client, tmp_path: Path, files: dict[str, bytes]) -> None:
    client.set_project("s3")
    client.set_experiment("exp")
    with client.start_run(capture="none") as run:
        info = run.log_artifact("model", tmp_path / "model")
        assert info.key == "model"
        back = run.download_artifact("model", tmp_path / "back")
    for name, data in files.items():
        assert (back / name).read_bytes() == data


@pytest.mark.timeout(180)
def test_cairn_server_keeps_objects_in_s3(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, served: list[Served]
) -> None:
    (tmp_path / "model").mkdir()
    files = make_folder(tmp_path / "model")
    home = tmp_path / "home"
    command, port = cairn_server(
        tmp_path,
        "--home",
        str(home),
        "--objects-uri",
        f"s3://{s3_bucket}/cairn",
        "--s3-endpoint-url",
        s3_server.endpoint,
    )
    one = start(command, tmp_path, port, limit_s=60)
    served.append(one)
    with cairn.Client(one.url) as client:
        log_and_fetch(client, tmp_path, files)
    keys = bucket_keys(s3_server, s3_bucket, "cairn/objects/")
    # Every file (and the folder's tree manifest) is an object in the bucket, none on disk.
    assert len(keys) >= len(files) + 1
    assert not (home / "objects").exists()
    assert (home / "cairn.db").exists()  # the metadata stays in SQLite
    assert one.stop() == 0


def test_the_embedded_client_keeps_objects_in_s3(
    tmp_path: Path, moto_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    bucket = moto_server.new_bucket()
    try:
        (tmp_path / "model").mkdir()
        files = make_folder(tmp_path / "model")
        monkeypatch.setenv("CAIRN_OBJECTS_URI", f"s3://{bucket}/emb")
        monkeypatch.setenv("CAIRN_S3_ENDPOINT_URL", moto_server.endpoint)
        with cairn.Client(home=tmp_path / "home") as client:
            log_and_fetch(client, tmp_path, files)
        assert bucket_keys(moto_server, bucket, "emb/objects/")
    finally:
        moto_server.drop_bucket(bucket)


def test_a_missing_bucket_stops_the_server_with_one_line(
    tmp_path: Path, moto_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    command, _ = cairn_server(
        tmp_path,
        "--home",
        str(tmp_path / "home"),
        "--objects-uri",
        "s3://no-such-bucket/cairn",
        "--s3-endpoint-url",
        moto_server.endpoint,
    )
    done = subprocess.run(
        command, capture_output=True, text=True, env=clean_env(), timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        "error: S3 object store s3://no-such-bucket/cairn: the bucket 'no-such-bucket' does "
        "not exist"
    ), done.stderr


def test_an_unknown_scheme_is_refused(tmp_path: Path) -> None:
    from cairn.core.settings import Settings
    from cairn.service import open_service

    settings = Settings(home=str(tmp_path / "home"), objects_uri="gs://b/p")
    with pytest.raises(InvalidArgument, match="objects_uri: 'gs://b/p': the scheme 'gs'"):
        open_service(settings)


def test_refused_credentials_stop_the_embedded_client(
    tmp_path: Path, swift_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", swift_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.setenv("CAIRN_OBJECTS_URI", "s3://whatever/x")
    monkeypatch.setenv("CAIRN_S3_ENDPOINT_URL", swift_server.endpoint)
    with pytest.raises(StoreUnavailable, match="access denied"):
        cairn.Client(home=tmp_path / "home").set_project("p")


def test_without_the_s3_extra_the_error_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from cairn.core.settings import Settings
    from cairn.service import open_service

    monkeypatch.delitem(sys.modules, "cairn.store.objects.s3", raising=False)
    monkeypatch.setitem(sys.modules, "obstore", None)  # as if not installed
    settings = Settings(home=str(tmp_path / "home"), objects_uri="s3://b/p")
    with pytest.raises(StoreUnavailable, match=r"needs the s3 extra .*cairn\[s3\]"):
        open_service(settings)
