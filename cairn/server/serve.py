"""Running the server: uvicorn (uvloop + httptools) serving ``create_app(settings)``.

One worker serves the app built here. N workers are N processes that uvicorn spawns; each
rebuilds its settings from the ``CAIRN_*`` environment the parent sets from the settings
table (:func:`settings_environment`) and builds its own app (:func:`app_from_environment`).

:class:`BufferedHttpProtocol` lets the event loop read each connection into a buffer of
ours that uvicorn's httptools protocol parses in place: an upload's bytes reach the app
with fewer copies (measured: about 25% faster 256 MiB uploads, a third less server CPU).
It is the one piece of uvicorn's machinery Cairn replaces; each other one was measured
against uvicorn's own way and dropped (docs/architecture.md).

Logs are one JSON object a line on stderr (python-json-logger); the access log
(:class:`AccessLog`) adds method, path, status and duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

import uvicorn
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import HANDLED_SIGNALS
from uvicorn.supervisors import Multiprocess

from cairn.core.settings import SETTINGS, Settings, settings_from

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from cairn.service import TrackingService

__all__ = [
    "APP_FACTORY",
    "AccessLog",
    "app_from_environment",
    "build_app",
    "json_formatter",
    "logging_config",
    "serve",
    "settings_environment",
]

APP_FACTORY = "cairn.server.serve:app_from_environment"
PROTOCOL = "cairn.server.serve:BufferedHttpProtocol"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
STARTUP_FAILURE = 3  # uvicorn's exit code for a worker that never started serving

access_log = logging.getLogger("cairn.access")


# -- settings across processes -------------------------------------------------------------
def settings_environment(settings: Settings) -> dict[str, str]:
    """Every setting as its ``CAIRN_*`` variable, so ``settings_from`` rebuilds them exactly
    (an unset optional setting becomes the empty string, which reads back as unset)."""
    return {
        setting.env: "" if (value := getattr(settings, setting.name)) is None else str(value)
        for setting in SETTINGS
    }


def app_from_environment(environ: Mapping[str, str] | None = None) -> ASGIApp:
    """The app of one worker process, from the ``CAIRN_*`` variables its parent set.

    Called by uvicorn in a worker (no argument), it also makes the worker shut down
    gracefully if its parent dies without stopping it (a SIGKILL), instead of serving on
    as an orphan that holds the port."""
    if environ is None:
        _stop_when_orphaned()
    return build_app(settings_from(os.environ if environ is None else environ))


def _stop_when_orphaned(interval: float = 1.0) -> None:
    import multiprocessing

    # The supervisor's pid, as multiprocessing recorded it at spawn: the parent may be gone
    # already by the time a slow worker gets here.
    supervisor = multiprocessing.parent_process()
    parent = supervisor.pid if supervisor is not None else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="cairn-parent-watch", daemon=True).start()


def build_app(settings: Settings, service: TrackingService | None = None) -> ASGIApp:
    """``create_app(settings, service)`` with the access log around it."""
    from cairn.server.app import create_app

    return AccessLog(create_app(settings, service))


# -- connections ---------------------------------------------------------------------------
class _UncopiedBodies(HttpToolsProtocol):
    """uvicorn's httptools protocol, handing request body pieces on uncopied."""

    def on_body(self, body: bytes) -> None:
        # uvicorn appends every piece of a body to a bytearray and copies that again into
        # ``bytes`` for the app: two copies of each uploaded byte on the event loop, a
        # third of its time in an upload. A piece that arrives while none is waiting is
        # kept as it is (``bytes(piece)`` is then the piece itself); the rest goes the
        # usual way.
        cycle = self.cycle
        if cycle.body or cycle.response_complete or self.parser.should_upgrade():
            if not isinstance(cycle.body, bytearray):  # bytes, from the branch below
                # A second piece before the app took the first: from here the usual
                # bytearray, which grows in place (``bytes +=`` would copy all it holds
                # for every piece: quadratic in a body of many small chunks).
                cycle.body = bytearray(cycle.body)
            super().on_body(body)
            return
        cycle.body = body  # type: ignore[assignment]  # read only through bytes()
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()


class BufferedHttpProtocol(asyncio.BufferedProtocol):
    """uvicorn's httptools protocol fed from a read buffer of ours.

    uvicorn's protocol is a plain ``asyncio.Protocol``: uvloop reads into its own 256 KiB
    buffer and copies each read into new ``bytes`` for it (asyncio's own loop makes new
    ``bytes`` of 256 KiB for each read). Here the loop reads
    straight into one bigger buffer per event-loop thread, which the parser reads in
    place (it copies what it keeps, and nothing else holds the buffer), so an upload's
    bytes are copied once fewer and arrive in fewer, bigger reads. It pays only with
    :class:`_UncopiedBodies` (uvicorn's own ``on_body`` copies each piece twice more).
    Measured on 256 MiB uploads, in the same runs: both together 1,102-1,165 MB/s at about
    0.21 s of server CPU; this buffer with uvicorn's ``on_body`` 615-758 MB/s at 0.38 s;
    uvicorn's plain protocol about 950 MB/s (median of ten) at 0.30 s.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._http = _UncopiedBodies(**kwargs)

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer: memoryview | None = getattr(_read_buffers, "buffer", None)
        if buffer is None:
            buffer = _read_buffers.buffer = memoryview(bytearray(_READ_BUFFER))
        return buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._http.data_received(_read_buffers.buffer[:nbytes])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._http.connection_made(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self._http.connection_lost(exc)

    def eof_received(self) -> None:  # None: the transport closes itself
        self._http.eof_received()

    def pause_writing(self) -> None:
        self._http.pause_writing()

    def resume_writing(self) -> None:
        self._http.resume_writing()


_READ_BUFFER: Final = 1 << 20
_read_buffers = threading.local()  # one per event loop: reads are handled one at a time


# -- logging -------------------------------------------------------------------------------
def json_formatter() -> logging.Formatter:
    """python-json-logger's formatter: one JSON object per record with time (UTC, ISO 8601
    to the millisecond), level, logger, message and pid first, then whatever the call
    passed in ``extra``; a traceback goes in ``exception``."""
    return JsonFormatter(
        ["time", "levelname", "name", "message", "process"],
        rename_fields={
            "levelname": "level",
            "name": "logger",
            "process": "pid",
            "exc_info": "exception",
            "stack_info": "stack",
        },
        timestamp="time",
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI-coloured copy
        json_ensure_ascii=False,
        json_default=_json_default,
    )


def _json_default(value: object) -> object:
    if isinstance(value, dt.datetime):  # the record's time: 2026-01-02T03:04:05.678Z
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def logging_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` table: every log line is JSON on stderr."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    chosen = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "cairn.server.serve.json_formatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "cairn": {"level": chosen, "propagate": True},
            "uvicorn": {"level": chosen, "propagate": True},
            "uvicorn.error": {"level": chosen, "propagate": True},
            # Replaced by cairn.access, which knows the duration.
            "uvicorn.access": {"level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


class AccessLog:
    """ASGI middleware: one ``cairn.access`` line per HTTP request, after the response
    is sent (or failed), with method, path, status and duration in milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                duration = round((time.perf_counter() - started) * 1000, 3)
                _log_access(scope, status, duration)


def _log_access(scope: Scope, status: int, duration: float) -> None:
    client = scope.get("client")
    method, path = scope["method"], scope["path"]
    access_log.info(
        "%s %s %d %.1f ms",
        method,
        path,
        status,
        duration,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration,
            "client": f"{client[0]}:{client[1]}" if client else None,
        },
    )


# -- running -------------------------------------------------------------------------------
def serve(settings: Settings, *, log_level: str = "info", loop: str = "auto") -> bool:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (in-flight requests finish,
    then the store closes). False if the server could not start (the log says why).

    One worker: the store opens here first, so a store that cannot be used raises its
    CairnError before anything listens. More workers: each opens the store as it starts;
    this sets the ``CAIRN_*`` variables of this process, which the workers inherit.
    ``loop`` is uvicorn's: "auto" (uvloop where installed), "uvloop" or "asyncio".
    """
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": loop,
        "http": PROTOCOL,
        "lifespan": "on",
        "log_config": logging_config(log_level),
        "access_log": False,  # AccessLog writes it
        "server_header": False,
        "timeout_graceful_shutdown": 10,
        # A worker answers the parent's health pings only once it has imported the app
        # (seconds on a busy machine); uvicorn's 5 s default kills and respawns slow
        # starters, over and over.
        "timeout_worker_healthcheck": 30,
    }
    if settings.ssl_certfile:  # HTTPS of its own (else behind a TLS proxy, or plain HTTP)
        options["ssl_certfile"] = settings.ssl_certfile
        options["ssl_keyfile"] = settings.ssl_keyfile
    try:
        if settings.workers == 1:
            return _serve_one(settings, options)
        return _serve_workers(settings, options)
    except SystemExit as exc:  # uvicorn's way of saying it could not bind or start
        if exc.code == STARTUP_FAILURE:
            return False
        raise


def _serve_one(settings: Settings, options: dict[str, Any]) -> bool:
    from cairn.service import open_service

    service = open_service(settings, server=True)
    try:
        server = uvicorn.Server(uvicorn.Config(build_app(settings, service), **options))
        with _signals_end_the_serving():
            server.run()
    finally:
        service.close()
    return server.started


@contextlib.contextmanager
def _signals_end_the_serving() -> Iterator[None]:
    """SIGTERM and SIGINT end ``server.run()`` and nothing more, so that the store closes
    and ``cairn server`` exits 0: the graceful shutdown *is* the answer to the signal.

    uvicorn handles both while it serves, then restores the handlers it found and raises
    the signal again, so that their default action ends the process (SIGTERM would kill it
    before the store is closed). The handlers it finds here take that second signal and do
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only: nothing to do
        return
    found = {sig: signal.signal(sig, _ignore) for sig in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in found.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The signal uvicorn raises again after its graceful shutdown: already answered."""


def _serve_workers(settings: Settings, options: dict[str, Any]) -> bool:
    os.environ.update(settings_environment(settings))
    config = uvicorn.Config(APP_FACTORY, factory=True, workers=settings.workers, **options)
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        # uvicorn binds with protocol 0, so the asyncio event loop does not turn Nagle's
        # algorithm off on the connections it accepts (uvicorn#3149): each response on a
        # kept-alive connection would wait ~40 ms for the client's delayed ACK. Named as
        # TCP, the socket gets TCP_NODELAY from the loop itself (uvloop sets it anyway).
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    try:
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
    finally:
        sock.close()
    return not any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
