"""``cairn projects|experiments|runs``: list and show what is tracked."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cairn.cli._common import (
    HomeOption,
    JsonOption,
    RunIdArgument,
    StoreOption,
    UrlOption,
    connect,
    find_in_project,
    format_duration,
    format_size,
    format_time,
    group,
    print_json,
    print_table,
    shorten,
)
from cairn.core.errors import NotFound

if TYPE_CHECKING:
    from cairn.client import Client, Experiment, Project
    from cairn.core.model import ArtifactInfo, RunInfo

__all__ = [
    "duration_text",
    "experiments",
    "find_experiment",
    "format_number",
    "nested",
    "projects",
    "runs",
    "status_text",
]

projects = group("Projects: the top of the tree.")
experiments = group("Experiments: groups of runs in a project.")
runs = group("Runs: one training or evaluation each.")

WhereOption = Annotated[
    str | None,
    typer.Option(
        "--where",
        metavar="QUERY",
        help="Only those matching a search query, e.g. \"tags contains 'prod'\" (docs/search.md).",
    ),
]


@projects.command("ls")
def projects_ls(
    where: WhereOption = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List projects."""
    with connect(url, home, store) as client:
        if where is None:
            found = [p.info for p in client.list_projects()]
        else:
            from cairn.cli._search import find_all_projects, usage_errors

            with usage_errors():
                found = [p.info for p in find_all_projects(client, where)]
    if as_json:
        print_json(found)
        return
    _print_list(
        ("NAME", "ID", "OWNER", "CREATED", "DESCRIPTION"),
        [(p.name, p.id, p.owner, format_time(p.created_at), shorten(p.description)) for p in found],
        "no projects",
    )


@experiments.command("ls")
def experiments_ls(
    project: Annotated[str, typer.Argument(metavar="PROJECT", help="Project name.")],
    where: WhereOption = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the experiments of PROJECT."""
    with connect(url, home, store) as client:
        if where is None:
            found = [e.info for e in client.get_project(project).list_experiments()]
        else:
            from cairn.cli._search import find_all_experiments, usage_errors

            with usage_errors():
                found = [e.info for e in find_all_experiments(client, project, where)]
    if as_json:
        print_json(found)
        return
    _print_list(
        ("NAME", "ID", "OWNER", "CREATED", "DESCRIPTION"),
        [(e.name, e.id, e.owner, format_time(e.created_at), shorten(e.description)) for e in found],
        f"no experiments in project {project!r}",
    )


def find_experiment(client: Client, path: str, *, deleted: bool = False) -> Experiment:
    """The experiment ``PROJECT/EXPERIMENT``; a deleted one only if ``deleted``."""

    def lookup(project: Project, name: str) -> Experiment:
        try:
            found = project.get_experiment(name)
            if deleted or not found.info.deleted:
                return found
        except NotFound:
            pass
        raise NotFound(
            f"no experiment named {name!r} in project {project.name!r}",
            kind="experiment",
            name=name,
        )

    return find_in_project(client, path, "experiment", "churn/baseline", lookup)


@runs.command("ls")
def runs_ls(
    path: Annotated[
        str,
        typer.Argument(metavar="PROJECT/EXPERIMENT", help="Project and experiment names."),
    ],
    include_deleted: Annotated[
        bool, typer.Option("--include-deleted", help="Also list soft-deleted runs.")
    ] = False,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            metavar="KEY,KEY...",
            help="Add a column with the latest value of each metric (comma-separated, "
            "or the option repeated).",
        ),
    ] = None,
    where: WhereOption = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--columns",
            metavar="COLUMN,COLUMN...",
            help="Add columns: metrics.K, hyperparameters.K, attributes.K, tags, or a "
            "field (experiment.name, end_time...); comma-separated or repeated.",
        ),
    ] = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the runs of an experiment, oldest first, child runs under their parent."""
    keys = list(dict.fromkeys(k for item in metrics or () for k in item.split(",") if k))
    from cairn.cli._search import list_runs  # it imports this module

    with connect(url, home, store) as client:
        list_runs(
            client,
            path,
            where=where,
            columns=columns,
            metrics=keys,
            include_deleted=include_deleted,
            as_json=as_json,
        )


def nested(infos: list[RunInfo]) -> list[tuple[RunInfo, int]]:
    """The runs with their depth, each followed by its children (in the listing's order).
    A run whose parent is not listed (deleted, or elsewhere) is at the top."""
    listed = {info.id for info in infos}
    children: dict[str, list[RunInfo]] = {}
    for info in infos:
        if info.parent_id is not None and info.parent_id in listed:
            children.setdefault(info.parent_id, []).append(info)
    out: list[tuple[RunInfo, int]] = []
    stack = [(info, 0) for info in reversed(infos) if info.parent_id not in listed]
    while stack:
        info, depth = stack.pop()
        out.append((info, depth))
        stack += [(child, depth + 1) for child in reversed(children.get(info.id, []))]
    return out


@runs.command("show")
def runs_show(
    run_id: RunIdArgument,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run: hyperparameters, latest metrics, tags, attributes and artifacts."""
    with connect(url, home, store) as client:
        run = client.get_run(run_id)
        info = run.info
        shown: dict[str, Any] = {
            "run": info,
            "project": client.get_project(id=info.project_id).name,
            "experiment": client.get_experiment(info.experiment_id).name,
            "hyperparameters": run.get_hyperparameters(),
            "metrics": run.get_metrics_latest(),
            "tags": run.get_tags(),
            "attributes": run.get_attributes(),
            "artifacts": run.list_artifacts(),
        }
    if as_json:
        print_json(shown)
    else:
        _print_run(shown)


def duration_text(info: RunInfo) -> str:
    if info.end_time is None:
        return "-"
    return format_duration(max(0, info.end_time - info.start_time) / 1000)


def status_text(info: RunInfo) -> str:
    return f"{info.status} (deleted)" if info.deleted else str(info.status)


def format_number(value: float) -> str:
    """A metric value for a table (JSON keeps every digit)."""
    return f"{value:.6g}"


def _print_list(columns: tuple[str, ...], rows: list[tuple[str, ...]], empty: str) -> None:
    if rows:
        print_table(columns, rows)
    else:
        typer.echo(empty)


def _print_run(shown: dict[str, Any]) -> None:
    info: RunInfo = shown["run"]
    typer.echo(f"run {info.name} ({info.id})")
    print_table(
        ("", ""),
        [
            ("  experiment", f"{shown['project']}/{shown['experiment']}"),
            ("  status", status_text(info)),
            ("  started", format_time(info.start_time)),
            ("  ended", format_time(info.end_time)),
            ("  duration", duration_text(info)),
            ("  owner", info.owner or "-"),
            ("  parent", info.parent_id or "-"),
            ("  description", shorten(info.description, 100) or "-"),
            ("  tags", ", ".join(shown["tags"]) or "-"),
        ],
        header=False,
    )
    params = shown["hyperparameters"]
    metrics = shown["metrics"]
    attributes = shown["attributes"]
    artifacts: list[ArtifactInfo] = shown["artifacts"]
    sections: list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]] = [
        (
            "hyperparameters",
            ("KEY", "VALUE", "TYPE"),
            [(k, str(v), type(v).__name__) for k, v in sorted(params.items())],
        ),
        (
            "metrics (latest)",
            ("KEY", "VALUE", "STEP", "TIME"),
            [
                (k, format_number(p.value), str(p.step), format_time(p.timestamp))
                for k, p in sorted(metrics.items())
            ],
        ),
        (
            "attributes",
            ("KEY", "VALUE"),
            [
                (k, shorten(json.dumps(v, ensure_ascii=False), 100))
                for k, v in sorted(attributes.items())
            ],
        ),
        (
            "artifacts",
            ("KEY", "KIND", "SIZE", "FILES", "DIGEST"),
            [(a.key, a.kind, format_size(a.size), str(a.file_count), a.digest) for a in artifacts],
        ),
    ]
    for title, columns, rows in sections:
        typer.echo("")
        if rows:
            typer.echo(f"{title}:")
            print_table(columns, rows)
        else:
            typer.echo(f"{title}: none")
