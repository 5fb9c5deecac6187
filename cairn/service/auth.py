"""Users, API tokens, password logins and the audit log.

Tokens: ``cairn_`` and 32 random bytes (URL-safe base64), shown once when made; the store
keeps only their SHA-256 (a secret of 256 random bits needs no salt nor a slow hash).
A checked token is trusted for ``auth_cache_ttl`` seconds without reading the database
again, so a steady stream of requests costs a hash and a dict lookup each: a token revoked
or a user disabled by another process is refused within that time (by this process, at
once: it empties its cache).

Passwords (for the web UI's login) are hashed with argon2id (argon2-cffi's defaults). Failed
logins are counted per user name and per client address, in this process's memory: past
:data:`USER_FAILURES` failures for one name, or :data:`ADDRESS_FAILURES` from one address,
within :data:`FAILURE_WINDOW` seconds, logins are refused (``RateLimited``, 429) until the
oldest failure is older than the window, the right password included. With N server
workers an attacker gets at most N times as many tries.

Who may do what (with no principal, as for the CLI on the store, everything is allowed):
admins manage users and read the audit log; a user manages their own tokens and password.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cairn.core.auth import AuditEvent, NewToken, TokenInfo, UserInfo, check_user_name
from cairn.core.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from cairn.core.identity import Principal
from cairn.core.ids import uuid7
from cairn.core.validation import check_name
from cairn.service.audit import AuditLog, current_remote
from cairn.service.base import Context, ServicePart
from cairn.service.identity import current_principal

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = [
    "ADDRESS_FAILURES",
    "FAILURE_WINDOW",
    "TOKEN_PREFIX",
    "USER_FAILURES",
    "AuthService",
    "hash_secret",
]

TOKEN_PREFIX = "cairn_"
USER_FAILURES = 5  # failed logins for one user name within the window
ADDRESS_FAILURES = 20  # failed logins from one address within the window
FAILURE_WINDOW = 300.0  # seconds
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_MAX_SECRET = 128  # longer is no token of ours: refused before it is hashed
_CACHE_LIMIT = 10_000  # tokens remembered at most (then the cache starts over)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_password(password: object) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument(
            "password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )
    return password


@dataclass(frozen=True, slots=True)
class _Trusted:
    principal: Principal
    until: float  # monotonic: checked again after this
    expires_at: int | None  # the token's own expiry (ms)


class _Failures:
    """Failed attempts per key (a user name, an address) within a sliding window."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._times: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        with self._lock:
            times = self._times.get(key)
            if times is None:
                return 0.0
            while times and times[0] <= now - self._window:
                times.popleft()
            if not times:
                del self._times[key]
                return 0.0
            if len(times) < self._limit:
                return 0.0
            return times[0] + self._window - now

    def failed(self, key: str, now: float) -> None:
        with self._lock:
            if len(self._times) > 100_000:  # bounded memory under a spray of names
                self._times.clear()
            times = self._times.setdefault(key, collections.deque(maxlen=self._limit))
            times.append(now)

    def forget(self, key: str) -> None:
        with self._lock:
            self._times.pop(key, None)


class AuthService(ServicePart):
    """Users, tokens, logins and the audit log (see the module's documentation)."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.audit = AuditLog(context.metadata, context.clock)
        self._trusted: dict[str, _Trusted] = {}
        self._users = _Failures(USER_FAILURES, FAILURE_WINDOW)
        self._addresses = _Failures(ADDRESS_FAILURES, FAILURE_WINDOW)
        self._hasher: PasswordHasher | None = None
        self._dummy_hash: str | None = None

    def close(self) -> None:
        self.audit.close()

    # -- who may -------------------------------------------------------------------------
    @staticmethod
    def _require_admin(what: str) -> None:
        principal = current_principal()
        if principal is not None and not principal.admin:
            raise PermissionDenied(f"only an admin may {what}", user=principal.name)

    @staticmethod
    def _whose(user: str | None, what: str) -> str | None:
        """The user whose tokens a call is about: ``user``, or the caller's own; None
        (every user's) only for a caller with no principal that named no one."""
        principal = current_principal()
        if user is not None:
            check_user_name(user)
        if principal is None:
            return user
        if user is None or user == principal.name:
            return principal.name
        if not principal.admin:
            raise PermissionDenied(
                f"only an admin may {what} another user's tokens", user=principal.name
            )
        return user

    def _hasher_(self) -> PasswordHasher:
        if self._hasher is None:
            from argon2 import PasswordHasher

            self._hasher = PasswordHasher()
        return self._hasher

    # -- users ---------------------------------------------------------------------------
    def create_user(
        self, name: str, *, admin: bool = False, password: str | None = None
    ) -> UserInfo:
        self._require_admin("create users")
        check_user_name(name)
        hashed = None if password is None else self._hasher_().hash(_check_password(password))
        now = self.clock()
        with self.metadata.write() as tx:
            if tx.identity.user(name) is not None:
                raise AlreadyExists(f"a user named {name!r} exists", user=name)
            tx.identity.insert_user(uuid7(now), name, hashed, admin, now)
            made = tx.identity.user(name)
        assert made is not None
        self.audit.record("user.create", target=name, detail={"admin": admin})
        return made

    def list_users(self) -> list[UserInfo]:
        self._require_admin("list users")
        with self.metadata.read() as tx:
            return tx.identity.users()

    def get_user(self, name: str) -> UserInfo:
        principal = current_principal()
        if principal is not None and principal.name != name:
            self._require_admin("read other users")
        with self.metadata.read() as tx:
            return self._require_user(tx.identity.user(check_user_name(name)), name)

    def disable_user(self, name: str) -> UserInfo:
        """The user's tokens and password stop working (in every server process within
        ``auth_cache_ttl``); what they made stays theirs."""
        self._require_admin("disable users")
        with self.metadata.write() as tx:
            user = self._require_user(tx.identity.user(check_user_name(name)), name)
            tx.identity.disable_user(user.id, self.clock())
            user = self._require_user(tx.identity.user(name), name)
        self._trusted.clear()
        self.audit.record("user.disable", target=name)
        return user

    def set_password(self, name: str, password: str | None) -> None:
        """A user's own, or (an admin) anyone's; None: no password (tokens only)."""
        principal = current_principal()
        if principal is not None and principal.name != name:
            self._require_admin("set other users' passwords")
        hashed = None if password is None else self._hasher_().hash(_check_password(password))
        with self.metadata.write() as tx:
            user = self._require_user(tx.identity.user(check_user_name(name)), name)
            tx.identity.set_password(user.id, hashed)
        self.audit.record("user.password", target=name)

    @staticmethod
    def _require_user(user: UserInfo | None, name: str) -> UserInfo:
        if user is None:
            raise NotFound(f"no user named {name!r}", kind="user", id=name)
        return user

    # -- tokens --------------------------------------------------------------------------
    def create_token(
        self, name: str, *, user: str | None = None, expires_in: float | None = None
    ) -> NewToken:
        """A new token for ``user`` (default: the caller), valid for ``expires_in``
        seconds (None: until revoked). Its secret is in the answer, and nowhere else."""
        whose = self._whose(user, "make")
        if whose is None:
            raise InvalidArgument("user", "name the user the token is for (--user)")
        check_name(name, "token name")
        if expires_in is not None and not (isinstance(expires_in, int | float) and expires_in > 0):
            raise InvalidArgument(
                "expires_in", f"must be a positive number of seconds, got {expires_in!r}"
            )
        made = self._new_token(whose, name, expires_in)
        self.audit.record(
            "token.create", target=f"{whose}/{name}", detail={"token_id": made.info.id}
        )
        return made

    def _new_token(self, user: str, name: str, expires_in: float | None) -> NewToken:
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        expires_at = None if expires_in is None else now + math.ceil(expires_in * 1000)
        token_id = uuid7(now)
        with self.metadata.write() as tx:
            owner = tx.identity.user(user)
            if owner is None:
                raise NotFound(f"no user named {user!r}", kind="user", id=user)
            if owner.disabled:
                raise Conflict(f"user {user!r} is disabled: no new tokens", user=user)
            if name in tx.identity.token_names(owner.id):
                raise AlreadyExists(
                    f"{user!r} has a token named {name!r} (revoked tokens keep their names)",
                    user=user,
                    token=name,
                )
            tx.identity.insert_token(token_id, owner.id, name, hash_secret(secret), now, expires_at)
        info = TokenInfo(token_id, name, user, now, expires_at)
        return NewToken(info, secret)

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """The tokens of ``user`` (default: the caller; with no principal: everyone's)."""
        whose = self._whose(user, "list")
        with self.metadata.read() as tx:
            if whose is None:
                return tx.identity.tokens()
            owner = self._require_user(tx.identity.user(whose), whose)
            return tx.identity.tokens(owner.id)

    def revoke_token(self, name_or_id: str, *, user: str | None = None) -> TokenInfo:
        """Revoke a token of ``user`` (default: the caller) by name or id; with no
        principal and no user, ``name_or_id`` is the token's id."""
        whose = self._whose(user, "revoke")
        check_name(name_or_id, "token")
        with self.metadata.write() as tx:
            found: TokenInfo | None
            if whose is None:
                found = next((t for t in tx.identity.tokens() if t.id == name_or_id), None)
            else:
                owner = self._require_user(tx.identity.user(whose), whose)
                found = tx.identity.token(owner.id, name_or_id)
            if found is None:
                of = f" of {whose!r}" if whose else " (give --user to revoke by name)"
                raise NotFound(f"no token {name_or_id!r}{of}", kind="token", id=name_or_id)
            now = self.clock()
            tx.identity.revoke_token(found.id, now)
        self._trusted.clear()
        self.audit.record("token.revoke", target=f"{found.user}/{found.name}")
        return found if found.revoked_at is not None else dataclasses.replace(found, revoked_at=now)

    # -- authenticating ------------------------------------------------------------------
    def trusted(self, secret: str) -> Principal | None:
        """The principal of a token checked within ``auth_cache_ttl`` (no database read),
        or None: then :meth:`authenticate` decides."""
        found = self._trusted.get(hash_secret(secret))
        if found is None or time.monotonic() >= found.until:
            return None
        if found.expires_at is not None and self.clock() >= found.expires_at:
            return None
        return found.principal

    def authenticate(self, secret: str) -> Principal:
        """The principal a token's secret stands for; ``Unauthenticated`` (saying why,
        never repeating the secret) for a token that is unknown, expired or revoked, or
        whose user is disabled."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > _MAX_SECRET:
            raise Unauthenticated("the token is not a Cairn API token", reason="malformed")
        hashed = hash_secret(secret)
        with self.metadata.read() as tx:
            grant = tx.identity.grant(hashed)
        # The lookup went by the hash; compared again in constant time all the same.
        if grant is None or not hmac.compare_digest(grant.secret_hash, hashed):
            raise Unauthenticated("the token is not known", reason="unknown")
        if grant.revoked_at is not None:
            raise Unauthenticated("the token was revoked", reason="revoked")
        if grant.expires_at is not None and self.clock() >= grant.expires_at:
            raise Unauthenticated("the token has expired", reason="expired")
        if grant.disabled_at is not None:
            raise Unauthenticated(f"user {grant.user!r} is disabled", reason="disabled")
        principal = Principal(grant.user_id, grant.user, grant.admin, grant.token_id)
        if len(self._trusted) >= _CACHE_LIMIT:
            self._trusted.clear()
        self._trusted[hashed] = _Trusted(
            principal, time.monotonic() + self.settings.auth_cache_ttl, grant.expires_at
        )
        return principal

    def login(self, name: str, password: str) -> NewToken:
        """A token for ``name`` if ``password`` is theirs (valid for
        ``login_token_lifetime``). Failures are counted (see the module's documentation);
        the error never says whether the user exists."""
        remote = current_remote()
        if not isinstance(name, str) or not isinstance(password, str):
            raise InvalidArgument("username", "username and password must be strings")
        now = time.monotonic()
        wait = max(self._users.wait(name, now), self._addresses.wait(remote, now))
        if wait > 0:
            self.audit.record("auth.rate_limited", target=name[:256], actor=name[:256], status=429)
            raise RateLimited(
                "too many failed logins; try again later", retry_after=max(1, math.ceil(wait))
            )
        with self.metadata.read() as tx:
            found = tx.identity.password_hash(name) if len(name) <= 256 else None
        user, hashed = found if found is not None else (None, None)
        if not self._verify(hashed, password) or user is None or user.disabled:
            self._users.failed(name, now)
            self._addresses.failed(remote, now)
            self.audit.record("auth.login_failed", target=name[:256], actor=name[:256], status=401)
            raise Unauthenticated("wrong user name or password")
        self._users.forget(name)
        if hashed is not None and self._hasher_().check_needs_rehash(hashed):
            with self.metadata.write() as tx:
                tx.identity.set_password(user.id, self._hasher_().hash(password))
        made = self._new_token(
            name, f"login-{uuid7(self.clock())}", self.settings.login_token_lifetime
        )
        self.audit.record("auth.login", target=name, actor=name, detail={"token_id": made.info.id})
        return made

    def _verify(self, hashed: str | None, password: str) -> bool:
        """argon2's verification; a user with no password (or none at all) costs the same
        time, so timing does not tell which names exist."""
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = self._hasher_()
        if hashed is None:
            if self._dummy_hash is None:
                self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))
            hashed, password = self._dummy_hash, password + "\x00never"
            result = False
        else:
            result = True
        try:
            hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False
        return result

    def logout(self) -> None:
        """Revoke the token the caller authenticated with."""
        principal = current_principal()
        if principal is None or principal.token_id is None:
            return
        with self.metadata.write() as tx:
            tx.identity.revoke_token(principal.token_id, self.clock())
        self._trusted.clear()
        self.audit.record("auth.logout", target=principal.name)

    # -- the audit log -------------------------------------------------------------------
    def audit_events(
        self,
        *,
        since: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """The newest events first (``action``: a prefix, e.g. ``auth.``)."""
        self._require_admin("read the audit log")
        if not isinstance(limit, int) or not 1 <= limit <= self.settings.max_search_limit:
            raise InvalidArgument(
                "limit", f"must be 1 to {self.settings.max_search_limit}, got {limit!r}"
            )
        self.audit.flush()
        with self.metadata.read() as tx:
            return tx.identity.audit(since=since, actor=actor, action=action, limit=limit)
