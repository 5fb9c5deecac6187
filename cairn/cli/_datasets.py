"""``cairn datasets``: versions of datasets (captured folders, S3 prefixes), listed, diffed
and checked out."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from cairn.cli._artifacts import _done, _progress_bar
from cairn.cli._common import (
    HomeOption,
    JsonOption,
    StoreOption,
    UrlOption,
    connect,
    find_in_project,
    format_size,
    format_time,
    group,
    print_json,
    print_table,
    shorten,
)

if TYPE_CHECKING:
    from cairn.client import Client, Project
    from cairn.client._datasets import Dataset, DatasetVersion

__all__ = ["datasets"]

datasets = group("Datasets: versions of data captured from folders, or listed from S3.")

DatasetArgument = Annotated[
    str, typer.Argument(metavar="PROJECT/NAME", help="Project and dataset names.")
]
VersionArgument = Annotated[
    str, typer.Argument(help="A version id (or a prefix of one, 7 characters or more).")
]


def _find(client: Client, path: str, create: bool = False) -> Dataset:
    def lookup(project: Project, name: str) -> Dataset:
        if create:
            return project.set_dataset(name)
        for dataset in project.list_datasets():
            if dataset.name == name:
                return dataset
        from cairn.core.errors import NotFound

        raise NotFound(f"no dataset {name!r} in project {project.name!r}", name=name)

    return find_in_project(client, path, "name", "churn/churn-data", lookup)


def _folder_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def _version_row(version: DatasetVersion) -> tuple[str, ...]:
    # the count and size a tree version's summary holds: its files are not read
    count = version.file_count
    return (
        version.id[:12],
        format_time(version.time),
        version.kind,
        str(count) if count else "-",
        format_size(version.size) if count else "-",
        shorten(version.message, 50),
    )


@datasets.command("add")
def datasets_add(
    dataset: DatasetArgument,
    source: Annotated[
        str, typer.Argument(metavar="PATH", help="A folder or file, or s3://BUCKET/PREFIX/.")
    ],
    capture: Annotated[
        bool,
        typer.Option(
            "--capture/--no-capture",
            help="Store the files' bytes too (so the version can be checked out).",
        ),
    ] = False,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="What the version is.")
    ] = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a new version of PROJECT/NAME (created if needed) from PATH; unchanged files
    are not read again. A version equal to the latest is not made twice."""
    from cairn.versioning import S3, Path, S3Dataset

    with connect(url, home, store) as client:
        found = _find(client, dataset, create=True)
        if source.startswith("s3://"):
            # captured again: objects unchanged since the latest captured version of this
            # prefix are not downloaded again
            latest = found.latest() if capture else None
            since = latest.blob if latest is not None else None
            if not (isinstance(since, S3Dataset) and since.captured and since.uri == source):
                since = None
            version = found.create_version(
                S3(source, capture=capture, since=since), message=message
            )
            size = 0
            seconds = 0.0
        else:
            with _progress_bar("capturing", _folder_size(source) if capture else 0) as (
                advance,
                elapsed,
            ):
                version = found.create_version(
                    Path(source, capture=capture, progress=advance), message=message
                )
            size, seconds = version.size, elapsed()
    if as_json:
        print_json({"id": version.id, "message": version.message, "kind": version.kind})
        return
    if version.kind == "dataset.path":
        _done(f"version {version.id[:12]}: {version.file_count} files", size, seconds)
    else:
        typer.echo(f"version {version.id[:12]}")


@datasets.command("ls")
def datasets_ls(
    dataset: DatasetArgument,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The versions of PROJECT/NAME, newest first."""
    with connect(url, home, store) as client:
        versions = _find(client, dataset).list_versions()
        rows = [_version_row(v) for v in versions]
    if as_json:
        print_json([{"id": v.id, "message": v.message, "time": v.time} for v in versions])
        return
    if not rows:
        typer.echo(f"no versions of {dataset!r}")
        return
    print_table(("VERSION", "TIME", "KIND", "FILES", "SIZE", "MESSAGE"), rows)


@datasets.command("diff")
def datasets_diff(
    dataset: DatasetArgument,
    v1: Annotated[str, typer.Argument(metavar="V1", help="The older version.")],
    v2: Annotated[str, typer.Argument(metavar="V2", help="The newer version.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The files added (+), removed (-) and changed (~) from V1 to V2."""
    with connect(url, home, store) as client:
        found = _find(client, dataset)
        changes = found.get_version(v2).diff(found.get_version(v1))
    if as_json:
        print_json(
            [
                {"status": c.status, "path": c.path, "before": c.before, "after": c.after}
                for c in changes
            ]
        )
        return
    if not changes:
        typer.echo("no changes")
    for change in changes:
        typer.echo(str(change))


@datasets.command("checkout")
def datasets_checkout(
    dataset: DatasetArgument,
    version: VersionArgument,
    dest: Annotated[str, typer.Argument(metavar="DIR", help="The folder to write into.")],
    link: Annotated[
        bool,
        typer.Option(
            "--link",
            help="Read-only hard links to the stored files where the store can make them "
            "(embedded local store, same file system); copies elsewhere.",
        ),
    ] = False,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write VERSION's files under DIR, every byte verified; files already right are left
    as they are. Paths and links that would leave DIR are refused."""
    with connect(url, home, store) as client:
        found = _find(client, dataset).get_version(version)
        with _progress_bar("checking out", found.size) as (advance, elapsed):
            report = found.checkout(dest, progress=advance, link=link)
        seconds = elapsed()
    if as_json:
        print_json(
            {
                "written": [str(p) for p in report.written],
                "skipped": [str(p) for p in report.skipped],
                "links": [str(p) for p in report.links],
                "linked": [str(p) for p in report.linked],
                "copied_because": report.copied_because,
            }
        )
        return
    if report.copied_because is not None:
        typer.echo(f"copied, not linked: {report.copied_because}", err=True)
    hard = f", {len(report.linked)} hard links to the store" if link else ""
    _done(
        f"{len(report.written)} files written, {len(report.skipped)} already right, "
        f"{len(report.links)} links{hard}",
        sum(os.path.getsize(p) for p in report.written),
        seconds,
    )
