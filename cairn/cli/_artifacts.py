"""``cairn artifacts get|put``: move files and folders to and from a run.

On a terminal a progress bar on stderr follows the bytes as the client moves them (sizes
are known up front); then one line with size and throughput.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cairn.cli._common import (
    HomeOption,
    JsonOption,
    RunIdArgument,
    StoreOption,
    UrlOption,
    connect,
    format_duration,
    format_size,
    group,
    print_json,
    stderr_console,
)
from cairn.core.errors import Conflict

__all__ = ["artifacts"]

artifacts = group("Artifacts: files and folders logged against a run.")

KeyArgument = Annotated[
    str,
    typer.Argument(
        metavar="KEY", help="Artifact key, or a file or folder inside a folder artifact."
    ),
]


@artifacts.command("get")
def get(
    run_id: RunIdArgument,
    key: KeyArgument,
    dest: Annotated[
        str,
        typer.Argument(
            metavar="DEST",
            help="Where to write it: into DEST if DEST is a folder or ends in '/', "
            "else at DEST itself.",
        ),
    ],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Download an artifact of a run (every file verified, written atomically)."""
    with connect(url, home, store) as client:
        run = client.get_run(run_id)
        files = run.list_artifact_files(key)
        size = sum(f.size for f in files)
        what = f"{key} ({_count(len(files))}, {format_size(size)})"
        with _progress_bar(f"downloading {key}", size) as (progress, elapsed):
            written = run.download_artifact(key, dest, progress=progress)
    if as_json:
        print_json({"key": key, "path": str(written), "bytes": size, "files": len(files)})
    else:
        _done(f"got {what} -> {written}", size, elapsed())


@artifacts.command("put")
def put(
    run_id: RunIdArgument,
    key: Annotated[str, typer.Argument(metavar="KEY", help="Artifact key, e.g. plots.")],
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="A file, or a folder (kept as a tree).")
    ],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a file or a folder as an artifact of a run."""
    count, size = _local_size(path)
    with connect(url, home, store) as client:
        run = client.get_run(run_id)
        status = run.status
        if status.ended and (path.is_file() or path.is_dir()):  # else refused after the upload
            raise Conflict(
                f"run {run.id} is {status.value}: its artifacts are closed (resume it first: "
                "client.resume_run)",
                id=run.id,
            )
        what = f"{path} ({_count(count)}, {format_size(size)})"
        with _progress_bar(f"uploading {path.name or path}", size) as (progress, elapsed):
            info = run.log_artifact(key, path, progress=progress)
    if as_json:
        print_json(info)
    else:
        _done(f"put {what} -> {key} ({info.kind}, {info.digest})", info.size, elapsed())


def _count(files: int) -> str:
    return "1 file" if files == 1 else f"{files} files"


def _local_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``; (0, 0) if it is neither (the upload says why)."""
    if path.is_file():
        return 1, path.stat().st_size
    count = size = 0
    if path.is_dir():
        for folder, _, names in os.walk(path):
            for name in names:
                file = Path(folder, name)
                if file.is_file():
                    count += 1
                    size += file.stat().st_size
    return count, size


@contextmanager
def _progress_bar(
    description: str, total: int
) -> Iterator[tuple[Callable[[int], None] | None, Callable[[], float]]]:
    """A transient byte progress bar on stderr (only on a terminal): yields the callback
    that advances it (None off a terminal) and the elapsed-time clock."""
    started = time.perf_counter()
    ended: float | None = None

    def elapsed() -> float:
        return (ended if ended is not None else time.perf_counter()) - started

    console = stderr_console()
    if not console.is_terminal:
        try:
            yield None, elapsed
        finally:
            ended = time.perf_counter()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        try:
            yield (lambda n: bar.advance(task, n)), elapsed
        finally:
            ended = time.perf_counter()


def _done(message: str, size: int, seconds: float) -> None:
    rate = f"{format_size(int(size / seconds))}/s" if seconds > 0 else "-"
    typer.echo(f"{message} in {format_duration(seconds)} ({rate})")
