"""Users, tokens, logins and the audit log in the service, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, select

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
from cairn.core.settings import Settings
from cairn.service import TrackingService, open_service
from cairn.service.audit import from_address
from cairn.service.auth import ADDRESS_FAILURES, USER_FAILURES, hash_secret
from cairn.service.identity import acting_as
from cairn.store.metadata.schema import tokens, users
from tests.service.conftest import FakeClock


def _principal(service: TrackingService, name: str) -> Principal:
    user = service.auth.get_user(name)
    return Principal(user.id, user.name, user.admin)


def test_users_are_made_once_with_names_that_follow_the_rule(service: TrackingService) -> None:
    made = service.auth.create_user("alice", admin=True)
    assert (made.name, made.admin, made.disabled, made.has_password) == (
        "alice",
        True,
        False,
        False,
    )
    with pytest.raises(AlreadyExists, match="alice"):
        service.auth.create_user("alice")
    for bad in ("", "a b", "-lead", "x" * 65, "tab\t"):
        with pytest.raises(InvalidArgument, match="user"):
            service.auth.create_user(bad)
    with pytest.raises(InvalidArgument, match="password"):
        service.auth.create_user("bob", password="short")
    assert [u.name for u in service.auth.list_users()] == ["alice"]


def test_a_token_is_shown_once_and_stored_as_a_hash(service: TrackingService) -> None:
    service.auth.create_user("alice", password="correct horse")
    made = service.auth.create_token("laptop", user="alice")
    assert made.secret.startswith("cairn_") and len(made.secret) >= 40
    assert made.secret not in repr(made) and "***" in repr(made)
    with service.context.metadata.read() as tx:
        stored = tx.conn.execute(select(tokens.c.secret_hash)).scalar_one()
        password = tx.conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored == hash_secret(made.secret) and made.secret not in stored
    assert password.startswith("$argon2id$") and "correct horse" not in password
    principal = service.auth.authenticate(made.secret)
    assert (principal.name, principal.admin, principal.token_id) == ("alice", False, made.info.id)
    assert made.secret not in repr(principal)
    with pytest.raises(AlreadyExists, match="laptop"):
        service.auth.create_token("laptop", user="alice")


def test_bad_tokens_are_refused_saying_why_never_repeating_them(
    service: TrackingService, clock: FakeClock
) -> None:
    service.auth.create_user("alice")
    service.auth.create_user("bob")
    short = service.auth.create_token("short", user="alice", expires_in=60)
    revoked = service.auth.create_token("old", user="alice")
    bobs = service.auth.create_token("bobs", user="bob")
    service.auth.revoke_token("old", user="alice")
    service.auth.disable_user("bob")
    clock.tick(61_000)
    cases = {
        "expired": short.secret,
        "revoked": revoked.secret,
        "disabled": bobs.secret,
        "unknown": "cairn_" + "x" * 43,
        "malformed": "Basic abc",
    }
    for reason, secret in cases.items():
        with pytest.raises(Unauthenticated) as caught:
            service.auth.authenticate(secret)
        assert caught.value.details["reason"] == reason
        assert secret not in str(caught.value)
    states = {t.name: t.state(clock()) for t in service.auth.list_tokens()}
    assert states == {"short": "expired", "old": "revoked", "bobs": "active"}


def test_checked_tokens_are_trusted_for_the_ttl_without_a_database_read(
    settings: Settings, clock: FakeClock
) -> None:
    """Two services on one store stand for two server processes: a token revoked by one is
    refused by the other once its cache entry is older than auth_cache_ttl."""
    settings = settings.replace(auth_cache_ttl=0.3)
    one, two = open_service(settings, clock), open_service(settings, clock)
    try:
        one.auth.create_user("alice")
        made = one.auth.create_token("t", user="alice")
        assert two.auth.trusted(made.secret) is None  # never checked here
        two.auth.authenticate(made.secret)
        statements: list[str] = []
        event.listen(
            two.context.metadata.engine,
            "before_cursor_execute",
            lambda *args: statements.append(args[2]),
        )
        for _ in range(100):
            assert two.auth.trusted(made.secret) is not None
        assert statements == []
        one.auth.revoke_token("t", user="alice")
        assert one.auth.trusted(made.secret) is None  # at once where it was revoked
        assert two.auth.trusted(made.secret) is not None  # elsewhere: until the TTL ends
        time.sleep(0.35)
        assert two.auth.trusted(made.secret) is None
        with pytest.raises(Unauthenticated, match="revoked"):
            two.auth.authenticate(made.secret)
    finally:
        one.close()
        two.close()


def test_a_trusted_token_still_expires_on_time(service: TrackingService, clock: FakeClock) -> None:
    service.auth.create_user("alice")
    made = service.auth.create_token("t", user="alice", expires_in=1)
    service.auth.authenticate(made.secret)
    assert service.auth.trusted(made.secret) is not None
    clock.tick(1000)
    assert service.auth.trusted(made.secret) is None


def test_admins_manage_users_and_users_their_own_tokens(service: TrackingService) -> None:
    service.auth.create_user("root", admin=True)
    service.auth.create_user("alice")
    service.auth.create_user("bob")
    root, alice = _principal(service, "root"), _principal(service, "alice")
    with acting_as(alice):
        for call in (
            lambda: service.auth.create_user("eve"),
            service.auth.list_users,
            lambda: service.auth.disable_user("bob"),
            lambda: service.auth.list_tokens("bob"),
            lambda: service.auth.create_token("x", user="bob"),
            lambda: service.auth.get_user("bob"),
            service.auth.audit_events,
        ):
            with pytest.raises(PermissionDenied):
                call()
        own = service.auth.create_token("mine")
        assert own.info.user == "alice"
        assert [t.name for t in service.auth.list_tokens()] == ["mine"]
        service.auth.revoke_token("mine")
        service.auth.set_password("alice", "a new password")
        with pytest.raises(NotFound):
            service.auth.revoke_token("nothing")
    with acting_as(root):
        service.auth.create_token("for-bob", user="bob")
        assert [t.name for t in service.auth.list_tokens("bob")] == ["for-bob"]
        service.auth.disable_user("bob")
        with pytest.raises(Conflict, match="disabled"):
            service.auth.create_token("again", user="bob")


def test_password_logins_make_tokens_and_failures_are_rate_limited(
    service: TrackingService,
) -> None:
    service.auth.create_user("alice", password="correct horse")
    service.auth.create_user("carol")  # no password: tokens only
    with from_address("10.0.0.1"):
        made = service.auth.login("alice", "correct horse")
        assert service.auth.authenticate(made.secret).name == "alice"
        assert made.info.expires_at is not None
        for name, password in (("alice", "wrong"), ("nobody", "x"), ("carol", "")):
            with pytest.raises(Unauthenticated, match="wrong user name or password"):
                service.auth.login(name, password)
        for _ in range(USER_FAILURES - 1):
            with pytest.raises(Unauthenticated):
                service.auth.login("alice", "wrong")
        with pytest.raises(RateLimited) as caught:  # the right password too, while limited
            service.auth.login("alice", "correct horse")
        assert 1 <= caught.value.details["retry_after"] <= 300
    with from_address("10.0.0.2"):  # another address, the same user: limited all the same
        with pytest.raises(RateLimited):
            service.auth.login("alice", "correct horse")
        for i in range(ADDRESS_FAILURES):  # many names from one address
            with pytest.raises(Unauthenticated):
                service.auth.login(f"spray{i}", "x")
        with pytest.raises(RateLimited):
            service.auth.login("carol", "x")
    # A fresh address, another user: not limited.
    with from_address("10.0.0.3"), pytest.raises(Unauthenticated):
        service.auth.login("carol", "x")


def test_the_audit_log_keeps_every_auth_event(service: TrackingService) -> None:
    service.auth.create_user("root", admin=True, password="correct horse")
    with from_address("10.1.2.3"):
        with pytest.raises(Unauthenticated):
            service.auth.login("root", "wrong password")
        service.auth.login("root", "correct horse")
    with acting_as(_principal(service, "root")):
        service.auth.create_token("ci")
        service.auth.revoke_token("ci")
        events = service.auth.audit_events()
        assert [(e.actor, e.action, e.status) for e in events] == [
            ("root", "token.revoke", 200),
            ("root", "token.create", 200),
            ("root", "auth.login", 200),
            ("root", "auth.login_failed", 401),
            ("", "user.create", 200),
        ]
        assert events[2].remote == "10.1.2.3" and events[-1].remote == "local"
        assert [e.action for e in service.auth.audit_events(action="auth.")] == [
            "auth.login",
            "auth.login_failed",
        ]
        assert len(service.auth.audit_events(limit=2)) == 2
        assert service.auth.audit_events(actor="nobody") == []
        assert service.auth.audit_events(since=events[0].time + 1) == []


def test_queued_audit_events_are_stored_at_close(settings: Settings) -> None:
    service = open_service(settings)
    for i in range(1200):
        service.auth.audit.record("request.post", target=f"/x/{i}", status=201)
    service.close()
    again = open_service(settings)
    try:
        assert len(again.auth.audit_events(limit=5000)) == 1200
    finally:
        again.close()
