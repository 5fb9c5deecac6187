"""Checkout: a sequence of stored files (``Component`` s) written under a folder, every
byte verified. Files already there with the right bytes are left as they are; symbolic
links are made as links. A path or link that would leave the folder, or a link where a
folder goes, is refused before anything is written."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cairn.capture.files import hash_file
from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument
from cairn.core.objects import Progress
from cairn.core.versioning.blobs import Component
from cairn.files.nofollow import check_folders, make_folders
from cairn.files.statcache import Stamp, open_stat_cache

if TYPE_CHECKING:
    from cairn.client._client import Client

__all__ = ["CheckoutReport", "checkout_components"]

# Threads that write a checkout's files.
_FETCHERS: Final = 8


@dataclass
class CheckoutReport:
    """What a checkout did: the files written and the files already correct."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    links: list[Path] = field(default_factory=list)


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
    versions = client._backend.repositories
    parts = {c.path: c.path.split("/") for c in components}
    for component in components:  # refuse before a byte is written
        check_folders(root, parts[component.path][:-1])
        if component.link is not None:
            _check_link(component)
    report = CheckoutReport()
    root.mkdir(parents=True, exist_ok=True)
    cache = open_stat_cache(client.settings.stat_cache)
    real_root = os.path.realpath(root)
    stamps = _present(components, root, real_root, parts)
    known = cache.lookup(stamps, real_root) if cache is not None else {}
    remember: list[tuple[str, Stamp, Digest, int]] = []
    folders: dict[tuple[str, ...], Path] = {}
    fetches: list[tuple[Component, Path]] = []
    for component in components:
        *inner, name = parts[component.path]
        if tuple(inner) not in folders:
            folders[tuple(inner)] = make_folders(root, inner)
        out = folders[tuple(inner)] / name
        real = os.path.join(real_root, *parts[component.path])
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
        if os.path.islink(out) or os.path.isdir(out):
            _remove(out)  # the write would replace a link, but say it plainly
        fetches.append((component, out))

    def fetch(job: tuple[Component, Path]) -> Path:
        component, out = job
        versions.fetch_object(component.digest, out, progress)
        return out

    # Files are fetched by a few threads at once: each write waits on its own fsync (and
    # through a server, on its own request), not on the others'.
    with ThreadPoolExecutor(_FETCHERS, thread_name_prefix="cairn-checkout") as pool:
        report.written += pool.map(fetch, fetches)
    if cache is not None:
        cache.remember(remember)
    return report


def _present(
    components: Sequence[Component], root: Path, real_root: str, parts: dict[str, list[str]]
) -> dict[str, Stamp]:
    """The stamps of the files already at a checkout's paths with the right size (real
    path -> stamp): those whose bytes may be right already."""
    stamps: dict[str, Stamp] = {}
    for component in components:
        if component.link is None:
            try:
                info = os.lstat(root.joinpath(*parts[component.path]))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_size == component.size:
                stamps[os.path.join(real_root, *parts[component.path])] = Stamp.of(info)
    return stamps


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
