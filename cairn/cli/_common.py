"""What the commands share: flags from the settings table, opening a client, output."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Container, Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from cairn.core.errors import NotFound
from cairn.core.settings import SETTINGS, Setting, settings_from

if TYPE_CHECKING:
    from rich.console import Console

    from cairn.client import Client, Project

__all__ = [
    "HomeOption",
    "JsonOption",
    "RunIdArgument",
    "StoreOption",
    "UrlOption",
    "connect",
    "fail",
    "find_in_project",
    "format_duration",
    "format_size",
    "format_time",
    "group",
    "print_json",
    "print_table",
    "setting_option",
    "shorten",
    "stderr_console",
]

_SETTINGS: dict[str, Setting] = {s.name: s for s in SETTINGS}


def _parser(setting: Setting) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    return parse


def setting_option(name: str, *flags: str, metavar: str | None = None) -> Any:
    """A flag for the setting ``name`` of the settings table: its help, its parser, its
    environment variable. The flag's default is None, so the environment (then the table's
    default) applies unless the flag is given."""
    setting = _SETTINGS[name]
    default = "unset" if setting.default is None else setting.default
    return typer.Option(
        *flags,
        help=f"{setting.doc.replace('`', '')} Env: {setting.env}. Default: {default}.",
        parser=_parser(setting),
        metavar=metavar,
        show_default=False,
    )


UrlOption = Annotated[str | None, setting_option("url", "--url", metavar="URL")]
HomeOption = Annotated[str | None, setting_option("home", "--home", metavar="PATH")]
StoreOption = Annotated[str | None, setting_option("store_uri", "--store", metavar="URL")]
# Plain text: Client.get_run takes an id, a short id or PROJECT/EXPERIMENT/NAME and says
# what is wrong with anything else.
RunIdArgument = Annotated[
    str,
    typer.Argument(
        metavar="RUN", help="A run: its id, short id (8 hex digits) or PROJECT/EXPERIMENT/NAME."
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")
]


def group(help: str) -> typer.Typer:
    """A command group, formatted like the rest (plain click help: quick, no markup)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


CLI_RETRY_TIMEOUT = 10.0


class WarningLine(logging.Handler):
    """The client's warnings (a server it keeps retrying) as ``warning: <message>`` on
    stderr. Errors are left out: the one that ends the command is raised, and printed
    by :func:`fail`. Being a handler of the ``cairn`` logger, it also keeps Python's
    last-resort handler from printing the same lines again."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.addFilter(lambda record: record.levelno < logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # Looked up at each line: click's test runner swaps sys.stderr per command.
            typer.echo(f"warning: {record.getMessage()}", err=True)
        except Exception:
            self.handleError(record)


def show_warnings() -> None:
    """Install :class:`WarningLine` on the ``cairn`` logger, once per process."""
    logger = logging.getLogger("cairn")
    if not any(isinstance(handler, WarningLine) for handler in logger.handlers):
        logger.addHandler(WarningLine())


def connect(
    url: str | None, home: str | None, store: str | None, *, existing: bool = True
) -> Client:
    """A client on the server at ``url``, or on the embedded store (``home``/``store``).

    Flags win over ``CAIRN_*`` variables; ``--home``/``--store`` win over ``CAIRN_URL``.
    With ``existing``, an embedded SQLite store must already be there: a read does not
    leave an empty ``.cairn`` folder behind.
    """
    if url is not None and (home is not None or store is not None):
        raise typer.BadParameter("give --url, or --home/--store, not both", param_hint="--url")
    settings = settings_from(os.environ, url=url, home=home, store_uri=store)
    remote = settings.url is not None and home is None and store is None
    if remote:
        show_warnings()
    if remote and "CAIRN_RETRY_TIMEOUT" not in os.environ:
        # A person at a prompt should hear of a down server in seconds, not minutes.
        settings = settings.replace(retry_timeout=CLI_RETRY_TIMEOUT)
    if not remote:
        settings = settings.replace(url=None)
        from cairn.service.admin import check_home

        # A missing or empty cairn.db beside objects is an error (check_home); with nothing
        # there at all, a read says so and makes nothing.
        if not check_home(settings) and existing:
            raise NotFound(
                f"no Cairn store in {settings.home!r} yet (no cairn.db): give --home, --store "
                "or --url, or set CAIRN_HOME, CAIRN_STORE_URI or CAIRN_URL "
                "(`cairn demo` makes one to look at)",
                home=settings.home,
            )
    from cairn.client import Client

    return Client(settings=settings)


def fail(message: str) -> NoReturn:
    """``error: <message>`` on stderr, exit status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


# -- output --------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # NamedTuple
        return {k: _jsonable(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """JSON on stdout: info values as objects, NaN and infinities as Python writes them
    (the server's convention for metric values)."""
    typer.echo(json.dumps(_jsonable(data), indent=2, ensure_ascii=False))


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    header: bool = True,
    bold: Container[int] = (),
) -> None:
    """A rich table on stdout, one line per row at its natural width (a terminal narrower
    than that wraps lines rather than columns), no trailing spaces. Cells are text, never
    markup: a name like ``[bold]`` prints as itself. The rows numbered in ``bold`` are bold
    on a terminal (styles are dropped when the output is piped)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False, show_header=header)
    for column in columns:
        table.add_column(column, no_wrap=True)
    for i, row in enumerate(rows):
        table.add_row(*(Text(cell) for cell in row), style="bold" if i in bold else None)
    console = Console(highlight=False, markup=False)
    wide = console.options.update_width(1_000_000)
    console = Console(
        highlight=False,
        markup=False,
        width=max(console.width, console.measure(table, options=wide).maximum),
    )
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        typer.echo(line.rstrip())


def shorten(text: str, limit: int = 60) -> str:
    """One line of at most ``limit`` characters (tables; JSON output keeps it whole)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def format_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    when = dt.datetime.fromtimestamp(ms / 1000).astimezone()
    return when.strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def format_size(size: int) -> str:
    """Bytes in decimal units: 999 B, 1.2 kB, 3.4 MB, ..."""
    value, unit = float(size), "B"
    for bigger in ("kB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


T = TypeVar("T")


def find_in_project(
    client: Client, path: str, what: str, example: str, lookup: Callable[[Project, str], T]
) -> T:
    """What ``PROJECT/NAME`` names (``lookup(project, name)``, ``NotFound`` if nothing).
    Names may hold '/' themselves: every split is tried, left to right, and the first that
    names something wins."""
    splits = [
        (path[:i], path[i + 1 :])
        for i, ch in enumerate(path)
        if ch == "/" and 0 < i < len(path) - 1
    ]
    hint = f"PROJECT/{what.upper()}"
    if not splits:
        raise typer.BadParameter(f"expected {hint} (e.g. {example}), got {path!r}", param_hint=hint)
    missing: NotFound | None = None
    for project_name, name in splits:
        try:
            return lookup(client.get_project(project_name), name)
        except NotFound as exc:
            missing = missing or exc
    assert missing is not None
    raise missing
