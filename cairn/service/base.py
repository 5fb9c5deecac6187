"""What every part of the service shares: the stores, the settings, the clock, and the
lookups that several parts make inside their transactions."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import Conflict, InvalidArgument, NotFound
from cairn.core.identity import Role
from cairn.core.model import EntityKind, RunInfo, RunStatus
from cairn.core.settings import Settings
from cairn.core.validation import check_entity_id, check_name
from cairn.core.versioning.tree import check_path
from cairn.service.access import Access, entity_missing, entity_not_found, missing, not_found
from cairn.service.identity import current_principal
from cairn.store.metadata import MetadataStore
from cairn.store.metadata.tx import MetadataTx
from cairn.store.objects import ObjectStore

__all__ = ["Clock", "Context", "ServicePart", "check_refs", "not_stored", "system_clock"]

Clock = Callable[[], int]


def system_clock() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Context:
    """One metadata store (whose ``write()`` is the unit of work), one object store, the
    settings and the clock: every part of one service holds the same context."""

    metadata: MetadataStore
    objects: ObjectStore
    settings: Settings
    clock: Clock = system_clock
    access: Access = field(init=False)  # the role checks, and their caches

    def __post_init__(self) -> None:
        object.__setattr__(self, "access", Access(self.metadata, self.settings.auth_cache_ttl))

    def close(self) -> None:
        self.metadata.close()
        self.objects.close()


def check_refs(refs: Mapping[str, tuple[str, str]], field: str) -> dict[str, tuple[str, Digest]]:
    """Ingredients named by kind and digest, path by path (what a run captured)."""
    if not isinstance(refs, Mapping):
        raise InvalidArgument(field, "must be a mapping of path -> (kind, digest)")
    return {
        check_path(path): (
            check_name(kind, f"{field}[{path!r}].kind"),
            parse_digest(digest, f"{field}[{path!r}].digest"),
        )
        for path, (kind, digest) in refs.items()
    }


def not_stored(path: str, kind: str, digest: str) -> NotFound:
    return NotFound(
        f"no {kind} ingredient {digest[:12]} is stored (for {path!r})", kind="object", id=digest
    )


class ServicePart:
    """The base of each aggregate's part of the service (entities, labels, ...)."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.metadata = context.metadata
        self.objects = context.objects
        self.settings = context.settings
        self.clock = context.clock
        self.access = context.access

    # -- authorization ----------------------------------------------------------------
    def _allow(self, entity_id: str, need: Role, kind: str | None = None) -> None:
        """The caller may act at ``need`` on the entity (a ``kind`` -- project, experiment,
        run, repository -- or any kind when None); else the NotFound of one that does not
        exist (it cannot read it) or PermissionDenied (it can, but not enough)."""
        if self.access.restricted() is None:
            return
        check_entity_id(entity_id, f"{kind}_id" if kind else "entity_id")
        gone = entity_missing(entity_id) if kind is None else missing(kind, entity_id)
        self.access.require(entity_id, need, gone)

    def _readable(self, project_id: str | None) -> bool:
        """The caller may read the project (None: no project, so no)."""
        principal = self.access.restricted()
        if principal is None:
            return True
        return project_id is not None and self.access.can_read(principal, project_id)

    @staticmethod
    def _owner(given: str, field: str = "owner") -> str:
        """Who owns what the caller makes: the principal, whatever the caller says (which
        must still be a name: bad input is an error even where it would be replaced)."""
        if given:
            check_name(given, field)
        principal = current_principal()
        return given if principal is None else principal.name

    # -- lookups shared by the parts --------------------------------------------------
    @staticmethod
    def _require_kind(tx: MetadataTx, entity_id: str) -> EntityKind:
        check_entity_id(entity_id, "entity_id")
        kind = tx.entities.kind_of(entity_id)
        if kind is None:
            raise entity_not_found(entity_id)
        return kind

    @staticmethod
    def _require_run(
        tx: MetadataTx, run_id: str, *, live: bool = False, recording: bool = False
    ) -> RunInfo:
        """The run; ``live``: not deleted; ``recording``: and not ended either, since
        what it records (metrics, hyperparameters, artifacts) is closed when it ends."""
        check_entity_id(run_id, "run_id")
        run = tx.entities.run(run_id)
        if run is None:
            raise not_found("run", run_id)
        if (live or recording) and run.deleted:
            raise Conflict(f"run {run_id} is deleted; restore it before writing to it", id=run_id)
        if recording and run.status.ended:
            raise Conflict(
                f"run {run_id} is {run.status.value}: its metrics, hyperparameters and "
                "artifacts are closed; resume it first (client.resume_run)",
                id=run_id,
                status=run.status.value,
            )
        return run

    def _require_recording(self, tx: MetadataTx, run_ids: set[str], now: int) -> None:
        """Every run of ``run_ids`` is running (not ended, not deleted), and alive now."""
        if tx.entities.heartbeat(run_ids, now) != len(run_ids):
            for run_id in sorted(run_ids):  # say which one, and why
                self._require_run(tx, run_id, recording=True)

    def _require_writable(
        self, tx: MetadataTx, entity_id: str, *, recording: bool = False
    ) -> EntityKind:
        """The entity exists (and, for a run, is not deleted; ``recording``: nor ended);
        its updated_at moves."""
        kind = self._require_kind(tx, entity_id)
        if kind is EntityKind.RUN:
            if recording:
                self._require_recording_run(tx, entity_id)
                return kind
            self._require_run(tx, entity_id, live=True)
        tx.entities.update(kind, entity_id, {"updated_at": self.clock()})
        return kind

    def _require_recording_run(self, tx: MetadataTx, run_id: str) -> None:
        """The run is running (not ended, not deleted); its updated_at moves. One
        statement when it is (a sweep writes to thousands of runs a minute)."""
        check_entity_id(run_id, "run_id")
        if not tx.entities.touch_running(run_id, {"updated_at": self.clock()}):
            self._require_run(tx, run_id, recording=True)  # raises, saying why

    @staticmethod
    def _link_stored(tx: MetadataTx, run_id: str, refs: Mapping[str, tuple[str, Digest]]) -> None:
        """The run captured ``refs``, replacing what it had; each must be stored, with
        that kind (``NotFound`` otherwise)."""
        stored = tx.versioning.kinds(digest for _, digest in refs.values())
        for path, (kind, digest) in refs.items():
            if stored.get(digest) != kind:
                raise not_stored(path, kind, digest)
        tx.versioning.set_captures(run_id, refs)

    def _present(self, run: RunInfo) -> RunInfo:
        """The run as readers see it: running with a heartbeat older than the timeout
        reads as crashed."""
        return self._present_all([run], self.clock())[0]

    def _present_all(self, runs: list[RunInfo], now: int) -> list[RunInfo]:
        """:meth:`_present` for many runs read at ``now``."""
        cutoff = now - self.settings.heartbeat_timeout * 1000
        return [
            dataclasses.replace(run, status=RunStatus.CRASHED)
            if run.status is RunStatus.RUNNING
            and run.heartbeat_at is not None
            and run.heartbeat_at < cutoff
            else run
            for run in runs
        ]
