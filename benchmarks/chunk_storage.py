"""Chunk store benchmark: what a changed big file costs in new storage, and what chunking
costs in speed.

Usage::

    .venv/bin/python benchmarks/chunk_storage.py            # 100 MiB, as issue 16 says
    .venv/bin/python benchmarks/chunk_storage.py --quick    # 10 MiB: a smoke test
    .venv/bin/python benchmarks/chunk_storage.py --sizes 65536,262144,1048576

Storage (exact: the same on any machine, for the same random seed): a 100 MiB file of
random bytes is stored in a local object folder through ``ChunkedStore``; then a copy with
1 MiB overwritten in its middle, and (from the first state again) a copy with one byte
inserted at its start. For each average chunk size, the new bytes that the second put
added to the folder (chunks and recipe, file sizes; and the recipe alone) [issue 16:
<= 2 MiB and <= 1 MiB; DVC stores 100 MiB].

Speed (a shared machine: ratios, best of 3, page cache warm): ``put_file`` and
``copy_to_file`` of a 100 MiB file, chunked against whole (the same store with chunking
off) [``cp`` of the same file in the same run]. The exit code is 0 whether targets are
met or not: this is a measuring tool.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cairn.files.chunking import DEFAULT_CHUNK_SIZE, DEFAULT_MIN_FILE
from cairn.store.objects import LocalObjectStore
from cairn.store.objects.chunked import ChunkedStore

MiB = 1 << 20


def folder_bytes(root: Path, sub: str = "") -> int:
    base = root / sub if sub else root
    return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())


def write(path: Path, data: bytes | bytearray) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def storage_rows(work: Path, size: int, chunk_sizes: list[int]) -> list[str]:
    rng = random.Random(16)
    data = rng.randbytes(size)
    edit = size // 100 if size < 100 * MiB else MiB  # 1 MiB at full scale
    middle = size // 2
    overwritten = bytearray(data)
    overwritten[middle : middle + edit] = rng.randbytes(edit)
    inserted = b"\x00" + data
    files = {"v1": data, "overwrite": overwritten, "insert": inserted}
    for name, content in files.items():
        write(work / f"{name}.bin", content)
    lines = [
        f"Storage: a {size / MiB:g} MiB file of random bytes, then a changed copy "
        f"(new bytes in the folder after the second put; issue 16's limits at full scale)",
        f"{'avg chunk':>10} {'chunks':>7} {'recipe':>8} | "
        f"{'overwrite ' + str(edit // 1024) + ' KiB':>22} {'recipe':>8} | "
        f"{'1-byte insert':>16} {'recipe':>8}",
    ]
    for avg in chunk_sizes:
        row = [f"{avg // 1024:>7} KiB"]
        for case in ("overwrite", "insert"):
            root = work / f"store-{avg}-{case}"
            store = ChunkedStore(LocalObjectStore(root), chunk_size=avg, min_file=DEFAULT_MIN_FILE)
            first = store.put_file(work / "v1.bin")
            recipe = store.recipe(first.digest) or []
            if case == "overwrite":
                row.append(f"{len(recipe):>7} {folder_bytes(root, 'recipes'):>8,}")
            before, before_recipes = folder_bytes(root), folder_bytes(root, "recipes")
            store.put_file(work / f"{case}.bin")
            grown = folder_bytes(root) - before
            recipes = folder_bytes(root, "recipes") - before_recipes
            limit = 2 * edit if case == "overwrite" else edit
            mark = "met" if grown <= limit else "MISSED"
            row.append(f"| {grown / MiB:>9.3f} MiB {mark:>6} {recipes:>8,}")
            store.close()
            shutil.rmtree(root)
        lines.append(" ".join(row))
    return lines


def best(reps: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(reps))


def speed_rows(work: Path, size: int, avg: int, reps: int) -> list[str]:
    src = work / "speed.bin"
    write(src, os.urandom(size))
    mb = size / 1e6

    def cp() -> float:
        dst = work / "cp.bin"
        start = time.perf_counter()
        subprocess.run(["cp", src, dst], check=True)
        took = time.perf_counter() - start
        dst.unlink()
        return took

    def put(chunked: bool) -> Callable[[], float]:
        def once() -> float:
            root = work / "speed-store"
            inner = LocalObjectStore(root)
            store = ChunkedStore(inner, chunk_size=avg) if chunked else inner
            start = time.perf_counter()
            store.put_file(src)
            took = time.perf_counter() - start
            shutil.rmtree(root)
            return took

        return once

    def read(chunked: bool) -> Callable[[], float]:
        root = work / f"read-store-{chunked}"
        inner = LocalObjectStore(root)
        store = ChunkedStore(inner, chunk_size=avg) if chunked else inner
        digest = store.put_file(src).digest

        def once() -> float:
            dst = work / "read.bin"
            start = time.perf_counter()
            store.copy_to_file(digest, dst)
            took = time.perf_counter() - start
            dst.unlink()
            return took

        return once

    t_cp = best(reps, cp)
    t_whole, t_chunked = best(reps, put(False)), best(reps, put(True))
    r_whole, r_chunked = best(reps, read(False)), best(reps, read(True))
    return [
        f"Speed: {size / MiB:g} MiB, local folder, best of {reps}, chunks of {avg // 1024} KiB",
        f"  cp                  {mb / t_cp:>8,.0f} MB/s",
        f"  put_file whole      {mb / t_whole:>8,.0f} MB/s   {t_cp / t_whole:.2f} x cp",
        f"  put_file chunked    {mb / t_chunked:>8,.0f} MB/s   {t_cp / t_chunked:.2f} x cp"
        f"   {t_whole / t_chunked:.2f} x whole",
        f"  copy_to_file whole  {mb / r_whole:>8,.0f} MB/s   {t_cp / r_whole:.2f} x cp",
        f"  copy_to_file chunked{mb / r_chunked:>8,.0f} MB/s   {t_cp / r_chunked:.2f} x cp"
        f"   {r_whole / r_chunked:.2f} x whole",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 MiB instead of 100 MiB")
    parser.add_argument(
        "--sizes",
        default="65536,131072,262144,524288,1048576",
        help="average chunk sizes to measure storage with, comma-separated",
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tmp", default=None, help="folder for the files (default: $TMPDIR)")
    args = parser.parse_args()
    size = (10 if args.quick else 100) * MiB
    chunk_sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="cairn-chunks-", dir=args.tmp) as tmp:
        work = Path(tmp)
        for line in storage_rows(work, size, chunk_sizes):
            print(line, flush=True)
        print(flush=True)
        for line in speed_rows(work, size, DEFAULT_CHUNK_SIZE, args.reps):
            print(line, flush=True)


if __name__ == "__main__":
    main()
