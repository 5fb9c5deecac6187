"""`cairn datasets add PROJECT/NAME s3://... --capture`: the objects are downloaded into the
store (again only what changed since the latest captured version), and the version checks
out with `cairn datasets checkout`; embedded and through a server, on moto's S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.core.settings import Settings
from cairn.versioning import _remote
from tests.servers import serve_in_thread
from tests.store.s3_servers import S3Server, moto_server

from .conftest import Invoke, json_of

__all__ = ["moto_server"]  # the fixture, used by name


@pytest.fixture(params=["embedded", "http"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    home = tmp_path / "store"
    with cairn.Client(home=home, settings=Settings(home=str(home), capture="none")) as client:
        client.set_project("churn")
    if request.param == "embedded":
        yield ["--home", str(home)]
        return
    with serve_in_thread(Settings(home=str(home))) as url:
        yield ["--url", url]


def test_add_capture_checkout_of_an_s3_prefix(
    invoke: Invoke,
    where: list[str],
    tmp_path: Path,
    moto_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CAIRN_S3_ENDPOINT_URL", moto_server.endpoint)
    s3 = moto_server.client()
    bucket = moto_server.new_bucket()
    s3.put_object(Bucket=bucket, Key="d/a.csv", Body=b"1\n")
    s3.put_object(Bucket=bucket, Key="d/sub/b.csv", Body=b"2\n")
    uri = f"s3://{bucket}/d/"
    first = json_of(invoke("datasets", "add", "churn/s3", uri, "--capture", *where, "--json"))
    assert first["kind"] == "dataset.s3"

    read: list[str] = []
    real = _remote._read

    def counted(source: _remote.S3, client: object, key: str, item: object) -> bytes:
        read.append(key)
        return real(source, client, key, item)  # type: ignore[arg-type]

    monkeypatch.setattr(_remote, "_read", counted)
    s3.put_object(Bucket=bucket, Key="d/a.csv", Body=b"1\n3\n")
    second = json_of(invoke("datasets", "add", "churn/s3", uri, "--capture", *where, "--json"))
    assert read == ["d/a.csv"]  # b.csv is unchanged since the first capture

    out = tmp_path / "out"
    for version, a in ((first["id"], b"1\n"), (second["id"], b"1\n3\n")):
        done = invoke("datasets", "checkout", "churn/s3", version[:10], str(out), *where)
        assert done.exit_code == 0, done.stderr
        assert (out / "a.csv").read_bytes() == a and (out / "sub" / "b.csv").read_bytes() == b"2\n"
