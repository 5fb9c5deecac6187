"""Running the server: uvicorn (uvloop + httptools) serving ``create_app(settings)``.

One worker serves the app built here. N workers are N processes that uvicorn spawns; each
rebuilds its settings from the ``CAIRN_*`` environment the parent sets from the settings
table (:func:`settings_environment`) and builds its own app (:func:`app_from_environment`).

Every accepted connection gets ``TCP_NODELAY``: uvicorn's multi-worker listening socket is
made without ``IPPROTO_TCP``, so asyncio's event loop skips Nagle's switch-off on the sockets
it accepts, and each response on a keep-alive connection then waits ~40 ms for the client's
delayed ACK (uvloop happens to set it). :class:`NoDelayHttpToolsProtocol` sets it on every
connection, whatever the loop, and writes through a :class:`CoalescingTransport`, so that a
response's head and body leave in one ``send()``, not two. :class:`BufferedHttpProtocol`
wraps it so that the event loop reads into our buffer, and a request body reaches the app
with one copy instead of three (uploads: about a third less event-loop time).

Logs are one JSON object a line on stderr (:class:`JsonFormatter`); the access log
(:class:`AccessLog`) adds method, path, status and duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import uvicorn
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
    "CoalescingTransport",
    "JsonFormatter",
    "NoDelayHttpToolsProtocol",
    "app_from_environment",
    "build_app",
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
class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with Nagle's algorithm off on every connection, writing
    through a :class:`CoalescingTransport`, and handing request bodies on uncopied."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # the peer may be gone already
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(CoalescingTransport(transport, self.loop))

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
    """:class:`NoDelayHttpToolsProtocol` fed from a read buffer of ours.

    uvicorn's protocol is a plain ``asyncio.Protocol``: uvloop reads into its own 256 KiB
    buffer and copies each read into new ``bytes`` for it (asyncio's own loop makes new
    ``bytes`` of 256 KiB for each read). Here the loop reads
    straight into one bigger buffer per event-loop thread, which the parser reads in
    place (it copies what it keeps, and nothing else holds the buffer), so an upload's
    bytes are copied once fewer and arrive in fewer, bigger reads.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._http = NoDelayHttpToolsProtocol(**kwargs)

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


class CoalescingTransport(asyncio.Transport):
    """A connection's transport that holds a small write back until the next write joins
    it, or until the event loop's next turn, whichever comes first.

    uvicorn writes a response's status line and headers, then its body, each with its own
    ``write``, and each is a ``send()`` system call (with Nagle off, two packets): about a
    sixth of the server's CPU time on a small JSON request. Held back, the head leaves with
    the body in one. Nothing waits longer than the current turn of the loop (a response
    without a body, a ``100 Continue``), and at most one small write is held, so a
    streamed body is neither delayed nor piled up in memory.
    """

    HOLD_BELOW = 16 * 1024  # a response head, or a small chunk; larger writes go at once

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held, self._held = self._held, None
        if held is None:
            if len(data) >= self.HOLD_BELOW:
                self._transport.write(data)
            elif data:
                self._held = bytes(data)
                self._loop.call_soon(self._flush)
        elif len(data) < self.HOLD_BELOW:
            self._transport.write(held + data)
        else:  # not worth copying a large body to save a call
            self._transport.write(held)
            self._transport.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()


# -- logging -------------------------------------------------------------------------------
# Fields of every LogRecord (and the hidden ones): what is left of a record's __dict__ is
# what the call passed in ``extra``.
_NOT_EXTRA = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, pid, and
    whatever the call passed in ``extra``; an exception's traceback goes in ``exception``."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _NOT_EXTRA and key[0] != "_":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _encode(entry)

    def _time(self, created: float) -> str:
        """E.g. 2026-01-02T03:04:05.678Z; the part up to the second is made once a second
        (an access log writes many lines a second)."""
        second = int(created)
        micros = round((created - second) * 1_000_000)  # as datetime rounds it
        if micros == 1_000_000:
            second, micros = second + 1, 0
        if second != self._second:
            when = dt.datetime.fromtimestamp(second, dt.UTC)
            self._second, self._second_text = second, when.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{micros // 1000:03d}Z"


def logging_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` table: every log line is JSON on stderr."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    chosen = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "cairn.server.serve.JsonFormatter"}},
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
    # The record is made here rather than by access_log.info(), which would walk the stack
    # to find its caller: a third of the cost of a line, for a place that never changes.
    record = access_log.makeRecord(
        access_log.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %d %.1f ms",
        (method, path, status, duration),
        None,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration,
            "client": f"{client[0]}:{client[1]}" if client else None,
        },
    )
    access_log.handle(record)


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
        server = _Server(uvicorn.Config(build_app(settings, service), **options))
        server.run()
    finally:
        service.close()
    return server.started


def _serve_workers(settings: Settings, options: dict[str, Any]) -> bool:
    os.environ.update(settings_environment(settings))
    config = uvicorn.Config(APP_FACTORY, factory=True, workers=settings.workers, **options)
    sock = config.bind_socket()
    try:
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
    finally:
        sock.close()
    return not any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)


class _Server(uvicorn.Server):
    """A uvicorn Server that exits normally after the graceful shutdown a signal asked for.

    uvicorn re-raises SIGTERM/SIGINT once it has shut down, so that the default action ends
    the process (exit status -15, or a KeyboardInterrupt). For ``cairn server`` the shutdown
    *is* the answer to the signal: the command returns and exits 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
