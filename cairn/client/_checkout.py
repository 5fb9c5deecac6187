"""Checkout: a sequence of stored files (``Component`` s) written under a folder, every
byte verified. Files already there with the right bytes are left as they are; symbolic
links are made as links. A path or link that would leave the folder, or a link where a
folder goes, is refused before anything is written.

Small files are read many at a time (one request through a server) and written by a few
threads at once, each straight to its path when nothing is there (a temp file and a
rename only where a file is replaced). A checkout is a working copy of bytes the store
keeps: its files are not fsynced, and a crash in the middle leaves some files written,
maybe the last ones short; checking out again verifies what is there and rewrites them.

With ``link``, files are hard links to the stored objects where the store can make them
(the embedded local store, on the same file system): no byte is copied, and the objects
are read-only files (0444), so the checkout cannot write into the store. Elsewhere
(through a server, on S3, a chunked object, another file system) the file is copied,
and the report says so.
"""

from __future__ import annotations

import io
import os
import secrets
import stat
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from cairn.capture.files import hash_file
from cairn.client._http_artifacts import RemoteObjects
from cairn.client._transport import Transport
from cairn.core.digest import Digest
from cairn.core.errors import CairnError, InvalidArgument
from cairn.core.objects import Progress
from cairn.core.versioning.blobs import Component
from cairn.files.artifacts import SMALL_FILE, BatchSource
from cairn.files.nofollow import check_folders, make_folders
from cairn.files.statcache import Stamp, open_stat_cache
from cairn.files.writing import write_all, write_file_atomically

if TYPE_CHECKING:
    from cairn.client._client import Client
    from cairn.service.contracts import Repositories

__all__ = ["CheckoutReport", "checkout_components"]

# Threads that write a checkout's files, and how many files each takes at a time (a
# batch read of that many small objects, one request through a server).
_WORKERS: Final = 4
_PER_TASK: Final = 512


@dataclass
class CheckoutReport:
    """What a checkout did: the files written (copied), the files already correct, the
    symbolic links made, the files made hard links to the store (``link=True``), and
    why files were copied where links were asked (None: they were not)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    links: list[Path] = field(default_factory=list)
    linked: list[Path] = field(default_factory=list)
    copied_because: str | None = None


class _Source(Protocol):
    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int: ...


@runtime_checkable
class _Linking(Protocol):
    def link_to(self, digest: Digest, dest: str | os.PathLike[str]) -> bool: ...


class _Fetching:
    """Any backend: one object at a time through its repositories' ``fetch_object``."""

    def __init__(self, versions: Repositories) -> None:
        self._versions = versions

    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        return self._versions.fetch_object(digest, dest, progress)


def _source(client: Client) -> _Source:
    """Where the bytes come from: the server's objects (batch reads), the embedded
    store's object service (batch reads, hard links), else one fetch at a time."""
    backend = client._backend
    transport = getattr(backend, "transport", None)
    if isinstance(transport, Transport):
        return RemoteObjects(transport)
    objects = getattr(backend, "objects", None)
    if isinstance(objects, _Linking) and isinstance(objects, BatchSource):
        return objects  # type: ignore[return-value]  # the embedded ObjectService
    return _Fetching(backend.repositories)


@dataclass(frozen=True, slots=True)
class _Job:
    component: Component
    out: Path
    new: bool  # nothing at its path when planned: written straight, no temp file


def checkout_components(
    client: Client,
    components: Sequence[Component],
    root: Path,
    progress: Progress | None = None,
    *,
    link: bool = False,
) -> CheckoutReport:
    """Write ``components`` under ``root`` (see the module). ``link``: hard links to the
    stored objects where the store can make them, copies elsewhere."""
    parts = {c.path: c.path.split("/") for c in components}
    for folder in sorted({tuple(p[:-1]) for p in parts.values()}):  # refused before a
        check_folders(root, folder)  # byte is written
    for component in components:
        if component.link is not None:
            _check_link(component)
    report = CheckoutReport()
    root.mkdir(parents=True, exist_ok=True)
    cache = open_stat_cache(client.settings.stat_cache)
    real_root = os.path.realpath(root)
    stamps, taken = _present(components, root, real_root, parts)
    known = cache.lookup(stamps, real_root) if cache is not None else {}
    jobs, remember = _plan(
        components, root, real_root, parts, (stamps, taken), known, report, progress
    )
    source = _source(client)
    linker = source if link and isinstance(source, _Linking) else None
    if link and linker is None:
        report.copied_because = "the store is not a local folder on this machine"
    tasks = [jobs[i : i + _PER_TASK] for i in range(0, len(jobs), _PER_TASK)]

    def run(task: list[_Job]) -> tuple[list[Path], list[Path]]:
        linked = _link(linker, task, progress) if linker is not None else set()
        copies = [job for job in task if job.out not in linked]
        _copy(source, copies, progress)
        return [j.out for j in copies], [j.out for j in task if j.out in linked]

    # A few threads at once: each file's syscalls (and, through a server, each batch's
    # request) wait on their own, not on the others'.
    with ThreadPoolExecutor(_WORKERS, thread_name_prefix="cairn-checkout") as pool:
        for written, linked in pool.map(run, tasks):
            report.written += written
            report.linked += linked
    if link and linker is not None and report.written:
        report.copied_because = "the store cannot link these files (another file system?)"
    if cache is not None:
        cache.remember(remember)
    return report


def _plan(
    components: Sequence[Component],
    root: Path,
    real_root: str,
    parts: dict[str, list[str]],
    present: tuple[dict[str, Stamp], set[str]],
    known: dict[str, Digest],
    report: CheckoutReport,
    progress: Progress | None,
) -> tuple[list[_Job], list[tuple[str, Stamp, Digest, int]]]:
    """Make the folders and the symbolic links, keep the files already right (reported
    as skipped); the files to write, and the digests read to remember."""
    stamps, taken = present
    remember: list[tuple[str, Stamp, Digest, int]] = []
    folders: dict[tuple[str, ...], Path] = {}
    jobs: list[_Job] = []
    for component in components:
        *inner, name = parts[component.path]
        key = tuple(inner)
        folder = folders.get(key)
        if folder is None:
            folder = folders[key] = make_folders(root, inner)
        out = folder / name
        real = _real(real_root, component.path, parts)
        if component.link is not None:
            if os.path.islink(out) and os.readlink(out) == component.link:
                report.skipped.append(out)
                continue
            if os.path.lexists(out):
                _remove(out)
            os.symlink(component.link, out)
            report.links.append(out)
            continue
        if real in stamps:
            read_ns = time.time_ns()
            digest = known.get(real) or hash_file(out)[0]
            if digest == component.digest:
                if real not in known:
                    remember.append((real, stamps[real], digest, read_ns))
                report.skipped.append(out)
                if progress is not None and component.size:
                    progress(component.size)
                continue
        new = real not in taken
        if not new and (os.path.islink(out) or os.path.isdir(out)):
            _remove(out)  # the write would replace a link, but say it plainly
        jobs.append(_Job(component, out, new))

    return jobs, remember


def _link(linker: _Linking, task: Sequence[_Job], progress: Progress | None) -> set[Path]:
    """The files of ``task`` made hard links to their stored objects."""
    linked: set[Path] = set()
    for job in task:
        out = job.out
        if job.new:
            made = linker.link_to(job.component.digest, out)
        else:  # replaced: linked beside it, then renamed over it
            tmp = out.with_name(f".{out.name[:100]}.{secrets.token_hex(8)}.cairn-tmp")
            made = linker.link_to(job.component.digest, tmp)
            if made:
                os.replace(tmp, out)
        if made:
            linked.add(out)
            if progress is not None and job.component.size:
                progress(job.component.size)
    return linked


def _copy(source: _Source, jobs: Sequence[_Job], progress: Progress | None) -> None:
    """Write ``jobs``' files: small ones read in one batch (verified) where the source
    can, the others copied one by one (verified, atomically)."""
    small: dict[Digest, list[_Job]] = {}
    batches = isinstance(source, BatchSource)
    for job in jobs:
        if job.component.size > SMALL_FILE or not batches:
            source.copy_to_file(job.component.digest, job.out, progress)
        else:
            small.setdefault(job.component.digest, []).append(job)
    if not small:
        return
    assert isinstance(source, BatchSource)
    wanted = [(digest, group[0].component.size) for digest, group in small.items()]
    for digest, data in source.read_many(wanted):
        for job in small.pop(digest):
            _write(job, data)
            if progress is not None and data:
                progress(len(data))
    if small:  # a source that left some out: never a silently missing file
        raise CairnError(f"{len(small)} objects were not read", digest=next(iter(small)))


def _write(job: _Job, data: bytes) -> None:
    """A file's bytes at its path: straight into a new file where nothing was, else
    through a temp file renamed over what is there (never writing through a link)."""
    if job.new:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(job.out, flags | getattr(os, "O_CLOEXEC", 0), 0o666)  # umask applies
        except FileExistsError:
            pass  # made meanwhile: replaced below, as any file there
        else:
            try:
                write_all(fd, memoryview(data))
            finally:
                os.close(fd)
            return
    write_file_atomically(io.BytesIO(data).readinto, job.out)


def _present(
    components: Sequence[Component], root: Path, real_root: str, parts: dict[str, list[str]]
) -> tuple[dict[str, Stamp], set[str]]:
    """The stamps of the files already at a checkout's paths with the right size (real
    path -> stamp): those whose bytes may be right already; and the real paths where
    anything is (the others are written straight, with no temp file). One listing of
    each folder, and a stat only of the names found: nothing for an empty target."""
    listed: dict[tuple[str, ...], set[str]] = {}
    stamps: dict[str, Stamp] = {}
    taken: set[str] = set()
    for component in components:
        if component.link is not None:
            continue
        *inner, name = parts[component.path]
        names = listed.get(tuple(inner))
        if names is None:
            try:
                names = set(os.listdir(root.joinpath(*inner)))
            except (FileNotFoundError, NotADirectoryError):
                names = set()
            listed[tuple(inner)] = names
        if name not in names:
            continue
        real = _real(real_root, component.path, parts)
        try:
            info = os.lstat(real)
        except FileNotFoundError:
            continue
        taken.add(real)
        if stat.S_ISREG(info.st_mode) and info.st_size == component.size:
            stamps[real] = Stamp.of(info)
    return stamps, taken


def _real(real_root: str, path: str, parts: dict[str, list[str]]) -> str:
    """Where a checkout path lies under the root's real path (a string join where the
    separator is '/', as the path's own)."""
    if os.sep == "/" and real_root != "/":
        return f"{real_root}/{path}"
    return os.path.join(real_root, *parts[path])


def _check_link(component: Component) -> None:
    """A link is made only if what it points to stays inside the checkout."""
    assert component.link is not None
    target = component.link
    joined = os.path.normpath(os.path.join(os.path.dirname(component.path), target))
    if os.path.isabs(target) or joined == ".." or joined.startswith("../"):
        raise InvalidArgument(
            "path",
            f"{component.path!r} is a link to {target!r}, outside the checkout: refused",
        )


def _remove(path: Path) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        raise InvalidArgument("dest", f"{os.fspath(path)!r} is a folder where a file goes")
    os.unlink(path)
