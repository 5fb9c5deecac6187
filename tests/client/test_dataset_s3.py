"""S3 prefixes captured into the object store, on every backend and against moto's S3 server
and Swift's S3 API: each object downloaded (streamed when large), checked against its listed
size and ETag, its digest recorded beside key, size, ETag and version; the version checks
out to a folder byte for byte. S3's errors name the bucket and prefix (or key)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import cairn
from cairn.client._datasets import Dataset
from cairn.core.digest import digest_bytes
from cairn.core.settings import Settings
from cairn.versioning import S3, S3Dataset, _remote
from tests.store.s3_servers import S3Server, moto_server, s3_bucket, s3_server, swift_server

from .conftest import MakeClient

__all__ = ["moto_server", "s3_bucket", "s3_server", "swift_server"]  # fixtures, used by name


@pytest.fixture
def client(
    open_client: MakeClient, server_url: str | None, home: Path, store_url: str, tmp_path: Path
) -> cairn.Client:
    cache = str(tmp_path / "cache" / "stat-cache.sqlite")
    if server_url is None:
        return open_client(settings=Settings(home=str(home), store_uri=store_url, stat_cache=cache))
    return open_client(url=server_url, settings=Settings(retry_timeout=5.0, stat_cache=cache))


@pytest.fixture
def dataset(client: cairn.Client) -> Dataset:
    client.set_project("p")
    return client.set_dataset("s3-data")


@pytest.fixture
def endpoint(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CAIRN_S3_ENDPOINT_URL", s3_server.endpoint)
    return s3_server.endpoint


def test_a_captured_prefix_checks_out_byte_for_byte(
    client: cairn.Client,
    dataset: Dataset,
    s3_server: S3Server,
    s3_bucket: str,
    endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Objects above 64 KiB take the streamed path (4 MiB in use), in 16 KiB blocks.
    monkeypatch.setattr(_remote, "_SMALL", 64 << 10)
    monkeypatch.setattr(_remote, "_BLOCK", 16 << 10)
    s3 = s3_server.client()
    large = bytes(range(256)) * 1200 + b"tail"  # 307,204 bytes
    files = {
        "a.csv": b"id,churn\n1,0\n",
        "part/b.csv": b"id,churn\n2,1\n",
        "part/same.csv": b"id,churn\n1,0\n",  # the same bytes as a.csv: one object
        "big.bin": large,
        "empty.txt": b"",
    }
    for key, data in files.items():
        s3.put_object(Bucket=s3_bucket, Key=f"train/{key}", Body=data)
    s3.put_object(Bucket=s3_bucket, Key="train/folder/", Body=b"")  # a console's folder marker
    s3.put_object(Bucket=s3_bucket, Key="other/c.csv", Body=b"not under the prefix")

    moved: list[int] = []
    v1 = dataset.create_version(S3(f"s3://{s3_bucket}/train/", capture=True, progress=moved.append))
    blob = v1.blob
    assert isinstance(blob, S3Dataset) and blob.captured
    by_key = {o.key: o for o in blob.entries}
    assert set(by_key) == {*files, "folder/"}
    for key, data in files.items():
        head = s3.head_object(Bucket=s3_bucket, Key=f"train/{key}")
        assert by_key[key].digest == digest_bytes(data), key
        assert by_key[key].etag == head["ETag"] and by_key[key].size == len(data)
    assert sum(moved) == sum(len(d) for d in files.values())
    assert len(set(blob.objects())) == len(files) - 1  # a.csv and part/same.csv share one

    # The bytes are Cairn's now: gone from S3, the version still checks out, verified.
    for key in [*files, "folder/"]:
        s3.delete_object(Bucket=s3_bucket, Key=f"train/{key}")
    out = tmp_path / "restore"
    assert v1.captured
    report = v1.checkout(out)
    assert len(report.written) == len(files)
    for key, data in files.items():
        assert (out / key).read_bytes() == data, key
    assert not (out / "folder").exists()

    # Listed only, the same prefix is another version: no digests, nothing to check out.
    for key, data in files.items():
        s3.put_object(Bucket=s3_bucket, Key=f"train/{key}", Body=data)
    listed = dataset.create_version(S3(f"s3://{s3_bucket}/train/"))
    assert isinstance(listed.blob, S3Dataset) and not listed.blob.captured
    assert listed.id != v1.id and all(o.digest is None for o in listed.blob.entries)
    assert not listed.captured
    with pytest.raises(cairn.InvalidArgument, match=r"capture=True"):
        listed.checkout(tmp_path / "never")


def test_an_object_replaced_while_captured_is_refused(
    dataset: Dataset,
    s3_server: S3Server,
    s3_bucket: str,
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = s3_server.client()
    s3.put_object(Bucket=s3_bucket, Key="d/a.csv", Body=b"first")
    real = _remote._capture

    def replace_then_capture(*args: object) -> object:  # between listing and download
        s3.put_object(Bucket=s3_bucket, Key="d/a.csv", Body=b"second, longer")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_remote, "_capture", replace_then_capture)
    with pytest.raises(cairn.Conflict, match=rf"s3://{s3_bucket}/d/a.csv changed while captured"):
        dataset.create_version(S3(f"s3://{s3_bucket}/d/", capture=True))


def test_a_key_that_is_no_path_is_refused_before_any_download(
    dataset: Dataset, s3_server: S3Server, s3_bucket: str, endpoint: str
) -> None:
    s3 = s3_server.client()
    s3.put_object(Bucket=s3_bucket, Key="d/ok.csv", Body=b"x")
    s3.put_object(Bucket=s3_bucket, Key="d/../escape.csv", Body=b"y")
    with pytest.raises(cairn.InvalidArgument, match=r"escape\.csv"):
        dataset.create_version(S3(f"s3://{s3_bucket}/d/", capture=True))


def test_s3_errors_name_the_bucket_and_prefix(
    dataset: Dataset,
    s3_server: S3Server,
    s3_bucket: str,
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(cairn.NotFound, match="NoSuchBucket") as caught:
        dataset.create_version(S3("s3://cairn-no-such-bucket-here/x/", capture=True))
    assert "s3://cairn-no-such-bucket-here/x/" in str(caught.value)

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(cairn.CairnError, match=rf"could not list s3://{s3_bucket}/x/.*connect"):
        dataset.create_version(S3(f"s3://{s3_bucket}/x/", endpoint_url=closed))

    if s3_server.name == "swift":  # moto takes any credentials
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        with pytest.raises(cairn.PermissionDenied, match=rf"s3://{s3_bucket}/x/"):
            dataset.create_version(S3(f"s3://{s3_bucket}/x/"))


def test_capturing_again_since_a_version_downloads_only_what_changed(
    client: cairn.Client,
    dataset: Dataset,
    s3_server: S3Server,
    s3_bucket: str,
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = s3_server.client()
    files = {f"f{i}.csv": f"row {i}\n".encode() for i in range(5)}
    for key, data in files.items():
        s3.put_object(Bucket=s3_bucket, Key=f"d/{key}", Body=data)
    uri = f"s3://{s3_bucket}/d/"
    v1 = dataset.create_version(S3(uri, capture=True))
    read: list[str] = []
    real = _remote._read

    def counted(source: S3, s3_client: object, key: str, item: object) -> bytes:
        read.append(key)
        return real(source, s3_client, key, item)  # type: ignore[arg-type]

    monkeypatch.setattr(_remote, "_read", counted)
    assert dataset.create_version(S3(uri, capture=True, since=v1)) == v1  # nothing changed
    assert read == []

    s3.put_object(Bucket=s3_bucket, Key="d/f1.csv", Body=b"row 1, changed\n")
    s3.put_object(Bucket=s3_bucket, Key="d/new.csv", Body=b"new\n")
    v2 = dataset.create_version(S3(uri, capture=True, since=v1))
    assert sorted(read) == ["d/f1.csv", "d/new.csv"]
    blob = v2.blob
    assert isinstance(blob, S3Dataset)
    expected = {**files, "f1.csv": b"row 1, changed\n", "new.csv": b"new\n"}
    assert {o.key: o.digest for o in blob.entries} == {
        k: digest_bytes(v) for k, v in expected.items()
    }
    with pytest.raises(cairn.InvalidArgument, match="since"):
        S3(uri, capture=True, since=dataset.create_version(S3(uri)))  # listed only
