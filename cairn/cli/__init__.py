"""The ``cairn`` command line: thin commands over ``cairn.Client`` (typer + rich).

Importing this package is cheap; the command tree is built on first use, and each command
imports what it needs (the client, the server) only when it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typer import Typer

    app: Typer

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 error, 2 usage error)."""
    from cairn.cli._app import run

    return run(argv)


def __getattr__(name: str) -> Any:
    if name == "app":
        from cairn.cli._app import app

        return app
    raise AttributeError(f"module 'cairn.cli' has no attribute {name!r}")
