"""The background metric logger: training code never waits on the store.

``log`` appends to an in-memory list and returns; one daemon thread per client
drains the list into the backend in batches (one transaction each). ``flush``
waits until everything queued before it has landed. A failed write is kept and
raised on the next ``log`` or ``flush`` call, so it is never swallowed.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable, Sequence

from cairn.core.errors import CairnError
from cairn.core.model import MetricRecord

__all__ = ["MetricBatcher"]

WriteBatch = Callable[[Sequence[MetricRecord]], None]
_live: weakref.WeakSet[MetricBatcher] = weakref.WeakSet()


class MetricBatcher:
    def __init__(
        self,
        write: WriteBatch,
        *,
        batch_size: int,
        interval: float,
        max_queue: int,
    ) -> None:
        self._write = write
        self._batch_size = batch_size
        self._interval = interval
        self._max_queue = max_queue
        self._pending: list[MetricRecord] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queued = 0  # points ever queued
        self._settled = 0  # points ever written or failed
        self._flushing = 0  # waiters in flush(): write now, don't wait for a full batch
        self._error: BaseException | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        _live.add(self)

    # -- producer side ----------------------------------------------------------------
    def log(self, record: MetricRecord) -> None:
        if self._error is not None:
            self._raise_error()
        with self._lock:  # the raw lock: this is the hot path
            self._pending.append(record)
            self._queued += 1
            size = len(self._pending)
        if size >= self._batch_size or self._thread is None:
            self._wake(size)

    def log_many(self, records: Sequence[MetricRecord]) -> None:
        if self._error is not None:
            self._raise_error()
        with self._cond:
            self._pending.extend(records)
            self._queued += len(records)
            size = len(self._pending)
        self._wake(size)

    def _wake(self, size: int) -> None:
        with self._cond:
            if self._closed:
                raise CairnError("the client is closed; no more metrics can be logged")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cairn-metric-writer", daemon=True
                )
                self._thread.start()
            if size >= self._batch_size:
                self._cond.notify_all()
                # Back-pressure: never hold more than max_queue points in memory.
                while len(self._pending) >= self._max_queue and self._error is None:
                    self._cond.wait(0.1)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every point queued so far has landed; raise a failed write."""
        with self._cond:
            target = self._queued
            if self._settled < target:
                self._flushing += 1
                self._cond.notify_all()
                try:
                    done = self._cond.wait_for(lambda: self._settled >= target, timeout)
                finally:
                    self._flushing -= 1
                if not done:
                    raise CairnError(f"metrics were not written within {timeout} s")
        if self._error is not None:
            self._raise_error()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=10)

    def _raise_error(self) -> None:
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise error

    # -- writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self._closed or self._flushing > 0 or len(self._pending) >= self._batch_size
                    ),
                    self._interval,
                )
                if not self._pending:
                    if self._closed:
                        return
                    continue
                batch, self._pending = self._pending, []
            for start in range(0, len(batch), self._batch_size):
                chunk = batch[start : start + self._batch_size]
                try:
                    self._write(chunk)
                except BaseException as exc:  # kept, and raised to the user later
                    with self._cond:
                        self._error = exc
                with self._cond:
                    self._settled += len(chunk)
                    self._cond.notify_all()


@atexit.register
def _flush_all_at_exit() -> None:
    for batcher in list(_live):
        try:
            batcher.close()
        except BaseException as exc:  # exit must go on; say what was lost
            import sys

            print(f"cairn: metrics could not be written at exit: {exc}", file=sys.stderr)
