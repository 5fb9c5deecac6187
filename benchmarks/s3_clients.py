"""S3 clients against a real S3-compatible server: obstore (Rust ``object_store``) against
boto3, and Cairn's S3 object store against plain boto3, on the same bytes in the same run.

    .venv/bin/python benchmarks/s3_clients.py            # starts scripts/swift.sh's Swift
    .venv/bin/python benchmarks/s3_clients.py --quick    # 16 MiB and 200 small objects
    .venv/bin/python benchmarks/s3_clients.py --endpoint http://127.0.0.1:9000  # another

Credentials come from the standard AWS variables (Swift's test account when the script
starts Swift itself). Every figure is the best round of ``--rounds`` (rounds of the two
sides interleaved); ``ratio`` is the plain boto3 time over the other's time (above 1: faster
than boto3), ``cpu ratio`` the same for the CPU this process spent (the client's own cost).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PART = 8 << 20  # multipart part size for every client
CONCURRENCY = 8  # parts or small objects in flight at once, for every client
MiB = 1 << 20


def timed(work: Callable[[], Any], setup: Callable[[], Any] | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds of this process (all its threads, Rust's too) of one
    call of ``work``. The CPU is the client's own cost, which a loaded machine or a slow
    server changes less than the wall time."""
    if setup is not None:
        setup()
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def swift_env() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "swift.sh"), "start"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.split() if "=" in line)


class Bench:
    def __init__(self, endpoint: str, bucket: str, big: int, small_n: int, rounds: int) -> None:
        self.endpoint, self.bucket, self.rounds = endpoint, bucket, rounds
        self.region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.boto = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=self.region,
            config=Config(max_pool_connections=CONCURRENCY * 2),
        )
        self.transfer = TransferConfig(
            multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=CONCURRENCY
        )
        self.big = os.urandom(big)
        self.small = [os.urandom(4096) for _ in range(small_n)]
        self.tmp = Path(tempfile.mkdtemp(prefix="cairn-s3-bench-"))
        self.src = self.tmp / "big.bin"
        self.src.write_bytes(self.big)

    # -- plain boto3: the baseline ------------------------------------------------------

    def boto_up_big(self) -> None:
        self.boto.upload_file(str(self.src), self.bucket, "boto/big", Config=self.transfer)

    def boto_down_big(self) -> None:
        self.boto.download_file(
            self.bucket, "boto/big", str(self.tmp / "b.out"), Config=self.transfer
        )

    def boto_up_small(self) -> None:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(
                pool.map(
                    lambda i: self.boto.put_object(
                        Bucket=self.bucket, Key=f"boto/s{i}", Body=self.small[i]
                    ),
                    range(len(self.small)),
                )
            )

    def boto_down_small(self) -> None:
        def get(i: int) -> bytes:
            body: bytes = self.boto.get_object(Bucket=self.bucket, Key=f"boto/s{i}")["Body"].read()
            return body

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(get, range(len(self.small))))

    # -- obstore ---------------------------------------------------------------------------

    def obstore_store(self) -> Any:
        from obstore.store import S3Store

        return S3Store(
            self.bucket,
            endpoint=self.endpoint,
            region=self.region,
            access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            client_options={"allow_http": True},
            virtual_hosted_style_request=False,
        )

    def obstore_rows(self) -> None:
        import obstore

        store = self.obstore_store()

        def up_big() -> None:
            obstore.put(store, "obs/big", self.src, chunk_size=PART, max_concurrency=CONCURRENCY)

        def down_big() -> None:
            with open(self.tmp / "o.out", "wb") as out:
                for chunk in obstore.get(store, "obs/big").stream(min_chunk_size=PART):
                    out.write(chunk)

        def up_small() -> None:
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                list(
                    pool.map(
                        lambda i: obstore.put(store, f"obs/s{i}", self.small[i]),
                        range(len(self.small)),
                    )
                )

        def down_small() -> None:
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                list(
                    pool.map(
                        lambda i: obstore.get(store, f"obs/s{i}").bytes(), range(len(self.small))
                    )
                )

        self.compare("obstore", up_big, down_big, up_small, down_small)

    # -- boto3 as Cairn would use it, and Cairn's adapter ---------------------------------

    def cairn_rows(self) -> None:
        from cairn.core.digest import digest_bytes
        from cairn.store.objects.s3 import S3ObjectStore

        store = S3ObjectStore(
            self.bucket,
            prefix=f"cairn-{uuid.uuid4().hex[:8]}",
            endpoint_url=self.endpoint,
            region=self.region,
        )
        big = digest_bytes(self.big)
        smalls = [digest_bytes(d) for d in self.small]

        def up_small() -> None:
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                list(pool.map(store.put_bytes, self.small))

        def down_small() -> None:
            def get(d: Any) -> bytes:
                with store.open(d) as f:
                    data: bytes = f.read()
                return data

            with ThreadPoolExecutor(CONCURRENCY) as pool:
                list(pool.map(get, smalls))

        self.compare(
            "Cairn S3ObjectStore",
            lambda: store.put_file(self.src),
            lambda: store.copy_to_file(big, self.tmp / "c.out"),
            up_small,
            down_small,
            before_upload=lambda: store.delete(big),  # stored already: it would not be sent
        )

    def compare(
        self, name: str, *works: Callable[[], Any], before_upload: Callable[[], Any] | None = None
    ) -> None:
        """``before_upload``: untimed, before each timed big upload (to make it a new one)."""
        baselines = (self.boto_up_big, self.boto_down_big, self.boto_up_small, self.boto_down_small)
        labels = (
            f"upload {len(self.big) // MiB} MiB",
            f"download {len(self.big) // MiB} MiB",
            f"upload {len(self.small):,} x 4 KiB",
            f"download {len(self.small):,} x 4 KiB",
        )
        for label, base, work in zip(labels, baselines, works, strict=True):
            # Round by round, so both meet the same machine (shared, noisy); a warm-up
            # first; the uploads overwrite in place (Cairn's: the small ones do).
            setup = before_upload if label.startswith("upload") and "MiB" in label else None
            base()
            work()
            theirs: list[tuple[float, float]] = []
            ours: list[tuple[float, float]] = []
            for _ in range(self.rounds):
                theirs.append(timed(base))
                ours.append(timed(work, setup))
            self.print_row(name, label, min(ours), min(theirs))

    def print_row(
        self, name: str, label: str, ours: tuple[float, float], theirs: tuple[float, float]
    ) -> None:
        """The best round of each (by wall time), and its client CPU."""
        if "MiB" in label:  # MB/s of the big object; objects/s of the small ones
            work, unit = len(self.big) / MiB, "MB/s"
        else:
            work, unit = len(self.small), "obj/s"
        print(
            f"{name:<20} {label:<22} {work / ours[0]:8.1f} {unit:<5} cpu {ours[1]:6.2f} s  "
            f"boto3 {work / theirs[0]:8.1f} {unit:<5} cpu {theirs[1]:6.2f} s  "
            f"ratio {theirs[0] / ours[0]:5.2f}  cpu ratio {theirs[1] / max(ours[1], 1e-9):5.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="S3 endpoint URL (default: start scripts/swift.sh)")
    parser.add_argument("--bucket", default=f"cairn-bench-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["clients", "cairn"], help="one comparison only")
    args = parser.parse_args()
    endpoint = args.endpoint
    if endpoint is None:
        env = swift_env()
        endpoint = env.pop("CAIRN_TEST_S3_ENDPOINT")
        os.environ.update(env)
    big, small_n = (16 * MiB, 200) if args.quick else (64 * MiB, 1000)
    bench = Bench(endpoint, args.bucket, big, small_n, args.rounds)
    bench.boto.create_bucket(Bucket=args.bucket)
    print(
        f"endpoint {endpoint}, bucket {args.bucket}, parts {PART // MiB} MiB, {CONCURRENCY} at once"
    )
    try:
        if args.only in (None, "clients"):
            bench.obstore_rows()
        if args.only in (None, "cairn"):
            bench.cairn_rows()
    finally:
        paginator = bench.boto.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=args.bucket):
            for item in page.get("Contents", []):
                bench.boto.delete_object(Bucket=args.bucket, Key=item["Key"])
        bench.boto.delete_bucket(Bucket=args.bucket)
        for path in bench.tmp.iterdir():
            path.unlink()
        bench.tmp.rmdir()


if __name__ == "__main__":
    main()
