"""Artifacts: files, folders (trees), bytes and streams; keys are safe relative paths;
bytes are stored once and verified on every read."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

import cairn
from cairn import ArtifactInfo
from cairn.core.digest import digest_bytes

from .conftest import MakeClient, expect_error, object_files

HOSTILE_KEYS = [
    "",
    "/etc/passwd",
    "/",
    "..",
    "../escape",
    "a/../../escape",
    "a/..",
    ".",
    "./a",
    "a\\b",
    "..\\escape",
    "a\x00b",
    "a//b",
    "a/",
    "C:/windows",
    "a\nb",
]


def make_tree(root: Path) -> dict[str, bytes]:
    """A folder with nested folders, empty files and Unicode names; returns its files."""
    files = {
        "a.txt": b"alpha",
        "empty.bin": b"",
        "sub/b.txt": b"bravo",
        "sub/deeper/c.bin": bytes(range(256)) * 10,
        "sub/deeper/empty": b"",
        "ünï/💾.txt": b"unicode",
        "dup1.txt": b"same bytes",
        "dup2.txt": b"same bytes",
    }
    for rel, data in files.items():
        path = root.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def object_path(home: Path, digest: str) -> Path:
    [path] = [p for p in object_files(home) if p.parent.name + p.name == digest]
    return path


def corrupt(path: Path) -> None:
    """Flip one byte of a stored (read-only) object."""
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# -- sources ----------------------------------------------------------------------------


def test_bytes_file_and_stream_sources(client: cairn.Client, tmp_path: Path) -> None:
    run = client.set_experiment_run("r")
    source = tmp_path / "weights.bin"
    source.write_bytes(b"file bytes")
    infos = [
        run.log_artifact("from-bytes", b"raw bytes"),
        run.log_artifact("from-bytearray", bytearray(b"array")),
        run.log_artifact("from-memoryview", memoryview(b"view")),
        run.log_artifact("from-path", source),
        run.log_artifact("from-str-path", str(source)),
        run.log_artifact("from-stream", io.BytesIO(b"stream bytes")),
    ]
    with source.open("rb") as handle:
        infos.append(run.log_artifact("from-open-file", handle))
    expected = {
        "from-bytes": b"raw bytes",
        "from-bytearray": b"array",
        "from-memoryview": b"view",
        "from-path": b"file bytes",
        "from-str-path": b"file bytes",
        "from-stream": b"stream bytes",
        "from-open-file": b"file bytes",
    }
    for info in infos:
        assert isinstance(info, ArtifactInfo)
        assert info.kind == "file"
        assert info.file_count == 1
        assert info.size == len(expected[info.key])
        assert info.digest == digest_bytes(expected[info.key])
    assert sorted(run.list_artifacts(), key=lambda a: a.key) == sorted(infos, key=lambda a: a.key)
    for key, data in expected.items():
        with run.open_artifact(key) as stream:
            assert stream.read() == data


def test_download_a_file(
    client: cairn.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = client.set_experiment_run("r")
    run.log_artifact("models/model.bin", b"\x00model\xff")
    target = run.download_artifact("models/model.bin", "out/")
    assert (tmp_path / "out" / "model.bin").read_bytes() == b"\x00model\xff"
    assert target.resolve() == (tmp_path / "out" / "model.bin").resolve()
    exact = run.download_artifact("models/model.bin", tmp_path / "renamed.bin")
    assert exact.read_bytes() == b"\x00model\xff"
    (tmp_path / "existing").mkdir()
    into = run.download_artifact("models/model.bin", tmp_path / "existing")
    assert into == tmp_path / "existing" / "model.bin"
    assert into.read_bytes() == b"\x00model\xff"


def test_logging_a_key_again_replaces_it(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_artifact("a", b"first")
    run.log_artifact("a", b"second")
    [info] = run.list_artifacts()
    assert info.size == len(b"second")
    assert run.open_artifact("a").read() == b"second"


def test_missing_sources_and_keys(client: cairn.Client, tmp_path: Path) -> None:
    run = client.set_experiment_run("r")
    with pytest.raises(cairn.InvalidArgument, match="source"):
        run.log_artifact("x", tmp_path / "does-not-exist")
    with pytest.raises(cairn.InvalidArgument, match="source"):
        run.log_artifact("x", 12345)  # type: ignore[arg-type]
    with pytest.raises(cairn.NotFound, match="nothing-here"):
        run.open_artifact("nothing-here")
    with pytest.raises(cairn.NotFound):
        run.download_artifact("nothing-here", f"{tmp_path}/out/")
    assert run.list_artifacts() == []


def test_artifacts_persist(open_client: MakeClient, tmp_path: Path) -> None:
    client = open_client()
    run = client.set_experiment_run("r")
    make_tree(tmp_path / "folder")
    run.log_artifact("folder", tmp_path / "folder")
    run.log_artifact("file.txt", b"kept")
    client.close()

    again = open_client().get_run(run.id)
    assert [a.key for a in again.list_artifacts()] == ["file.txt", "folder"]
    assert again.open_artifact("file.txt").read() == b"kept"
    assert again.open_artifact("folder/sub/b.txt").read() == b"bravo"


# -- folders ----------------------------------------------------------------------------


def test_folder_round_trip(client: cairn.Client, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "plots")
    run = client.set_experiment_run("r")
    info = run.log_artifact("plots", tmp_path / "plots")
    assert info.kind == "tree"
    assert info.file_count == len(files)
    assert info.size == sum(len(d) for d in files.values())
    [listed] = run.list_artifacts()
    assert listed == info

    entries = run.list_artifact_files("plots")
    assert [e.path for e in entries] == sorted(files)
    for entry in entries:
        assert entry.size == len(files[entry.path])
        assert entry.digest == digest_bytes(files[entry.path])

    target = run.download_artifact("plots", f"{tmp_path}/out/")
    assert target == tmp_path / "out" / "plots"
    assert read_tree(target) == files
    assert (target / "empty.bin").stat().st_size == 0


def test_progress_counts_every_byte_once(client: cairn.Client, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "plots")
    total = sum(len(d) for d in files.values())
    big = os.urandom(9 * 1024 * 1024 + 3)  # sent while hashed, over HTTP
    (tmp_path / "big.bin").write_bytes(big)
    run = client.set_experiment_run("r")
    for key, source, size in (
        ("plots", tmp_path / "plots", total),
        ("big.bin", tmp_path / "big.bin", len(big)),
        ("bytes", b"abc" * 1000, 3000),
        ("stream", io.BytesIO(big), len(big)),
        ("again", tmp_path / "big.bin", len(big)),  # stored already: counted all the same
    ):
        told: list[int] = []
        run.log_artifact(key, source, progress=told.append)
        assert sum(told) == size, key
        assert all(n > 0 for n in told)
    for key, size in (("plots", total), ("big.bin", len(big))):
        told = []
        run.download_artifact(key, f"{tmp_path}/out/", progress=told.append)
        assert sum(told) == size, key


def test_open_and_list_inside_a_folder(client: cairn.Client, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "plots")
    run = client.set_experiment_run("r")
    run.log_artifact("plots", tmp_path / "plots")
    with run.open_artifact("plots/sub/deeper/c.bin") as stream:
        assert stream.read() == files["sub/deeper/c.bin"]
    assert run.open_artifact("plots/sub/deeper/empty").read() == b""
    assert run.open_artifact("plots/ünï/💾.txt").read() == b"unicode"
    sub = run.list_artifact_files("plots/sub")
    assert [e.path for e in sub] == ["b.txt", "deeper/c.bin", "deeper/empty"]
    [single] = run.list_artifact_files("plots/a.txt")
    assert (single.path, single.size) == ("a.txt", 5)
    with pytest.raises(cairn.InvalidArgument, match="folder"):
        run.open_artifact("plots/sub")
    with pytest.raises(cairn.NotFound):
        run.open_artifact("plots/sub/missing.txt")
    with pytest.raises(cairn.NotFound):
        run.open_artifact("plots/su")  # a prefix of a folder name is not a folder

    target = run.download_artifact("plots/sub", f"{tmp_path}/out/")
    assert read_tree(target) == {
        "b.txt": b"bravo",
        "deeper/c.bin": files["sub/deeper/c.bin"],
        "deeper/empty": b"",
    }
    one = run.download_artifact("plots/sub/b.txt", f"{tmp_path}/one/")
    assert one.read_bytes() == b"bravo"


def test_an_empty_folder_is_an_empty_tree(client: cairn.Client, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    run = client.set_experiment_run("r")
    info = run.log_artifact("nothing", tmp_path / "empty")
    assert (info.kind, info.file_count, info.size) == ("tree", 0, 0)
    assert run.list_artifact_files("nothing") == []
    target = run.download_artifact("nothing", f"{tmp_path}/out/")
    assert target.is_dir()
    assert list(target.iterdir()) == []


# -- keys -------------------------------------------------------------------------------


def test_hostile_keys_are_refused(client: cairn.Client, tmp_path: Path, home: Path) -> None:
    run = client.set_experiment_run("r")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "f").write_bytes(b"f")
    for key in HOSTILE_KEYS:
        for source in (b"data", tmp_path / "folder"):
            error = expect_error(cairn.InvalidArgument, key, run.log_artifact, key, source)
            assert error.field == "key", key
            assert str(error).startswith("key: must"), key
    assert run.list_artifacts() == []
    assert object_files(home) == []  # refused before any byte was stored
    run.log_artifact("fine", b"data")
    for key in HOSTILE_KEYS:
        expect_error(cairn.InvalidArgument, key, run.open_artifact, key)
        expect_error(cairn.InvalidArgument, key, run.download_artifact, key, f"{tmp_path}/out/")
        expect_error(cairn.InvalidArgument, key, run.list_artifact_files, key)
    assert not (tmp_path / "out").exists()


def test_unicode_and_dotted_keys_are_fine(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    keys = ["日本/データ.bin", "🚀.txt", ".hidden", "a..b", "...", "a b/c d", "x" * 1024]
    for key in keys:
        run.log_artifact(key, key.encode())
    assert sorted(a.key for a in run.list_artifacts()) == sorted(keys)
    for key in keys:
        assert run.open_artifact(key).read() == key.encode()


def test_key_length_limit(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    with pytest.raises(cairn.InvalidArgument, match="1024"):
        run.log_artifact("x" * 1025, b"data")


# -- content addressing -----------------------------------------------------------------


def test_same_bytes_are_stored_once(client: cairn.Client, tmp_path: Path, home: Path) -> None:
    client.set_experiment("e")
    first = client.start_run()
    second = client.start_run()
    payload = os.urandom(300_000)
    (tmp_path / "payload.bin").write_bytes(payload)
    first.log_artifact("model.bin", payload)
    second.log_artifact("copy.bin", tmp_path / "payload.bin")
    second.log_artifact("streamed.bin", io.BytesIO(payload))
    client.set_project("other").log_artifact("again.bin", payload)
    assert len(object_files(home)) == 1

    make_tree(tmp_path / "tree")
    first.log_artifact("tree", tmp_path / "tree")
    count = len(object_files(home))
    second.log_artifact("tree-again", tmp_path / "tree")
    assert len(object_files(home)) == count  # same files and same manifest: nothing new
    assert first.list_artifacts()[1].digest == second.list_artifacts()[2].digest
    # Within the tree, files with the same bytes share one object as well: 6 distinct
    # file contents (two empty files, two "same bytes" files), the manifest, the payload.
    assert count == 1 + 6 + 1


def test_corrupt_object_is_caught_on_read(client: cairn.Client, tmp_path: Path, home: Path) -> None:
    run = client.set_experiment_run("r")
    info = run.log_artifact("model.bin", b"precious model weights" * 100)
    corrupt(object_path(home, info.digest))

    with pytest.raises(cairn.CorruptObject), run.open_artifact("model.bin") as stream:
        stream.read()
    out = tmp_path / "out"
    with pytest.raises(cairn.CorruptObject) as caught:
        run.download_artifact("model.bin", f"{out}/")
    assert info.digest in str(caught.value)
    assert not (out / "model.bin").exists()
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == []
    target = tmp_path / "exact.bin"
    with pytest.raises(cairn.CorruptObject):
        run.download_artifact("model.bin", target)
    assert not target.exists()
    assert list(tmp_path.rglob("*.cairn-tmp")) == []  # no temporary file left either


def test_corrupt_file_in_a_tree_is_caught(client: cairn.Client, tmp_path: Path, home: Path) -> None:
    files = make_tree(tmp_path / "plots")
    run = client.set_experiment_run("r")
    run.log_artifact("plots", tmp_path / "plots")
    entry = next(e for e in run.list_artifact_files("plots") if e.path == "sub/b.txt")
    corrupt(object_path(home, entry.digest))

    with pytest.raises(cairn.CorruptObject), run.open_artifact("plots/sub/b.txt") as stream:
        stream.read()
    assert run.open_artifact("plots/a.txt").read() == files["a.txt"]  # others still fine
    out = tmp_path / "out"
    with pytest.raises(cairn.CorruptObject):
        run.download_artifact("plots", f"{out}/")
    # A failed download leaves no files behind: not even the ones verified before it.
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == []


def test_corrupt_tree_manifest_is_caught(client: cairn.Client, tmp_path: Path, home: Path) -> None:
    make_tree(tmp_path / "plots")
    run = client.set_experiment_run("r")
    info = run.log_artifact("plots", tmp_path / "plots")
    corrupt(object_path(home, info.digest))
    with pytest.raises(cairn.CorruptObject):
        run.list_artifact_files("plots")
    with pytest.raises(cairn.CorruptObject):
        run.open_artifact("plots/a.txt")
    with pytest.raises(cairn.CorruptObject):
        run.download_artifact("plots", f"{tmp_path}/out/")
    out = tmp_path / "out"
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == []


def test_missing_object_is_not_found(client: cairn.Client, tmp_path: Path, home: Path) -> None:
    run = client.set_experiment_run("r")
    info = run.log_artifact("gone.bin", b"will vanish")
    object_path(home, info.digest).unlink()
    with pytest.raises(cairn.NotFound):
        run.open_artifact("gone.bin")
    with pytest.raises(cairn.NotFound):
        run.download_artifact("gone.bin", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
