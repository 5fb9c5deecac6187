"""The background metric logger: training code never waits on the store.

``log`` appends a point to its series' column buffers and returns; one daemon thread per
client hands the buffers to the backend in batches (one transaction, or one request,
each). ``flush`` waits until everything queued before it has landed. A failed write is
kept and raised on the next ``log`` or ``flush`` call, so it is never swallowed.

**Default steps.** A point logged without a step takes the series' next step: one past
the highest step logged so far, continuing after what the store already holds. A series
of a run this client created starts at 0. For any other run (reopened, or got by name)
the store must be asked, and the training thread must not wait for that: such a series
is *unresolved* until the writer thread has asked. Meanwhile its default points are
queued with the step :data:`_DEFAULT` (steps are never negative), and the writer thread,
once it knows the highest stored step, replays the series in logging order with the
same rule (a default point takes ``next``; any point at or past ``next`` moves it on),
so the numbering is exactly what it would have been had the answer come at once. (As
before, one writer per series is assumed: a run created here whose key another process
logs to meanwhile is still numbered from 0 here.) An ended run's series are forgotten, so
a sweep of many runs keeps nothing per run.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Final

from cairn.core.columns import MetricBatch, SeriesPoints
from cairn.core.errors import CairnError
from cairn.service.contracts import Metrics

__all__ = ["MetricBatcher"]

_DEFAULT: Final = -1  # a queued point's step, to be given once its series is resolved
_live: weakref.WeakSet[MetricBatcher] = weakref.WeakSet()
Name = tuple[str, str]  # (run id, metric key)


class _Series:
    """One series as the batcher knows it: the step its next default point takes (None
    until the store has been asked), and its points queued since the last batch (None
    when there are none: an idle series costs a few words)."""

    __slots__ = ("next", "points")

    def __init__(self, next_step: int | None) -> None:
        self.points: SeriesPoints | None = None
        self.next = next_step


class MetricBatcher:
    def __init__(
        self,
        metrics: Metrics,
        *,
        batch_size: int,
        interval: float,
        max_queue: int,
    ) -> None:
        self._metrics = metrics
        self._batch_size = batch_size
        self._interval = interval
        self._max_queue = max_queue
        self._series: dict[str, dict[str, _Series]] = {}  # run -> key -> series logged to
        self._pending: dict[Name, _Series] = {}  # those with points since the last batch
        self._size = 0  # points in _pending
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queued = 0  # points ever queued
        self._settled = 0  # points ever written or failed
        self._flushing = 0  # waiters in flush(): write now, don't wait for a full batch
        self._error: BaseException | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self._fresh: set[str] = set()  # runs created by this client: nothing stored yet
        self._written: dict[str, float] = {}  # run id -> when its points were last stored
        _live.add(self)

    # -- producer side ----------------------------------------------------------------
    def fresh_run(self, run_id: str) -> None:
        """``run_id`` was just created: its series start at step 0, no need to ask."""
        with self._lock:
            self._fresh.add(run_id)

    def log(self, run_id: str, key: str, step: int | None, timestamp: int, value: float) -> None:
        """Queue one point; ``step`` None takes the series' next step."""
        if self._error is not None:
            self._raise_error()
        with self._lock:  # the raw lock: this is the hot path
            if self._closed:
                raise CairnError("the client is closed; no more metrics can be logged")
            name = (run_id, key)
            series = self._pending.get(name) or self._start(name)
            # The step rule, spelled out here and in log_many rather than in a helper: a
            # call per point cost this hot path 5-10%.
            nxt = series.next
            if nxt is None:  # not resolved yet: the writer thread gives the step
                if step is None:
                    step = _DEFAULT
            else:
                if step is None:
                    step = nxt
                if step >= nxt:
                    series.next = step + 1
            points = series.points
            assert points is not None  # _start gave it its queue
            points.steps.append(step)
            points.timestamps.append(timestamp)
            points.values.append(value)
            self._queued += 1
            self._size += 1
            size = self._size
        if size >= self._batch_size or self._thread is None:
            self._wake(size)

    def log_many(
        self,
        run_id: str,
        points: Sequence[tuple[str, float]],
        step: int | None,
        timestamp: int,
    ) -> None:
        """Several keys of one run at once, (key, value) each, all with one ``step`` (None:
        each series' next) and one timestamp."""
        if self._error is not None:
            self._raise_error()
        with self._lock:
            if self._closed:
                raise CairnError("the client is closed; no more metrics can be logged")
            # The run's series by key: no (run, key) tuple per point (a wide run logs
            # thousands of keys a step).
            known = self._series.get(run_id) or {}
            for key, value in points:
                series = known.get(key)
                if series is None or series.points is None:  # first point since a batch
                    series = self._start((run_id, key))
                    known = self._series[run_id]
                queue = series.points
                assert queue is not None  # _start gave it its queue
                nxt = series.next
                this = step
                if nxt is None:
                    if this is None:
                        this = _DEFAULT
                else:
                    if this is None:
                        this = nxt
                    if this >= nxt:
                        series.next = this + 1
                queue.steps.append(this)
                queue.timestamps.append(timestamp)
                queue.values.append(value)
            self._queued += len(points)
            self._size += len(points)
            size = self._size
        if size >= self._batch_size or self._thread is None:
            self._wake(size)

    def _start(self, name: Name) -> _Series:
        """``name``'s first point since the last batch (under the lock)."""
        run_id, key = name
        keys = self._series.setdefault(run_id, {})
        series = keys.get(key)
        if series is None:
            series = keys[key] = _Series(0 if run_id in self._fresh else None)
        series.points = SeriesPoints()
        self._pending[name] = series
        return series

    def last_written(self, run_id: str) -> float | None:
        """When (``time.monotonic()``) points of ``run_id`` were last stored: a stored
        batch is a heartbeat of its runs."""
        return self._written.get(run_id)

    def take(self, run_id: str, limit: int) -> tuple[MetricBatch, int] | None:
        """The run's queued points (at most ``limit``), taken out to be written by the
        caller with the run's end (one transaction or request instead of two), and how
        many; the caller then calls :meth:`settle` with that count, written or not. None
        when they cannot be taken, and the caller flushes as usual: points are in flight
        (they must land first), a series still waits for its steps, a write failed."""
        with self._lock:
            if self._error is not None or self._settled + self._size != self._queued:
                return None
            keys = self._series.get(run_id, {})
            names = [(run_id, key) for key in keys if (run_id, key) in self._pending]
            taken: MetricBatch = {}
            count = 0
            for name in names:
                series = self._pending[name]
                if series.next is None or series.points is None:
                    return None
                taken[name] = series.points
                count += len(series.points)
            if count > limit:
                return None
            for name in names:
                self._pending.pop(name).points = None
            self._size -= count
            return taken, count

    def settle(self, count: int) -> None:
        """``count`` points taken by :meth:`take` were written (or failed, and the caller
        raised): a flush no longer waits for them."""
        with self._cond:
            self._settled += count
            self._cond.notify_all()

    def forget(self, run_id: str) -> None:
        """The run ended: drop what is known of its series (after a flush). Logged to
        again later, its steps are asked of the store."""
        with self._lock:
            keys = self._series.get(run_id, {})
            if not any((run_id, key) in self._pending for key in keys):
                self._series.pop(run_id, None)
                self._fresh.discard(run_id)
                self._written.pop(run_id, None)

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
                # A flush waiting with nothing left to write must not wake this thread:
                # it would spin, holding the GIL, until the waiter got it back (up to the
                # interpreter's 5 ms switch interval): 6 of a sweep's 10 ms per run.
                self._cond.wait_for(
                    lambda: (
                        self._closed
                        or (
                            self._size > 0
                            and (self._flushing > 0 or self._size >= self._batch_size)
                        )
                    ),
                    self._interval,
                )
                if not self._size:
                    if self._closed:
                        return
                    continue
                pending, size = self._pending, self._size
                self._pending, self._size = {}, 0
                batch: MetricBatch = {}
                unresolved: list[Name] = []
                for name, series in pending.items():
                    assert series.points is not None
                    batch[name] = series.points
                    series.points = None
                    if series.next is None:
                        unresolved.append(name)
                self._cond.notify_all()  # producers held back by max_queue may go on
            try:
                if unresolved:
                    self._resolve(batch, unresolved)
                self._metrics.log_metric_batch(batch, validated=True)
                written = time.monotonic()
                for run_id in {run_id for run_id, _ in batch}:
                    self._written[run_id] = written
            except BaseException as exc:  # kept, and raised to the user later
                with self._cond:
                    self._error = exc
            with self._cond:
                self._settled += size
                self._cond.notify_all()

    def _resolve(self, batch: MetricBatch, names: Iterable[Name]) -> None:
        """Give the default points of ``names`` their steps, from the highest step the
        store holds: in ``batch``, and in what was queued since (under the lock)."""
        by_run: dict[str, list[str]] = {}
        for run_id, key in names:
            by_run.setdefault(run_id, []).append(key)
        following: dict[Name, int] = {}
        for run_id, keys in by_run.items():
            # One question per run, for every key it has: a list of keys could outgrow
            # what a URL (or the server) takes.
            latest = self._metrics.get_latest_metrics(run_id)
            for key in keys:
                point = latest.get(key)
                following[(run_id, key)] = _replay(
                    batch[(run_id, key)], 0 if point is None else point.step + 1
                )
        with self._lock:
            for (run_id, key), after_batch in following.items():
                series = self._series.get(run_id, {}).get(key)
                if series is None:  # forgotten meanwhile (the run ended)
                    continue
                queued = series.points  # points logged since the batch was taken
                series.next = after_batch if queued is None else _replay(queued, after_batch)


def _replay(series: SeriesPoints, nxt: int) -> int:
    """Give ``series``' default points their steps, starting at ``nxt``; the next one."""
    steps = series.steps
    for i, logged in enumerate(steps):
        step = nxt if logged == _DEFAULT else logged
        steps[i] = step
        if step >= nxt:
            nxt = step + 1
    return nxt


@atexit.register
def _flush_all_at_exit() -> None:
    for batcher in list(_live):
        try:
            batcher.close()
        except BaseException as exc:  # exit must go on; say what was lost
            print(f"cairn: metrics could not be written at exit: {exc}", file=sys.stderr)
