"""``cairn gc`` and ``cairn fsck``: the object store against its metadata, without a server
(like ``cairn db``): a local objects folder or the S3 bucket of ``objects_uri``."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cairn.cli._common import HomeOption, JsonOption, StoreOption, print_json, setting_option

__all__ = ["fsck", "gc"]

ObjectsOption = Annotated[str | None, setting_option("objects_uri", "--objects-uri", metavar="URI")]


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would go, and delete nothing.")
    ] = False,
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace",
            metavar="SECONDS",
            help="Keep unreferenced objects written less than this long ago "
            "(default: CAIRN_GC_GRACE, 1 day).",
        ),
    ] = None,
    purge_quarantine: Annotated[
        bool,
        typer.Option(
            "--purge-quarantine",
            help="Also remove corrupt copies moved to quarantine longer than the grace "
            "ago (local folders only).",
        ),
    ] = False,
    as_json: JsonOption = False,
    home: HomeOption = None,
    store: StoreOption = None,
    objects_uri: ObjectsOption = None,
) -> None:
    """Delete objects no artifact, folder tree or versioned blob references, written
    longer than the grace period ago, and leftover temp files and multipart uploads as
    old. Safe while writers are active."""
    from cairn.core.settings import settings_from
    from cairn.service.gc import collect_garbage, open_stores

    settings = settings_from(os.environ, home=home, store_uri=store, objects_uri=objects_uri)
    if grace is None:
        grace = settings.gc_grace
    with open_stores(settings) as (metadata, objects):
        report = collect_garbage(
            metadata, objects, grace=grace, dry_run=dry_run, purge_quarantine=purge_quarantine
        )
    if as_json:
        print_json(report.as_json())
        return
    verb = "would delete" if dry_run else "deleted"
    if dry_run:
        for obj in report.removed:
            typer.echo(f"{obj.digest}  {obj.size}")
        for q in report.quarantine_removed:
            typer.echo(f"{q.path}  {q.size}  (quarantined)")
    typer.echo(
        f"{report.stored} objects ({_size(report.stored_bytes)}): {report.referenced} "
        f"referenced, {report.young} unreferenced but younger than {grace:g} s (kept); "
        f"{verb} {len(report.removed)} objects"
        + (f" and {len(report.quarantine_removed)} quarantined" if purge_quarantine else "")
        + f", {_size(report.freed_bytes)}"
        + ("" if dry_run else f"; swept {len(report.swept)} leftover temp files or uploads")
    )


def fsck(
    as_json: JsonOption = False,
    home: HomeOption = None,
    store: StoreOption = None,
    objects_uri: ObjectsOption = None,
) -> None:
    """Read every object and check its digest (a corrupt one is moved to quarantine);
    report objects that metadata references but the store lacks. Exit status 1 when
    something is corrupt or missing."""
    from cairn.core.settings import settings_from
    from cairn.service.gc import check_objects, open_stores

    settings = settings_from(os.environ, home=home, store_uri=store, objects_uri=objects_uri)
    with open_stores(settings) as (metadata, objects):
        report = check_objects(metadata, objects)
    if as_json:
        print_json(report.as_json())
    else:
        for digest in report.corrupt:
            typer.echo(f"corrupt  {digest}  (moved to quarantine)")
        for digest, what in report.missing.items():
            typer.echo(f"missing  {digest}  referenced by {what}")
        typer.echo(
            f"{report.stored} objects intact ({_size(report.stored_bytes)}), "
            f"{len(report.corrupt)} corrupt, {len(report.missing)} missing, "
            f"{report.unreferenced} unreferenced ({_size(report.unreferenced_bytes)}), "
            f"{len(report.quarantined)} in quarantine"
        )
    if not report.ok:
        raise typer.Exit(1)
