"""The dataset blob kinds: a captured flag and links in dataset.path (absent from the
canonical form when unset, so ids made before stay), dataset.s3 and dataset.query."""

from __future__ import annotations

import pytest

from cairn.core.errors import InvalidArgument
from cairn.core.versioning.blobs import (
    Component,
    PathDataset,
    QueryDataset,
    S3Dataset,
    S3Object,
    blob_from_body,
)
from cairn.core.versioning.diff import diff_blobs

DIGEST = "a" * 64


def test_a_described_dataset_keeps_its_canonical_form() -> None:
    blob = PathDataset([Component("x.csv", 3, 5, DIGEST)])
    assert blob.body() == {"components": {"x.csv": {"size": 3, "modified": 5, "digest": DIGEST}}}
    assert blob.objects() == ()


def test_a_captured_dataset_names_its_objects_and_round_trips() -> None:
    blob = PathDataset(
        [Component("x.csv", 3, 5, DIGEST), Component("l", 5, 6, "b" * 64, link="x.csv")],
        captured=True,
    )
    assert blob.objects() == (DIGEST,)  # a link names no object
    assert blob.body()["captured"] is True
    again = blob_from_body(blob.KIND, blob.body())
    assert again == blob and again.digest() == blob.digest()
    assert blob.digest() != PathDataset(blob.components).digest()
    with pytest.raises(InvalidArgument, match="link"):
        Component("l", 1, 1, DIGEST, link="")


def test_s3_and_query_blobs_round_trip_and_diff_per_object_and_field() -> None:
    before = S3Dataset("s3://b/p/", [S3Object("a", 1, '"e1"', 10, "v1"), S3Object("b", 2, "e", 5)])
    after = S3Dataset("s3://b/p/", [S3Object("a", 1, '"e2"', 11, "v2")])
    for blob in (before, after):
        assert blob_from_body(blob.KIND, blob.body()) == blob
    assert [c.name for c in diff_blobs(before, after)] == ["objects.a", "objects.b"]
    with pytest.raises(InvalidArgument, match="uri"):
        S3Dataset("http://x", [])
    with pytest.raises(InvalidArgument, match="twice"):
        S3Dataset("s3://b/", [S3Object("a", 1, "e", 1), S3Object("a", 2, "e", 1)])

    q1 = QueryDataset("select 1", "postgresql://db/x", 100, 20, 7)
    q2 = QueryDataset("select 1", "postgresql://db/x", 200, 20, 8)
    assert blob_from_body(q1.KIND, q1.body()) == q1
    assert [c.name for c in diff_blobs(q1, q2)] == ["executed_at", "row_count"]
    with pytest.raises(InvalidArgument, match="row_count"):
        QueryDataset("select 1", "x", row_count=-1)
