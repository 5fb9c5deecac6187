"""A project's roles from the Python API (docs/roles.md), on both backends with
authentication off: the calls and their rules are the same. Who may make them: the
service's matrix (tests/service/test_roles.py) and tests/server/test_roles_http.py."""

from __future__ import annotations

from pathlib import Path

import pytest

import cairn
from cairn.core.errors import Conflict, InvalidArgument, NotFound
from cairn.core.identity import Role
from cairn.core.settings import Settings
from cairn.service import open_service


def _users(home: Path, store_url: str, *names: str) -> None:
    service = open_service(Settings(home=str(home), store_uri=store_url))
    try:
        for name in names:
            service.auth.create_user(name)
    finally:
        service.close()


def test_grant_list_and_revoke(client: cairn.Client, home: Path, store_url: str) -> None:
    project = client.set_project("vision")
    _users(home, store_url, "bob", "carol")
    assert project.roles() == []  # made with authentication off: no owner yet
    granted = project.grant("bob", "reader")
    assert (granted.user, granted.role, granted.granted_by) == ("bob", Role.READER, "")
    project.grant("bob", Role.WRITER)  # replaces the role held
    project.grant("carol", "owner")
    assert [(r.user, r.role) for r in project.roles()] == [
        ("bob", Role.WRITER),
        ("carol", Role.OWNER),
    ]
    project.revoke("bob")
    project.revoke("bob")  # nothing held: nothing to do
    with pytest.raises(Conflict, match="last owner"):
        project.revoke("carol")
    assert [r.user for r in project.roles()] == ["carol"]


def test_roles_name_what_exists(client: cairn.Client, home: Path, store_url: str) -> None:
    project = client.set_project("vision")
    _users(home, store_url, "bob")
    with pytest.raises(NotFound, match="no user named 'nobody'"):
        project.grant("nobody", "reader")
    with pytest.raises(InvalidArgument, match="role: must be one of reader, writer, owner"):
        project.grant("bob", "admin")
    with pytest.raises(InvalidArgument, match=r"^user: "):
        project.grant("not a name", "reader")
