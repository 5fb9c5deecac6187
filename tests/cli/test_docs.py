"""docs/cli.md documents every command the typer app registers, with each of its options
and arguments."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

from cairn.cli import app

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def leaf_commands(command: Any, path: tuple[str, ...] = ("cairn",)) -> Iterator[tuple[str, Any]]:
    """(``cairn group command``, command) for every command that runs something."""
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in subcommands.items():
            yield from leaf_commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def sections(page: str) -> dict[str, str]:
    """The text under each ``## `cairn ...` `` heading, up to the next heading."""
    found: dict[str, str] = {}
    parts = re.split(r"^## ", page, flags=re.MULTILINE)
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        match = re.fullmatch(r"`(cairn[^`]*)`", title.strip())
        if match:
            found[match.group(1)] = body
    return found


def test_the_tree_is_walked() -> None:
    names = [name for name, _ in leaf_commands(typer.main.get_command(app))]
    assert "cairn runs show" in names and "cairn server" in names
    assert len(names) == len(set(names)) >= 10


def test_every_command_option_and_argument_is_documented() -> None:
    documented = sections(PAGE.read_text(encoding="utf-8"))
    missing: list[str] = []
    for name, command in leaf_commands(typer.main.get_command(app)):
        body = documented.get(name)
        if body is None:
            missing.append(f"{name}: no section '## `{name}`'")
            continue
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            if param.param_type_name == "argument":
                words = [param.metavar or param.name.upper()]
            else:
                words = [*param.opts, *param.secondary_opts]
            missing += [f"{name}: {word}" for word in words if f"{word}" not in body]
    assert not missing, "not in docs/cli.md:\n" + "\n".join(missing)


def test_the_global_options_are_documented() -> None:
    page = PAGE.read_text(encoding="utf-8")
    for param in typer.main.get_command(app).params:
        for flag in param.opts:
            assert f"`cairn {flag}`" in page or f"`{flag}`" in page, flag
