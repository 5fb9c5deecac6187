"""Fixtures of tests/store: the S3 servers (tests/store/s3_servers.py)."""

from tests.store.s3_servers import moto_server, s3_bucket, s3_server, swift_server

__all__ = ["moto_server", "s3_bucket", "s3_server", "swift_server"]
