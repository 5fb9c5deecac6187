"""The background metric logger: training code never waits on the store.

``log`` appends a point to its series' column buffers and returns; one daemon
thread per client hands the buffers to the backend in batches (one transaction,
or one request, each). ``flush`` waits until everything queued before it has
landed. A failed write is kept and raised on the next ``log`` or ``flush`` call,
so it is never swallowed.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from collections.abc import Callable, Sequence

from cairn.core.columns import MetricBatch, SeriesPoints
from cairn.core.errors import CairnError

__all__ = ["MetricBatcher"]

WriteBatch = Callable[[MetricBatch], None]
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
        self._pending: MetricBatch = {}
        self._size = 0  # points in _pending
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
    def log(self, run_id: str, key: str, step: int, timestamp: int, value: float) -> None:
        if self._error is not None:
            self._raise_error()
        with self._lock:  # the raw lock: this is the hot path
            if self._closed:
                raise CairnError("the client is closed; no more metrics can be logged")
            series = self._pending.get((run_id, key))
            if series is None:
                series = self._pending[(run_id, key)] = SeriesPoints()
            series.steps.append(step)
            series.timestamps.append(timestamp)
            series.values.append(value)
            self._queued += 1
            self._size += 1
            size = self._size
        if size >= self._batch_size or self._thread is None:
            self._wake(size)

    def log_many(
        self, run_id: str, points: Sequence[tuple[str, int, float]], timestamp: int
    ) -> None:
        """Several keys of one run at once: (key, step, value) each."""
        if self._error is not None:
            self._raise_error()
        with self._lock:
            if self._closed:
                raise CairnError("the client is closed; no more metrics can be logged")
            pending = self._pending
            for key, step, value in points:
                series = pending.get((run_id, key))
                if series is None:
                    series = pending[(run_id, key)] = SeriesPoints()
                series.steps.append(step)
                series.timestamps.append(timestamp)
                series.values.append(value)
            self._queued += len(points)
            self._size += len(points)
            size = self._size
        if size >= self._batch_size or self._thread is None:
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
                while self._size >= self._max_queue and self._error is None:
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
                    lambda: self._closed or self._flushing > 0 or self._size >= self._batch_size,
                    self._interval,
                )
                if not self._size:
                    if self._closed:
                        return
                    continue
                batch, size = self._pending, self._size
                self._pending, self._size = {}, 0
                self._cond.notify_all()  # producers held back by max_queue may go on
            try:
                self._write(batch)
            except BaseException as exc:  # kept, and raised to the user later
                with self._cond:
                    self._error = exc
            with self._cond:
                self._settled += size
                self._cond.notify_all()


@atexit.register
def _flush_all_at_exit() -> None:
    for batcher in list(_live):
        try:
            batcher.close()
        except BaseException as exc:  # exit must go on; say what was lost
            print(f"cairn: metrics could not be written at exit: {exc}", file=sys.stderr)
