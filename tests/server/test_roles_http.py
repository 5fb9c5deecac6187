"""Authorization end to end (issue 14, docs/roles.md): a real server with authentication on,
clients holding tokens of different users, the fast path's routes among them, the raw
statuses (404 for what one cannot read, 403 for too low a role), and the CLI's roles
commands. The full role matrix runs at the service level (tests/service/test_roles.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

import cairn
from cairn.cli import main as cli
from cairn.core.errors import NotFound, PermissionDenied
from cairn.core.identity import Role
from cairn.core.ids import new_id
from cairn.core.settings import Settings
from cairn.service import open_service
from tests.servers import serve_in_thread


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A server with authentication on; the tokens of alice, bob, carol and root (admin)."""
    settings = Settings(home=str(tmp_path / "home"), auth=True)
    service = open_service(settings)
    tokens: dict[str, str] = {}
    try:
        for name in ("alice", "bob", "carol", "root"):
            service.auth.create_user(name, admin=name == "root")
            tokens[name] = service.auth.create_token("t", user=name).secret
    finally:
        service.close()
    with serve_in_thread(settings) as url:
        yield url, tokens


def _client(url: str, token: str) -> cairn.Client:
    return cairn.Client(url, token=token, settings=Settings(retry_timeout=5.0))


def test_roles_over_http(server: tuple[str, dict[str, str]]) -> None:
    url, tokens = server
    alice, bob, root = (_client(url, tokens[n]) for n in ("alice", "bob", "root"))
    http = urllib3.PoolManager()

    def status(method: str, path: str, who: str, body: object = None) -> int:
        response = http.request(
            method,
            f"{url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {tokens[who]}"},
        )
        return response.status

    try:
        # alice makes a project, an experiment and a run (create_run, log_hyperparameters
        # and end_run go through the fast path): all hers, whatever the body says.
        project = alice.set_project("vision", owner="mallory")
        experiment = project.set_experiment("resnet", owner="mallory")
        with alice.start_run("first", capture="none") as run:
            run.log_hyperparameters({"lr": 0.1})
        run_id = run.id
        assert project.info.owner == experiment.info.owner == "alice"
        assert alice.get_run(run_id).info.owner == "alice"
        assert [(r.user, r.role) for r in project.roles()] == [("alice", Role.OWNER)]

        # bob holds no role: nothing of it is there for him, word for word.
        assert bob.list_projects() == []
        assert bob.count_runs() == 0
        with pytest.raises(NotFound) as hidden:
            bob.get_project(id=project.id)
        unknown = new_id(1)
        with pytest.raises(NotFound) as missing:
            bob.get_project(id=unknown)
        assert hidden.value.message == missing.value.message.replace(unknown, project.id)
        assert status("GET", f"/runs/{run_id}", "bob") == 404
        assert status("POST", f"/experiments/{experiment.id}/runs", "bob", {}) == 404  # fast
        assert status("GET", f"/projects/{project.id}/roles", "bob") == 404

        # a reader reads, and is refused a write with a 403 saying why
        project.grant("bob", "reader")
        assert [p.id for p in bob.list_projects()] == [project.id]
        assert bob.count_runs() == 1
        assert bob.get_run(run_id).info.name == "first"
        assert status("POST", f"/experiments/{experiment.id}/runs", "bob", {}) == 403  # fast
        assert (
            status("POST", f"/runs/{run_id}/hyperparameters", "bob", {"hyperparameters": {"a": 1}})
            == 403
        )
        assert status("DELETE", f"/runs/{run_id}", "bob") == 403
        assert status("GET", f"/projects/{project.id}/roles", "bob") == 403
        with pytest.raises(PermissionDenied, match=r"bob is a reader .* needs the writer role"):
            bob.get_project(id=project.id).set_experiment("mine")

        # a writer writes; owners and admins manage roles
        project.grant("bob", "writer")
        made = bob.get_project(id=project.id).set_experiment("bobs", owner="mallory")
        assert made.info.owner == "bob"
        assert status("DELETE", f"/projects/{project.id}", "bob") == 403  # owners only
        root.get_project(id=project.id).grant("carol", "reader")
        assert {r.user: r.role for r in project.roles()} == {
            "alice": Role.OWNER,
            "bob": Role.WRITER,
            "carol": Role.READER,
        }
        project.revoke("bob")
        assert bob.list_projects() == []
        assert status("DELETE", f"/projects/{project.id}/roles/alice", "alice") == 409  # last
    finally:
        for client in (alice, bob, root):
            client.close()
        http.clear()


def test_the_roles_commands(
    server: tuple[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, tokens = server
    with _client(url, tokens["alice"]) as alice:
        alice.set_project("shared")
    monkeypatch.setenv("CAIRN_TOKEN", tokens["alice"])
    assert cli(["projects", "grant", "shared", "carol", "writer", "--url", url]) == 0
    assert "carol is now a writer of shared" in capsys.readouterr().out
    assert cli(["projects", "roles", "shared", "--url", url, "--json"]) == 0
    listed = capsys.readouterr().out
    assert '"user": "carol"' in listed and '"role": "writer"' in listed
    assert cli(["projects", "revoke", "shared", "carol", "--url", url]) == 0
    capsys.readouterr()
    monkeypatch.setenv("CAIRN_TOKEN", tokens["carol"])
    assert cli(["projects", "roles", "shared", "--url", url]) == 1  # not hers to see
    assert "no project named 'shared'" in capsys.readouterr().err
