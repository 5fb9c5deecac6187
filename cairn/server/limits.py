"""Request body size limit, as pure ASGI middleware (no buffering of its own)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.server.errors import HTTPError, error_response

__all__ = ["BodyLimit", "BodyTooLarge"]


class BodyTooLarge(HTTPError):
    """Raised while the body is read. An HTTPException, so FastAPI's body parsing lets it
    through (it turns other errors into a 400) and the one error handler answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body: must be at most {limit} bytes", field="body", limit=limit)


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
