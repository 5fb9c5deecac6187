"""``cairn repos``: repositories of versioned ingredients, and ``cairn runs restore``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from cairn.cli._common import (
    HomeOption,
    JsonOption,
    RunIdArgument,
    StoreOption,
    UrlOption,
    connect,
    find_in_project,
    format_time,
    group,
    print_json,
    print_table,
    shorten,
)

if TYPE_CHECKING:
    from types import ModuleType

    from cairn.client import Client, Commit, Repository
    from cairn.core.versioning.diff import PathChange

__all__ = ["repos", "runs_restore"]


def _wire() -> ModuleType:
    """The JSON forms, imported when output needs them: ``--help`` stays light."""
    from cairn.core.versioning import wire

    return wire


repos = group("Repositories: versioned ingredients (code, config, data, environment).")

RepoArgument = Annotated[
    str, typer.Argument(metavar="PROJECT/REPO", help="Project and repository names.")
]
RefArgument = Annotated[
    str, typer.Argument(metavar="REF", help="A branch, a tag or a commit id (or a prefix).")
]


def find_repository(client: Client, path: str) -> Repository:
    """The repository ``PROJECT/REPO``."""
    return find_in_project(
        client,
        path,
        "repo",
        "churn/ingredients",
        lambda project, name: client.get_repository(name, project=project),
    )


def _commit_row(commit: Commit, refs: dict[str, list[str]]) -> tuple[str, ...]:
    names = ", ".join(refs.get(commit.id, []))
    return (
        commit.id[:12],
        format_time(commit.time),
        commit.author or "-",
        shorten(commit.message.splitlines()[0] if commit.message else "", 60),
        names,
    )


def _refs_by_commit(repository: Repository) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for ref in repository.list_refs():
        found.setdefault(ref.commit, []).append(
            ref.name if ref.kind == "branch" else f"tag:{ref.name}"
        )
    return found


@repos.command("ls")
def repos_ls(
    project: Annotated[str, typer.Argument(metavar="PROJECT", help="Project name.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the repositories of PROJECT."""
    with connect(url, home, store) as client:
        found = [r.info for r in client.list_repositories(client.get_project(project))]
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo(f"no repositories in project {project!r}")
        return
    print_table(
        ("NAME", "ID", "OWNER", "CREATED", "DESCRIPTION"),
        [(r.name, r.id, r.owner, format_time(r.created_at), shorten(r.description)) for r in found],
    )


@repos.command("log")
def repos_log(
    repository: RepoArgument,
    branch: Annotated[
        str, typer.Option("--branch", help="Branch, tag or commit to start from.")
    ] = "main",
    path: Annotated[
        str | None, typer.Option("--path", help="Only commits that changed it.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")] = None,
    first_parent: Annotated[
        bool, typer.Option("--first-parent", help="Follow merges' first parents only.")
    ] = False,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The history of a branch, newest first."""
    with connect(url, home, store) as client:
        repo = find_repository(client, repository)
        commits = repo.log(branch, first_parent=first_parent, path=path, limit=limit)
        refs = _refs_by_commit(repo)
    if as_json:
        print_json([_wire().commit_to_json(c.info) for c in commits])
        return
    print_table(
        ("COMMIT", "TIME", "AUTHOR", "MESSAGE", "REFS"), [_commit_row(c, refs) for c in commits]
    )


@repos.command("show")
def repos_show(
    repository: RepoArgument,
    ref: RefArgument,
    path: Annotated[
        str | None, typer.Argument(metavar="[PATH]", help="One ingredient to print whole.")
    ] = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """A commit and its ingredients, or the ingredient at PATH."""
    with connect(url, home, store) as client:
        repo = find_repository(client, repository)
        commit = repo.get_commit(id=ref)  # a branch, a tag or a commit id
        if path is not None:
            blob = commit.get(path)
            typer.echo(json.dumps(_wire().blob_to_json(blob), indent=2, ensure_ascii=False))
            return
        paths = commit.paths()
    if as_json:
        print_json({"commit": _wire().commit_to_json(commit.info), "paths": paths})
        return
    typer.echo(f"commit {commit.id}")
    print_table(
        ("", ""),
        [
            ("  parents", ", ".join(p[:12] for p in commit.parents) or "-"),
            ("  author", commit.author or "-"),
            ("  time", format_time(commit.time)),
            ("  message", shorten(commit.message, 100)),
        ],
        header=False,
    )
    typer.echo("")
    if paths:
        print_table(("PATH", "KIND"), sorted(paths.items()))
    else:
        typer.echo("no ingredients")


@repos.command("diff")
def repos_diff(
    repository: RepoArgument,
    a: Annotated[str, typer.Argument(metavar="A", help="The older ref.")],
    b: Annotated[str, typer.Argument(metavar="B", help="The newer ref.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """What changed from A to B: per path, and inside an ingredient per field."""
    with connect(url, home, store) as client:
        changes = find_repository(client, repository).diff(a, b)
    if as_json:
        print_json([_wire().path_change_to_json(c) for c in changes])
        return
    if not changes:
        typer.echo("no changes")
    for change in changes:
        _print_change(change)


def _print_change(change: PathChange) -> None:
    from cairn.core.versioning.canonical import shown

    sign = {"added": "+", "deleted": "-", "modified": "~"}[change.status]
    kind = (change.after or change.before).KIND  # type: ignore[union-attr]
    typer.echo(f"{sign} {change.path} ({kind}, {change.status})")
    for field in change.fields:
        before = "" if field.before is None else shown(field.before)
        after = "" if field.after is None else shown(field.after)
        arrow = f"{before} -> {after}" if before and after else (after or before)
        typer.echo(f"    {field.status:<8} {field.name}: {shorten(arrow, 120)}")


@repos.command("merge")
def repos_merge(
    repository: RepoArgument,
    source: Annotated[str, typer.Argument(metavar="FROM", help="The ref to merge.")],
    into: Annotated[str, typer.Option("--into", help="The branch to merge into.")] = "main",
    message: Annotated[str | None, typer.Option("--message", "-m")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; move nothing.")] = False,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge FROM into a branch. Conflicts are listed and nothing moves (exit 1): resolve
    them from the Python API (``result.resolve(...)``), or edit a side and merge again."""
    with connect(url, home, store) as client:
        result = find_repository(client, repository).merge(
            source, into=into, message=message, dry_run=dry_run
        )
    if as_json:
        print_json(_wire().merge_to_json(result._outcome))
    elif result.done:
        assert result.commit_info is not None
        typer.echo(f"merged {source} into {into}: commit {result.commit_info.id[:12]}")
    else:
        state = "would merge" if dry_run and not result.conflicts else "conflicts"
        changed = ", ".join(result.changed) or "-"
        typer.echo(f"{state}: {len(result.conflicts)} conflict(s); changed: {changed}")
        for conflict in result.conflicts:
            typer.echo(f"  {conflict}")
    if result.conflicts:
        raise typer.Exit(1)


@repos.command("checkout")
def repos_checkout(
    repository: RepoArgument,
    ref: RefArgument,
    dest: Annotated[str, typer.Argument(metavar="DIR", help="Where to write the ingredients.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Write a commit's ingredients under DIR, one folder per path, verified."""
    with connect(url, home, store) as client:
        files = find_repository(client, repository).checkout(ref, dest)
    typer.echo(f"wrote {len(files)} files under {dest}")


@repos.command("branch")
def repos_branch(
    repository: RepoArgument,
    name: Annotated[str, typer.Argument(metavar="NEW", help="The branch to create.")],
    start: Annotated[str, typer.Option("--from", help="Where it starts.")] = "main",
    force: Annotated[
        bool, typer.Option("--force", help="Move it even if that loses commits.")
    ] = False,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Create a branch (or, with --force, move one)."""
    with connect(url, home, store) as client:
        commit = find_repository(client, repository).branch(name, from_=start, force=force)
    typer.echo(f"branch {name} at {commit.id[:12]}")


@repos.command("tag")
def repos_tag(
    repository: RepoArgument,
    name: Annotated[str, typer.Argument(metavar="TAG", help="The tag (never moves).")],
    ref: RefArgument,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Tag a commit."""
    with connect(url, home, store) as client:
        tag = find_repository(client, repository).tag(name, ref)
    typer.echo(f"tag {tag.name} at {tag.commit[:12]}")


def runs_restore(
    run_id: RunIdArgument,
    dest: Annotated[str, typer.Argument(metavar="DIR", help="Where to write it all.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Write everything a run was built from under DIR: its commit's ingredients, the
    code and environment it recorded, its hyperparameters; then what could not be
    restored exactly."""
    with connect(url, home, store) as client:
        report = client.get_run(run_id).restore(dest)
    typer.echo(str(report))
