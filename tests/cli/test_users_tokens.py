"""``cairn users|tokens|audit`` on a store directly and through a server with auth on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cairn
from cairn.core.settings import Settings
from tests.cli.conftest import Invoke, json_of
from tests.servers import serve_in_thread


def _ok(result: object) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)  # type: ignore[attr-defined]
    return str(result.stdout)  # type: ignore[attr-defined]


def test_the_first_admin_and_token_on_a_store_then_through_a_server(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    _ok(invoke("users", "create", "root", "--admin", "--home", home))  # a new store
    out = _ok(
        invoke("users", "create", "alice", "--password-stdin", "--home", home, input="s3cret pw\n")
    )
    assert out == "created user alice\n"
    users = json_of(invoke("users", "ls", "--json", "--home", home))
    assert [(u["name"], u["admin"], u["has_password"]) for u in users] == [
        ("alice", False, True),
        ("root", True, False),
    ]
    made = invoke("tokens", "create", "laptop", "--user", "root", "--home", home)
    secret = _ok(made).strip()
    assert secret.startswith("cairn_") and "shown once" in made.stderr
    missing = invoke("tokens", "create", "x", "--home", home)
    assert missing.exit_code == 1 and "--user" in missing.stderr

    settings = Settings(home=str(home), auth=True)
    with serve_in_thread(settings) as url:
        monkeypatch.setenv("CAIRN_URL", url)
        refused = invoke("users", "ls")
        assert refused.exit_code == 1 and "requires an API token" in refused.stderr
        monkeypatch.setenv("CAIRN_TOKEN", secret)
        _ok(invoke("users", "create", "bob"))
        bobs = _ok(invoke("tokens", "create", "ci", "--user", "bob", "--expires", "30d")).strip()
        listed = json_of(invoke("tokens", "ls", "--user", "bob", "--json"))
        assert [(t["name"], t["user"], t["revoked_at"]) for t in listed] == [("ci", "bob", None)]
        assert secret not in json.dumps(listed) and bobs not in json.dumps(listed)
        table = _ok(invoke("tokens", "ls"))  # root's own
        assert "laptop" in table and "active" in table and "ci" not in table

        monkeypatch.setenv("CAIRN_TOKEN", bobs)  # bob: his own tokens, nothing else
        denied = invoke("users", "ls")
        assert denied.exit_code == 1 and "only an admin" in denied.stderr
        assert invoke("audit", "ls").exit_code == 1
        _ok(invoke("tokens", "create", "second"))
        assert "revoked token 'second' of bob" in _ok(invoke("tokens", "revoke", "second"))

        monkeypatch.setenv("CAIRN_TOKEN", secret)
        _ok(invoke("users", "disable", "bob"))
        with cairn.Client(url, token=bobs) as client, pytest.raises(cairn.CairnError):
            client.list_projects()
        events = json_of(invoke("audit", "ls", "--json", "--since", "1h", "--limit", "500"))
        actions = {(e["actor"], e["action"]) for e in events}
        assert {("root", "user.create"), ("bob", "token.revoke"), ("root", "user.disable")} <= (
            actions
        )
        table = _ok(invoke("audit", "ls", "--action", "user.", "--actor", "root"))
        assert "user.disable" in table and "token." not in table
        for text in (table, json.dumps(events)):
            assert secret not in text and bobs not in text
    # On the store again, after the server: every user's tokens, revoked by id.
    monkeypatch.delenv("CAIRN_URL")
    monkeypatch.delenv("CAIRN_TOKEN")
    everyone = json_of(invoke("tokens", "ls", "--json", "--home", home))
    assert {t["user"] for t in everyone} == {"root", "bob"}
    laptop = next(t for t in everyone if t["name"] == "laptop")
    _ok(invoke("tokens", "revoke", laptop["id"], "--home", home))
    by_name = invoke("tokens", "revoke", "ci", "--home", home)
    assert by_name.exit_code == 1 and "--user" in by_name.stderr
    assert "token.revoke" in _ok(invoke("audit", "ls", "--home", home, "--limit", "3"))


def test_bad_input_is_a_clear_error(invoke: Invoke, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert "no Cairn store" in invoke("users", "ls", "--home", home).stderr
    _ok(invoke("users", "create", "root", "--home", home))
    for args, words in (
        (("users", "create", "bad name"), "user:"),
        (("users", "create", "root"), "exists"),
        (("users", "create", "x", "--password-stdin"), "password"),
        (("users", "disable", "nobody"), "no user named 'nobody'"),
        (("tokens", "create", "t", "--user", "root", "--expires", "soon"), "--expires"),
        (("audit", "ls", "--since", "yesterday"), "--since"),
    ):
        result = invoke(*args, "--home", home, input="\n")
        assert result.exit_code == 1, args
        assert words in result.stderr, (args, result.stderr)
    both = invoke("users", "ls", "--url", "http://127.0.0.1:1", "--home", home)
    assert both.exit_code == 2
