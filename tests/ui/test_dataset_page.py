"""The dataset page, in Chromium against a real server filled through the client: a
dataset with two captured versions of a small folder (one file changed, one added), a run
that logged the newer one. The page lists both versions with their counts and sizes, the
components of the chosen version, the diff of the two (on the repository's diff page) and
the run; the project page marks the dataset and the run page links to its version. A
hostile file name stays text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import cairn
from cairn.core.settings import Settings
from cairn.core.versioning.blobs import QueryDataset, S3Dataset, S3Object
from cairn.versioning import Path as DataPath
from tests.ui.conftest import Seeded

HOSTILE = "<img src=x onerror=window.__pwned=1>"


@dataclass
class Data:
    project: str
    dataset: str
    v1: str
    v2: str
    run: str
    repository: str  # a plain repository beside it
    remote: str  # a dataset of an S3 listing, then a query
    s3: str


@pytest.fixture(scope="module")
def data(ui_url: str, ui_data: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    folder = tmp_path_factory.mktemp("dataset-page") / "data"
    folder.mkdir()
    (folder / "train.csv").write_text("a,b\n1,2\n")
    (folder / HOSTILE).write_text("x\n")
    client = cairn.Client(settings=Settings(url=ui_url, capture="none"))
    project = client.set_project("dataset-page")
    dataset = client.set_dataset("shop-data", description="Orders of the **shop**.")
    v1 = dataset.create_version(DataPath(folder, capture=True), message="first export")
    (folder / "train.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    (folder / "extra.csv").write_text("z\n9\n")
    v2 = dataset.create_version(DataPath(folder, capture=True), message="more rows")
    client.set_experiment("uses-data")
    run = client.start_run("trained-on-v2")
    run.log_dataset_version("train", v2)
    run.end()
    plain = client.set_repository("ingredients")
    remote = client.set_dataset("remote-data")
    objects = [
        S3Object("part-0.parquet", 2048, '"etag0"', 1_700_000_000_000, "v1"),
        S3Object(HOSTILE, 7, '"etag1"', 1_700_000_000_000),
    ]
    s3 = remote.create_version(S3Dataset("s3://shop/orders/", objects), message="listed")
    query = QueryDataset(
        "select *\nfrom orders", "postgresql://db/shop", 1_700_000_000_000, 1200, 42
    )
    remote.create_version(query, message="queried")
    client.flush()
    yield Data(project.id, dataset.id, v1.id, v2.id, run.id, plain.id, remote.id, s3.id)
    client.close()


def _safe(page: Any) -> None:
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0


def _rows(page: Any, selector: str) -> list[list[str]]:
    return [r.split("\t") for r in page.locator(f"{selector} tbody tr").all_inner_texts()]


def test_dataset_page_lists_versions_components_and_runs(
    page: Any, ui_url: str, data: Data, shot: Any
) -> None:
    page.goto(f"{ui_url}/datasets/{data.dataset}")
    assert page.locator("h1").inner_text().startswith("shop-data")
    versions = page.locator("#versions tbody tr")
    assert versions.count() == 2
    order = [versions.nth(i).get_attribute("data-version") for i in range(2)]
    assert order == [data.v2, data.v1]  # newest first
    newest, oldest = _rows(page, "#versions")
    assert newest[3] == "more rows" and newest[5] == "3"  # message, files
    assert oldest[3] == "first export" and oldest[5] == "2"
    assert newest[6].endswith("Bytes") and newest[7] == "dataset.path"
    # the latest version is chosen; its components, with sizes
    assert page.locator("#version-id").inner_text() == data.v2[:12]
    components = {r[0]: r for r in _rows(page, "#components table")}
    assert set(components) == {"extra.csv", "train.csv", HOSTILE}
    assert components["train.csv"][1] == "16 Bytes"
    assert components[HOSTILE][1] == "2 Bytes"  # the hostile name, as text
    # the run that used it
    runs = page.locator("#dataset-runs a")
    assert runs.all_inner_texts() == ["trained-on-v2"]
    assert runs.first.get_attribute("href") == f"/runs/{data.run}"
    assert page.locator("#description strong").inner_text() == "shop"
    _safe(page)
    shot(page, "dataset")


def test_an_older_version_and_its_diff(page: Any, ui_url: str, data: Data, shot: Any) -> None:
    page.goto(f"{ui_url}/datasets/{data.dataset}?version={data.v1[:12]}")
    assert page.locator("#version-id").inner_text() == data.v1[:12]
    assert {r[0] for r in _rows(page, "#components table")} == {"train.csv", HOSTILE}
    assert page.locator("#dataset-runs-empty").count() == 1
    assert page.locator("#diff-previous").count() == 0  # the first version
    page.goto(f"{ui_url}/datasets/{data.dataset}")
    page.click("#diff-previous")
    page.wait_for_url("**/diff?*")
    # a version of files is a tree: each changed file is a path of its own
    paths = page.locator(".path-diff").evaluate_all("els => els.map(e => e.dataset.path)")
    assert "files/extra.csv" in paths and "files/train.csv" in paths
    assert f"files/{HOSTILE}" not in paths  # unchanged
    _safe(page)
    shot(page, "dataset-diff")


def test_version_picker_opens_the_diff(page: Any, ui_url: str, data: Data) -> None:
    page.goto(f"{ui_url}/datasets/{data.dataset}")
    page.check(f"#versions tr[data-version='{data.v2}'] input[name='base']")
    page.check(f"#versions tr[data-version='{data.v1}'] input[name='other']")
    page.click("#versions-form button[type='submit']")
    page.wait_for_url("**/diff?*")
    assert page.locator(".path-diff[data-path='files/extra.csv']").count() == 1


def test_project_and_run_pages_link_to_the_dataset(page: Any, ui_url: str, data: Data) -> None:
    page.goto(f"{ui_url}/projects/{data.project}")
    link = page.locator("#repositories a", has_text="shop-data")
    assert link.get_attribute("href") == f"/datasets/{data.dataset}"
    assert page.locator("#repositories .dataset-mark").count() == 2  # not the plain one
    plain = page.locator("#repositories a", has_text="ingredients")
    assert plain.get_attribute("href") == f"/repositories/{data.repository}"
    page.goto(f"{ui_url}/runs/{data.run}")
    used = page.locator("#datasets a")
    assert used.get_attribute("href") == f"/datasets/{data.dataset}?version={data.v2}"
    assert "train" in page.locator("#datasets").inner_text()
    used.click()
    page.wait_for_url("**/datasets/**")
    assert page.locator("#version-id").inner_text() == data.v2[:12]


def test_s3_objects_and_query_fields(page: Any, ui_url: str, data: Data, shot: Any) -> None:
    page.goto(f"{ui_url}/datasets/{data.remote}")
    assert _rows(page, "#versions")[0][5:8] == ["—", "—", "dataset.query"]
    components = page.locator("#components").inner_text()
    assert "postgresql://db/shop" in components and "42" in components and "1200 ms" in components
    assert page.locator("#components pre").inner_text() == "select *\nfrom orders"
    page.goto(f"{ui_url}/datasets/{data.remote}?version={data.s3}")
    objects = {r[0]: r for r in _rows(page, "#components table")}
    assert objects["part-0.parquet"][1:4] == ["2.0 KiB", '"etag0"', "v1"]
    assert objects[HOSTILE][1] == "7 Bytes"  # as text
    assert "s3://shop/orders/" in page.locator("#components dl").inner_text()
    _safe(page)
    shot(page, "dataset-s3")


def test_not_a_dataset_is_a_404_page(page: Any, ui_url: str, data: Data, page_errors: Any) -> None:
    page_errors.allow("status of 404")
    answer = page.goto(f"{ui_url}/datasets/{data.repository}")
    assert answer is not None and answer.status == 404
    assert "not a dataset" in page.locator("main").inner_text()
    answer = page.goto(f"{ui_url}/datasets/{data.dataset}?version={'0' * 64}")
    assert answer is not None and answer.status == 404
