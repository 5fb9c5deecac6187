"""Authorization (issue 14, docs/roles.md): each role -- none, reader, writer, owner, admin --
against each family of calls, on SQLite and PostgreSQL, through the service with the
principal set as the server's middleware sets it (``acting_as``).

Reading needs reader, writing writer, roles and deleting a project owner; an admin may do
anything. A project the caller cannot read answers the NotFound of one that does not exist
(the same message); too low a role a PermissionDenied (the server's 403)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cairn.core.errors import (
    AlreadyExists,
    CairnError,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from cairn.core.identity import Principal, Role
from cairn.core.ids import new_id
from cairn.core.model import MetricRecord
from cairn.core.settings import Settings
from cairn.core.versioning.blobs import Hyperparameters as Params
from cairn.service import TrackingService, open_service
from cairn.service.identity import acting_as

from .conftest import FakeClock

NONE, READER, WRITER, OWNER, ADMIN = "none", "reader", "writer", "owner", "admin"
ROLES = (NONE, READER, WRITER, OWNER, ADMIN)
# What each role may do, by the role a call needs.
ALLOWED = {
    Role.READER: {READER, WRITER, OWNER, ADMIN},
    Role.WRITER: {WRITER, OWNER, ADMIN},
    Role.OWNER: {OWNER, ADMIN},
}


@dataclass
class World:
    """A project made by its creator, with one of everything, and a user per role."""

    service: TrackingService
    principals: dict[str, Principal]
    project: str
    experiment: str
    run: str
    repository: str

    def as_(self, role: str) -> Any:
        return acting_as(self.principals[role])

    def fresh_run(self) -> str:
        """A new running run of the project (made with authentication off)."""
        with acting_as(None):
            return self.service.entities.create_run(self.experiment).id


@pytest.fixture
def world(store_url: str, tmp_path: Any, clock: FakeClock) -> Iterator[World]:
    service = open_service(Settings(home=str(tmp_path / "home"), store_uri=store_url), clock=clock)
    users = {
        name: service.auth.create_user(name, admin=name == "root")
        for name in ("creator", "bob", "carol", "dave", "eve", "root", "frank")
    }
    principal = {n: Principal(u.id, u.name, u.admin) for n, u in users.items()}
    with acting_as(principal["creator"]):
        project = service.entities.set_project("vision").id
        service.roles.grant_role(project, "bob", "reader")
        service.roles.grant_role(project, "carol", Role.WRITER)
        service.roles.grant_role(project, "dave", "owner")
        experiment = service.entities.set_experiment(project, "resnet").id
        run = service.entities.create_run(experiment, "first").id
        service.labels.log_hyperparameters(run, {"lr": 0.1})
        service.metrics.log_metric_records([MetricRecord(run, "loss", 0, 1, 0.5)])
        service.labels.add_tags(run, ["base"])
        service.labels.set_attributes(run, {"gpu": "a100"})
        service.artifacts.log_artifact(run, "weights", io.BytesIO(b"w"))
        repository = service.repositories.set_repository(project, "data").id
    world = World(
        service,
        {
            NONE: principal["eve"],
            READER: principal["bob"],
            WRITER: principal["carol"],
            OWNER: principal["dave"],
            ADMIN: principal["root"],
        },
        project,
        experiment,
        run,
        repository,
    )
    yield world
    service.close()


def _heartbeat(w: World) -> None:
    count = w.service.entities.heartbeat([w.run])
    if count == 0:  # a run the caller cannot see is as none: nothing beats
        raise NotFound("no run beat")


# Every call, by family: (family, what, the role it needs, the call).
Call = Callable[[World], object]
CALLS: list[tuple[str, str, Role, Call]] = [
    # projects
    ("projects", "get_project", Role.READER, lambda w: w.service.entities.get_project(w.project)),
    (
        "projects",
        "get_project_by_name",
        Role.READER,
        lambda w: w.service.entities.get_project_by_name("vision"),
    ),
    (
        "projects",
        "set_description",
        Role.WRITER,
        lambda w: w.service.entities.set_description(w.project, "images"),
    ),
    (
        "projects",
        "delete_project",
        Role.OWNER,
        lambda w: (
            w.service.entities.delete_project(w.project),
            w.service.entities.restore_project(w.project),
        ),
    ),
    # experiments
    (
        "experiments",
        "get_experiment",
        Role.READER,
        lambda w: w.service.entities.get_experiment(w.experiment),
    ),
    (
        "experiments",
        "get_experiment_by_name",
        Role.READER,
        lambda w: w.service.entities.get_experiment_by_name(w.project, "resnet"),
    ),
    (
        "experiments",
        "list_experiments",
        Role.READER,
        lambda w: w.service.entities.list_experiments(w.project),
    ),
    (
        "experiments",
        "set_experiment",
        Role.WRITER,
        lambda w: w.service.entities.set_experiment(w.project, "vit"),
    ),
    (
        "experiments",
        "delete_experiment",
        Role.WRITER,
        lambda w: (
            w.service.entities.delete_experiment(w.experiment),
            w.service.entities.restore_experiment(w.experiment),
        ),
    ),
    # runs
    ("runs", "get_run", Role.READER, lambda w: w.service.entities.get_run(w.run)),
    (
        "runs",
        "get_run_by_name",
        Role.READER,
        lambda w: w.service.entities.get_run_by_name(w.experiment, "first"),
    ),
    ("runs", "list_runs", Role.READER, lambda w: w.service.entities.list_runs(w.experiment)),
    (
        "runs",
        "list_child_runs",
        Role.READER,
        lambda w: w.service.entities.list_child_runs(w.run),
    ),
    ("runs", "create_run", Role.WRITER, lambda w: w.service.entities.create_run(w.experiment)),
    (
        "runs",
        "set_run",
        Role.WRITER,
        lambda w: w.service.entities.set_run(w.experiment, "named"),
    ),
    ("runs", "end_run", Role.WRITER, lambda w: w.service.entities.end_run(w.fresh_run())),
    (
        "runs",
        "delete_run",
        Role.WRITER,
        lambda w: w.service.entities.delete_run(w.fresh_run()),
    ),
    (
        "runs",
        "restore_run",
        Role.WRITER,
        lambda w: w.service.entities.restore_run(w.run),
    ),
    ("runs", "heartbeat", Role.WRITER, _heartbeat),
    # hyperparameters and metrics
    (
        "values",
        "log_hyperparameters",
        Role.WRITER,
        lambda w: w.service.labels.log_hyperparameters(w.fresh_run(), {"lr": 0.2}),
    ),
    (
        "values",
        "get_hyperparameters",
        Role.READER,
        lambda w: w.service.labels.get_hyperparameters(w.run),
    ),
    (
        "values",
        "log_metric_records",
        Role.WRITER,
        lambda w: w.service.metrics.log_metric_records([MetricRecord(w.run, "loss", 1, 2, 0.4)]),
    ),
    (
        "values",
        "get_latest_metrics",
        Role.READER,
        lambda w: w.service.metrics.get_latest_metrics(w.run),
    ),
    (
        "values",
        "get_metric_history",
        Role.READER,
        lambda w: w.service.metrics.get_metric_history(w.run, "loss"),
    ),
    # tags and attributes
    ("labels", "add_tags", Role.WRITER, lambda w: w.service.labels.add_tags(w.run, ["x"])),
    ("labels", "remove_tags", Role.WRITER, lambda w: w.service.labels.remove_tags(w.run, ["x"])),
    ("labels", "get_tags", Role.READER, lambda w: w.service.labels.get_tags(w.project)),
    (
        "labels",
        "set_attributes",
        Role.WRITER,
        lambda w: w.service.labels.set_attributes(w.experiment, {"k": 1}),
    ),
    (
        "labels",
        "get_attributes",
        Role.READER,
        lambda w: w.service.labels.get_attributes(w.run),
    ),
    (
        "labels",
        "remove_attributes",
        Role.WRITER,
        lambda w: w.service.labels.remove_attributes(w.run, ["k"]),
    ),
    # artifacts
    (
        "artifacts",
        "log_artifact",
        Role.WRITER,
        lambda w: w.service.artifacts.log_artifact(w.run, "more", io.BytesIO(b"m")),
    ),
    (
        "artifacts",
        "list_artifacts",
        Role.READER,
        lambda w: w.service.artifacts.list_artifacts(w.run),
    ),
    (
        "artifacts",
        "open_artifact",
        Role.READER,
        lambda w: w.service.artifacts.open_artifact(w.run, "weights").close(),
    ),
    # repositories and commits
    (
        "repositories",
        "get_repository",
        Role.READER,
        lambda w: w.service.repositories.get_repository(w.repository),
    ),
    (
        "repositories",
        "list_repositories",
        Role.READER,
        lambda w: w.service.repositories.list_repositories(w.project),
    ),
    (
        "repositories",
        "set_repository",
        Role.WRITER,
        lambda w: w.service.repositories.set_repository(w.project, "models"),
    ),
    (
        "repositories",
        "log",
        Role.READER,
        lambda w: w.service.repositories.log(w.repository, "main"),
    ),
    (
        "repositories",
        "save_commit",
        Role.WRITER,
        lambda w: w.service.repositories.save_commit(
            w.repository, "main", {"p": Params({"n": new_id(0)})}, message="m"
        ),
    ),
    (
        "repositories",
        "create_tag",
        Role.WRITER,
        lambda w: w.service.repositories.create_tag(w.repository, "v1", "main"),
    ),
    (
        "repositories",
        "log_commit",
        Role.WRITER,
        lambda w: w.service.repositories.log_commit(w.fresh_run(), w.repository, "main"),
    ),
    (
        "repositories",
        "get_run_commit",
        Role.READER,
        lambda w: w.service.repositories.get_run_commit(w.run),
    ),
    # search, by a project named
    (
        "search",
        "find_runs",
        Role.READER,
        lambda w: w.service.search.find_runs(project_ids=[w.project]),
    ),
    (
        "search",
        "count_runs",
        Role.READER,
        lambda w: w.service.search.count_runs(experiment_ids=[w.experiment]),
    ),
    (
        "search",
        "find_experiments",
        Role.READER,
        lambda w: w.service.search.find_experiments(project_ids=[w.project]),
    ),
    (
        "search",
        "find_repositories",
        Role.READER,
        lambda w: w.service.search.find_repositories(project_ids=[w.project]),
    ),
    # roles
    ("roles", "list_roles", Role.OWNER, lambda w: w.service.roles.list_roles(w.project)),
    (
        "roles",
        "grant_role",
        Role.OWNER,
        lambda w: w.service.roles.grant_role(w.project, "frank", "reader"),
    ),
    (
        "roles",
        "revoke_role",
        Role.OWNER,
        lambda w: w.service.roles.revoke_role(w.project, "frank"),
    ),
]


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(world: World, role: str) -> None:
    """Every call of every family: done, or refused as the role says."""
    wrong: list[str] = []
    for family, what, need, call in CALLS:
        allowed = role in ALLOWED[need]
        try:
            with world.as_(role):
                call(world)
        except NotFound as exc:
            if allowed or role != NONE:
                wrong.append(f"{family}.{what}: NotFound ({exc})")
            continue
        except PermissionDenied as exc:
            if allowed or role == NONE:
                wrong.append(f"{family}.{what}: PermissionDenied ({exc})")
            continue
        except CairnError as exc:
            wrong.append(f"{family}.{what}: {type(exc).__name__} ({exc})")
            continue
        if not allowed:
            wrong.append(f"{family}.{what}: allowed, but a {role} needs {need.name.lower()}")
    assert not wrong, f"as {role}:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("kind", "call"),
    [
        ("project", lambda s, i: s.entities.get_project(i)),
        ("experiment", lambda s, i: s.entities.get_experiment(i)),
        ("run", lambda s, i: s.entities.get_run(i)),
        ("repository", lambda s, i: s.repositories.get_repository(i)),
        ("entity", lambda s, i: s.labels.get_tags(i)),
        ("run", lambda s, i: s.labels.log_hyperparameters(i, {"a": 1})),
        ("project", lambda s, i: s.search.count_runs(project_ids=[i])),
    ],
)
def test_an_unreadable_thing_answers_as_one_that_does_not_exist(
    world: World, kind: str, call: Callable[[TrackingService, str], object]
) -> None:
    """The 404 of a project one cannot read is word for word that of a missing one."""
    real = {
        "project": world.project,
        "experiment": world.experiment,
        "run": world.run,
        "repository": world.repository,
        "entity": world.run,
    }[kind]
    unknown = new_id(1)
    with world.as_(NONE), pytest.raises(NotFound) as hidden:
        call(world.service, real)
    with world.as_(ADMIN), pytest.raises(NotFound) as missing:
        call(world.service, unknown)
    assert hidden.value.message == missing.value.message.replace(unknown, real)
    assert hidden.value.details == {
        k: (real if v == unknown else v) for k, v in missing.value.details.items()
    }


def test_listings_and_searches_hold_only_what_the_caller_may_read(world: World) -> None:
    service = world.service
    with world.as_(NONE):  # eve makes a project of her own, with a run
        mine = service.entities.set_project("eve's").id
        experiment = service.entities.set_experiment(mine, "e").id
        service.entities.create_run(experiment)
    seen: dict[str, tuple[set[str], int, int, set[str]]] = {}
    for role in ROLES:
        with world.as_(role):
            projects = {p.id for p in service.entities.list_projects()}
            runs = len(service.search.find_runs(limit=50).items)
            count = service.search.count_runs()
            found = {r.info.id for r in service.search.find_projects().items}
        seen[role] = (projects, runs, count, found)
    assert seen[NONE] == ({mine}, 1, 1, {mine})
    for role in (READER, WRITER, OWNER):
        assert seen[role][0] == seen[role][3] == {world.project}
        assert seen[role][1] == seen[role][2] >= 1
    assert seen[ADMIN][0] == {world.project, mine}
    assert seen[ADMIN][2] == seen[READER][2] + 1
    with world.as_(READER), pytest.raises(NotFound):  # not hers: not found by name either
        service.entities.get_project_by_name("eve's")


def test_a_page_cursor_of_a_restricted_search_walks_only_readable_runs(world: World) -> None:
    service = world.service
    with acting_as(None):  # runs in a project nobody else can read, interleaved
        other = service.entities.set_project("hidden").id
        hidden_exp = service.entities.set_experiment(other, "h").id
        for _ in range(5):
            service.entities.create_run(hidden_exp)
            service.entities.create_run(world.experiment)
    with world.as_(READER):
        total = service.search.count_runs()
        ids: list[str] = []
        cursor = None
        while True:
            page = service.search.find_runs(limit=2, cursor=cursor)
            ids.extend(r.info.id for r in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    assert len(ids) == len(set(ids)) == total == 6  # "first" and five more
    assert all(service.entities.get_run(i).project_id == world.project for i in ids)


def test_new_things_belong_to_the_principal_whatever_the_caller_says(world: World) -> None:
    service = world.service
    with world.as_(WRITER):
        experiment = service.entities.set_experiment(world.project, "mine", owner="mallory")
        run = service.entities.create_run(world.experiment, owner="mallory")
        repository = service.repositories.set_repository(world.project, "r", owner="mallory")
        commit = service.repositories.save_commit(
            repository.id, "main", {"p": Params({"a": 1})}, message="m", author="mallory"
        )
    with world.as_(NONE):
        project = service.entities.set_project("eve-project", owner="mallory")
    assert (experiment.owner, run.owner, repository.owner) == ("carol", "carol", "carol")
    assert commit.author == "carol"
    assert project.owner == "eve"
    with world.as_(NONE):  # the creator of a project is its owner
        assert [(r.user, r.role) for r in service.roles.list_roles(project.id)] == [
            ("eve", Role.OWNER)
        ]
    with acting_as(None):  # authentication off: the caller's word, as before
        assert service.entities.set_experiment(world.project, "x", owner="zed").owner == "zed"
    # What the principal replaces is still checked: bad input is an error, not ignored.
    with world.as_(WRITER), pytest.raises(InvalidArgument, match="owner"):
        service.entities.create_run(world.experiment, owner="\x84")
    with world.as_(WRITER), pytest.raises(InvalidArgument, match="author"):
        service.repositories.save_commit(
            repository.id, "main", {"q": Params({"a": 2})}, message="m", author="\x00"
        )


def test_set_project_of_a_name_taken(world: World) -> None:
    service = world.service
    with world.as_(NONE), pytest.raises(AlreadyExists) as taken:
        service.entities.set_project("vision")
    assert "taken" in taken.value.message and world.project not in str(taken.value.details)
    with world.as_(READER), pytest.raises(PermissionDenied):
        service.entities.set_project("vision")
    with world.as_(WRITER):
        assert service.entities.set_project("vision", description="d").id == world.project


def test_grants_and_revokes_hold_at_once_in_this_process(world: World) -> None:
    service = world.service
    with world.as_(NONE), pytest.raises(NotFound):
        service.entities.get_run(world.run)  # cached now: eve has no role
    with world.as_(OWNER):
        service.roles.grant_role(world.project, "eve", "writer")
    with world.as_(NONE):
        service.labels.add_tags(world.run, ["eve"])
    with world.as_(OWNER):
        service.roles.grant_role(world.project, "eve", "reader")
    with world.as_(NONE):
        service.entities.get_run(world.run)
        with pytest.raises(PermissionDenied) as denied:
            service.labels.add_tags(world.run, ["eve"])
    assert denied.value.details == {
        "project_id": world.project,
        "role": "reader",
        "required": "writer",
    }
    with world.as_(OWNER):
        service.roles.revoke_role(world.project, "eve")
    with world.as_(NONE), pytest.raises(NotFound):
        service.entities.get_run(world.run)


def test_the_last_owner_stays(world: World) -> None:
    service = world.service
    with world.as_(OWNER):
        service.roles.revoke_role(world.project, "creator")
        with pytest.raises(Conflict, match="last owner"):
            service.roles.revoke_role(world.project, "dave")
        with pytest.raises(Conflict, match="last owner"):
            service.roles.grant_role(world.project, "dave", "writer")
        service.roles.grant_role(world.project, "bob", "owner")
        service.roles.grant_role(world.project, "dave", "writer")  # bob owns it now
    roles = {r.user: r for r in service.roles.list_roles(world.project)}
    assert {u: r.role for u, r in roles.items()} == {
        "bob": Role.OWNER,
        "carol": Role.WRITER,
        "dave": Role.WRITER,
    }
    assert roles["bob"].granted_by == "dave"


def test_roles_name_users_and_roles_that_exist(world: World) -> None:
    service = world.service
    with pytest.raises(NotFound, match="no user named 'nobody'"):
        service.roles.grant_role(world.project, "nobody", "reader")
    with pytest.raises(CairnError, match="role: must be one of reader, writer, owner"):
        service.roles.grant_role(world.project, "bob", "admin")
    with pytest.raises(NotFound, match="no project with id"):
        service.roles.list_roles(new_id(1))


def test_objects_by_digest(world: World) -> None:
    """Any principal reads an object by its digest; a writer of some project stores one."""
    service = world.service
    with world.as_(WRITER):
        stored = service.repositories.store_bytes(b"payload")
    with world.as_(NONE):
        assert service.objects.size(stored.digest) == len(b"payload")
        with pytest.raises(PermissionDenied, match="writes to no project"):
            service.repositories.store_bytes(b"more")
        with pytest.raises(PermissionDenied):
            service.objects.writer()
    with world.as_(READER), pytest.raises(PermissionDenied):
        service.repositories.store_bytes(b"more")


def test_a_check_in_the_steady_state_reads_nothing(world: World) -> None:
    """Roles and projects come from the caches: a checked call makes the statements of an
    unchecked one, no more."""
    from sqlalchemy import event

    service = world.service
    engine = service.context.metadata._engine

    def statements(principal: Principal | None) -> list[str]:
        seen: list[str] = []

        def record(*args: Any) -> None:
            seen.append(str(args[2]))

        with acting_as(principal):
            service.entities.get_run(world.run)  # warms the caches
            event.listen(engine, "before_cursor_execute", record)
            try:
                service.labels.get_tags(world.run)
                service.entities.get_run(world.run)
            finally:
                event.remove(engine, "before_cursor_execute", record)
        return seen

    def lookups(seen: list[str]) -> list[str]:  # what a check reads when it must
        return [s for s in seen if "project_roles" in s or "SELECT experiments.project_id" in s]

    checked = statements(world.principals[READER])
    assert lookups(checked) == [], checked
    # and the call's own statements are the same (a new pooled connection's set-up aside)
    unchecked = statements(None)
    assert [s for s in checked if s in unchecked] == [s for s in unchecked if s in checked]
