"""The search box of a page: a query's error as the page shows it (the message, and the
query with a caret under the offending place, from the error's ``position``)."""

from __future__ import annotations

from dataclasses import dataclass

from cairn.core.errors import InvalidArgument, QueryError

__all__ = ["BoxError", "box_error"]


@dataclass(frozen=True, slots=True)
class BoxError:
    message: str  # the first line: what is wrong
    query: str
    position: int | None  # where (0-based), when the error says

    @property
    def caret(self) -> str:
        return "" if self.position is None else " " * self.position + "^"


def box_error(error: InvalidArgument, query: str) -> BoxError:
    """``error`` (a QueryError, or another bad argument such as a stale cursor) as a box."""
    message = error.message.split("\n", 1)[0]
    message = message.removeprefix("query: ")
    position = None
    if isinstance(error, QueryError):
        found = error.details.get("position")
        if isinstance(found, int):
            position = max(0, min(found, len(query)))
        message = message.rsplit(" at position ", 1)[0]
    return BoxError(message, query, position)
