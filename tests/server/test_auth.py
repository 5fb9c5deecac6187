"""Authentication through a real server on loopback (SQLite and PostgreSQL): who gets in,
who is refused and how, and that no token ever shows in a log line, repr or message."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3

import cairn
from cairn.core.errors import InvalidArgument, PermissionDenied, Unauthenticated
from cairn.core.settings import Settings
from cairn.server.serve import json_formatter
from cairn.service import open_service
from tests.servers import serve_in_thread

PASSWORD = "correct horse battery"


@dataclass
class Server:
    url: str
    settings: Settings
    admin: str  # the admin's token
    user: str  # a plain user's token
    lines: list[str]  # every log line the server wrote, formatted as it writes them

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: object
    ) -> urllib3.BaseHTTPResponse:
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if "json" in kwargs or method in ("POST", "PUT", "PATCH"):
            headers.setdefault("Content-Type", "application/json")  # a write's type
        return urllib3.request(
            method,
            self.url + "/api/v1" + path,
            headers=headers,
            retries=False,
            timeout=60,  # argon2 takes its time on a busy machine
            **kwargs,  # type: ignore[arg-type]
        )


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.setFormatter(json_formatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[Server]:
    settings = Settings(
        home=str(tmp_path / "home"), store_uri=store_url, auth=True, auth_cache_ttl=0.5
    )
    service = open_service(settings)
    try:
        service.auth.create_user("root", admin=True, password=PASSWORD)
        service.auth.create_user("alice", password=PASSWORD)
        admin = service.auth.create_token("root-token", user="root").secret
        user = service.auth.create_token("alice-token", user="alice").secret
    finally:
        service.close()
    lines: list[str] = []
    handler = _Lines(lines)
    loggers = [logging.getLogger(name) for name in ("cairn", "uvicorn", "uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        with serve_in_thread(settings) as url:
            yield Server(url, settings, admin, user, lines)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _error(response: urllib3.BaseHTTPResponse) -> dict[str, object]:
    error: dict[str, object] = json.loads(response.data)["error"]
    return error


def test_no_token_or_a_bad_one_is_a_401_and_health_stays_open(server: Server) -> None:
    assert server.call("GET", "/health").status == 200
    missing = server.call("GET", "/projects")
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="cairn"'
    assert _error(missing)["code"] == "unauthenticated"
    for header in ("Bearer cairn_not-a-token", "Basic cm9vdDpwdw==", "Bearer "):
        refused = server.call("GET", "/projects", headers={"Authorization": header})
        assert refused.status == 401, header
        assert "invalid_token" in refused.headers["WWW-Authenticate"]
    # Writes too, before their bodies are read; and the fast path's routes.
    assert server.call("POST", "/projects", json={"name": "p"}).status == 401
    fast = f"/experiments/{'0' * 8}-0000-7000-8000-{'0' * 12}/runs"
    assert server.call("POST", fast, json={"name": "r"}).status == 401
    assert server.call("GET", "/openapi.json").status == 401
    ok = server.call("GET", "/projects", server.user)
    assert ok.status == 200


def test_the_request_runs_as_its_token_on_the_fast_path_too(server: Server) -> None:
    with cairn.Client(server.url, token=server.user) as client:
        client.set_project("p")
        client.set_experiment("e")
        run = client.start_run("r")
        run.log_hyperparameters({"lr": 0.1})  # the fast path's routes
        run.end()
        assert client.get_run(run.id).info.owner == "alice"
    who = json.loads(server.call("GET", "/auth/whoami", server.user).data)
    assert who == {"user": "alice", "admin": False}


def test_expired_revoked_and_disabled_are_refused(server: Server) -> None:
    made = json.loads(
        server.call("POST", "/tokens", server.user, json={"name": "brief", "expires_in": 1}).data
    )
    assert server.call("GET", "/projects", made["token"]).status == 200
    time.sleep(1.1)
    expired = server.call("GET", "/projects", made["token"])
    assert (expired.status, _error(expired)["details"]) == (401, {"reason": "expired"})

    # Revoked by another process on the same store: refused within auth_cache_ttl.
    assert server.call("GET", "/projects", server.user).status == 200  # now in the cache
    other = open_service(server.settings)
    try:
        other.auth.revoke_token("alice-token", user="alice")
    finally:
        other.close()
    time.sleep(server.settings.auth_cache_ttl + 0.1)
    revoked = server.call("GET", "/projects", server.user)
    assert (revoked.status, _error(revoked)["details"]) == (401, {"reason": "revoked"})

    # Disabled through the server (an admin): refused at once.
    login = json.loads(
        server.call("POST", "/auth/login", json={"username": "alice", "password": PASSWORD}).data
    )
    assert server.call("GET", "/projects", login["token"]).status == 200
    assert server.call("POST", "/users/alice/disable", server.admin).status == 200
    disabled = server.call("GET", "/projects", login["token"])
    assert (disabled.status, _error(disabled)["details"]) == (401, {"reason": "disabled"})


def test_a_brute_force_login_is_rate_limited(server: Server) -> None:
    statuses = []
    for i in range(7):
        answer = server.call(
            "POST", "/auth/login", json={"username": "alice", "password": f"guess {i}"}
        )
        statuses.append(answer.status)
    assert statuses == [401] * 5 + [429] * 2
    assert 1 <= int(answer.headers["Retry-After"]) <= 300
    assert _error(answer)["code"] == "rate_limited"
    right = server.call("POST", "/auth/login", json={"username": "alice", "password": PASSWORD})
    assert right.status == 429  # the right password waits too
    # The same through the client: RateLimited, with the wait.
    with pytest.raises(cairn.CairnError) as caught:
        cairn.Client(server.url, token=server.admin)._backend.transport.post(  # type: ignore[attr-defined]
            "/auth/login", {"username": "alice", "password": PASSWORD}
        )
    assert caught.value.code == "rate_limited"


def test_the_login_cookie_works_for_pages(server: Server) -> None:
    answer = server.call(
        "POST", "/auth/login", json={"username": "alice", "password": PASSWORD, "cookie": True}
    )
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    value = cookie.split(";", 1)[0]
    who = server.call("GET", "/auth/whoami", headers={"Cookie": value})
    assert json.loads(who.data)["user"] == "alice"
    out = server.call("POST", "/auth/logout", headers={"Cookie": value})
    assert out.status == 204
    assert server.call("GET", "/auth/whoami", headers={"Cookie": value}).status == 401


def test_web_pages_send_a_stranger_to_the_login_and_the_cookie_back(server: Server) -> None:
    pytest.importorskip("jinja2")  # the ui extra (in the dev lock: never skips in CI)

    def page(path: str, cookie: str | None = None) -> urllib3.BaseHTTPResponse:
        headers = {"Cookie": cookie} if cookie else {}
        return urllib3.request(
            "GET", server.url + path, headers=headers, redirect=False, retries=False, timeout=60
        )

    # What the login page needs is open; any other page redirects, and comes back after.
    assert page("/login").status == 200
    assert page("/static/favicon.svg").status == 200
    away = page("/runs?q=metrics.acc%20%3E%200.5")
    assert away.status == 303
    assert away.headers["Location"] == "/login?next=%2Fruns%3Fq%3Dmetrics.acc%2520%253E%25200.5"
    # The API still answers 401 in its error shape, never a redirect.
    assert server.call("GET", "/projects").status == 401
    answer = server.call(
        "POST", "/auth/login", json={"username": "alice", "password": PASSWORD, "cookie": True}
    )
    cookie = answer.headers["Set-Cookie"].split(";", 1)[0]
    assert page("/", cookie).status == 200
    assert page("/runs", cookie).status == 200


def test_admins_only_for_users_and_the_audit_log(server: Server) -> None:
    with cairn.Client(server.url, token=server.user) as client:
        client.set_project("mine")
    denied = server.call("GET", "/audit", server.user)
    assert denied.status == 403
    assert server.call("POST", "/users", server.user, json={"name": "eve"}).status == 403
    assert server.call("POST", "/users", server.admin, json={"name": "eve"}).status == 201
    events = json.loads(server.call("GET", "/audit?limit=1000", server.admin).data)
    seen = {(e["actor"], e["action"], e["status"]) for e in events}
    assert ("alice", "request.post", 200) in seen  # the project, as alice
    assert ("root", "user.create", 200) in seen
    assert ("alice", "request.post", 403) in seen  # refused writes are audited too
    assert all(e["remote"] in ("127.0.0.1", "local") for e in events)


def test_401s_are_audited(server: Server) -> None:
    server.call("GET", "/projects", headers={"Authorization": "Bearer cairn_guess"})
    events = json.loads(server.call("GET", "/audit?action=auth.rejected", server.admin).data)
    assert [(e["target"], e["status"], e["detail"]) for e in events] == [
        ("GET /api/v1/projects", 401, {"reason": "unknown"})
    ]


def test_the_client_reads_its_token_from_where_it_should(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAIRN_TOKEN", raising=False)
    credentials = tmp_path / "credentials"
    monkeypatch.setenv("CAIRN_CREDENTIALS_FILE", str(credentials))
    settings = Settings(retry_timeout=2.0, credentials_file=str(credentials))
    with (
        pytest.raises(Unauthenticated, match="requires an API token"),
        cairn.Client(server.url, settings=settings) as client,
    ):
        client.list_projects()
    credentials.write_text(f"# mine\nhttp://elsewhere:1 cairn_no\n{server.url} {server.user}\n")
    credentials.chmod(0o644)
    with pytest.raises(InvalidArgument, match="chmod 600") as caught:
        cairn.Client(server.url, settings=settings)
    assert server.user not in str(caught.value)
    credentials.chmod(0o600)
    with cairn.Client(server.url, settings=settings) as client:
        assert client.list_projects() == []
    monkeypatch.setenv("CAIRN_TOKEN", server.admin)
    with cairn.Client(server.url) as client:
        client.set_project("as-root")
        assert client.get_project("as-root").info.owner == "root"
        assert server.admin not in repr(client.settings)


def test_no_token_is_ever_in_a_log_line_or_an_error(server: Server) -> None:
    made = json.loads(server.call("POST", "/tokens", server.user, json={"name": "more"}).data)
    login = json.loads(
        server.call("POST", "/auth/login", json={"username": "alice", "password": PASSWORD}).data
    )
    secrets = [server.admin, server.user, made["token"], login["token"], PASSWORD]
    with cairn.Client(server.url, token=server.user) as client:
        client.set_project("p")
        client.set_experiment("e")
        run = client.start_run()
        run.log_metric("loss", 1.0)
        run.end()
        errors = []
        for call in (
            lambda: client.get_project("absent"),
            lambda: cairn.Client(server.url, token=server.user + "x").list_projects(),
        ):
            try:
                call()
            except Exception as exc:
                errors.append(f"{exc!r} {exc}")
    with pytest.raises(PermissionDenied) as denied:
        cairn.Client(server.url, token=server.user)._backend.transport.get("/users")  # type: ignore[attr-defined]
    errors.append(str(denied.value))
    server.call("GET", "/projects", made["token"])  # revoked: a 401, logged
    time.sleep(0.8)  # the audit thread's batch
    assert server.lines, "the server wrote no log lines"
    assert any('"logger": "cairn.audit"' in line for line in server.lines)
    for secret in secrets:
        for text in (*server.lines, *errors):
            assert secret not in text
    # And never in a URL: the access log's paths hold none either.
    assert not any("cairn_" in line for line in server.lines)


def test_the_audit_log_line_says_who_what_where_and_how(server: Server) -> None:
    server.call("POST", "/projects", server.user, json={"name": "audited"})
    lines = [json.loads(line) for line in server.lines if '"cairn.audit"' in line]
    (line,) = [x for x in lines if x.get("target") == "/api/v1/projects"]
    assert {k: line[k] for k in ("actor", "action", "remote", "status")} == {
        "actor": "alice",
        "action": "request.post",
        "remote": "127.0.0.1",
        "status": 200,
    }
    assert line["time"].endswith("Z")


def test_token_and_user_routes_through_the_cli_helpers(server: Server) -> None:
    from cairn.client._http_auth import HttpAuth
    from cairn.client._transport import Transport

    transport = Transport(server.url, timeout=5, retry_timeout=2, token=server.admin)
    try:
        auth = HttpAuth(transport)
        made = auth.create_token("ci", user="alice", expires_in=3600)
        assert made.secret not in repr(made)
        assert {t.name for t in auth.list_tokens("alice")} == {"alice-token", "ci"}
        assert auth.revoke_token("ci", user="alice").revoked_at is not None
        assert [u.name for u in auth.list_users()] == ["alice", "root"]
        assert auth.audit_events(action="token.", limit=5)[0].action == "token.revoke"
    finally:
        transport.close()
