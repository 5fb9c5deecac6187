"""The audit log: every write and every authentication event, as a JSON log line on the
``cairn.audit`` logger and a row of ``audit_events``.

The line is written at once; the row is queued and inserted in batches by a thread of its
own (every half second, or as soon as 500 are waiting), so a request never waits on the
audit's database write. ``close()`` (the server's shutdown) writes what is still queued.
The queue is bounded: past 100,000 events waiting (a database that has been unreachable for
a long while) the oldest rows are dropped, and a warning says how many; the log lines
were written all the same.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from cairn.core.auth import AuditEvent
from cairn.core.errors import CairnError
from cairn.service.base import Clock
from cairn.service.identity import current_principal
from cairn.store.metadata import MetadataStore

__all__ = ["AuditLog", "audit_log", "current_remote", "from_address"]

audit_log = logging.getLogger("cairn.audit")
log = logging.getLogger("cairn.server")

# Where the current call comes from: the server sets the client's address per request;
# anything else (the CLI on the store) is "local".
_remote: ContextVar[str] = ContextVar("cairn_remote", default="local")

_INTERVAL = 0.5  # seconds a queued event may wait for its batch
_BATCH = 500  # events that wake the writer at once
_LIMIT = 100_000  # events kept waiting at most


def current_remote() -> str:
    return _remote.get()


@contextmanager
def from_address(remote: str) -> Iterator[None]:
    token = _remote.set(remote)
    try:
        yield
    finally:
        _remote.reset(token)


class AuditLog:
    def __init__(self, metadata: MetadataStore, clock: Clock) -> None:
        self._metadata = metadata
        self._clock = clock
        self._pending: collections.deque[AuditEvent] = collections.deque()
        self._dropped = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._writing = threading.Lock()  # one batch at a time (the thread, or flush)
        self._thread: threading.Thread | None = None
        self._closed = False

    def record(
        self,
        action: str,
        *,
        target: str = "",
        status: int = 200,
        actor: str | None = None,
        remote: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        if actor is None:
            principal = current_principal()
            actor = principal.name if principal is not None else ""
        event = AuditEvent(
            time=self._clock(),
            actor=actor,
            action=action,
            target=target,
            remote=_remote.get() if remote is None else remote,
            status=status,
            detail=detail,
        )
        if audit_log.isEnabledFor(logging.INFO):
            audit_log.info(
                "%s %s %s %d",
                actor or "-",
                action,
                target,
                status,
                extra={
                    "actor": actor,
                    "action": action,
                    "target": target,
                    "remote": event.remote,
                    "status": status,
                    "detail": detail,
                },
            )
        with self._lock:
            if not self._closed:
                if len(self._pending) >= _LIMIT:
                    self._pending.popleft()
                    self._dropped += 1
                self._pending.append(event)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="cairn-audit", daemon=True
                    )
                    self._thread.start()
                if len(self._pending) >= _BATCH:
                    self._wake.notify()
                return
        self._write([event])  # after close(): at once

    def flush(self) -> None:
        """Write every queued event now (a reader of the log sees what came before)."""
        with self._lock:
            events = list(self._pending)
            self._pending.clear()
        self._write(events)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._closed and len(self._pending) < _BATCH:
                    self._wake.wait(_INTERVAL)
                events = list(self._pending)
                self._pending.clear()
                closed = self._closed
            if events:
                self._write(events, requeue=not closed)
            if closed:
                return

    def _write(self, events: list[AuditEvent], *, requeue: bool = False) -> None:
        if not events:
            return
        with self._writing:
            try:
                with self._metadata.write() as tx:
                    tx.identity.insert_audit(events)
            except CairnError as exc:  # busy or unreachable: try again with the next batch
                if not requeue:
                    log.error("%d audit events not stored: %s", len(events), exc)
                    return
                log.warning("audit events not stored yet (%s); retrying", exc)
                with self._lock:
                    self._pending.extendleft(reversed(events))
                    while len(self._pending) > _LIMIT:
                        self._pending.popleft()
                        self._dropped += 1
        if self._dropped:
            with self._lock:
                dropped, self._dropped = self._dropped, 0
            log.warning("%d audit events dropped: too many waited for the database", dropped)
