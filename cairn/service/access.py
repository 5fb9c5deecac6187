"""Who may do what: the role checks every service call makes when there is a principal.

Authorization lives here and in the service parts that call it, not in the server: every
face (REST, the fast path, a future UI) goes through the service, so no route can forget a
check. With no principal (authentication off, an embedded client) nothing is checked.

A check must not cost a database read per request, so two caches answer it:

- entity id -> project id: a project, experiment, run or repository never changes
  project, so an LRU keeps what was read for good;
- (user, project) -> role: for ``auth_cache_ttl`` seconds (the setting the token cache
  uses). A grant or revoke made through this process clears its entry at once; another
  server process sees it when its own entry expires.

A project the caller cannot read answers exactly what a project that does not exist
answers (a ``NotFound`` built by the caller's ``missing``), so a 404 says nothing of what
is there; a caller who can read but not write gets a ``PermissionDenied`` (403).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from cairn.core.errors import NotFound, PermissionDenied
from cairn.core.identity import Principal, Role
from cairn.core.roles import role_name
from cairn.service.identity import current_principal
from cairn.store.metadata import MetadataStore
from cairn.store.metadata.roles import RoleRows

__all__ = [
    "Access",
    "Missing",
    "denied",
    "entity_missing",
    "entity_not_found",
    "missing",
    "not_found",
]

Missing = Callable[[], NotFound]

_PROJECTS_KEPT = 200_000  # entity ids -> project ids (~150 bytes each)
_ROLES_KEPT = 100_000  # (user, project) pairs; past it the cache starts over


def not_found(kind: str, entity_id: str) -> NotFound:
    """The NotFound of a ``kind`` that does not exist: the one wording every part of the
    service uses, so an unreadable project's 404 is a missing one's word for word."""
    return NotFound(f"no {kind} with id {entity_id}", kind=kind, id=entity_id)


def entity_not_found(entity_id: str) -> NotFound:
    """The NotFound of an entity id of any kind (tags, attributes, artifacts)."""
    return NotFound(f"no project, experiment or run with id {entity_id}", id=entity_id)


def missing(kind: str, entity_id: str) -> Missing:
    return lambda: not_found(kind, entity_id)


def entity_missing(entity_id: str) -> Missing:
    return lambda: entity_not_found(entity_id)


def denied(principal: Principal, project_id: str, held: Role, need: Role) -> PermissionDenied:
    """The 403 of a caller who may read the project but not do this."""
    return PermissionDenied(
        f"{principal.name} is a {role_name(held)} of project {project_id}; this needs the "
        f"{role_name(need)} role (an owner of the project can grant it)",
        project_id=project_id,
        role=role_name(held),
        required=role_name(need),
    )


class Access:
    """The checks, and their caches, of one service (one store)."""

    def __init__(
        self,
        metadata: MetadataStore,
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metadata = metadata
        self._ttl = ttl
        self._now = monotonic
        self._lock = threading.Lock()
        self._projects: OrderedDict[str, str] = OrderedDict()
        self._roles: dict[tuple[str, str], tuple[Role | None, float]] = {}
        self._writers: dict[str, tuple[bool, float]] = {}

    # -- the checks -------------------------------------------------------------------
    @staticmethod
    def restricted() -> Principal | None:
        """The principal whose roles limit this call; None when nothing is checked (no
        principal, or an admin)."""
        principal = current_principal()
        if principal is None or principal.admin:
            return None
        return principal

    def require(self, entity_id: str, need: Role, missing: Missing) -> str | None:
        """The caller holds at least ``need`` in the project of ``entity_id`` (a project,
        experiment, run or repository); its project id (None when nothing is checked).
        ``missing()`` is raised if the caller cannot read it, or it does not exist."""
        principal = self.restricted()
        if principal is None:
            return None
        project_id = self.project_of(entity_id)
        if project_id is None:
            raise missing()
        self.require_in(principal, project_id, need, missing)
        return project_id

    def require_in(
        self, principal: Principal, project_id: str, need: Role, missing: Missing
    ) -> None:
        """:meth:`require` for a project id already known."""
        held = self.role(principal.user_id, project_id)
        if held is None:
            raise missing()
        if held < need:
            raise denied(principal, project_id, held, need)

    def can_read(self, principal: Principal, project_id: str) -> bool:
        return self.role(principal.user_id, project_id) is not None

    def require_uploader(self) -> None:
        """Storing bytes by digest: the caller writes to some project (objects belong to
        no project until an artifact or commit names them, and that call is checked)."""
        principal = self.restricted()
        if principal is None:
            return
        now = self._now()
        cached = self._writers.get(principal.user_id)
        if cached is None or cached[1] <= now:
            with self._metadata.read() as tx:
                found = RoleRows(tx.conn).writes_somewhere(principal.user_id)
            cached = (found, now + self._ttl)
            self._writers[principal.user_id] = cached
        if not cached[0]:
            raise PermissionDenied(
                f"{principal.name} writes to no project; storing objects needs the writer "
                "role in one",
                required=role_name(Role.WRITER),
            )

    # -- the cached lookups -----------------------------------------------------------
    def project_of(self, entity_id: str) -> str | None:
        with self._lock:
            found = self._projects.get(entity_id)
            if found is not None:
                self._projects.move_to_end(entity_id)
                return found
        with self._metadata.read() as tx:
            found = RoleRows(tx.conn).project_of(entity_id)
        if found is not None:
            self.remember(entity_id, found)
        return found

    def remember(self, entity_id: str, project_id: str) -> None:
        """``entity_id`` belongs to ``project_id`` for good (a new entity, just made)."""
        with self._lock:
            self._projects[entity_id] = project_id
            self._projects.move_to_end(entity_id)
            while len(self._projects) > _PROJECTS_KEPT:
                self._projects.popitem(last=False)

    def role(self, user_id: str, project_id: str) -> Role | None:
        now = self._now()
        cached = self._roles.get((user_id, project_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        with self._metadata.read() as tx:
            held = RoleRows(tx.conn).role(user_id, project_id)
        self._keep(user_id, project_id, held, now)
        return held

    def _keep(self, user_id: str, project_id: str, role: Role | None, now: float) -> None:
        with self._lock:
            if len(self._roles) >= _ROLES_KEPT:
                self._roles = {}
            self._roles[(user_id, project_id)] = (role, now + self._ttl)

    def changed(self, user_id: str, project_id: str, role: Role | None) -> None:
        """A grant or revoke this process made (committed): its answer holds at once."""
        self._keep(user_id, project_id, role, self._now())
        with self._lock:
            self._writers.pop(user_id, None)
