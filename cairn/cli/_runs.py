"""Commands that change what is tracked (create, delete, end, tag) and that read runs side
by side (compare) or over time (metrics). They join the groups of ``_entities``."""

from __future__ import annotations

import csv
import enum
import io
import sys
from collections.abc import Sequence
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
    format_time,
    print_json,
    print_table,
)
from cairn.cli._entities import (
    duration_text,
    experiments,
    find_experiment,
    format_number,
    projects,
    runs,
    status_text,
)
from cairn.cli._sparkline import ASCII, BLOCKS, WIDTH, finite_range, sparkline
from cairn.core.errors import AlreadyExists, NotFound
from cairn.core.ids import short_id

if TYPE_CHECKING:
    from cairn.client import Client, Experiment, Project
    from cairn.core.model import MetricPoint, RunInfo

__all__ = ["EndStatus"]

DescriptionOption = Annotated[
    str | None, typer.Option("--description", metavar="TEXT", help="What it is for.")
]
TagOption = Annotated[
    list[str] | None, typer.Option("--tag", metavar="TAG", help="A tag (repeat for more).")
]
TagsArgument = Annotated[list[str], typer.Argument(metavar="TAG", help="One or more tags.")]
ExperimentPath = Annotated[
    str, typer.Argument(metavar="PROJECT/NAME", help="Project and experiment names.")
]


def _show(info: Any, as_json: bool, message: str) -> None:
    """What a command changed: the entity as JSON, or one line for people."""
    if as_json:
        print_json(info)
    else:
        typer.echo(message)


def _label(info: RunInfo) -> str:
    return f"{info.name} ({short_id(info.id)})"


# -- projects and experiments ---------------------------------------------------------------
@projects.command("create")
def projects_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new project's name.")],
    description: DescriptionOption = None,
    tags: TagOption = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a project (an error if one of that name exists)."""
    with connect(url, home, store, existing=False) as client:
        # set_project is get-or-create and would quietly retag an existing project.
        try:
            found = client.get_project(name).info
        except NotFound:
            pass
        else:
            state = f" (deleted: cairn projects undelete {name})" if found.deleted else ""
            raise AlreadyExists(f"project {name!r} exists already{state}", kind="project")
        info = client.set_project(name, description=description, tags=tags).info
    _show(info, as_json, f"created project {info.name} ({info.id})")


@projects.command("delete")
def projects_delete(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The project's name.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a project (a soft delete: it and its experiments and runs are no longer
    listed, and kept)."""
    with connect(url, home, store) as client:
        project = client.get_project(name)
        project.delete()
        info = project.info
    _show(info, as_json, f"deleted project {info.name} ({info.id})")


@projects.command("undelete")
def projects_undelete(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The project's name.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bring back a deleted project."""
    with connect(url, home, store) as client:
        project = client.get_project(name)
        project.undelete()
        info = project.info
    _show(info, as_json, f"restored project {info.name} ({info.id})")


@experiments.command("create")
def experiments_create(
    path: ExperimentPath,
    description: DescriptionOption = None,
    tags: TagOption = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an experiment in a project (an error if one of that name exists there)."""

    def create(project: Project, name: str) -> Experiment:
        try:
            found = project.get_experiment(name).info
        except NotFound:
            return project.set_experiment(name, description=description, tags=tags)
        state = f" (deleted: cairn experiments undelete {path})" if found.deleted else ""
        raise AlreadyExists(
            f"experiment {name!r} exists already in project {project.name!r}{state}",
            kind="experiment",
            name=name,
        )

    with connect(url, home, store) as client:
        info = find_in_project(client, path, "name", "churn/baseline", create).info
    _show(info, as_json, f"created experiment {path} ({info.id})")


@experiments.command("delete")
def experiments_delete(
    path: ExperimentPath,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete an experiment (a soft delete: it and its runs are no longer listed, and
    kept)."""
    with connect(url, home, store) as client:
        experiment = find_experiment(client, path)
        experiment.delete()
        info = experiment.info
    _show(info, as_json, f"deleted experiment {path} ({info.id})")


@experiments.command("undelete")
def experiments_undelete(
    path: ExperimentPath,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bring back a deleted experiment."""
    with connect(url, home, store) as client:
        experiment = find_experiment(client, path, deleted=True)
        experiment.undelete()
        info = experiment.info
    _show(info, as_json, f"restored experiment {path} ({info.id})")


# -- a run's lifecycle and tags -------------------------------------------------------------
class EndStatus(enum.StrEnum):
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"


@runs.command("end")
def runs_end(
    run: RunIdArgument,
    status: Annotated[
        EndStatus, typer.Option("--status", help="The run's final status.")
    ] = EndStatus.FINISHED,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """End a run (one that crashed without ending, say) with a final status."""
    with connect(url, home, store) as client:
        found = client.get_run(run)
        found.end(status.value)
        info = found.info
    _show(info, as_json, f"run {_label(info)}: {status_text(info)}")


@runs.command("delete")
def runs_delete(
    run: RunIdArgument,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a run (a soft delete: `cairn runs undelete` brings it back)."""
    with connect(url, home, store) as client:
        found = client.get_run(run)
        found.delete()
        info = found.info
    _show(info, as_json, f"deleted run {_label(info)}; undo with: cairn runs undelete {info.id}")


@runs.command("undelete")
def runs_undelete(
    run: RunIdArgument,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bring back a soft-deleted run."""
    with connect(url, home, store) as client:
        found = client.get_run(run)
        found.undelete()
        info = found.info
    _show(info, as_json, f"undeleted run {_label(info)}")


def _retag(
    client: Client, run: str, add: Sequence[str], remove: Sequence[str]
) -> tuple[RunInfo, list[str]]:
    found = client.get_run(run)
    if add:
        found.log_tags(add)
    for tag in remove:
        found.remove_tag(tag)
    return found.info, found.get_tags()


def _print_tags(info: RunInfo, tags: list[str], as_json: bool) -> None:
    if as_json:
        print_json({"run": info.id, "tags": tags})
    else:
        typer.echo(f"run {_label(info)} tags: {', '.join(tags) or '-'}")


@runs.command("tag")
def runs_tag(
    run: RunIdArgument,
    tags: TagsArgument,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add tags to a run; prints its tags."""
    with connect(url, home, store) as client:
        info, now = _retag(client, run, tags, ())
    _print_tags(info, now, as_json)


@runs.command("untag")
def runs_untag(
    run: RunIdArgument,
    tags: TagsArgument,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove tags from a run (a tag it does not have is no error); prints its tags."""
    with connect(url, home, store) as client:
        info, now = _retag(client, run, (), tags)
    _print_tags(info, now, as_json)


# -- compare ------------------------------------------------------------------------------
def _differ(values: Sequence[object]) -> bool:
    """Whether the runs' values differ: by type too (1, 1.0 and True are three values), and
    NaN equals NaN."""
    return len({(type(v).__name__, repr(v)) for v in values}) > 1


def _compared(
    infos: list[RunInfo],
    params: list[dict[str, Any]],
    latest: list[dict[str, MetricPoint]],
) -> dict[str, Any]:
    """The comparison as JSON takes it (values None where a run has none)."""
    hyperparameters = {
        k: [p.get(k) for p in params] for k in sorted({k for p in params for k in p})
    }
    metrics = {
        k: [m[k].value if k in m else None for m in latest]
        for k in sorted({k for m in latest for k in m})
    }
    differs = [
        name
        for name, values in (
            ("status", [status_text(i) for i in infos]),
            ("duration", [duration_text(i) for i in infos]),
        )
        if _differ(values)
    ]
    differs += [f"hyperparameters.{k}" for k, v in hyperparameters.items() if _differ(v)]
    differs += [f"metrics.{k}" for k, v in metrics.items() if _differ(v)]
    return {
        "runs": infos,
        "hyperparameters": hyperparameters,
        "metrics": metrics,
        "differs": differs,
    }


def _print_compared(compared: dict[str, Any]) -> None:
    infos: list[RunInfo] = compared["runs"]
    differs = set(compared["differs"])
    blank = ("",) * len(infos)
    rows: list[tuple[str, ...]] = []
    bold: set[int] = set()

    def add(name: str, label: str, cells: Sequence[str]) -> None:
        if name in differs:
            bold.add(len(rows))
        rows.append(("*" if name in differs else "", label, *cells))

    add("status", "status", [status_text(i) for i in infos])
    add("duration", "duration", [duration_text(i) for i in infos])
    for section, title, show in (
        ("hyperparameters", "hyperparameters", str),
        ("metrics", "metrics (latest)", format_number),
    ):
        if compared[section]:
            rows.append(("", title, *blank))
        for key, values in compared[section].items():
            cells = ["-" if v is None else show(v) for v in values]
            add(f"{section}.{key}", f"  {key}", cells)
    print_table(("", "", *(_label(i) for i in infos)), rows, bold=bold)


@runs.command("compare")
def runs_compare(
    refs: Annotated[list[str], typer.Argument(metavar="RUN", help="Two or more runs.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Runs side by side: status, duration, every hyperparameter and latest metric; rows
    that differ are marked '*' (and bold on a terminal)."""
    if len(refs) < 2:
        raise typer.BadParameter("give two runs or more", param_hint="RUN")
    with connect(url, home, store) as client:
        found = [client.get_run(ref) for ref in refs]
        compared = _compared(
            [r.info for r in found],
            [r.get_hyperparameters() for r in found],
            [r.get_metrics_latest() for r in found],
        )
    if as_json:
        print_json(compared)
    else:
        _print_compared(compared)


# -- metrics ------------------------------------------------------------------------------
def _spark_chars() -> str:
    """Block characters, unless stdout cannot print them (an ASCII locale)."""
    try:
        BLOCKS.encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return BLOCKS


def _spark(values: Sequence[float], width: int) -> tuple[str, str, str]:
    """(min, sparkline, max) as text."""
    span = finite_range(values)
    if span is None:
        return "-", sparkline(values, width, _spark_chars()), "-"
    return format_number(span[0]), sparkline(values, width, _spark_chars()), format_number(span[1])


_HEAD = ("STEP", "TIME", "VALUE")


def _times(points: list[MetricPoint]) -> list[str]:
    """Each point's time to the second, each second formatted once (points logged in a
    loop share seconds: a million made a timezone-aware datetime each took seconds)."""
    seen: dict[int, str] = {}
    out = []
    for p in points:
        second = p.timestamp // 1000
        text = seen.get(second)
        if text is None:
            text = seen[second] = format_time(second * 1000)
        out.append(text)
    return out


def _print_points(points: list[MetricPoint]) -> None:
    """STEP, TIME, VALUE, aligned. Not print_table: a rich table of 10,000 rows takes
    seconds, and a history can hold millions."""
    columns = (
        [str(p.step) for p in points],
        _times(points),
        [format_number(p.value) for p in points],
    )
    widths = [
        max(len(title), *map(len, cells)) for title, cells in zip(_HEAD, columns, strict=True)
    ]
    head = "  ".join(title.ljust(w) for title, w in zip(_HEAD, widths, strict=True)).rstrip()
    typer.echo(typer.style(head, bold=True))
    chunk = 10_000  # lines a write
    for start in range(0, len(points), chunk):
        lines = (
            f"{s.ljust(widths[0])}  {t.ljust(widths[1])}  {v}"
            for s, t, v in zip(*(c[start : start + chunk] for c in columns), strict=True)
        )
        typer.echo("\n".join(lines))


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """CSV on stdout; floats as Python writes them (every digit, nan, inf)."""
    chunk = 10_000
    for start in range(0, max(len(rows), 1), chunk):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if start == 0:
            writer.writerow(header)
        writer.writerows(rows[start : start + chunk])
        typer.echo(out.getvalue(), nl=False)


@runs.command("metrics")
def runs_metrics(
    run: RunIdArgument,
    key: Annotated[
        str | None,
        typer.Argument(metavar="KEY", help="A metric; without it, every metric of the run."),
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV with a header.")] = False,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """A metric's history (step, time, value) under a sparkline of it; without KEY, each
    metric's latest value, step and a sparkline."""
    if as_csv and as_json:
        raise typer.BadParameter("give --csv or --json, not both", param_hint="--csv")
    with connect(url, home, store) as client:
        found = client.get_run(run)
        info = found.info
        if key is None:
            latest = found.get_metrics_latest()
            wanted = not (as_json or as_csv)  # only the table shows the histories
            histories = {k: found.get_metric_history(k) for k in sorted(latest) if wanted}
        else:
            points = found.get_metric_history(key)
            if not points:
                keys = ", ".join(sorted(found.get_metrics_latest())) or "none"
                raise NotFound(
                    f"no metric {key!r} on run {_label(info)} (its metrics: {keys})",
                    id=info.id,
                    key=key,
                )
    if key is None:
        _print_latest(info, latest, histories, as_json=as_json, as_csv=as_csv)
    elif as_json:
        print_json({"run": info.id, "key": key, "points": points})
    elif as_csv:
        _csv(("step", "timestamp", "value"), points)
    else:
        values = [p.value for p in points]
        low, line, high = _spark(values, WIDTH)
        typer.echo(f"{key} of run {_label(info)}: {len(points)} points")
        typer.echo(f"{line}  min {low}  max {high}")
        typer.echo("")
        _print_points(points)


def _print_latest(
    info: RunInfo,
    latest: dict[str, MetricPoint],
    histories: dict[str, list[MetricPoint]],
    *,
    as_json: bool,
    as_csv: bool,
) -> None:
    keys = sorted(latest)
    if as_json:
        print_json({"run": info.id, "metrics": {k: latest[k] for k in keys}})
        return
    if as_csv:
        _csv(("key", "step", "timestamp", "value"), [(k, *latest[k]) for k in keys])
        return
    if not keys:
        typer.echo(f"no metrics on run {_label(info)}")
        return
    typer.echo(f"run {_label(info)}")
    rows = []
    for k in keys:
        history = [p.value for p in histories[k]]
        low, line, high = _spark(history, WIDTH // 2)
        point = latest[k]
        rows.append(
            (k, format_number(point.value), str(point.step), str(len(history)), low, line, high)
        )
    print_table(("KEY", "LATEST", "STEP", "POINTS", "MIN", "HISTORY", "MAX"), rows)
