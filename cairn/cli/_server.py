"""``cairn server``: serve the REST API with uvicorn."""

from __future__ import annotations

import enum
import os
from typing import Annotated

import typer

from cairn.cli._common import HomeOption, StoreOption, fail, setting_option
from cairn.core.settings import settings_from

__all__ = ["server"]

# The server's dependencies (fastapi, uvicorn, ...): missing, they name the extra to install.
_SERVER_EXTRA = frozenset({"fastapi", "starlette", "pydantic", "uvicorn", "httptools", "uvloop"})


class LogLevel(enum.StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"


def server(
    host: Annotated[str | None, setting_option("host", "--host", metavar="ADDRESS")] = None,
    port: Annotated[int | None, setting_option("port", "--port", metavar="PORT")] = None,
    workers: Annotated[int | None, setting_option("workers", "--workers", metavar="N")] = None,
    home: HomeOption = None,
    store: StoreOption = None,
    objects_uri: Annotated[
        str | None, setting_option("objects_uri", "--objects-uri", metavar="URI")
    ] = None,
    s3_endpoint_url: Annotated[
        str | None, setting_option("s3_endpoint_url", "--s3-endpoint-url", metavar="URL")
    ] = None,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth",
            help="Require an API token on every route but /api/v1/health (CAIRN_AUTH=on). "
            "Make the first admin and its token with `cairn users create` and `cairn tokens "
            "create` on the same store.",
        ),
    ] = False,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve a non-loopback --host without authentication: anyone who can reach "
            "the port may read, change and delete everything. Only on a trusted network.",
        ),
    ] = False,
    ssl_certfile: Annotated[
        str | None, setting_option("ssl_certfile", "--ssl-certfile", metavar="PEM")
    ] = None,
    ssl_keyfile: Annotated[
        str | None, setting_option("ssl_keyfile", "--ssl-keyfile", metavar="PEM")
    ] = None,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            "--log-level",
            metavar="LEVEL",
            help="Least severe log records written: critical, error, warning, info or debug.",
        ),
    ] = LogLevel.INFO,
) -> None:
    """Run the REST server until SIGTERM or Ctrl-C (then shut down gracefully, exit 0).

    Logs are JSON lines on stderr; GET /api/v1/health answers once it is up.
    """
    settings = settings_from(
        os.environ,
        host=host,
        port=port,
        workers=workers,
        home=home,
        store_uri=store,
        objects_uri=objects_uri,
        s3_endpoint_url=s3_endpoint_url,
        auth=True if auth else None,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise typer.BadParameter(
            "give both --ssl-certfile and --ssl-keyfile (or neither)", param_hint="--ssl-keyfile"
        )
    try:
        from cairn.server.serve import serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in _SERVER_EXTRA:
            fail(
                f"the server needs the server extra ({exc.name} is missing): "
                "pip install 'cairn[server]'"
            )
        raise
    from cairn.server.auth import check_exposure

    refusal = check_exposure(settings, insecure_no_auth)
    if refusal is not None:
        fail(refusal)
    if not serve(settings, log_level=log_level.value):
        fail("the server did not start (the log above says why)")
