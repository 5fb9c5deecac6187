"""The pure values of versioning: canonical ids, blobs, trees, commits, diffs and merges."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.versioning.blobs import (
    Blob,
    Component,
    DockerEnvironment,
    FileEntry,
    GitReference,
    Hyperparameters,
    NotebookCode,
    PathDataset,
    PythonEnvironment,
    Range,
    SnapshotCode,
    blob_from_body,
)
from cairn.core.versioning.canonical import canonical_bytes, parse_canonical
from cairn.core.versioning.commit import Commit, check_ref_name, merge_base
from cairn.core.versioning.diff import diff_blobs, diff_trees
from cairn.core.versioning.merge import FOLDER, merge_trees
from cairn.core.versioning.tree import EMPTY_TREE, Entry, TreeNode, apply_changes, find, walk

D1 = Digest("a" * 64)
D2 = Digest("b" * 64)


# -- canonical ids ------------------------------------------------------------------------
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8),
)
keys = st.text(st.characters(min_codepoint=0xA0, max_codepoint=0x2FF), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, scalars, max_size=8), st.randoms())
def test_the_order_keys_are_given_in_does_not_change_the_id(
    values: dict[str, object], rng: random.Random
) -> None:
    shuffled = list(values.items())
    rng.shuffle(shuffled)
    assert Hyperparameters(values).digest() == Hyperparameters(dict(shuffled)).digest()


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, scalars, max_size=6), st.dictionaries(keys, scalars, max_size=6))
def test_any_change_of_content_changes_the_id(a: dict[str, object], b: dict[str, object]) -> None:
    first, second = Hyperparameters(a), Hyperparameters(b)
    same = first.body() == second.body()
    assert (first.digest() == second.digest()) is same


def test_one_one_point_o_true_and_the_string_one_stay_distinct() -> None:
    ids = {Hyperparameters({"x": v}).digest() for v in (1, 1.0, True, "1")}
    assert len(ids) == 4


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["numpy==1.26.0", "pandas>=2.0", "Torch", "scikit_learn<2"])),
    st.randoms(),
)
def test_requirements_and_components_in_any_order(lines: list[str], rng: random.Random) -> None:
    unique = list(dict.fromkeys(lines))
    shuffled = unique[:]
    rng.shuffle(shuffled)
    assert PythonEnvironment(unique).digest() == PythonEnvironment(shuffled).digest()
    parts = [Component(f"f{i}.csv", i, 1000 + i, D1) for i in range(len(unique))]
    assert PathDataset(parts).digest() == PathDataset(list(reversed(parts))).digest()


def test_every_kind_round_trips_through_its_canonical_form() -> None:
    git = GitReference(remote="git@x:y.git", commit="abc1234", branch="main", dirty=True, diff=D2)
    blobs: list[Blob] = [
        Hyperparameters(
            {"lr": 0.01, "depth": 6, "opt": "adam", "ok": True},
            ranges={"lr": (0.001, 0.1, 0.001)},
            sets={"optimizer": ["sgd", "adam", "sgd"]},
        ),
        PythonEnvironment(
            ["numpy==1.26.0", "pandas>=2.0"],
            version="3.11.7",
            constraints=["urllib3<3"],
            environment={"CUDA_VISIBLE_DEVICES": "0"},
            command_line=["python", "train.py"],
            apt=["libgomp1"],
        ),
        DockerEnvironment("ghcr.io/acme/train", "1.4", "sha256:" + "0" * 64),
        git,
        SnapshotCode([FileEntry("src/a.py", D1, 10), FileEntry("src/b.py", D2, 20)]),
        NotebookCode("eda.ipynb", D1, 123, git),
        PathDataset([Component("train/a.csv", 5, 1_700_000_000_000, D1)]),
    ]
    for blob in blobs:
        again = blob_from_body(blob.KIND, parse_canonical(blob.canonical(), "blob"))
        assert again == blob and again.digest() == blob.digest()
        assert type(again) is type(blob)
        assert type(blob).from_fields(blob.fields()) == blob


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Hyperparameters({"": 1}), "hyperparameter key"),
        (lambda: Hyperparameters({"x": [1]}), "hyperparameter 'x'"),
        (lambda: Hyperparameters(ranges={"lr": (1, 0, 0.1)}), "range"),
        (lambda: Hyperparameters(ranges={"lr": (0, 1, 0)}), "range step"),
        (lambda: Hyperparameters(sets={"opt": []}), "set 'opt'"),
        (lambda: PythonEnvironment(["numpy==="]), "requirements"),
        (lambda: PythonEnvironment(["numpy==1", "NumPy>2"]), "requirements"),
        (lambda: PythonEnvironment(environment={"1BAD": "x"}), "environment"),
        (lambda: PythonEnvironment(version="three"), "version"),
        (lambda: DockerEnvironment(""), "repository"),
        (lambda: DockerEnvironment("x", digest="md5"), "digest"),
        (GitReference, "commit"),
        (lambda: GitReference(commit="not hex"), "commit"),
        (lambda: SnapshotCode([FileEntry("../etc/passwd", D1, 1)]), "file path"),
        (lambda: PathDataset([Component("a", 1, 0, D1), Component("a", 2, 0, D1)]), "components"),
        (lambda: blob_from_body("code.cobol", {}), "kind"),
    ],
)
def test_bad_blobs_name_the_field(make: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        make()  # type: ignore[operator]
    assert caught.value.field == field


def test_decoding_refuses_what_no_constructor_makes() -> None:
    with pytest.raises(InvalidArgument):
        blob_from_body("config.hyperparameters", {"values": {"x": ["float", "1.00"]}})
    with pytest.raises(InvalidArgument):
        blob_from_body("config.hyperparameters", {"extra": {}})
    assert canonical_bytes({"b": 1, "a": [2, {"d": 3, "c": 4}]}) == b'{"a":[2,{"c":4,"d":3}],"b":1}'


# -- trees --------------------------------------------------------------------------------
class Nodes(dict[Digest, TreeNode]):
    """An in-memory node store, counting reads and the calls that read many at once."""

    reads = 0
    calls = 0

    def load(self, digest: Digest) -> TreeNode:
        self.reads += 1
        if digest == EMPTY_TREE.digest():
            return EMPTY_TREE
        try:
            return self[digest]
        except KeyError:
            raise NotFound(f"no node {digest}") from None

    def load_many(self, digests: Iterable[Digest]) -> dict[Digest, TreeNode]:
        self.calls += 1
        return {d: self.load(d) for d in digests}

    def apply(self, root: Digest | None, changes: Mapping[str, Entry | None]) -> Digest:
        new_root, made = apply_changes(self.load, root, changes)
        self.update(made)
        return new_root


def hp(value: float) -> Entry:
    return Entry(Hyperparameters.KIND, Hyperparameters({"lr": value}).digest())


def test_a_tree_of_many_paths_and_a_one_path_change_writes_its_depth() -> None:
    nodes = Nodes()
    paths = {
        f"d{a}/d{b}/d{c}/f{d}": hp(a * 1000 + b * 100 + c * 10 + d)
        for a, b, c, d in (
            (a, b, c, d) for a in range(10) for b in range(10) for c in range(10) for d in range(10)
        )
    }
    root = nodes.apply(None, paths)
    assert dict(walk(nodes.load, root)) == paths
    _, made = apply_changes(nodes.load, root, {"d3/d4/d5/f6": hp(-1)})
    assert len(made) == 4  # three folders and the root: O(depth)
    assert sum(len(n.canonical()) for n in made.values()) < 8 * 1024
    again = nodes.apply(root, {"d3/d4/d5/f6": hp(-1)})
    unchanged = find(nodes.load, again, "d0")
    assert unchanged == find(nodes.load, root, "d0")  # shared subtree


def test_tree_changes_remove_folders_and_refuse_mixups() -> None:
    nodes = Nodes()
    root = nodes.apply(None, {"a/b": hp(1), "c": hp(2)})
    only_c = nodes.apply(root, {"a/b": None})
    assert [p for p, _ in walk(nodes.load, only_c)] == ["c"]  # the empty folder went
    with pytest.raises(InvalidArgument, match="folder"):
        nodes.apply(root, {"a": hp(3)})
    with pytest.raises(InvalidArgument, match="ingredient"):
        nodes.apply(root, {"c/d": hp(3)})
    with pytest.raises(NotFound):
        nodes.apply(root, {"x/y": None})
    with pytest.raises(InvalidArgument):
        nodes.apply(root, {"../x": hp(1)})
    assert nodes.apply(root, {"a/b": None, "c": None}) == EMPTY_TREE.digest()


def test_one_change_set_swaps_a_folder_and_an_ingredient() -> None:
    nodes = Nodes()
    root = nodes.apply(None, {"a/b": hp(1), "a/c/d": hp(2), "e": hp(3)})
    swapped = nodes.apply(root, {"a/b": None, "a/c/d": None, "a": hp(4)})
    assert [(p, e) for p, e in walk(nodes.load, swapped)] == [("a", hp(4)), ("e", hp(3))]
    with pytest.raises(InvalidArgument, match="remove all under it"):
        nodes.apply(root, {"a/b": None, "a": hp(4)})  # a/c/d would stay
    back = nodes.apply(swapped, {"a": None, "a/x": hp(5)})
    assert [p for p, _ in walk(nodes.load, back)] == ["a/x", "e"]
    with pytest.raises(InvalidArgument, match="both as a file and as a folder"):
        nodes.apply(swapped, {"a": hp(6), "a/x": hp(5)})


def test_merges_and_reverts_of_a_folder_made_an_ingredient() -> None:
    store = Store()
    base = store.tree(None, {"data/x": Hyperparameters({"a": 1}), "k": Hyperparameters()})
    theirs = store.tree(base, {"data/x": None, "data": Hyperparameters({"b": 2})})
    plan = merge_trees(store.nodes.load, store.load_blob, base, base, theirs)
    assert not plan.conflicts
    merged = store.tree(base, plan.changes)
    assert [p for p, _ in walk(store.nodes.load, merged)] == ["data", "k"]
    undo = merge_trees(store.nodes.load, store.load_blob, theirs, merged, base)  # a revert
    assert store.tree(merged, undo.changes) == base


names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"), min_size=1
).filter(lambda n: n not in (".", ".."))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(names, st.sampled_from([D1, D2]), max_size=12), st.randoms())
def test_a_node_decodes_from_its_canonical_bytes(
    entries: dict[str, Digest], rng: random.Random
) -> None:
    node = TreeNode.of({n: Entry(Hyperparameters.KIND, d) for n, d in entries.items()})
    assert TreeNode.decode(node.canonical()) == node
    shuffled = list(node.entries)
    rng.shuffle(shuffled)
    assert TreeNode.of(dict(shuffled)).digest() == node.digest()


def test_a_node_is_binary_and_small() -> None:
    node = TreeNode.of({f"f{i:02d}": Entry(Hyperparameters.KIND, D1) for i in range(100)})
    # name, NUL, kind, NUL, 32 raw bytes: no hex, no JSON punctuation
    assert len(node.canonical()) == 100 * (3 + 1 + len(Hyperparameters.KIND) + 1 + 32)


@pytest.mark.parametrize(
    "data",
    [
        b"b\x00tree\x00" + bytes(32) + b"a\x00tree\x00" + bytes(32),  # out of order
        b"a\x00tree\x00" + bytes(32) + b"a\x00tree\x00" + bytes(32),  # a name twice
        b"a\x00tree\x00" + bytes(31),  # a short id
        b"a\x00Tree!\x00" + bytes(32),  # not a kind
        b"a/b\x00tree\x00" + bytes(32),  # not a name in a folder
        b"\xff\x00tree\x00" + bytes(32),  # not UTF-8
        b"a\x00tree",  # cut short
    ],
)
def test_a_node_refuses_what_no_node_encodes(data: bytes) -> None:
    with pytest.raises(InvalidArgument, match="tree node"):
        TreeNode.decode(data)


# -- commits --------------------------------------------------------------------------------
def test_commit_ids_cover_every_field() -> None:
    base = Commit(D1, (), "first", "ann", 1)
    variants = [
        Commit(D2, (), "first", "ann", 1),
        Commit(D1, (D2,), "first", "ann", 1),
        Commit(D1, (), "second", "ann", 1),
        Commit(D1, (), "first", "bob", 1),
        Commit(D1, (), "first", "ann", 2),
    ]
    assert len({c.digest() for c in [base, *variants]}) == 6
    assert Commit.decode(base.canonical()) == base


@pytest.mark.parametrize("name", ["main", "exp/lr-0.1", "v1.0", "feature_x"])
def test_good_ref_names(name: str) -> None:
    assert check_ref_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a b",
        "a..b",
        "a~1",
        "a^",
        "x:y",
        "a?",
        "a*",
        "a[",
        ".hidden",
        "a/",
        "a.lock",
        "@",
        "a@{1}",
        "a//b",
        "a\\b",
    ],
)
def test_bad_ref_names(name: str) -> None:
    with pytest.raises(InvalidArgument):
        check_ref_name(name)


def graph(edges: dict[str, list[str]]) -> tuple[object, object]:
    def parents(c: Digest) -> list[Digest]:
        return [Digest(p) for p in edges[c]]

    def time(c: Digest) -> int:
        return int(c[1:])

    return parents, time


def test_merge_base() -> None:
    # c1 <- c2 <- c3 (main), c2 <- c4 <- c5 (exp); x1 unrelated.
    parents, time = graph(
        {"c1": [], "c2": ["c1"], "c3": ["c2"], "c4": ["c2"], "c5": ["c4"], "x1": []}
    )
    assert merge_base(Digest("c3"), Digest("c5"), parents, time) == "c2"  # type: ignore[arg-type]
    assert merge_base(Digest("c3"), Digest("c2"), parents, time) == "c2"  # type: ignore[arg-type]
    assert merge_base(Digest("c5"), Digest("x1"), parents, time) is None  # type: ignore[arg-type]
    # A criss-cross: two lowest common ancestors, the newer one wins.
    parents, time = graph(
        {"c1": [], "c2": ["c1"], "c3": ["c1"], "c4": ["c2", "c3"], "c5": ["c3", "c2"]}
    )
    assert merge_base(Digest("c4"), Digest("c5"), parents, time) == "c3"  # type: ignore[arg-type]


# -- diffs and merges -----------------------------------------------------------------------
def test_blob_diffs_are_typed() -> None:
    before = PythonEnvironment(["numpy==1.26.0", "pandas>=2.0"], environment={"A": "1"})
    after = PythonEnvironment(["numpy==2.0.0", "scipy"], environment={"A": "1", "B": "2"})
    changes = {c.name: (c.status, c.before, c.after) for c in diff_blobs(before, after)}
    assert changes == {
        "requirements.numpy": ("modified", "numpy==1.26.0", "numpy==2.0.0"),
        "requirements.pandas": ("deleted", "pandas>=2.0", None),
        "requirements.scipy": ("added", None, "scipy"),
        "environment.B": ("added", None, "2"),
    }


class Store:
    """Blobs and nodes in memory, for tree diffs and merges."""

    def __init__(self) -> None:
        self.nodes = Nodes()
        self.blobs: dict[Digest, Blob] = {}

    def load_blob(self, entry: Entry) -> Blob:
        return self.blobs[entry.digest]

    def load_blobs(self, entries: Iterable[Entry]) -> dict[Digest, Blob]:
        return {e.digest: self.blobs[e.digest] for e in entries}

    def tree(self, root: Digest | None, changes: Mapping[str, Blob | None]) -> Digest:
        entries: dict[str, Entry | None] = {}
        for path, blob in changes.items():
            if blob is not None:
                self.blobs[blob.digest()] = blob
                entries[path] = Entry(blob.KIND, blob.digest())
            else:
                entries[path] = None
        return self.nodes.apply(root, entries)


def test_tree_diffs_read_only_changed_folders() -> None:
    store = Store()
    many = {f"cfg/{i // 10}/{i}": Hyperparameters({"i": i}) for i in range(100)}
    a = store.tree(None, {**many, "env/py": PythonEnvironment(["numpy==1"])})
    b = store.tree(
        a, {"cfg/3/31": Hyperparameters({"i": -1}), "env/py": None, "new": Hyperparameters()}
    )
    store.nodes.reads = 0
    changes = diff_trees(store.nodes.load_many, store.load_blobs, a, b)
    assert [(c.path, c.status) for c in changes] == [
        ("cfg/3/31", "modified"),
        ("env/py", "deleted"),
        ("new", "added"),
    ]
    assert changes[0].fields[0].name == "values.i"
    assert store.nodes.reads <= 8  # roots, cfg, cfg/3, env on both sides: not 100 paths
    assert store.nodes.calls == 3  # one call per depth


def test_a_path_that_becomes_a_folder_sorts_before_what_is_in_it() -> None:
    store = Store()
    a = store.tree(None, {"x": Hyperparameters({"i": 1}), "x.y": Hyperparameters()})
    b = store.tree(None, {"x/a": Hyperparameters({"i": 2}), "x.y": Hyperparameters({"i": 3})})
    changes = diff_trees(store.nodes.load_many, store.load_blobs, a, b)
    assert [(c.path, c.status) for c in changes] == [
        ("x", "deleted"),
        ("x/a", "added"),
        ("x.y", "modified"),
    ]


def test_merge_per_key_without_conflict() -> None:
    store = Store()
    base = store.tree(
        None, {"hp": Hyperparameters({"lr": 0.1, "depth": 6}), "x": Hyperparameters()}
    )
    ours = store.tree(base, {"hp": Hyperparameters({"lr": 0.01, "depth": 6})})
    theirs = store.tree(
        base, {"hp": Hyperparameters({"lr": 0.1, "depth": 8}), "y": Hyperparameters({"a": 1})}
    )
    plan = merge_trees(store.nodes.load, store.load_blob, base, ours, theirs)
    assert plan.conflicts == []
    assert plan.changes == {
        "hp": Hyperparameters({"lr": 0.01, "depth": 8}),
        "y": Hyperparameters({"a": 1}),
    }


def test_conflicts_are_listed_then_resolved() -> None:
    store = Store()
    base = store.tree(
        None, {"hp": Hyperparameters({"lr": 0.1}), "env": PythonEnvironment(["a==1"])}
    )
    ours = store.tree(base, {"hp": Hyperparameters({"lr": 0.01}), "env": None})
    theirs = store.tree(
        base, {"hp": Hyperparameters({"lr": 0.2}), "env": PythonEnvironment(["a==2"])}
    )
    plan = merge_trees(store.nodes.load, store.load_blob, base, ours, theirs)
    assert [(c.path, c.field) for c in plan.conflicts] == [("env", None), ("hp", ("values", "lr"))]
    lr = plan.conflicts[1]
    assert (lr.base, lr.ours, lr.theirs) == (["float", "0.1"], ["float", "0.01"], ["float", "0.2"])
    assert plan.conflicts[0].ours is None
    assert plan.changes == {}
    resolved = merge_trees(
        store.nodes.load,
        store.load_blob,
        base,
        ours,
        theirs,
        {("hp", ("values", "lr")): 0.05, ("env", None): "theirs"},
    )
    assert resolved.conflicts == []
    assert resolved.changes == {
        "hp": Hyperparameters({"lr": 0.05}),
        "env": PythonEnvironment(["a==2"]),
    }
    with pytest.raises(InvalidArgument, match="not a conflict"):
        merge_trees(store.nodes.load, store.load_blob, base, ours, theirs, {("zz", None): "ours"})


def test_a_folder_against_a_blob_is_a_conflict() -> None:
    store = Store()
    base = store.tree(None, {"x": Hyperparameters()})
    ours = store.tree(base, {"a": Hyperparameters({"v": 1})})
    theirs = store.tree(base, {"a/b": Hyperparameters({"v": 2})})
    plan = merge_trees(store.nodes.load, store.load_blob, base, ours, theirs)
    [conflict] = plan.conflicts
    assert (conflict.path, conflict.ours, conflict.theirs) == (
        "a",
        Hyperparameters({"v": 1}),
        FOLDER,
    )
    taken = merge_trees(
        store.nodes.load, store.load_blob, base, ours, theirs, {("a", None): "theirs"}
    )
    assert taken.changes == {"a": None, "a/b": Hyperparameters({"v": 2})}


def test_range_bounds_are_kept_exactly() -> None:
    blob = Hyperparameters(ranges={"lr": Range(0.001, 0.1, 0.001)})
    assert blob_from_body(blob.KIND, blob.body()) == blob


def test_huge_integers_are_refused_by_name_not_by_overflow() -> None:
    with pytest.raises(InvalidArgument, match="range end: integers must fit in 64 bits"):
        Hyperparameters(ranges={"a": (0, 10**400, 1)})
    body = {"values": {"a": ["int", "1" + "0" * 30]}}
    with pytest.raises(InvalidArgument, match="64 bits"):
        blob_from_body(Hyperparameters.KIND, body)


def test_a_snapshot_file_cannot_also_be_a_folder() -> None:
    files = [FileEntry("a", D1, 1), FileEntry("a/b", D2, 1)]
    with pytest.raises(InvalidArgument, match="'a' is a file and a folder"):
        SnapshotCode(files)
