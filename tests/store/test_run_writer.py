"""MetadataStore.run_writer(): create_run's one statement, on SQLite and PostgreSQL. It
inserts only if the experiment exists, the parent (if any) is a run of the same project
and the name is free; otherwise it writes nothing at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cairn.core.ids import new_id
from cairn.core.model import EntityKind, RunStatus
from cairn.store.metadata import MetadataStore

NOW = 1_700_000_000_000
UNKNOWN = "0190abcd-0000-7000-8000-00000000beef"


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(store_url)
    yield opened
    opened.close()


def entity(kind: EntityKind, store: MetadataStore, **values: Any) -> str:
    row = {"id": new_id(NOW), "created_at": NOW, "updated_at": NOW, **values}
    with store.write() as tx:
        assert tx.entities.insert_ignore(kind, row)
    return str(row["id"])


def run_row(experiment_id: str, name: str, parent_id: str | None = None) -> dict[str, Any]:
    return {
        "id": new_id(NOW),
        "experiment_id": experiment_id,
        "name": name,
        "description": "d",
        "owner": "ann",
        "status": RunStatus.RUNNING.value,
        "parent_id": parent_id,
        "start_time": NOW,
        "end_time": None,
        "created_at": NOW,
        "updated_at": NOW,
        "deleted_at": None,
        "heartbeat_at": NOW,
    }


def insert(store: MetadataStore, row: dict[str, Any], tags: list[str]) -> str | None:
    with store.run_writer() as writer:
        project_id = writer.insert(row)
        if project_id is not None:
            writer.add_tags(row["id"], tags, NOW)
    return project_id


def test_what_the_statement_writes_and_refuses(store: MetadataStore) -> None:
    project = entity(EntityKind.PROJECT, store, name="p")
    experiment = entity(EntityKind.EXPERIMENT, store, name="e", project_id=project)
    other = entity(EntityKind.PROJECT, store, name="other")
    elsewhere = entity(EntityKind.EXPERIMENT, store, name="e", project_id=other)

    root = run_row(experiment, "root")
    assert insert(store, root, ["b", "a"]) == project
    child = run_row(elsewhere, "child")
    assert insert(store, child, []) == other
    refused = {
        "missing experiment": run_row(UNKNOWN, "x"),
        "taken name": run_row(experiment, "root"),
        "missing parent": run_row(experiment, "x", parent_id=UNKNOWN),
        "parent of another project": run_row(experiment, "x", parent_id=child["id"]),
    }
    for why, row in refused.items():
        assert insert(store, row, ["t"]) is None, why
    nested = run_row(experiment, "nested", parent_id=root["id"])
    assert insert(store, nested, []) == project

    with store.read() as tx:
        stored = tx.entities.run(root["id"])
        assert stored is not None
        assert {k: getattr(stored, k) for k in root} == {**root, "status": RunStatus.RUNNING}
        assert stored.project_id == project
        nested_run = tx.entities.run(nested["id"])
        assert nested_run is not None and nested_run.parent_id == root["id"]
        assert {r.name for r in tx.entities.runs()} == {"root", "child", "nested"}
        assert tx.labels.tags(root["id"]) == ["a", "b"]
        assert all(tx.labels.tags(row["id"]) == [] for row in refused.values())


def test_an_error_in_the_block_rolls_back(store: MetadataStore) -> None:
    project = entity(EntityKind.PROJECT, store, name="p")
    experiment = entity(EntityKind.EXPERIMENT, store, name="e", project_id=project)
    row = run_row(experiment, "r")
    with pytest.raises(RuntimeError), store.run_writer() as writer:
        assert writer.insert(row) == project
        raise RuntimeError("after the insert")
    with store.read() as tx:
        assert tx.entities.run(row["id"]) is None
    assert insert(store, row, []) == project  # and the pooled connection is usable
