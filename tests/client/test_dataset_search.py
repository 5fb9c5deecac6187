"""``dataset.version`` in search, on every backend: the runs that logged a dataset version
(any one of a run's versions matches), by whole id, list, prefix pattern, its negations and
``is null``; a short id is a QueryError that says to use a prefix pattern."""

from __future__ import annotations

import pytest

import cairn
from cairn.versioning import Query

from .conftest import MakeClient


def _names(page: cairn.RunPage) -> list[str]:
    return sorted(r.name for r in page)


def test_runs_are_found_by_the_dataset_versions_they_logged(open_client: MakeClient) -> None:
    client = open_client()
    client.set_project("p")
    dataset = client.set_dataset("churn-data")
    v1 = dataset.create_version(Query("select 1", source="postgresql://db/x", row_count=1))
    v2 = dataset.create_version(Query("select 2", source="postgresql://db/x", row_count=2))
    with client.start_run("trained-on-v1") as run:
        run.log_dataset_version("train", v1)
    with client.start_run("v2-and-v1") as run:
        run.log_dataset_version("train", v2)
        run.log_dataset_version("eval", v1)
    with client.start_run("no-data"):
        pass

    assert _names(client.find_runs(f"dataset.version = '{v1.id}'")) == [
        "trained-on-v1",
        "v2-and-v1",
    ]
    assert _names(client.find_runs(f"dataset.version = '{v2.id}'")) == ["v2-and-v1"]
    # any version other than v1: the run that also logged v1 has one
    assert _names(client.find_runs(f"dataset.version != '{v1.id}'")) == ["v2-and-v1"]
    # none of them is v2
    assert _names(client.find_runs(f"not dataset.version = '{v2.id}'")) == [
        "no-data",
        "trained-on-v1",
    ]
    assert _names(client.find_runs(f"dataset.version in ('{v2.id}', '{'0' * 64}')")) == [
        "v2-and-v1"
    ]
    assert _names(client.find_runs(f"dataset.version like '{v2.id[:7]}%'")) == ["v2-and-v1"]
    assert _names(client.find_runs(f"dataset.version ilike '{v2.id[:7].upper()}%'")) == [
        "v2-and-v1"
    ]
    assert _names(client.find_runs("dataset.version is null")) == ["no-data"]
    assert client.count_runs("dataset.version is not null") == 2
    assert {r.id for r in v1.list_runs()} == {
        r.id for r in client.find_runs(f"dataset.version = '{v1.id}'")
    }

    with pytest.raises(cairn.QueryError, match="like 'abc1234%'") as caught:
        client.find_runs(f"dataset.version = '{v1.id[:7]}'")
    assert caught.value.details["position"] == 18
    with pytest.raises(cairn.QueryError, match="cannot order"):
        client.find_runs("", order_by=["dataset.version"])
