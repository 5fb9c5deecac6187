"""Request body limits, as pure ASGI middleware: size (no buffering of its own), and the
nesting depth of a JSON body (measured before any parser recurses into it)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.core.jsondepth import nests_deeper_than
from cairn.server.errors import HTTPError, error_response

__all__ = ["BodyLimit", "BodyTooLarge", "JsonDepthLimit", "UploadTooLarge"]


class BodyTooLarge(HTTPError):
    """Raised while the body is read. An HTTPException, so FastAPI's body parsing lets it
    through (it turns other errors into a 400) and the one error handler answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body: must be at most {limit} bytes", field="body", limit=limit)


class UploadTooLarge(HTTPError):
    """An object larger than ``max_upload_bytes``: refused before a byte of it is written
    (by its declared length, a composition's parts, or as its bytes are counted)."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        said = "" if size is None else f", got {size}"
        super().__init__(
            413,
            f"body: an object may be at most {limit} bytes (CAIRN_MAX_UPLOAD_BYTES){said}",
            field="body",
            limit=limit,
        )


class BodyLimit:
    """Refuse bodies above ``limit`` bytes with 413, except under ``exempt`` path
    prefixes (artifact uploads stream to disk and are never held in memory).

    A declared ``content-length`` above the limit is refused before the app runs; a body
    without one (chunked) is counted as it is read and refused once it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await self._refuse(scope, receive, send)
                    return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:  # read outside the app's error handlers
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.limit)
        response = error_response(413, "payload_too_large", str(error.detail), error.details)
        await response(scope, receive, send)


class JsonDepthLimit:
    """Refuse a JSON body nesting deeper than ``limit`` levels with 400 in the error
    shape, before FastAPI's parser (or the fast path's) recurses into it. A body is JSON
    to FastAPI when its content type says so (``application/json``, ``*+json``) or is
    missing; the body is read whole (as those parsers do anyway) and handed on as one
    message. Paths under ``exempt`` (streamed uploads) are let through unread."""

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].startswith(self.exempt)
            or not _json_body(scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        pieces: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay(pieces, message, receive), send)
                return
            pieces.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(pieces)
        if nests_deeper_than(body, self.limit):
            response = error_response(
                400,
                "invalid_argument",
                f"body: JSON must nest at most {self.limit} levels deep",
                {"field": "body", "limit": self.limit},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _replay([body], None, receive), send)


def _json_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return True  # FastAPI reads a body without a content type as JSON


def _replay(pieces: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """``receive`` as if nothing had been read: the body read so far (one message),
    then ``last`` if the client left, then whatever comes."""
    pending: list[Message] = [
        {"type": "http.request", "body": b"".join(pieces), "more_body": last is not None}
    ]
    if last is not None:
        pending.append(last)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
