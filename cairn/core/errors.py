"""One error hierarchy for all of Cairn.

Every error carries a stable ``code`` (used on the wire later) and structured
``details`` so a caller can react without parsing the message.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "CairnError",
    "Conflict",
    "CorruptObject",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "QueryError",
    "QuotaExceeded",
    "RateLimited",
    "SchemaOutOfDate",
    "StorageFull",
    "StoreBusy",
    "StoreUnavailable",
    "Unauthenticated",
    "error_from_wire",
]


class CairnError(Exception):
    """Root of every error Cairn raises on purpose."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable (they cross thread and process boundaries).
        return (_rebuild, (type(self), self.message, self.details))


def _rebuild(cls: type[CairnError], message: str, details: dict[str, Any]) -> CairnError:
    # Bypass subclass constructors: the message is already complete.
    error = cls.__new__(cls)
    CairnError.__init__(error, message, **details)
    return error


class InvalidArgument(CairnError):
    """Input broke a rule; ``details['field']`` names the field."""

    code = "invalid_argument"

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **details)

    @property
    def field(self) -> str:
        return str(self.details["field"])


class QueryError(InvalidArgument):
    """A search query that does not parse or names an unknown field. ``details``:
    ``position`` (0-based offset of the offending token), ``expected`` (what would fit
    there); the message shows the query with a caret under the position."""

    code = "query_error"

    def __init__(self, message: str, *, position: int, expected: list[str], **details: Any) -> None:
        super().__init__("query", message, position=position, expected=expected, **details)


class NotFound(CairnError):
    code = "not_found"


class AlreadyExists(CairnError):
    code = "already_exists"


class Conflict(CairnError):
    """The request contradicts what is stored (e.g. a hyperparameter logged twice)."""

    code = "conflict"


class CorruptObject(CairnError):
    """Stored bytes do not match their digest."""

    code = "corrupt_object"


class SchemaOutOfDate(CairnError):
    """The metadata store needs a migration before it can be used."""

    code = "schema_out_of_date"


class StoreUnavailable(CairnError):
    """A store could not be reached or opened."""

    code = "store_unavailable"


class StoreBusy(StoreUnavailable):
    """The store is there but could not take this request now: another process held the
    write lock past the busy timeout, or a concurrent transaction was in the way (a
    serialization failure, a deadlock). Nothing was written; trying again is safe."""

    code = "store_busy"


class StorageFull(CairnError):
    """A disk or quota has no room for what is being written; nothing half-written stays."""

    code = "storage_full"


class QuotaExceeded(StorageFull):
    """A project's storage quota (``CAIRN_PROJECT_QUOTA_BYTES``) has no room for what is
    being stored; nothing was written. ``details``: ``project_id``, ``quota``, ``used``
    (bytes its artifacts hold) and ``incoming`` (bytes asked for)."""

    code = "quota_exceeded"


class PermissionDenied(CairnError):
    code = "permission_denied"


class Unauthenticated(CairnError):
    code = "unauthenticated"


class RateLimited(CairnError):
    """Too many attempts (failed logins); ``details['retry_after']``: seconds to wait."""

    code = "rate_limited"


def _all_error_types() -> dict[str, type[CairnError]]:
    found: dict[str, type[CairnError]] = {}
    pending: list[type[CairnError]] = [CairnError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_from_wire(code: str, message: str, details: dict[str, Any] | None) -> CairnError:
    """Rebuild the error a server raised, as the same type (unknown codes: CairnError)."""
    cls = _all_error_types().get(code, CairnError)
    return _rebuild(cls, message, dict(details or {}))
