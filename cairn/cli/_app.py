"""The command tree, and the one place errors become exit statuses.

A CairnError (or an OSError: a missing file, a full disk) prints ``error: <message>`` on
stderr and exits 1, without a traceback; a usage error exits 2 (click's rule).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

# Importing these adds their commands to the groups (_search: runs find, runs count;
# _roles: projects roles, grant, revoke).
import cairn.cli._roles
import cairn.cli._runs
import cairn.cli._search  # noqa: F401
from cairn.cli import _artifacts, _auth, _datasets, _db, _demo, _entities, _gc, _repos, _server
from cairn.cli._common import fail
from cairn.core.errors import CairnError

__all__ = ["app", "run"]


class CairnGroup(TyperGroup):
    """The root group: every command runs inside its ``invoke``, so errors are caught here."""

    def invoke(self, ctx: Any) -> Any:  # typer's (vendored click) Context
        try:
            return super().invoke(ctx)
        except CairnError as exc:
            fail(str(exc))
        except BrokenPipeError:
            # Output piped into `head` that stopped reading: not an error worth a word.
            # stdout goes to /dev/null so the interpreter's own flush at exit stays quiet.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(141) from None  # 128 + SIGPIPE, as a shell reports it
        except OSError as exc:  # a missing file, a full disk: no traceback either
            fail(f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc))


app = typer.Typer(
    cls=CairnGroup,
    name="cairn",
    help="Cairn: versioning and metadata for machine-learning models.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,  # a bug's traceback stays plain; no locals printed
)


def _version(value: bool) -> None:
    if value:
        # The installed distribution's version (``cairn.__version__`` sits above the layers).
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"cairn {version('cairn')}")
        except PackageNotFoundError:
            typer.echo("cairn (version unknown: not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Cairn: versioning and metadata for machine-learning models.

    Commands read a Cairn server (--url, or CAIRN_URL) or an embedded store
    (--home / CAIRN_HOME, default ./.cairn; or --store / CAIRN_STORE_URI).
    """


app.command("server")(_server.server)
app.add_typer(_entities.projects, name="projects")
app.add_typer(_entities.experiments, name="experiments")
app.add_typer(_entities.runs, name="runs")
app.add_typer(_artifacts.artifacts, name="artifacts")
app.add_typer(_repos.repos, name="repos")
app.add_typer(_datasets.datasets, name="datasets")
_entities.runs.command("restore")(_repos.runs_restore)
app.add_typer(_db.db, name="db")
app.command("gc")(_gc.gc)
app.command("fsck")(_gc.fsck)
app.add_typer(_auth.users, name="users")
app.add_typer(_auth.tokens, name="tokens")
app.add_typer(_auth.audit, name="audit")
app.command("demo")(_demo.demo)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: the process arguments); the exit status."""
    try:
        app(args=None if argv is None else list(argv))
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        typer.echo(exc.code, err=True)
        return 1
    return 0
