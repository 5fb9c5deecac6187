"""Datasets through the Python API, on every backend: versions captured from a folder
(bytes stored, unchanged files not read again), listed, diffed file by file, checked out
verified, linked to runs; links kept as links; bad input refused."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.client._datasets import Dataset
from cairn.core.settings import Settings
from cairn.core.versioning.blobs import Component, PathDataset
from cairn.files import statcache
from cairn.versioning import S3, Hyperparameters, Query, QueryDataset, S3Dataset, _capture
from cairn.versioning import Path as DataPath
from tests.store.s3_servers import S3Server, moto_server

from .conftest import MakeClient

__all__ = ["moto_server"]  # the fixture, used by name

Reads = list[str]


@pytest.fixture
def client(
    open_client: MakeClient, server_url: str | None, home: Path, store_url: str, tmp_path: Path
) -> cairn.Client:
    """A client whose stat cache is the test's own file."""
    cache = str(tmp_path / "cache" / "stat-cache.sqlite")
    if server_url is None:
        return open_client(settings=Settings(home=str(home), store_uri=store_url, stat_cache=cache))
    return open_client(url=server_url, settings=Settings(retry_timeout=5.0, stat_cache=cache))


@pytest.fixture
def dataset(client: cairn.Client) -> Dataset:
    client.set_project("p")
    return client.set_dataset("churn-data")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    """The small files a capture reads, by relative path."""
    seen: Reads = []
    real = _capture._read_small

    def counted(item: _capture._Found) -> bytes:
        seen.append(item.path)
        return real(item)

    monkeypatch.setattr(_capture, "_read_small", counted)
    return seen


@pytest.fixture
def settle(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Files count as old enough to trust 50 ms after they are written (not 2 s)."""
    monkeypatch.setattr(statcache, "RACY_NS", 50_000_000)
    return lambda: time.sleep(0.1)


def make_data(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_text("id,churn\n1,0\n")
    (root / "b.csv").write_text("id,churn\n2,1\n")
    (root / "sub" / "c.bin").write_bytes(os.urandom(3000))
    return root


def test_capture_list_diff_checkout_and_runs(
    dataset: Dataset, client: cairn.Client, tmp_path: Path, reads: Reads, settle: Callable[[], None]
) -> None:
    data = make_data(tmp_path / "data")
    settle()
    v1 = dataset.create_version(DataPath(data, capture=True), message="first")
    assert sorted(reads) == ["a.csv", "b.csv", "sub/c.bin"]
    assert [c.path for c in v1.files] == ["a.csv", "b.csv", "sub/c.bin"]
    assert v1.message == "first" and v1.size == sum(c.size for c in v1.files)

    reads.clear()
    (data / "b.csv").write_text("id,churn\n2,0\n3,1\n")
    (data / "d.csv").write_text("new\n")
    (data / "a.csv").unlink()
    settle()
    v2 = dataset.create_version(DataPath(data, capture=True))
    assert sorted(reads) == ["b.csv", "d.csv"]  # the unchanged file was not read

    reads.clear()
    v3 = dataset.create_version(DataPath(data, capture=True))
    assert reads == []
    assert v3 == v2  # nothing changed: no new version

    assert [v.id for v in dataset.list_versions()] == [v2.id, v1.id]
    assert dataset.get_version(v1.id[:10]) == v1
    assert dataset.latest() == v2
    changes = {(c.status, c.path) for c in v2.diff(v1)}
    assert changes == {("removed", "a.csv"), ("changed", "b.csv"), ("added", "d.csv")}
    assert {(c.status, c.path) for c in v1.diff(v2.id)} == {
        ("added", "a.csv"),
        ("changed", "b.csv"),
        ("removed", "d.csv"),
    }

    out = tmp_path / "restore"
    report = v1.checkout(out)
    assert len(report.written) == 3 and report.skipped == []
    assert (out / "a.csv").read_text() == "id,churn\n1,0\n"
    assert (out / "sub" / "c.bin").read_bytes() == (data / "sub" / "c.bin").read_bytes()
    (out / "b.csv").write_text("tampered")
    again = v1.checkout(out)
    assert [p.name for p in again.written] == ["b.csv"]  # only the wrong file is written
    assert (out / "b.csv").read_text() == "id,churn\n2,1\n"
    assert {p.name for p in again.skipped} == {"a.csv", "c.bin"}

    with client.start_run() as run:
        run.log_dataset_version("train", v2)
        run.log_dataset_version("eval", v1)
    with client.start_run():
        pass
    assert [r.id for r in v2.list_runs()] == [run.id]
    assert [r.id for r in v1.list_runs()] == [run.id]
    assert run.get_dataset_versions() == {
        "train": f"churn-data@{v2.id}",
        "eval": f"churn-data@{v1.id}",
    }


def test_datasets_are_told_apart_from_repositories(client: cairn.Client) -> None:
    client.set_project("p")
    client.set_repository("ingredients").get_commit(branch="main")
    first = client.set_dataset("a")
    assert client.set_dataset("a").id == first.id  # get or create
    project = client.set_project("p")
    second = project.set_dataset("b")
    assert [d.name for d in client.list_datasets()] == ["a", "b"]
    assert {r.name for r in client.list_repositories()} == {"ingredients", "a", "b"}
    assert second.get_attribute("cairn.kind") == "dataset"
    repo = client.get_repository("ingredients")
    commit = repo.get_commit(branch="main")
    commit.update("hp", Hyperparameters({"lr": 0.1}))
    commit.save("x")
    with pytest.raises(cairn.InvalidArgument, match="not a dataset"):
        client.set_dataset("ingredients")


def test_a_symlink_is_recorded_as_a_link_never_followed(dataset: Dataset, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the dataset")
    data = tmp_path / "data"
    data.mkdir()
    (data / "real.txt").write_text("r")
    (data / "alias.txt").symlink_to("real.txt")
    (data / "folder-link").symlink_to(tmp_path)
    version = dataset.create_version(DataPath(data, capture=True))
    by_path = {c.path: c for c in version.files}
    assert set(by_path) == {"alias.txt", "folder-link", "real.txt"}  # the linked folder not walked
    assert by_path["alias.txt"].link == "real.txt"
    assert by_path["folder-link"].link == str(tmp_path)

    # a link that leaves the checkout is refused before anything is written
    out = tmp_path / "out"
    with pytest.raises(cairn.InvalidArgument, match="outside the checkout"):
        version.checkout(out)
    assert not out.exists()

    os.unlink(data / "folder-link")
    inside = dataset.create_version(DataPath(data, capture=True))
    inside.checkout(out)
    assert os.readlink(out / "alias.txt") == "real.txt"
    assert (out / "alias.txt").read_text() == "r"


def test_checkout_refuses_paths_outside_the_root(dataset: Dataset, tmp_path: Path) -> None:
    with pytest.raises(cairn.InvalidArgument):
        Component("../escape.txt", 1, 0, "0" * 64)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "x.txt").write_text("x")
    version = dataset.create_version(DataPath(data, capture=True))
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(tmp_path)  # a link where a folder goes: never written through
    with pytest.raises(cairn.InvalidArgument, match="symbolic link"):
        version.checkout(out)
    assert not (tmp_path / "x.txt").exists()


def test_a_file_changed_while_captured_is_reported(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(b"x" * (_capture.SMALL_FILE + 10))
    (data / "small.txt").write_text("s")
    grown: list[int] = []

    def writer(n: int) -> None:  # a writer appending while the capture reads the file
        if not grown:
            with open(data / "big.bin", "ab") as file:
                file.write(b"more")
            grown.append(n)

    with pytest.raises(cairn.InvalidArgument, match=r"'big\.bin' changed while being captured"):
        dataset.create_version(DataPath(data, capture=True, progress=writer))
    assert dataset.list_versions() == []

    # a small file changed between the walk and its read
    real_walk = _capture._walk

    def walk_then_write(root: str | os.PathLike[str]) -> list[_capture._Found]:
        found = real_walk(root)
        (data / "small.txt").write_text("changed since")
        return found

    monkeypatch.setattr(_capture, "_walk", walk_then_write)
    with pytest.raises(cairn.InvalidArgument, match=r"'small\.txt' changed while being captured"):
        dataset.create_version(DataPath(data, capture=True))


def test_versions_that_cannot_check_out(dataset: Dataset, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a").write_text("a")
    described = dataset.create_version(DataPath(data))  # the bytes stay where they are
    assert isinstance(described.blob, PathDataset) and not described.blob.captured
    with pytest.raises(cairn.InvalidArgument, match="without its bytes"):
        described.checkout(tmp_path / "out")
    with pytest.raises(cairn.InvalidArgument, match="dataset blob"):
        dataset.create_version(Hyperparameters({"lr": 1}))
    with pytest.raises(cairn.NotFound):
        dataset.get_version("0" * 64)


def test_an_s3_prefix_is_listed_not_downloaded(
    dataset: Dataset, moto_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CAIRN_S3_ENDPOINT_URL", moto_server.endpoint)
    s3 = moto_server.client()
    bucket = moto_server.new_bucket()
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="train/a.csv", Body=b"1,0\n")
    s3.put_object(Bucket=bucket, Key="train/part/b.csv", Body=b"2,1\n")
    s3.put_object(Bucket=bucket, Key="other/c.csv", Body=b"no")
    v1 = dataset.create_version(S3(f"s3://{bucket}/train/"))
    blob = v1.blob
    assert isinstance(blob, S3Dataset) and blob.uri == f"s3://{bucket}/train/"
    by_key = {o.key: o for o in blob.entries}
    assert set(by_key) == {"a.csv", "part/b.csv"}
    head = s3.head_object(Bucket=bucket, Key="train/a.csv")
    assert by_key["a.csv"].etag == head["ETag"] and by_key["a.csv"].size == 4
    assert by_key["a.csv"].version == head["VersionId"]
    assert by_key["a.csv"].modified == int(head["LastModified"].timestamp()) * 1000

    s3.put_object(Bucket=bucket, Key="train/a.csv", Body=b"1,1\n")
    s3.delete_object(Bucket=bucket, Key="train/part/b.csv")
    v2 = dataset.create_version(S3(f"s3://{bucket}/train/"))
    assert {(c.status, c.path) for c in v2.diff(v1)} == {
        ("changed", "a.csv"),
        ("removed", "part/b.csv"),
    }
    with pytest.raises(cairn.InvalidArgument, match="only captured local files"):
        v2.checkout("never")
    with pytest.raises(cairn.CairnError, match="NoSuchBucket"):
        dataset.create_version(S3("s3://no-such-bucket-here/x/"))


def test_a_query_is_recorded_as_text_source_time_and_rows(dataset: Dataset) -> None:
    v1 = dataset.create_version(
        Query("select * from churn", source="postgresql://me:secret@db/x", row_count=1234)
    )
    blob = v1.blob
    assert isinstance(blob, QueryDataset)
    assert blob.source == "postgresql://me@db/x"  # never the password
    assert blob.row_count == 1234 and blob.executed_at is not None
    v2 = dataset.create_version(
        Query(
            "select * from churn where x", source="postgresql://db/x", row_count=99, duration_ms=120
        )
    )
    assert {c.path for c in v2.diff(v1)} == {
        "text",
        "source",
        "row_count",
        "executed_at",
        "duration_ms",
    }
    with pytest.raises(cairn.InvalidArgument, match="text"):
        Query("  ", source="postgresql://db/x")


def test_a_version_made_before_trees_still_reads_diffs_and_checks_out(
    dataset: Dataset, tmp_path: Path
) -> None:
    """Versions holding one dataset.path blob at 'dataset' (as made before versions were
    trees) read, diff against tree versions both ways, and check out."""
    data = make_data(tmp_path / "data")
    old_blob = DataPath(data, capture=True).resolve(dataset._versions)
    assert isinstance(old_blob, PathDataset)
    commit = dataset.get_commit(branch="main")
    commit.update("dataset", old_blob)
    commit.save("made before trees")
    old = dataset.get_version(commit.id)
    assert old.kind == "dataset.path" and old.captured
    assert [c.path for c in old.files] == ["a.csv", "b.csv", "sub/c.bin"]
    assert old.file_count == 3 and old.size == sum(c.size for c in old_blob.components)
    assert dataset.create_version(DataPath(data, capture=True)) != old  # now as a tree

    (data / "a.csv").write_text("id,churn\n1,1\n")
    (data / "d.csv").write_text("new\n")
    new = dataset.create_version(DataPath(data, capture=True))
    assert dataset._versions.list_paths(dataset.id, new.id)["dataset"] == "dataset.tree"
    assert {(c.status, c.path) for c in new.diff(old)} == {("changed", "a.csv"), ("added", "d.csv")}
    assert {(c.status, c.path) for c in old.diff(new.id)} == {
        ("changed", "a.csv"),
        ("removed", "d.csv"),
    }
    out = tmp_path / "out"
    assert len(old.checkout(out).written) == 3
    assert (out / "a.csv").read_text() == "id,churn\n1,0\n"
    report = dataset.get_version(new.id).checkout(out)
    assert {p.name for p in report.written} == {"a.csv", "d.csv"}
    assert {p.name for p in report.skipped} == {"b.csv", "c.bin"}


def test_a_one_file_change_sends_the_nodes_along_its_path(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settle: Callable[[], None]
) -> None:
    data = tmp_path / "data"
    for i in range(5):
        (data / f"d{i}").mkdir(parents=True)
        for j in range(20):
            (data / f"d{i}" / f"f{j}.bin").write_bytes(b"%d %d" % (i, j))
    settle()
    repos = dataset._versions
    sent: list[list[tuple[str, bytes]]] = []
    asked: list[list[str]] = []
    save_tree, missing = repos.save_tree, repos.missing_tree_objects

    def recording_save(*args: Any, **kwargs: Any) -> Any:
        sent.append(list(args[3]))
        return save_tree(*args, **kwargs)

    def recording_missing(repository_id: str, digests: Any) -> Any:
        asked.append(list(digests))
        return missing(repository_id, digests)

    monkeypatch.setattr(repos, "save_tree", recording_save)
    monkeypatch.setattr(repos, "missing_tree_objects", recording_missing)
    v1 = dataset.create_version(DataPath(data, capture=True))
    assert len(asked) == 1 and len(asked[0]) == 5 + 2  # its folders, files/ and the root
    kinds = [kind for kind, _ in sent[0]]
    assert kinds.count("tree") == 7 and kinds.count("dataset.file") == 100

    assert dataset.create_version(DataPath(data, capture=True)) == v1
    assert len(asked) == 1 and len(sent) == 1  # unchanged: nothing asked, nothing sent

    (data / "d3" / "f7.bin").write_bytes(b"changed")
    settle()
    v2 = dataset.create_version(DataPath(data, capture=True))
    kinds = [kind for kind, _ in sent[1]]
    # the folder d3, files/ and the root; the blobs they hold (d3's 20 files, the summary)
    assert kinds.count("tree") == 3 and len(kinds) == 3 + 20 + 1
    assert [(c.status, c.path) for c in v2.diff(v1)] == [("changed", "d3/f7.bin")]
    assert v2.file_count == 100 and v2.size == v1.size - len(b"3 7") + len(b"changed")
    assert [c.path for c in v2.files][:2] == ["d0/f0.bin", "d0/f1.bin"]


def test_a_version_of_another_kind_replaces_the_files(dataset: Dataset, tmp_path: Path) -> None:
    data = make_data(tmp_path / "data")
    files = dataset.create_version(DataPath(data, capture=True))
    query = dataset.create_version(Query("select 1", source="postgresql://db/x", row_count=1))
    assert dataset._versions.list_paths(dataset.id, query.id) == {"dataset": "dataset.query"}
    assert query.kind == "dataset.query" and query.files == () and query.file_count == 0
    assert {c.path for c in query.diff(files)} >= {"a.csv", "text", "source"}
    again = dataset.create_version(DataPath(data, capture=True))
    assert again != files and [c.path for c in again.files] == [c.path for c in files.files]
    assert again.diff(files) == []
