"""What a new run records of its code and environment, on a thread of its own: the
training thread never waits for git, for the installed distributions or for the store.

The git work tree and the Python environment are read through :mod:`cairn.capture`, which
keeps what does not change within a process (the distributions; the git state while
``HEAD`` and the index stand still), so a sweep of many runs pays for it about once, and
the blobs are stored once by digest however many runs share them. A capture that fails is
reported as a warning: a run is not refused for what it could not record of itself.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from cairn.capture.git import GitState, cached_git, capture_git
from cairn.capture.python import capture_python
from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.settings import CAPTURE_CHOICES
from cairn.core.versioning.blobs import Blob, GitReference
from cairn.service.contracts import Repositories

__all__ = ["CODE", "ENVIRONMENT", "RunCapture", "check_capture"]

CODE = "code/git"
ENVIRONMENT = "environment/python"


def check_capture(value: str) -> str:
    if value not in CAPTURE_CHOICES:
        choices = ", ".join(CAPTURE_CHOICES)
        raise InvalidArgument("capture", f"must be one of {choices}, got {value!r}")
    return value


class RunCapture:
    """Captures for the runs of one client, one at a time on one thread."""

    def __init__(
        self, repositories: Repositories, variables: str, environ: Mapping[str, str]
    ) -> None:
        self._repositories = repositories
        self._variables = [v for v in variables.split(",") if v.strip()]
        self._environ = environ
        self._executor: ThreadPoolExecutor | None = None
        self._pending: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._last_diff: tuple[bytes, Digest] | None = None
        # Blobs this client has stored, as (kind, digest): a sweep's runs capture the same
        # ones, and later runs name them instead of sending them again.
        self._stored_blobs: set[tuple[str, Digest]] = set()
        self._digests: dict[int, tuple[Blob, Digest]] = {}  # by identity, the last few

    def start(self, run_id: str, what: str, *, only_if_new: bool = False) -> None:
        """Capture ``what`` ("all", "code", "environment") for the run, in the background;
        ``only_if_new``: keep what the run captured already, if anything."""
        if what == "none":
            return
        cwd = os.getcwd()  # now: the run's own folder, whatever the thread sees later
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="cairn-capture")
            self._pending[run_id] = self._executor.submit(
                self._capture, run_id, what, cwd, only_if_new
            )

    def wait(self, run_id: str | None = None) -> None:
        """Until the run's capture (every one, for None) is stored or has failed."""
        with self._lock:
            if run_id is None:
                futures = list(self._pending.values())
                self._pending.clear()
            else:
                found = self._pending.pop(run_id, None)
                futures = [] if found is None else [found]
        for future in futures:
            error = future.exception()
            if error is not None:
                warnings.warn(
                    f"cairn: could not record the run's code and environment: {error}",
                    RuntimeWarning,
                    stacklevel=3,
                )

    def close(self) -> None:
        self.wait()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def stored_refs(self, what: str) -> dict[str, tuple[str, str]] | None:
        """What a run starting now would capture, as blobs this client has stored already
        (path -> (kind, digest)), if that is known without asking git or the store: the
        usual case in a sweep, whose runs capture the same code and environment. The new
        run then names them as it is created, and nothing is left to do in the background.
        None when the capture must run (the first run; git's kept answer is stale; a new
        diff). A few ``stat`` calls and dictionary lookups: fine on the training thread."""
        if what == "none":
            return {}
        cwd = os.getcwd()
        state: GitState | None = None
        if what in ("all", "code"):
            answered, state = cached_git(cwd)
            if not answered:
                return None
        if state is not None and state.diff is not None:
            last = self._last_diff
            if last is None or last[0] != state.diff:
                return None  # a diff not stored yet
        captured = self._blobs(what, state)
        refs = self._refs(captured)
        if not all(ref in self._stored_blobs for ref in refs.values()):
            return None
        return {path: (kind, str(digest)) for path, (kind, digest) in refs.items()}

    def forget_stored(self) -> None:
        """The store no longer has what this client stored (it said so): blobs and the
        diff are sent again."""
        self._stored_blobs.clear()
        self._last_diff = None

    def _capture(self, run_id: str, what: str, cwd: str, only_if_new: bool) -> None:
        if only_if_new and self._repositories.get_run_capture(run_id):
            return
        state = capture_git(cwd) if what in ("all", "code") else None
        captured = self._blobs(what, state)
        if not captured:
            return
        refs = self._refs(captured)
        if all(ref in self._stored_blobs for ref in refs.values()):
            try:
                self._repositories.link_capture(run_id, refs)
                return
            except NotFound:  # gone from the store meanwhile: send them again
                self.forget_stored()
                captured = self._blobs(what, state)  # the diff, stored again
        self._repositories.capture_run(run_id, captured)
        self._stored_blobs.update(refs.values())

    def _blobs(self, what: str, state: GitState | None) -> dict[str, Blob]:
        """The blobs of a capture: the git reference (its diff stored first) from
        ``state``, and the Python environment."""
        captured: dict[str, Blob] = {}
        if state is not None and (state.commit or state.remote):
            captured[CODE] = GitReference(
                remote=state.remote,
                commit=state.commit,
                branch=state.branch,
                dirty=state.dirty,
                diff=None if state.diff is None else self._stored(state.diff),
            )
        if what in ("all", "environment"):
            captured[ENVIRONMENT] = capture_python(self._environ, self._variables)
        return captured

    def _refs(self, captured: Mapping[str, Blob]) -> dict[str, tuple[str, Digest]]:
        return {path: (blob.KIND, self._digest(blob)) for path, blob in captured.items()}

    def _digest(self, blob: Blob) -> Digest:
        """The blob's digest; the environment blob is the same object run after run (its
        capture is cached), and its digest is kept with it."""
        known = self._digests.get(id(blob))
        if known is not None and known[0] is blob:
            return known[1]
        digest = blob.digest()
        if len(self._digests) >= 8:
            self._digests.clear()
        self._digests[id(blob)] = (blob, digest)  # holding the blob keeps its id its own
        return digest

    def _stored(self, diff: bytes) -> Digest:
        """The id of the stored diff; a sweep whose tree stays as it was stores it once."""
        if self._last_diff is not None and self._last_diff[0] == diff:
            return self._last_diff[1]
        digest = Digest(self._repositories.store_bytes(diff).digest)
        self._last_diff = (diff, digest)
        return digest
