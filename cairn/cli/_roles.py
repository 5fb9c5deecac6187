"""``cairn projects roles|grant|revoke``: who may read, write or own a project
(docs/roles.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from cairn.cli._common import (
    HomeOption,
    JsonOption,
    StoreOption,
    UrlOption,
    connect,
    format_time,
    print_json,
    print_table,
)
from cairn.cli._entities import projects
from cairn.core.roles import ROLE_NAMES, RoleInfo, role_name

__all__ = ["projects_grant", "projects_revoke", "projects_roles"]

ProjectArgument = Annotated[str, typer.Argument(metavar="PROJECT", help="The project's name.")]
UserArgument = Annotated[str, typer.Argument(metavar="USER", help="A user's name.")]


def _row(info: RoleInfo) -> dict[str, object]:
    return {
        "user": info.user,
        "role": role_name(info.role),
        "granted_at": info.granted_at,
        "granted_by": info.granted_by,
    }


@projects.command("roles")
def projects_roles(
    project: ProjectArgument,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List who holds which role in a project (its owners and admins)."""
    with connect(url, home, store) as client:
        found = client.get_project(project).roles()
    if as_json:
        print_json([_row(r) for r in found])
        return
    if not found:
        typer.echo("no roles")
        return
    print_table(
        ("USER", "ROLE", "GRANTED", "BY"),
        [(r.user, role_name(r.role), format_time(r.granted_at), r.granted_by) for r in found],
    )


@projects.command("grant")
def projects_grant(
    project: ProjectArgument,
    user: UserArgument,
    role: Annotated[str, typer.Argument(metavar="ROLE", help=f"One of {', '.join(ROLE_NAMES)}.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a user a role in a project, replacing the one it held."""
    with connect(url, home, store) as client:
        info = client.get_project(project).grant(user, role)
    if as_json:
        print_json(_row(info))
        return
    typer.echo(f"{info.user} is now a {role_name(info.role)} of {project}")


@projects.command("revoke")
def projects_revoke(
    project: ProjectArgument,
    user: UserArgument,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Take away a user's role in a project."""
    with connect(url, home, store) as client:
        client.get_project(project).revoke(user)
    typer.echo(f"{user} holds no role in {project} now")
