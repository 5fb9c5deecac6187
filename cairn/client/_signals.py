"""How a process with running runs ends: SIGTERM and interpreter exit.

SIGTERM is how Kubernetes, Slurm and most schedulers stop a job. Its default kills the
process at once, leaving its runs ``running`` and its queued metric points unstored. While
a client has running runs, a handler stores the queued points and ends the runs as
``killed`` (within ``CAIRN_SIGTERM_TIMEOUT`` seconds), then ends the process as it would
have ended: the handler that was there before is called, or the default one (death by
the signal, exit status 143 in a shell) is restored and the signal sent again.

At interpreter exit, runs still running are ended: ``failed`` if an uncaught exception
is ending the process, else ``finished`` (MLflow's rule too).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from cairn.core.model import RunStatus

if TYPE_CHECKING:
    from cairn.client._client import Client

__all__ = ["unwatch", "watch"]


class _Handler:
    """Whether ours is installed, and the SIGTERM handler it replaced."""

    installed = False
    previous: Any = None


_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_handler = _Handler()
_lock = threading.Lock()


def watch(client: Client) -> None:
    """``client`` has a running run: end it properly on SIGTERM and at exit."""
    with _lock:
        _clients.add(client)
        if _handler.installed or threading.current_thread() is not threading.main_thread():
            return  # handlers can only be set from the main thread
        current = signal.getsignal(signal.SIGTERM)
        if current is signal.SIG_IGN:
            return  # the process chose to survive SIGTERM: its runs go on too
        _handler.previous = current
        signal.signal(signal.SIGTERM, _on_sigterm)
        _handler.installed = True


def unwatch(client: Client) -> None:
    """``client`` is closed: nothing of it to end any more."""
    with _lock:
        _clients.discard(client)


def _stop_all(status: RunStatus, timeout: float | None) -> None:
    """End every watched client's running runs as ``status``, in at most ``timeout``
    seconds (a thread does it: the main thread may hold a lock the work needs)."""
    clients = list(_clients)
    if not clients:
        return
    worker = threading.Thread(
        target=_stop_clients, args=(clients, status), name="cairn-stop", daemon=True
    )
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        print(
            f"cairn: runs could not be ended as {status.value} within {timeout} s; "
            "some metrics may be lost",
            file=sys.stderr,
        )


def _stop_clients(clients: list[Client], status: RunStatus) -> None:
    for client in clients:
        try:
            client._end_running(status)
        except BaseException as exc:  # the others must still be ended
            print(f"cairn: runs could not be ended as {status.value}: {exc}", file=sys.stderr)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    timeout = max((c.settings.sigterm_timeout for c in list(_clients)), default=5.0)
    _stop_all(RunStatus.KILLED, timeout)
    previous = _handler.previous
    if callable(previous):
        handler: Callable[[int, FrameType | None], Any] = previous
        handler(signum, frame)
        return
    # The default action (or one set outside Python): restore it and let it happen.
    signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    os.kill(os.getpid(), signal.SIGTERM)


@atexit.register
def _end_at_exit() -> None:
    # Registered after the metric batcher's own exit hook, so it runs before it.
    failed = getattr(sys, "last_value", None) is not None  # an uncaught exception
    # No time limit: queued points are stored at exit however long it takes, as before.
    _stop_all(RunStatus.FAILED if failed else RunStatus.FINISHED, None)
