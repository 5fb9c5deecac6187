"""The repository pages, in Chromium against a real server filled through the client:
branches and tags, the log with its graph of merges, the tree of a commit with every blob
kind drawn, the diff of two commits per kind (hyperparameter keys, requirement versions,
dataset files), a merge's conflicts with base/ours/theirs, and hostile names (a branch, a
path, a hyperparameter key) shown as text, never run. The graph's lanes are also checked
without a browser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest

import cairn
from cairn.core.digest import Digest
from cairn.core.settings import Settings
from cairn.core.versioning.blobs import Blob
from cairn.core.versioning.diff import PathChange, diff_blobs
from cairn.core.versioning.info import CommitInfo
from cairn.ui.commit_graph import LANE, graph_rows, newest_first
from cairn.ui.ingredients import blob_view, path_diff
from cairn.versioning import Docker, GitReference, Hyperparameters, PythonEnvironment, Snapshot
from cairn.versioning import Path as DataPath
from tests.ui.conftest import Seeded

HOSTILE_BRANCH = "<img/src=x/onerror=window.__pwned=1>"  # git's rules: no spaces
HOSTILE = "<img src=x onerror=window.__pwned=1>"
SCRIPT = "<script>window.__pwned=1</script>"
REMOTE = "https://example.org/shop.git"


@dataclass
class Repo:
    id: str
    first: str  # main's first commit with ingredients (tagged v1)
    more_data: str  # the head of branch more-data (data, lr and requirements changed)
    main: str  # main's head: the merge of feature
    merge: str
    hostile: str  # the head of the hostile branch
    run: str  # a run built from first


def _python(requirements: list[str]) -> PythonEnvironment:
    return PythonEnvironment(
        requirements,
        version="3.11.7",
        environment={"OMP_NUM_THREADS": "4"},
        command_line=["python", "train.py", "--epochs", "60"],
    )


@pytest.fixture(scope="module")
def repo(ui_url: str, ui_data: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    here = tmp_path_factory.mktemp("repo-pages")
    src = here / "src"
    src.mkdir()
    (src / "train.py").write_text("print('train')\n")
    (src / "model.py").write_text("class Model: ...\n")
    data = here / "data"
    data.mkdir()
    (data / "train.csv").write_text("a,b\n1,2\n")
    (data / "labels.csv").write_text("y\n1\n")
    client = cairn.Client(settings=Settings(url=ui_url, capture="none"))
    client.set_project("repo-pages")
    repository = client.set_repository(
        "ingredients", description=f"Ingredients of the **shop** models. {SCRIPT}"
    )
    commit = repository.get_commit(branch="main")
    commit.update("config/hp", Hyperparameters({"lr": 0.5, "epochs": 60, "dropout": 0.1}))
    commit.update("env/python", _python(["numpy==1.26.0", "pandas==2.1.0", "requests>=2"]))
    commit.update("env/docker", Docker("pytorch/pytorch", "2.1.0", "sha256:" + "ab" * 32))
    commit.update(
        "code/git",
        GitReference(remote="https://example.org/shop.git", commit="a" * 40, branch="dev"),
    )
    commit.update("code/src", Snapshot(src))
    commit.update("data/train", DataPath(data))
    first = commit.save("first ingredients")
    repository.tag("v1", first)
    client.set_experiment("trained")
    run = client.start_run("from-v1")
    run.log_commit(first, key_paths={"hp": "config/hp"})
    run.end()

    branch = repository.branch("more-data", from_=first)
    (data / "train.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    (data / "extra.csv").write_text("z\n9\n")
    branch.update("data/train", DataPath(data))
    branch.update("config/hp", Hyperparameters({"lr": 0.8, "epochs": 60, "dropout": 0.1}))
    branch.update("env/python", _python(["numpy==2.0.0", "pandas==2.1.0", "scipy==1.11.0"]))
    branch.update("code/git", GitReference(remote=REMOTE, commit="b" * 40, branch="data"))
    branch.remove("env/docker")  # while feature changes it: a conflict on the whole path
    more_data = branch.save("more rows; lr 0.8; numpy 2")

    main = repository.get_commit(branch="main")
    main.update("config/hp", Hyperparameters({"lr": 0.3, "epochs": 120, "dropout": 0.1}))
    main.update("code/git", GitReference(remote=REMOTE, commit="c" * 40, branch="dev"))
    main.save("lr 0.3, 120 epochs")
    feature = repository.branch("feature", from_=first)
    feature.update("env/docker", Docker("pytorch/pytorch", "2.2.0", "sha256:" + "cd" * 32))
    feature.save("pytorch 2.2")
    merged = repository.merge("feature", into="main", message="merge feature").commit()

    hostile = repository.branch(HOSTILE_BRANCH, from_=first)
    hostile.update(HOSTILE, Hyperparameters({HOSTILE: SCRIPT, "lr": 0.1}))
    hostile_head = hostile.save(SCRIPT)
    yield Repo(repository.id, first.id, more_data.id, merged.id, merged.id, hostile_head.id, run.id)
    client.close()


def _safe(page: Any) -> None:
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0


def test_repository_page_lists_refs_and_draws_the_merge(
    page: Any, ui_url: str, repo: Repo, shot: Any
) -> None:
    page.goto(f"{ui_url}/repositories/{repo.id}")
    branches = page.locator("#branches")
    for name in ("main", "more-data", "feature", HOSTILE_BRANCH):
        assert branches.get_by_text(name, exact=True).count() == 1
    assert page.locator("#tags").get_by_text("v1", exact=True).count() == 1
    rows = page.locator("#log tbody tr.commit")
    # the empty start, first, more-data, lr 0.3, pytorch 2.2, the merge, the hostile head
    assert rows.count() == 7
    merge = page.locator(f"#log tr[data-commit='{repo.merge}']")
    assert "merge" in (merge.get_attribute("class") or "")
    assert merge.locator("circle").count() == 1
    # the merge's two parents leave its dot towards two different lanes
    outgoing = merge.locator("line[y1='50%']")
    assert outgoing.count() == 2
    assert len({outgoing.nth(i).get_attribute("x2") for i in range(2)}) == 2
    # every commit's parents are drawn below it: rows are in graph order
    order = [rows.nth(i).get_attribute("data-commit") for i in range(rows.count())]
    for i, commit in enumerate(order):
        parents = (rows.nth(i).get_attribute("data-parents") or "").split()
        assert all(order.index(p) > i for p in parents), commit
    assert page.locator("#description strong").inner_text() == "shop"
    assert SCRIPT in page.locator("#description").inner_text()  # as text
    _safe(page)
    shot(page, "repository")


def test_log_selection_opens_the_diff(page: Any, ui_url: str, repo: Repo) -> None:
    page.goto(f"{ui_url}/repositories/{repo.id}")
    page.check(f"#log tr[data-commit='{repo.first}'] input[name='base']")
    page.check(f"#log tr[data-commit='{repo.more_data}'] input[name='other']")
    page.click("#log-form button[type='submit']")
    page.wait_for_url("**/diff?*")
    assert page.locator(".path-diff[data-path='config/hp']").count() == 1
    assert page.locator("#pick-base").input_value() == repo.first


def test_commit_page_draws_every_blob_kind(page: Any, ui_url: str, repo: Repo, shot: Any) -> None:
    page.goto(f"{ui_url}/repositories/{repo.id}/commits/{repo.first}")
    assert page.locator("#commit-message").inner_text() == "first ingredients"
    assert page.locator("h1 .ref-tag").inner_text() == "v1"

    def blob(path: str) -> Any:
        return page.locator(f"li.blob[data-path='{path}']")

    hp = blob("config/hp")
    assert hp.locator(".kind").inner_text() == "config.hyperparameters"
    cells = hp.locator("table tbody tr").all_inner_texts()
    assert [c.split("\t") for c in cells] == [
        ["dropout", "float", "0.1"],
        ["epochs", "int", "60"],
        ["lr", "float", "0.5"],
    ]
    python = blob("env/python")
    assert python.locator("ul.lines li").all_inner_texts() == [
        "numpy==1.26.0",
        "pandas==2.1.0",
        "requests>=2",
    ]
    assert "3.11.7" in python.locator("dl.facts").inner_text()
    assert "python train.py --epochs 60" in python.inner_text()
    assert "OMP_NUM_THREADS" in python.inner_text()
    docker = blob("env/docker").locator("dl.facts").inner_text()
    assert "pytorch/pytorch" in docker and "2.1.0" in docker and "sha256:abab" in docker
    git = blob("code/git").locator("dl.facts").inner_text()
    assert "https://example.org/shop.git" in git and "a" * 40 in git and "dev" in git
    files = blob("code/src").locator("table tbody tr").all_inner_texts()
    assert [f.split("\t")[0] for f in files] == ["model.py", "train.py"]
    download = blob("code/src").locator("table tbody tr a").first
    assert (download.get_attribute("href") or "").startswith("/api/v1/objects/")
    data = blob("data/train").locator("table")
    assert data.locator("thead").inner_text().strip().split("\t") == [
        "path",
        "size",
        "digest",
        "last modified (UTC)",
    ]
    rows = [r.split("\t") for r in data.locator("tbody tr").all_inner_texts()]
    assert [r[0] for r in rows] == ["labels.csv", "train.csv"]
    assert rows[1][1] == "8 Bytes"
    assert len(rows[1][2]) == 16
    # a file downloads with its content
    href = download.get_attribute("href")
    body = page.request.get(f"{ui_url}{href}").body()
    assert body in (b"class Model: ...\n", b"print('train')\n")
    shot(page, "commit")

    # compare with parent, from the merge's page
    page.goto(f"{ui_url}/repositories/{repo.id}/commits/{repo.merge}")
    assert page.locator("#parents li").count() == 2
    page.locator("#parents a", has_text="second parent").click()
    page.wait_for_url("**/diff?*")
    assert page.locator(".path-diff").count() >= 1


def test_run_page_links_its_commit(page: Any, ui_url: str, repo: Repo) -> None:
    page.goto(f"{ui_url}/runs/{repo.run}")
    page.locator("#commit a.mono").click()
    page.wait_for_url(f"**/commits/{repo.first}")
    assert page.locator("#commit-message").inner_text() == "first ingredients"


def test_diff_page_shows_changes_per_kind(page: Any, ui_url: str, repo: Repo, shot: Any) -> None:
    page.goto(f"{ui_url}/repositories/{repo.id}/diff?base={repo.first}&other={repo.more_data}")
    changed = page.locator(".path-diff")
    paths = [changed.nth(i).get_attribute("data-path") for i in range(changed.count())]
    assert paths == ["code/git", "config/hp", "data/train", "env/docker", "env/python"]

    def rows(path: str) -> dict[str, list[str]]:
        found = page.locator(f".path-diff[data-path='{path}'] table tbody tr").all_inner_texts()
        return {r.split("\t")[0]: [c.strip() for c in r.split("\t")[1:]] for r in found}

    assert rows("config/hp") == {"lr": ["changed", "0.5", "0.8", ""]}
    python = rows("env/python")
    assert python["numpy"] == ["changed", "==1.26.0", "==2.0.0", "version change"]
    assert python["scipy"] == ["added", "", "==1.11.0", ""]
    assert python["requests"] == ["removed", ">=2", "", ""]
    data = rows("data/train")
    assert data["extra.csv"][0] == "added"
    assert data["train.csv"][0] == "changed"
    assert data["train.csv"][3].startswith("size, digest")
    assert "labels.csv" not in data
    summary = page.locator("#diff-summary").inner_text()
    assert "5 paths differ" in summary and "1 removed, 4 changed" in summary
    removed = page.locator(".path-diff[data-path='env/docker']")
    assert removed.get_attribute("data-status") == "removed"
    assert rows("env/docker")["repository"] == ["removed", "pytorch/pytorch", "", ""]
    assert rows("code/git") == {
        "reference.branch": ["changed", "dev", "data", ""],
        "reference.commit": ["changed", "a" * 40, "b" * 40, ""],
    }
    shot(page, "diff")

    # the same two commits by name, swapped: what was added is removed
    page.goto(f"{ui_url}/repositories/{repo.id}/diff?base=more-data&other=v1")
    assert rows("env/python")["scipy"][0] == "removed"
    # a diff of a path added and removed
    page.goto(f"{ui_url}/repositories/{repo.id}/diff?base={repo.first}&other={repo.hostile}")
    added = page.locator(".path-diff[data-status='added']")
    assert added.count() == 1
    assert added.locator(".path").inner_text() == HOSTILE
    _safe(page)


def test_merge_page_shows_base_ours_theirs(page: Any, ui_url: str, repo: Repo, shot: Any) -> None:
    page.goto(f"{ui_url}/repositories/{repo.id}/merge")
    page.select_option("#pick-source", "more-data")
    page.select_option("#pick-into", "main")
    page.click("#merge-form button[type='submit']")
    page.wait_for_url("**/merge?*")
    conflicts = [r.split("\t") for r in page.locator("#conflicts tbody tr").all_inner_texts()]
    assert ["config/hp", "values.lr", "0.5", "0.3", "0.8"] in conflicts
    assert "3 conflicts" in page.locator("#merge-status").inner_text()
    git = page.locator("#conflicts tbody tr", has_text="code/git")
    assert git.locator("td.field").inner_text() == "reference"
    for side, commit in (("base", "a"), ("ours", "c"), ("theirs", "b")):
        assert commit * 40 in git.locator(f"td.{side}").inner_text()
    # removed on one side, changed on the other: a conflict on the path as a whole, each
    # side's blob drawn (folded)
    whole = page.locator("#conflicts tbody tr", has_text="env/docker")
    assert whole.locator("td.field").inner_text() == "(whole)"
    assert whole.locator("td.theirs").inner_text() == "(absent)"
    for side, tag in (("base", "2.1.0"), ("ours", "2.2.0")):
        cell = whole.locator(f"td.{side}")
        assert cell.locator("summary").inner_text() == f"environment.docker: pytorch/pytorch:{tag}"
        cell.locator("summary").click()
        assert tag in cell.locator("dl.facts").inner_text()
    changed = page.locator("#merge-changed li").all_inner_texts()
    assert "data/train" in changed and "env/python" in changed
    shot(page, "merge-conflicts")
    # nothing moved: main is still at the merge of feature
    page.goto(f"{ui_url}/repositories/{repo.id}")
    main = page.locator("#branches tr", has_text="main").first
    assert repo.main[:10] in main.inner_text()
    # a clean merge, and one already done
    into = quote(HOSTILE_BRANCH, safe="")
    page.goto(f"{ui_url}/repositories/{repo.id}/merge?source=more-data&into={into}")
    assert page.locator("#merge-status").inner_text() == "Merges cleanly."
    assert page.locator("#pick-into").input_value() == HOSTILE_BRANCH
    _safe(page)
    page.goto(f"{ui_url}/repositories/{repo.id}/merge?source=feature&into=main")
    assert "already in" in page.locator("#merge-status").inner_text()


def test_hostile_names_stay_text(page: Any, ui_url: str, repo: Repo, shot: Any) -> None:
    page.goto(f"{ui_url}/repositories/{repo.id}")
    assert page.locator("#branches .ref-branch", has_text=HOSTILE_BRANCH).count() == 1
    assert page.locator("#log .message", has_text=SCRIPT).count() == 1
    _safe(page)
    page.goto(f"{ui_url}/repositories/{repo.id}?ref={HOSTILE_BRANCH}")
    assert page.locator("#log tbody tr").count() == 3  # empty start, first, the hostile head
    _safe(page)
    # a branch name (with slashes) names a commit too
    page.goto(f"{ui_url}/repositories/{repo.id}/commits/{quote(HOSTILE_BRANCH, safe='/')}")
    assert page.locator("h1 #commit-id").inner_text() == repo.hostile[:12]
    _safe(page)
    page.goto(f"{ui_url}/repositories/{repo.id}/commits/{repo.hostile}")
    blob = page.locator("li.blob").filter(has_text=HOSTILE).first
    assert blob.locator(".name").inner_text() == HOSTILE
    keys = blob.locator("table tbody tr").all_inner_texts()
    assert keys[0].split("\t") == [HOSTILE, "str", SCRIPT]
    _safe(page)
    shot(page, "commit-hostile")
    page.goto(f"{ui_url}/repositories/{repo.id}/merge?source={HOSTILE_BRANCH}&into=main")
    assert page.locator("#pick-source").input_value() == HOSTILE_BRANCH
    _safe(page)


def test_no_page_scrolls_sideways(page: Any, ui_url: str, repo: Repo, shot: Any) -> None:
    base = f"{ui_url}/repositories/{repo.id}"
    pages = {
        "repository": base,
        "commit": f"{base}/commits/{repo.first}",
        "diff": f"{base}/diff?base={repo.first}&other={repo.more_data}",
        "merge-conflicts": f"{base}/merge?source=more-data&into=main",
    }
    for width, height in ((1280, 800), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        for name, url in pages.items():
            page.goto(url)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px"
            if width == 1920:
                shot(page, f"{name}-1920")


def test_missing_and_bad_inputs_are_pages(
    page: Any, ui_url: str, repo: Repo, page_errors: Any
) -> None:
    page_errors.allow("status of 40[04]")
    answer = page.goto(f"{ui_url}/repositories/{repo.id}/commits/{'0' * 64}")
    assert answer is not None and answer.status == 404
    answer = page.goto(f"{ui_url}/repositories/{repo.id}/merge?source=main&into=v1")
    assert answer is not None and answer.status == 400
    assert "must be a branch" in page.locator("main").inner_text()


# -- the graph, without a browser ------------------------------------------------------------


def _commit(name: str, parents: tuple[str, ...], time: int) -> CommitInfo:
    digest = Digest(name * 64)
    ids = tuple(Digest(p * 64) for p in parents)
    return CommitInfo(digest, "r", Digest("0" * 64), ids, name, "", time)


def test_graph_lanes_follow_branches_and_merges() -> None:
    # a - b - d (merge of b and c) - e ; c branches off a ; f branches off b, never merged
    a = _commit("a", (), 1)
    b = _commit("b", ("a",), 2)
    c = _commit("c", ("a",), 3)
    d = _commit("d", ("b", "c"), 4)
    e = _commit("e", ("d",), 5)
    f = _commit("f", ("b",), 6)
    ordered = newest_first([a, b, c, d, e, f])
    assert [x.message for x in ordered] == ["f", "e", "d", "c", "b", "a"]
    rows = {r.commit.message: r for r in graph_rows(ordered)}
    assert rows["f"].column == 0 and rows["e"].column == 1
    assert rows["d"].column == 1
    merge_out = sorted(x2 for x1, y1, x2, y2 in rows["d"].lines if y1 == "50%")
    assert len(merge_out) == 2 and merge_out[0] != merge_out[1]
    c_lane = rows["c"].column
    assert c_lane == 1  # the lane d's own line freed: the graph stays narrow
    # b: d's first parent joined f's lane, which ends at b's dot; b goes on to c's lane,
    # which runs down to a
    assert [line[0] for line in rows["b"].lines if line[3] == "50%"] == [rows["f"].x]
    assert [line[2] for line in rows["b"].lines if line[1] == "50%"] == [rows["c"].x]
    assert rows["a"].column == c_lane
    assert not [line for line in rows["a"].lines if line[1] == "50%"]  # a has no parent
    assert max(r.width for r in rows.values()) == 2 * LANE


def test_graph_of_a_long_history_stays_narrow(tmp_path: Path) -> None:
    commits = [_commit("0", (), 0)]
    for i in range(1, 200):
        commits.append(
            CommitInfo(Digest(f"{i:064x}"), "r", Digest("0" * 64), (commits[-1].id,), "", "", i)
        )
    rows = graph_rows(newest_first(commits))
    assert {r.width for r in rows} == {LANE}


# -- the views of blobs and changes, without a browser ---------------------------------------


def test_a_kind_without_a_view_of_its_own_is_pretty_json() -> None:
    @dataclass(frozen=True, eq=False)
    class Odd(Blob):
        KIND: ClassVar[str] = "odd.kind"

        def body(self) -> dict[str, Any]:
            return {"b": [1, 2], "a": "<x>"}

    view = blob_view(Odd())
    assert view.kind == "odd.kind"
    assert [s.kind for s in view.sections] == ["json"]
    assert json.loads(view.sections[0].text) == {"a": "<x>", "b": [1, 2]}


def test_a_long_diff_leaves_fields_out() -> None:
    change = PathChange("p", None, Hyperparameters({"a": 1}), ())
    before = Hyperparameters({"a": 1, "b": "x"})
    after = Hyperparameters({"a": 2, "c": True})
    fields = PathChange("p", before, after, diff_blobs(before, after))
    shown = path_diff(fields)
    assert [(r.label, r.status, r.before, r.after) for r in shown.rows] == [
        ("a", "changed", "1", "2"),
        ("b", "removed", '"x"', ""),
        ("c", "added", "", "true"),
    ]
    assert not shown.left_out
    short = path_diff(fields, fields=False)
    assert short.rows == [] and short.left_out
    assert not path_diff(change, fields=False).left_out  # nothing was left out
