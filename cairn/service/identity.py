"""The principal the current call acts as.

The server's authentication middleware sets it for each request (``acting_as``); with
authentication off, and in an embedded client, there is none and every call is trusted.
A context variable rather than a parameter: every service method would otherwise carry it,
and the contract the HTTP client shares would change with it. Starlette's thread pool and
``contextvars.copy_context().run`` carry it to the threads store calls run on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from cairn.core.identity import Principal

__all__ = ["acting_as", "current_principal"]

_current: ContextVar[Principal | None] = ContextVar("cairn_principal", default=None)


def current_principal() -> Principal | None:
    """The caller, or None when authentication is off (everything is allowed)."""
    return _current.get()


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    token = _current.set(principal)
    try:
        yield
    finally:
        _current.reset(token)
