"""``cairn users|tokens|audit``: who may use a server with authentication, and what they did.

On a store directly (``--home``/``--store``, as ``cairn db`` works: so the first admin and
its token can be made before any server runs or any token exists), or through a server
(``--url``/``CAIRN_URL``, with an admin's token for users and the audit log).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cairn.cli._common import (
    HomeOption,
    JsonOption,
    StoreOption,
    UrlOption,
    format_time,
    group,
    print_json,
    print_table,
    show_warnings,
)
from cairn.core.auth import parse_duration
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.settings import settings_from

if TYPE_CHECKING:
    from cairn.client._http_auth import HttpAuth
    from cairn.core.auth import TokenInfo
    from cairn.service.auth import AuthService

__all__ = ["audit", "tokens", "users"]

users = group("Users of a server with authentication (cairn server --auth).")
tokens = group("API tokens: what clients send to a server with authentication.")
audit = group("The audit log: every write and every authentication event.")

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        metavar="USER",
        help="Whose tokens (default through a server: your own; on a store: every user's).",
    ),
]


@contextmanager
def _auth(
    url: str | None, home: str | None, store: str | None, *, create: bool = False
) -> Iterator[AuthService | HttpAuth]:
    """The server's auth routes (``--url``/``CAIRN_URL``), or the store's AuthService."""
    if url is not None and (home is not None or store is not None):
        raise typer.BadParameter("give --url, or --home/--store, not both", param_hint="--url")
    settings = settings_from(os.environ, url=url, home=home, store_uri=store)
    if settings.url is not None and home is None and store is None:
        show_warnings()
        from cairn.client._credentials import credentials_path, token_for
        from cairn.client._http_auth import HttpAuth
        from cairn.client._transport import Transport

        token = settings.token or token_for(
            settings.url, credentials_path(settings.credentials_file, os.environ)
        )
        transport = Transport(
            settings.url,
            timeout=settings.request_timeout,
            retry_timeout=min(settings.retry_timeout, 10.0),
            token=token,
        )
        try:
            yield HttpAuth(transport)
        finally:
            transport.close()
        return
    from cairn.service import open_service
    from cairn.service.admin import check_home

    settings = settings.replace(url=None)
    if not check_home(settings) and not create:
        raise NotFound(
            f"no Cairn store in {settings.home!r} yet (no cairn.db): give --home, --store or "
            "--url, or set CAIRN_HOME, CAIRN_STORE_URI or CAIRN_URL",
            home=settings.home,
        )
    service = open_service(settings)
    try:
        yield service.auth
    finally:
        service.close()


# -- users ---------------------------------------------------------------------------------
@users.command("create")
def users_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="May manage users and read the audit log.")
    ] = False,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read a password (for the web UI's login) from the first line of stdin.",
        ),
    ] = False,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Create a user (through a server: admins only). Without --password-stdin the user
    has no password: tokens only."""
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidArgument("password", "stdin held no password")
    with _auth(url, home, store, create=True) as auth:
        made = auth.create_user(name, admin=admin, password=password)
    typer.echo(f"created user {made.name}{' (admin)' if made.admin else ''}")


@users.command("ls")
def users_ls(
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List users (through a server: admins only)."""
    with _auth(url, home, store) as auth:
        found = auth.list_users()
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo("no users", err=True)
        return
    print_table(
        ("NAME", "ADMIN", "PASSWORD", "CREATED", "DISABLED"),
        [
            (
                u.name,
                "yes" if u.admin else "",
                "yes" if u.has_password else "",
                format_time(u.created_at),
                format_time(u.disabled_at) if u.disabled_at else "",
            )
            for u in found
        ],
    )


@users.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")],
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Disable a user: their tokens and password stop working (every server process
    refuses them within CAIRN_AUTH_CACHE_TTL seconds). What they made stays."""
    with _auth(url, home, store) as auth:
        auth.disable_user(name)
    typer.echo(f"disabled user {name}")


# -- tokens --------------------------------------------------------------------------------
def _state(token: TokenInfo) -> str:
    return token.state(int(dt.datetime.now(dt.UTC).timestamp() * 1000))


@tokens.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name for the token.")],
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="USER",
            help="Whose token (through a server: default yourself; another: admins only). "
            "Required on a store.",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="DURATION",
            help="Valid for 30d, 12h, 90m, 2w or a number of seconds (default: until revoked).",
        ),
    ] = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Make an API token and print its secret on stdout: the one time it is shown (the
    store keeps only a hash). Give it to a client as CAIRN_TOKEN or in the credentials
    file."""
    expires_in = None if expires is None else parse_duration(expires, "--expires")
    with _auth(url, home, store) as auth:
        made = auth.create_token(name, user=user, expires_in=expires_in)
    until = format_time(made.info.expires_at) if made.info.expires_at else "until revoked"
    typer.echo(
        f"token {made.info.name!r} of {made.info.user} (valid {until}); shown once, keep it "
        "safe (CAIRN_TOKEN, or ~/.config/cairn/credentials with mode 600):",
        err=True,
    )
    typer.echo(made.secret)


@tokens.command("ls")
def tokens_ls(
    user: UserOption = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List tokens (never their secrets)."""
    with _auth(url, home, store) as auth:
        found = auth.list_tokens(user)
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo("no tokens", err=True)
        return
    print_table(
        ("USER", "NAME", "ID", "STATE", "CREATED", "EXPIRES"),
        [
            (
                t.user,
                t.name,
                t.id,
                _state(t),
                format_time(t.created_at),
                format_time(t.expires_at) if t.expires_at else "never",
            )
            for t in found
        ],
    )


@tokens.command("revoke")
def tokens_revoke(
    token: Annotated[
        str, typer.Argument(metavar="NAME_OR_ID", help="The token's name, or its id.")
    ],
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="USER",
            help="Whose token (default through a server: yours; on a store, without it, "
            "NAME_OR_ID must be the id).",
        ),
    ] = None,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Revoke a token: every server process refuses it within CAIRN_AUTH_CACHE_TTL
    seconds."""
    with _auth(url, home, store) as auth:
        revoked = auth.revoke_token(token, user=user)
    typer.echo(f"revoked token {revoked.name!r} of {revoked.user}")


# -- audit ---------------------------------------------------------------------------------
def _since(text: str) -> int:
    """ms since the epoch: ``1h``/``30d`` ago, or an ISO date or time (local if no zone)."""
    now = dt.datetime.now(dt.UTC)
    try:
        seconds = parse_duration(text, "--since")
    except InvalidArgument:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidArgument(
                "--since", f"must be a duration (1h, 30d) or a date (2026-01-31), got {text!r}"
            ) from None
        if when.tzinfo is None:
            when = when.astimezone()
        return int(when.timestamp() * 1000)
    return int((now.timestamp() - seconds) * 1000)


@audit.command("ls")
def audit_ls(
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="WHEN", help="Only events since: 1h, 30d ago, or a date/time."
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", metavar="USER", help="Only this user's events.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            metavar="PREFIX",
            help="Only actions starting so: auth., auth.login_failed, token., request.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", min=1, help="The newest N events (default 50).")
    ] = 50,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The audit log, newest first (through a server: admins only)."""
    after = None if since is None else _since(since)
    with _auth(url, home, store) as auth:
        found = auth.audit_events(since=after, actor=actor, action=action, limit=limit)
    if as_json:
        print_json(found)
        return
    if not found:
        typer.echo("no events", err=True)
        return
    rows: list[tuple[str, ...]] = []
    for e in found:
        detail: Any = e.detail or ""
        rows.append(
            (
                format_time(e.time),
                e.actor or "-",
                e.action,
                e.target,
                str(e.status),
                e.remote,
                " ".join(f"{k}={v}" for k, v in detail.items()) if detail else "",
            )
        )
    print_table(("TIME", "ACTOR", "ACTION", "TARGET", "STATUS", "FROM", "DETAIL"), rows)
