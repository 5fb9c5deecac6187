"""Heartbeats: a running run's process says it is alive, so a run whose process died
(a crash, ``kill -9``, a lost machine) reads as ``crashed`` instead of ``running`` forever.

Each metric batch already counts as one (the store marks its runs alive in the same
statement that checks they may be written), so this thread only speaks for the runs that
logged nothing during the last interval: one small call per interval for all of them,
never on the training thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cairn.service.contracts import Entities

__all__ = ["Heartbeat"]

log = logging.getLogger("cairn.client")


class Heartbeat:
    def __init__(
        self,
        entities: Entities,
        interval: float,
        last_written: Callable[[str], float | None],
    ) -> None:
        self._entities = entities
        self._interval = interval
        self._last_written = last_written  # when the batcher last stored a run's points
        self._runs: dict[str, float] = {}  # run id -> when it was last said alive
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, run_id: str) -> None:
        """``run_id`` runs in this process from now on (it was started or resumed)."""
        with self._cond:
            self._runs[run_id] = time.monotonic()
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._beat, name="cairn-heartbeat", daemon=True
                )
                self._thread.start()

    def discard(self, run_id: str) -> None:
        with self._cond:
            self._runs.pop(run_id, None)

    def running(self) -> list[str]:
        """The runs this process runs, in the order they started."""
        with self._cond:
            return list(self._runs)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed, self._interval)
                if self._closed:
                    return
                now = time.monotonic()
                due = []
                for run_id, said in self._runs.items():
                    written = self._last_written(run_id)
                    last = said if written is None else max(said, written)
                    if now - last >= self._interval * 0.9:
                        due.append(run_id)
            if not due:
                continue
            try:
                self._entities.heartbeat(due)
            except Exception as exc:  # training goes on; the next beat may get through
                log.debug("cairn: heartbeat failed: %s", exc)
                continue
            with self._cond:
                for run_id in due:
                    if run_id in self._runs:
                        self._runs[run_id] = now
