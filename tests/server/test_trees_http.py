"""Tree commits over REST, through a real server: which nodes the store lacks, and a whole
tree committed with only those objects, each checked; errors as the wire says them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cairn.core.datasets import version_tree
from cairn.core.settings import Settings
from cairn.core.versioning.blobs import Component, PathDataset
from cairn.core.versioning.wire import tree_objects_to_json
from tests.servers import serve_in_thread


@pytest.fixture
def http(tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        serve_in_thread(Settings(home=str(tmp_path / "server-home"))) as url,
        httpx.Client(base_url=f"{url}/api/v1", timeout=60.0) as client,
    ):
        yield client


def test_a_tree_is_committed_sending_only_what_the_store_lacks(http: httpx.Client) -> None:
    project = http.post("/projects", json={"name": "p"}).json()["id"]
    repository = http.post(f"/projects/{project}/repositories", json={"name": "d"}).json()["id"]
    head = http.get(f"/repositories/{repository}/commit", params={"ref": "main"}).json()["id"]
    files = [
        Component(f"d{i}/f{j}", 1, 1, "%064x" % (i * 10 + j)) for i in range(3) for j in range(4)
    ]
    tree = version_tree(PathDataset(files))
    asked = http.post(
        f"/repositories/{repository}/trees/missing", json={"digests": list(tree.nodes)}
    )
    assert asked.status_code == 200 and set(asked.json()["missing"]) == set(tree.nodes)
    body = {
        "branch": "main",
        "root": tree.root,
        "objects": tree_objects_to_json(tree.to_send(tree.nodes)),
        "message": "v1",
        "base": head,
    }
    made = http.post(f"/repositories/{repository}/trees", json=body)
    assert made.status_code == 201 and made.json()["root"] == tree.root
    again = http.post(f"/repositories/{repository}/trees", json=body)
    assert again.json() == made.json()  # a retry: the same commit
    asked = http.post(
        f"/repositories/{repository}/trees/missing", json={"digests": list(tree.nodes)}
    )
    assert asked.json() == {"missing": []}

    unchanged = http.post(f"/repositories/{repository}/trees", json={**body, "base": None})
    assert unchanged.status_code == 400 and "change nothing" in unchanged.json()["error"]["message"]
    files[5] = Component(files[5].path, 2, 2, "f" * 64)
    changed = version_tree(PathDataset(files))
    missing = http.post(
        f"/repositories/{repository}/trees/missing", json={"digests": list(changed.nodes)}
    ).json()["missing"]
    assert len(missing) == 3  # the folder d1, files/ and the root
    sent = tree_objects_to_json(changed.to_send(missing))
    stale = {**body, "root": changed.root, "objects": sent, "message": "v2"}
    assert http.post(f"/repositories/{repository}/trees", json=stale).status_code == 409
    fresh = {**stale, "base": made.json()["id"]}
    assert http.post(f"/repositories/{repository}/trees", json=fresh).status_code == 201
    paths = http.get(f"/repositories/{repository}/paths", params={"ref": "main"}).json()
    assert paths["dataset"] == "dataset.tree" and len(paths) == 13


def test_bad_objects_are_refused_as_bad_input(http: httpx.Client) -> None:
    project = http.post("/projects", json={"name": "p"}).json()["id"]
    repository = http.post(f"/projects/{project}/repositories", json={"name": "d"}).json()["id"]
    tree = version_tree(PathDataset([Component("a", 1, 1, "a" * 64)]))
    objects = tree_objects_to_json(tree.to_send(tree.nodes))
    body = {"branch": "main", "root": tree.root, "objects": objects, "message": "v"}
    for broken in (
        [{"kind": "tree", "body": "not base64!"}],
        [{"kind": "tree", "body": base64.b64encode(b"not a node").decode()}],
        objects[:1],  # a node whose children are neither given nor stored
    ):
        answer = http.post(f"/repositories/{repository}/trees", json={**body, "objects": broken})
        assert answer.status_code in (400, 404), answer.text
        assert answer.json()["error"]["code"] in ("invalid_argument", "not_found")
    assert (
        http.post(f"/repositories/{repository}/trees/missing", json={"digests": ["x"]}).status_code
        == 400
    )
    assert http.post(f"/repositories/{repository}/trees", json=body).status_code == 201
