"""The S3 object store: the object-store contract on moto's S3 server and on Swift's S3
API, and what only S3 has (multipart uploads, its errors, a file changing mid-upload)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.core.chunks import Recipe
from cairn.core.digest import Digest, digest_bytes
from cairn.core.errors import InvalidArgument, StorageFull, StoreUnavailable
from cairn.core.objects import ObjectInfo
from cairn.store.objects import ObjectStore
from cairn.store.objects.chunked import ChunkedStore
from cairn.store.objects.s3 import S3ObjectStore, parse_s3_uri
from tests.store.s3_servers import S3Server
from tests.store.test_chunked import ChunkedContract
from tests.store.test_objects import ObjectStoreContract

MiB = 1 << 20


def _s3(store: ObjectStore) -> S3ObjectStore:
    assert isinstance(store, S3ObjectStore)
    return store


class TestS3ObjectStore(ObjectStoreContract):
    """The contract, once on moto and once on Swift (``s3_server``'s params)."""

    @pytest.fixture
    def store(self, s3_server: S3Server, s3_bucket: str) -> Iterator[ObjectStore]:
        self.server = s3_server
        with S3ObjectStore(
            s3_bucket, "team/objects", endpoint_url=s3_server.endpoint, retry_timeout=10
        ) as s:
            yield s

    def key(self, store: ObjectStore, digest: Digest) -> str:
        s3 = _s3(store)
        return f"{s3.prefix}/objects/{digest[:2]}/{digest[2:]}"

    def rewrite(self, store: ObjectStore, digest: Digest, change: bytes) -> None:
        """Overwrite the stored bytes as another writer would (no metadata kept)."""
        client = self.server.client()
        key = self.key(store, digest)
        client.put_object(Bucket=_s3(store).bucket, Key=key, Body=change)

    def stored(self, store: ObjectStore, digest: Digest) -> bytes:
        got = self.server.client().get_object(Bucket=_s3(store).bucket, Key=self.key(store, digest))
        data: bytes = got["Body"].read()
        return data

    def corrupt(self, store: ObjectStore, digest: Digest) -> None:
        data = bytearray(self.stored(store, digest))
        data[len(data) // 2] ^= 0xFF
        self.rewrite(store, digest, bytes(data))

    def truncate(self, store: ObjectStore, digest: Digest) -> None:
        self.rewrite(store, digest, self.stored(store, digest)[:-1])

    def stored_count(self, store: ObjectStore) -> int:
        s3 = _s3(store)
        client = self.server.client()
        prefix = f"{s3.prefix}/"
        uploads = client.list_multipart_uploads(Bucket=s3.bucket, Prefix=prefix)
        assert uploads.get("Uploads", []) == []  # no unfinished upload outlives a put
        listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{prefix}objects/")
        return len(listed.get("Contents", []))

    # -- S3 only ------------------------------------------------------------------

    def test_layout(self, store: ObjectStore) -> None:
        digest = store.put_bytes(b"layout").digest
        assert self.stored(store, digest) == b"layout"

    def test_big_objects_go_up_in_parts(self, store: ObjectStore, tmp_path: Path) -> None:
        data = os.urandom(20 * MiB + 5)  # three parts of 8 MiB
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        told: list[int] = []
        info = store.put_file(src, told.append)
        assert info == ObjectInfo(digest_bytes(data), len(data))
        assert sum(told) == len(data)
        head = self.server.client().head_object(
            Bucket=_s3(store).bucket, Key=self.key(store, info.digest)
        )
        assert head["ETag"].strip('"').endswith("-3")  # a multipart upload's ETag
        assert store.copy_to_file(info.digest, tmp_path / "back.bin") == len(data)
        assert (tmp_path / "back.bin").read_bytes() == data
        told = []
        assert store.put_file(src, told.append) == info  # stored: not sent again
        assert sum(told) == len(data)
        assert self.stored_count(store) == 1

    def test_a_file_changing_during_its_upload_stores_nothing(
        self, store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from cairn.store.objects import s3 as s3_module

        src = tmp_path / "moving.bin"
        src.write_bytes(os.urandom(17 * MiB))
        real = s3_module._checked_parts

        def change_first(*args: object, **kwargs: object) -> Iterator[bytes]:
            with src.open("r+b") as f:  # after the hash pass, before the upload
                f.write(b"changed")
            yield from real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(s3_module, "_checked_parts", change_first)
        with pytest.raises(InvalidArgument, match="changed while it was being stored"):
            store.put_file(src)
        assert self.stored_count(store) == 0

    def test_sweep_aborts_abandoned_multipart_uploads(self, store: ObjectStore) -> None:
        s3 = _s3(store)
        client = self.server.client()
        key = f"{s3.prefix}/objects/ab/{'c' * 62}"
        upload = client.create_multipart_upload(Bucket=s3.bucket, Key=key)
        client.upload_part(
            Bucket=s3.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
        )
        other = client.create_multipart_upload(Bucket=s3.bucket, Key="elsewhere/key")
        assert store.sweep(3600) == []  # too recent
        # Swift lists uploads as its container listing catches up: a loaded machine may
        # show the upload a moment late.
        deadline = time.monotonic() + 20
        time.sleep(1.1)
        while not (swept := store.sweep(0.5)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert swept == [f"s3://{s3.bucket}/{key}#{upload['UploadId']}"]
        left = client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
        assert [u["UploadId"] for u in left] == [other["UploadId"]]  # not under the prefix
        client.abort_multipart_upload(
            Bucket=s3.bucket, Key="elsewhere/key", UploadId=other["UploadId"]
        )

    def test_a_big_stream_is_spooled_then_sent(self, store: ObjectStore) -> None:
        data = os.urandom(9 * MiB)
        with store.open_writer() as writer:
            for i in range(0, len(data), MiB):
                writer.write(data[i : i + MiB])
            info = writer.commit()
        assert info == ObjectInfo(digest_bytes(data), len(data))
        with store.open(info.digest) as f:
            assert f.read() == data

    def test_quarantined_objects_are_listed_with_their_place(self, store: ObjectStore) -> None:
        digest = store.put_bytes(b"soon damaged" * 100).digest
        self.corrupt(store, digest)
        assert store.verify() == [digest]
        [aside] = store.quarantined()
        assert aside.path is not None
        assert aside.path.startswith(f"s3://{_s3(store).bucket}/team/objects/quarantine/{digest}.")


# -- errors: each names what is wrong ------------------------------------------------------


@pytest.fixture
def aws_env(moto_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    return moto_server


def test_a_missing_bucket_is_named(aws_env: S3Server) -> None:
    store = S3ObjectStore("no-such-bucket-here", "p", endpoint_url=aws_env.endpoint)
    for call in (
        lambda: store.put_bytes(b"x"),
        lambda: store.exists(digest_bytes(b"x")),
        lambda: store.open(digest_bytes(b"x")),
    ):
        with pytest.raises(StoreUnavailable, match="bucket 'no-such-bucket-here' does not exist"):
            call()


def test_refused_credentials_are_named(
    swift_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto accepts any key; Swift checks signatures like S3 does.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", swift_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = S3ObjectStore("any-bucket", endpoint_url=swift_server.endpoint, retry_timeout=5)
    with pytest.raises(StoreUnavailable, match="access denied") as excinfo:
        store.put_bytes(b"x")
    assert excinfo.value.details["bucket"] == "any-bucket"
    assert "not-the-secret" not in str(excinfo.value)


def test_an_endpoint_that_does_not_answer_is_named(aws_env: S3Server) -> None:
    store = S3ObjectStore(
        "bucket", endpoint_url="http://127.0.0.1:9", retry_timeout=1, connect_timeout=1
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"http://127\.0\.0\.1:9 does not answer"):
        store.put_bytes(b"x")
    assert time.monotonic() - started < 30


def test_a_server_without_room_is_storage_full(aws_env: S3Server) -> None:
    # No S3 server here can be filled for real: the translation of the answer Swift and
    # MinIO give, raised the way obstore raises it.
    from obstore.exceptions import GenericError

    store = S3ObjectStore("b", "p", endpoint_url=aws_env.endpoint)
    with pytest.raises(StorageFull, match="has no room"), store._errors("objects/x"):
        raise GenericError("Server returned non-2xx status code: 507 Insufficient Storage")


def test_credentials_never_show(aws_env: S3Server) -> None:
    store = S3ObjectStore("b", "p", endpoint_url=aws_env.endpoint)
    assert aws_env.secret_key not in repr(store)
    assert repr(store) == f"S3ObjectStore('b', 'p', endpoint_url={aws_env.endpoint!r})"


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/a/b/", ("bucket", "a/b")),
    ],
)
def test_parse_s3_uri(uri: str, parsed: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == parsed


@pytest.mark.parametrize("uri", ["s3://", "s3:///prefix", "file:///x"])
def test_parse_s3_uri_refuses(uri: str) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        parse_s3_uri(uri)
    assert excinfo.value.field == "objects_uri"


def test_a_stream_round_trip_with_progress(aws_env: S3Server) -> None:
    bucket = aws_env.new_bucket()
    try:
        store = S3ObjectStore(bucket, endpoint_url=aws_env.endpoint)
        data = os.urandom(12 * MiB)
        told: list[int] = []
        info = store.put_stream(io.BytesIO(data), told.append)
        assert sum(told) == len(data)
        assert store.size(info.digest) == len(data)
    finally:
        aws_env.drop_bucket(bucket)


class TestChunkedS3(ChunkedContract):
    """The contract over chunks and recipes kept in S3 (moto, then Swift)."""

    @pytest.fixture
    def store(self, s3_server: S3Server, s3_bucket: str) -> Iterator[ObjectStore]:
        self.hooks = TestS3ObjectStore()
        self.hooks.server = s3_server
        inner = S3ObjectStore(
            s3_bucket, "team/objects", endpoint_url=s3_server.endpoint, retry_timeout=10
        )
        # Chunks of 64 KiB: a 20 MiB object is 320 PUTs, not 1,280.
        with ChunkedStore(inner, chunk_size=64 * 1024, min_file=100_000) as s:
            yield s

    def test_layout(self, store: ObjectStore) -> None:
        assert isinstance(store, ChunkedStore)
        s3 = _s3(store.inner)
        digest = store.put_bytes(os.urandom(300_000)).digest
        key = f"{s3.prefix}/recipes/{digest[:2]}/{digest[2:]}"
        got = self.hooks.server.client().get_object(Bucket=s3.bucket, Key=key)
        assert Recipe.decode(got["Body"].read(), digest).size == 300_000
        assert not store.inner.exists(digest)  # no whole copy
