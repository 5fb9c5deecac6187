"""S3 servers for the tests: moto's S3 emulator in this process, and a real S3-compatible
server (OpenStack Swift's S3 API, started by scripts/swift.sh and shared by lease).

Swift comes from ``CAIRN_TEST_S3_ENDPOINT`` if set (with the AWS variables of its
account), else from ``scripts/swift.sh lease``; where it cannot start, its tests skip,
except under ``CI=true``, where they fail. Import the fixtures into a test module (or a
conftest) to use them.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
SWIFT = ROOT / "scripts" / "swift.sh"


@dataclass(frozen=True)
class S3Server:
    """An S3 endpoint and the credentials of an account on it."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def env(self) -> dict[str, str]:
        """The standard AWS variables that hand this account to a client."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def new_bucket(self) -> str:
        name = f"cairn-t-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def drop_bucket(self, bucket: str) -> None:
        """Empty ``bucket`` (objects and unfinished uploads) and delete it."""
        s3 = self.client()
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)


def _swift_unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Swift not available: {reason} (it must run in CI)", pytrace=False)
    pytest.skip(f"Swift not available: {reason}")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1, a free port, for this test process."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server("moto", f"http://{host}:{port}", "test:tester", "testing")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def swift_server() -> Iterator[S3Server]:
    """Swift's S3 API: CAIRN_TEST_S3_ENDPOINT, else scripts/swift.sh's server, held by a
    lease on this process until the session ends."""
    endpoint = os.environ.get("CAIRN_TEST_S3_ENDPOINT")
    if endpoint:
        yield S3Server(
            "swift",
            endpoint,
            os.environ.get("AWS_ACCESS_KEY_ID", "test:tester"),
            os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        )
        return
    pid = str(os.getpid())
    try:
        done = subprocess.run(
            ["bash", str(SWIFT), "lease", pid],
            check=False,
            capture_output=True,
            text=True,
            timeout=600,  # a first start may install the packages
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _swift_unavailable(f"scripts/swift.sh lease failed: {exc}")
    if done.returncode != 0:
        _swift_unavailable(f"scripts/swift.sh lease failed: {done.stderr.strip()[-2000:]}")
    found = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)
    try:
        yield S3Server(
            "swift",
            found["CAIRN_TEST_S3_ENDPOINT"],
            found["AWS_ACCESS_KEY_ID"],
            found["AWS_SECRET_ACCESS_KEY"],
            found.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
    finally:
        subprocess.run(
            ["bash", str(SWIFT), "release", pid], check=False, capture_output=True, timeout=120
        )


@pytest.fixture(params=["moto", "swift"])
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 server in turn."""
    server: S3Server = request.getfixturevalue(f"{request.param}_server")
    return server


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, empty bucket on ``s3_server``, dropped afterwards; the AWS variables name
    the server's account for the test."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    bucket = s3_server.new_bucket()
    try:
        yield bucket
    finally:
        s3_server.drop_bucket(bucket)
