"""Artifacts through a real server on loopback: uvicorn in a thread, ``cairn.Client(url)``.

Bytes stream both ways without being held whole in memory, digests are checked at both
ends, big files go as parts that a re-run resumes, and hostile keys are refused with the
same errors as the embedded client.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import cairn
import cairn.client._http_artifacts as http_artifacts
from cairn.core.digest import digest_bytes
from cairn.core.settings import Settings
from cairn.core.tree import Tree, TreeEntry
from cairn.files import writing
from cairn.server.routes.artifacts import _outlast
from tests.proxy import Action, DroppingProxy, Plan, Seen, forward_all
from tests.servers import serve_in_thread

OCTETS = {"content-type": "application/octet-stream"}  # what a write of bytes must say
HOSTILE_KEYS = ["", "/etc/passwd", "..", "../escape", "a/../../b", "./a", "a\\b", "a//b", "a/"]


@dataclass
class Server:
    url: str
    home: Path

    @property
    def objects(self) -> Path:
        return self.home / "objects"

    def object_files(self) -> list[Path]:
        root = self.objects / "objects"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def temp_files(self) -> list[Path]:
        root = self.objects / "tmp"
        return list(root.iterdir()) if root.exists() else []

    def object_path(self, digest: str) -> Path:
        return self.objects / "objects" / digest[:2] / digest[2:]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "server-home"
    # Every object whole: these tests count and damage object files (chunked objects:
    # tests/store/test_chunked.py, tests/faults/test_objects_heal.py).
    with serve_in_thread(Settings(home=str(home), chunk_size=0)) as url:
        yield Server(url, home)


MakeClient = Callable[..., cairn.Client]
MakeProxy = Callable[..., DroppingProxy]


@pytest.fixture
def make_client(server: Server) -> Iterator[MakeClient]:
    made: list[cairn.Client] = []

    def make(proxy: DroppingProxy | None = None) -> cairn.Client:
        url = server.url if proxy is None else proxy.url
        settings = Settings(url=url, retry_timeout=5.0, request_timeout=30.0)
        client = cairn.Client(settings=settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> cairn.Client:
    return make_client()


@pytest.fixture
def make_proxy(server: Server) -> Iterator[Callable[[Plan], DroppingProxy]]:
    """A real proxy in front of the server that counts requests and drops some."""
    made: list[DroppingProxy] = []

    def make(plan: Plan = forward_all) -> DroppingProxy:
        port = int(server.url.rsplit(":", 1)[1])
        made.append(DroppingProxy(("127.0.0.1", port), plan))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha",
        "empty.bin": b"",
        "sub/b.txt": b"bravo",
        "sub/deeper/c.bin": os.urandom(3 * 1024 * 1024 + 11),
        "sub/deeper/empty": b"",
        "ünï/💾.txt": b"unicode",
    }
    for rel, data in files.items():
        path = root.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


class PipeLike:
    """A stream with only ``read`` (no seek): the client spools it before sending."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 70_001) if size > 0 else 70_001)


def corrupt(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# -- round trips ------------------------------------------------------------------------------
def test_every_kind_of_source_round_trips(client: cairn.Client, tmp_path: Path) -> None:
    run = client.set_experiment_run("r")
    big = os.urandom(5 * 1024 * 1024 + 3)
    (tmp_path / "weights.bin").write_bytes(big)
    sources: dict[str, tuple[object, bytes]] = {
        "bytes": (b"raw bytes", b"raw bytes"),
        "empty": (b"", b""),
        "view": (memoryview(b"a view"), b"a view"),
        "path": (tmp_path / "weights.bin", big),
        "str-path": (str(tmp_path / "weights.bin"), big),
        "stream": (io.BytesIO(b"stream bytes"), b"stream bytes"),
        "pipe": (PipeLike(big), big),
    }
    for key, (source, data) in sources.items():
        info = run.log_artifact(key, source)  # type: ignore[arg-type]
        assert (info.kind, info.size, info.file_count) == ("file", len(data), 1)
        assert info.digest == digest_bytes(data)
    with (tmp_path / "weights.bin").open("rb") as handle:
        handle.seek(5)  # a file object logs from where it stands
        assert run.log_artifact("open-file", handle).size == len(big) - 5

    assert sorted(a.key for a in run.list_artifacts()) == sorted([*sources, "open-file"])
    for key, (_, data) in sources.items():
        with run.open_artifact(key) as stream:
            assert stream.read() == data
        [entry] = run.list_artifact_files(key)
        assert (entry.path, entry.size) == (key, len(data))
    out = run.download_artifact("path", f"{tmp_path}/out/")
    assert out == tmp_path / "out" / "path"
    assert out.read_bytes() == big
    exact = run.download_artifact("empty", tmp_path / "exact.bin")
    assert exact.read_bytes() == b""


def test_folder_round_trip(client: cairn.Client, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "plots")
    run = client.set_experiment_run("r")
    info = run.log_artifact("plots", tmp_path / "plots")
    assert (info.kind, info.file_count) == ("tree", len(files))
    assert info.size == sum(len(d) for d in files.values())
    assert [e.path for e in run.list_artifact_files("plots")] == sorted(files)
    assert [e.path for e in run.list_artifact_files("plots/sub")] == [
        "b.txt",
        "deeper/c.bin",
        "deeper/empty",
    ]

    target = run.download_artifact("plots", f"{tmp_path}/out/")
    assert target == tmp_path / "out" / "plots"
    assert read_tree(target) == files
    sub = run.download_artifact("plots/sub/deeper", f"{tmp_path}/sub/")
    assert read_tree(sub) == {"c.bin": files["sub/deeper/c.bin"], "empty": b""}
    assert list(tmp_path.rglob("*.cairn-*")) == []  # no staging or temp file left

    with run.open_artifact("plots/sub/deeper/c.bin") as stream:  # a file inside a tree
        assert stream.read(10) == files["sub/deeper/c.bin"][:10]
        assert stream.read() == files["sub/deeper/c.bin"][10:]
    assert run.open_artifact("plots/ünï/💾.txt").read() == b"unicode"
    with pytest.raises(cairn.InvalidArgument, match="folder"):
        run.open_artifact("plots/sub")
    with pytest.raises(cairn.NotFound):
        run.open_artifact("plots/sub/missing")

    (tmp_path / "nothing").mkdir()
    empty = run.log_artifact("nothing", tmp_path / "nothing")
    assert (empty.kind, empty.file_count, empty.size) == ("tree", 0, 0)
    assert run.download_artifact("nothing", f"{tmp_path}/e/").is_dir()


def test_same_bytes_are_stored_once_and_sent_once(
    server: Server, make_client: MakeClient, make_proxy: MakeProxy, tmp_path: Path
) -> None:
    recorder = make_proxy()
    client = make_client(recorder)
    payload = os.urandom(2 * 1024 * 1024)
    (tmp_path / "model.bin").write_bytes(payload)
    client.set_experiment("e")
    first, second = client.start_run(), client.start_run()
    first.log_artifact("model.bin", tmp_path / "model.bin")
    assert recorder.count(method="PUT") == 1
    second.log_artifact("copy.bin", payload)
    second.log_artifact("streamed.bin", io.BytesIO(payload))
    assert recorder.count(method="PUT") == 1  # the server had it: HEAD, no upload
    assert len(server.object_files()) == 1
    assert first.list_artifacts()[0].digest == second.list_artifacts()[0].digest


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused(
    server: Server, client: cairn.Client, tmp_path: Path, key: str
) -> None:
    run = client.set_experiment_run("r")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "f").write_bytes(b"f")
    for source in (b"data", tmp_path / "folder"):
        with pytest.raises(cairn.InvalidArgument) as caught:
            run.log_artifact(key, source)
        assert caught.value.field == "key"
    assert server.object_files() == []  # refused before a byte moved
    run.log_artifact("fine", b"data")
    for call in (run.open_artifact, run.list_artifact_files):
        with pytest.raises(cairn.InvalidArgument):
            call(key)
    with pytest.raises(cairn.InvalidArgument):
        run.download_artifact(key, f"{tmp_path}/out/")
    assert not (tmp_path / "out").exists()


def test_server_refuses_hostile_keys_itself(server: Server, client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    digest = digest_bytes(b"x")
    with httpx.Client(base_url=f"{server.url}/api/v1") as http:
        assert http.put(f"/objects/{digest}", content=b"x", headers=OCTETS).status_code == 201
        for key in ("../escape", "a/../../b", "/abs"):
            answer = http.post(
                f"/entities/{run.id}/artifacts", json={"key": key, "kind": "file", "digest": digest}
            )
            assert answer.status_code == 400
            assert answer.json()["error"]["code"] == "invalid_argument"
        assert (
            http.get(f"/entities/{run.id}/artifact-files", params={"key": "../x"}).status_code
            == 400
        )
    assert run.list_artifacts() == []


def test_put_with_a_wrong_digest_stores_nothing(server: Server) -> None:
    data = os.urandom(6 * 1024 * 1024)  # several pieces
    wrong = digest_bytes(b"something else")
    with httpx.Client(base_url=f"{server.url}/api/v1") as http:
        answer = http.put(f"/objects/{wrong}", content=data, headers=OCTETS)
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["code"] == "invalid_argument"
        assert error["details"]["field"] == "digest"
        assert error["details"]["actual"] == digest_bytes(data)
        assert http.head(f"/objects/{wrong}").status_code == 404
        assert http.head(f"/objects/{digest_bytes(data)}").status_code == 404
        assert http.put("/objects/not-a-digest", content=b"x", headers=OCTETS).status_code == 400
    assert server.object_files() == []
    assert server.temp_files() == []


def test_a_dropped_upload_leaves_nothing(server: Server) -> None:
    digest = digest_bytes(b"never finished")
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"PUT /api/v1/objects/{digest} HTTP/1.1\r\nhost: {host}\r\n"
            f"content-length: {10 * 1024 * 1024}\r\n\r\n"
        )
        sock.sendall(head.encode() + os.urandom(6 * 1024 * 1024))
    deadline = time.monotonic() + 10
    while server.temp_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.temp_files() == []
    assert server.object_files() == []


@pytest.mark.parametrize("size", [100_000, 24 * 1024 * 1024 + 5])  # one PUT; POST while hashed
def test_a_full_server_disk_is_reported_at_once_and_stores_nothing(
    size: int,
    server: Server,
    make_client: MakeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A full disk cannot be made here without root: the server's writes (in this
    # process) are told ENOSPC from the 64th KiB on, as the kernel would say it.
    def full(fd: int, view: memoryview, offset: int) -> int:
        if offset + len(view) > 64 * 1024:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.pwrite(fd, view, offset)

    monkeypatch.setattr(writing, "_pwrite_all", full)
    monkeypatch.setattr(writing, "pwrite_direct", full)
    (tmp_path / "w.bin").write_bytes(os.urandom(size))
    run = make_client().start_run()
    started = time.monotonic()
    with pytest.raises(cairn.StorageFull, match="no room left for a new object"):
        run.log_artifact("w.bin", tmp_path / "w.bin")
    assert time.monotonic() - started < 4  # not retried (the client's retry time is 5 s)
    assert run.list_artifacts() == []
    assert server.temp_files() == []
    assert server.object_files() == []


def test_object_routes(server: Server) -> None:
    data = os.urandom(9 * 1024 * 1024 + 5)
    digest = digest_bytes(data)
    with httpx.Client(base_url=f"{server.url}/api/v1") as http:
        assert http.head(f"/objects/{digest}").status_code == 404
        created = http.put(
            f"/objects/{digest}", content=iter([data[:100], data[100:]]), headers=OCTETS
        )
        assert (created.status_code, created.json()) == (201, {"digest": digest, "size": len(data)})
        assert (
            http.put(f"/objects/{digest}", content=data, headers=OCTETS).status_code == 200
        )  # stored once
        head = http.head(f"/objects/{digest}")
        assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))
        got = http.get(f"/objects/{digest}")
        assert got.content == data
        assert got.headers["x-cairn-digest"] == digest
        assert http.get(f"/objects/{digest}/verify").json() == {"digest": digest, "size": len(data)}
        missing = http.get(f"/objects/{digest_bytes(b'none')}")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert len(server.object_files()) == 1


def test_record_checks_what_it_is_told(server: Server, client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    present = digest_bytes(b"present")
    absent = digest_bytes(b"absent")
    good = Tree.of([TreeEntry("a", present, 7)])
    lying = Tree.of([TreeEntry("a", present, 999)])
    dangling = Tree.of([TreeEntry("a", present, 7), TreeEntry("b", absent, 6)])
    with httpx.Client(base_url=f"{server.url}/api/v1") as http:

        def record(kind: str, digest: str) -> httpx.Response:
            body = {"key": "k", "kind": kind, "digest": digest}
            return http.post(f"/entities/{run.id}/artifacts", json=body)

        for data in (b"present", good.encode(), lying.encode(), dangling.encode(), b"{}"):
            http.put(
                f"/objects/{digest_bytes(data)}", content=data, headers=OCTETS
            ).raise_for_status()
        assert record("file", absent).status_code == 404
        assert record("tree", digest_bytes(dangling.encode())).status_code == 404
        assert record("tree", digest_bytes(lying.encode())).status_code == 400
        assert record("tree", digest_bytes(b"{}")).status_code == 400  # not a manifest
        assert record("folder", present).status_code == 400
        info = record("tree", good.digest())
        assert info.status_code == 200
        assert (info.json()["size"], info.json()["file_count"]) == (7, 1)  # from the store
        assert record("file", present).json()["size"] == 7
    assert [a.key for a in run.list_artifacts()] == ["k"]


def test_missing_entity_is_refused_before_uploading(server: Server, client: cairn.Client) -> None:
    with pytest.raises(cairn.NotFound):
        client._backend.artifacts.log_artifact(str(uuid.uuid4()), "k", b"bytes")
    with pytest.raises(cairn.InvalidArgument):
        client._backend.artifacts.log_artifact("../projects", "k", b"bytes")
    assert server.object_files() == []


def test_corrupt_object_on_the_server_is_caught(
    server: Server, client: cairn.Client, tmp_path: Path
) -> None:
    run = client.set_experiment_run("r")
    big = run.log_artifact("big.bin", os.urandom(9 * 1024 * 1024))
    small = run.log_artifact("small.bin", b"precious" * 100)
    corrupt(server.object_path(big.digest))
    corrupt(server.object_path(small.digest))
    for key, digest in (("big.bin", big.digest), ("small.bin", small.digest)):
        with pytest.raises(cairn.CorruptObject) as caught:
            run.download_artifact(key, tmp_path / "out.bin")
        assert digest in str(caught.value)
        with pytest.raises(cairn.CorruptObject), run.open_artifact(key) as stream:
            stream.read()
    assert not (tmp_path / "out.bin").exists()
    assert list(tmp_path.glob(".*")) == []  # no temp file either


# -- parts ------------------------------------------------------------------------------------
class Interrupted(Exception):
    """The process died mid-upload (not a network error: nothing retries it)."""


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(http_artifacts, "PART_SIZE", 1024 * 1024)
    monkeypatch.setattr(http_artifacts, "MULTIPART_THRESHOLD", 2 * 1024 * 1024)
    return 1024 * 1024


def interrupt_put(client: cairn.Client, nth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the client's ``nth`` PUT raise :class:`Interrupted` before it is sent."""
    transport = client._backend.transport  # type: ignore[attr-defined]
    real = transport.open
    puts = 0

    def open_(method: str, path: str, **options: Any) -> Any:
        nonlocal puts
        if method == "PUT":
            puts += 1
            if puts == nth:
                raise Interrupted()
        return real(method, path, **options)

    monkeypatch.setattr(transport, "open", open_)


def test_big_file_goes_in_parts_and_resumes(
    server: Server,
    make_client: MakeClient,
    make_proxy: MakeProxy,
    tmp_path: Path,
    small_parts: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = os.urandom(5 * small_parts + 12_345)  # 6 parts
    (tmp_path / "big.bin").write_bytes(data)
    first = make_client()
    interrupt_put(first, 3, monkeypatch)
    run = first.set_experiment_run("r")
    with pytest.raises(Interrupted):
        run.log_artifact("big.bin", tmp_path / "big.bin")
    assert len(server.object_files()) == 2  # two parts made it
    assert run.list_artifacts() == []

    recorder = make_proxy()
    again = make_client(recorder).get_run(run.id)
    info = again.log_artifact("big.bin", tmp_path / "big.bin")
    assert recorder.count(method="PUT") == 4  # only the missing parts
    assert recorder.count(method="POST", prefix="/objects/compose") == 1
    assert (info.digest, info.size) == (digest_bytes(data), len(data))
    assert again.open_artifact("big.bin").read() == data
    # The six parts stay as objects next to the whole (collecting them is for later).
    assert len(server.object_files()) == 7

    recorder.seen.clear()
    again.log_artifact("same.bin", tmp_path / "big.bin")
    assert recorder.count(method="PUT") == 0
    assert recorder.count(method="POST", prefix="/objects/compose") == 0


def nth_matching(n: int, method: str, prefix: str, action: Action) -> Plan:
    """A plan that does ``action`` to the ``n``-th request (from 1) with that method and
    path prefix, and forwards everything else."""
    count = 0

    def plan(request: Seen) -> Action:
        nonlocal count
        if request.method == method and request.path.startswith("/api/v1" + prefix):
            count += 1
            if count == n:
                return action
        return Action.FORWARD

    return plan


def test_a_dropped_part_is_sent_again_alone(
    make_client: MakeClient, make_proxy: MakeProxy, tmp_path: Path, small_parts: int
) -> None:
    data = os.urandom(4 * small_parts + 1)  # 5 parts
    (tmp_path / "big.bin").write_bytes(data)
    proxy = make_proxy(nth_matching(2, "PUT", "/objects/", Action.DROP_BEFORE))
    run = make_client(proxy).set_experiment_run("r")
    told: list[int] = []
    info = run.log_artifact("big.bin", tmp_path / "big.bin", progress=told.append)
    assert sum(told) == len(data)  # the part sent twice is counted once
    assert proxy.count(Action.DROP_BEFORE) == 1
    assert proxy.count(method="PUT") == 5 + 1  # one part twice, the others once
    assert info.digest == digest_bytes(data)
    run.download_artifact("big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data


@pytest.mark.parametrize("action", [Action.DROP_AFTER, Action.CUT_SHORT])
def test_a_broken_download_is_retried(
    make_client: MakeClient, make_proxy: MakeProxy, tmp_path: Path, action: Action
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    proxy = make_proxy(nth_matching(1, "GET", "/objects/", action))
    run = make_client(proxy).set_experiment_run("r")
    run.log_artifact("m.bin", data)
    told: list[int] = []
    assert (
        run.download_artifact("m.bin", tmp_path / "m.bin", progress=told.append).read_bytes()
        == data
    )
    assert sum(told) == len(data)  # the broken first attempt is not counted twice
    assert proxy.count(action) == 1
    if action is Action.CUT_SHORT:  # broken mid-body: the client asked the server to verify
        assert proxy.count(method="GET", prefix="/objects/") == 3  # body, verify, body again
    with run.open_artifact("m.bin") as stream:
        assert stream.read() == data


# -- hashed while sent -----------------------------------------------------------------------
@pytest.fixture
def stream_from_1mib(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(http_artifacts, "STREAM_THRESHOLD", 1024 * 1024)
    return 1024 * 1024


class Shifting(io.RawIOBase):
    """A seekable stream whose bytes differ at every read: what the client hashes is
    never what it sends."""

    def __init__(self, size: int) -> None:
        self._size, self._pos = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = {0: 0, 1: self._pos, 2: self._size}[whence] + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        buffer[:n] = os.urandom(n)
        self._pos += n
        return n


def test_mid_sized_files_are_hashed_while_sent(
    server: Server,
    make_client: MakeClient,
    make_proxy: MakeProxy,
    tmp_path: Path,
    stream_from_1mib: int,
) -> None:
    data = os.urandom(3 * stream_from_1mib + 7)
    (tmp_path / "w.bin").write_bytes(data)
    # The first POST is lost before the server sees it: sent again, stored once.
    proxy = make_proxy(nth_matching(1, "POST", "/objects", Action.DROP_BEFORE))
    run = make_client(proxy).set_experiment_run("r")
    info = run.log_artifact("w.bin", tmp_path / "w.bin")
    assert (info.digest, info.size) == (digest_bytes(data), len(data))
    assert proxy.count(method="POST", prefix="/objects") == 2
    assert proxy.count(method="HEAD") == 0  # no digest before sending, so nothing to ask
    run.log_artifact("again.bin", io.BytesIO(data))  # sent again, stored once
    assert proxy.count(method="POST", prefix="/objects") == 3
    assert server.object_files() == [server.object_path(info.digest)]
    assert run.download_artifact("w.bin", tmp_path / "back.bin").read_bytes() == data


def test_a_seekable_stream_is_read_by_both_threads_in_turn(
    client: cairn.Client, tmp_path: Path, stream_from_1mib: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_artifacts, "_CHUNK", 64 * 1024)  # many reads: many chances
    # One open file, read at offsets by the hashing thread and the sending one at once
    # (its seeks and reads release the GIL, so unguarded they would interleave).
    data = os.urandom(24 * stream_from_1mib + 5)
    (tmp_path / "s.bin").write_bytes(data)
    run = client.set_experiment_run("r")
    for _ in range(3):
        with (tmp_path / "s.bin").open("rb") as stream:
            info = run.log_artifact("s.bin", stream)
        assert (info.digest, info.size) == (digest_bytes(data), len(data))


def test_a_source_that_changes_while_sent_is_refused(
    server: Server, client: cairn.Client, stream_from_1mib: int
) -> None:
    run = client.set_experiment_run("r")
    with pytest.raises(cairn.InvalidArgument, match="changed while it was being uploaded"):
        run.log_artifact("moving.bin", io.BufferedReader(Shifting(2 * stream_from_1mib)))
    assert run.list_artifacts() == []
    # What the server received is stored under its own digest (unreferenced): no lie.
    for path in server.object_files():
        assert digest_bytes(path.read_bytes()) == path.parent.name + path.name


def test_post_object_names_the_bytes(server: Server) -> None:
    data = os.urandom(3 * 1024 * 1024 + 1)
    with httpx.Client(base_url=f"{server.url}/api/v1") as http:
        for _ in range(2):  # stored once
            answer = http.post("/objects", content=iter([data[:10], data[10:]]), headers=OCTETS)
            assert (answer.status_code, answer.json()) == (
                201,
                {"digest": digest_bytes(data), "size": len(data)},
            )
        empty = http.post("/objects", content=b"", headers=OCTETS)
        assert empty.json() == {"digest": digest_bytes(b""), "size": 0}
    assert len(server.object_files()) == 2
    assert server.temp_files() == []


# -- memory -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_big_artifact_streams_in_little_memory(tmp_path: Path) -> None:
    """300 MiB up and down, server and client in one process: its peak RSS grows little."""
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate(300 * 1024 * 1024)  # sparse: reads as zeros, costs no disk
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import cairn
        from cairn.core.settings import Settings
        sys.path.insert(0, sys.argv[3])
        from tests.servers import serve_in_thread

        def peak_kib():  # VmHWM: ru_maxrss would keep the forking parent's size
            status = open("/proc/self/status").read()
            return int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM")))

        home, big = Path(sys.argv[1]), Path(sys.argv[2])
        serving = serve_in_thread(Settings(home=str(home)))
        url = serving.__enter__()
        client = cairn.Client(settings=Settings(url=url))
        run = client.set_experiment_run("r")
        run.log_artifact("warm", b"x")  # imports and first requests before the baseline
        run.download_artifact("warm", home / "warm")
        before = peak_kib()
        info = run.log_artifact("big.bin", big)
        back = run.download_artifact("big.bin", home / "back.bin")
        assert info.size == back.stat().st_size == big.stat().st_size
        after = peak_kib()
        client.close()
        serving.__exit__(None, None, None)
        print(before, after)
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "home"), str(big), str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split()[-2:])  # KiB on Linux
    assert after - before < 200 * 1024, f"peak RSS grew by {(after - before) // 1024} MiB"


def test_a_cancelled_upload_waits_for_the_piece_being_written() -> None:
    """Cancelled mid-piece (a server shutting down), the receiver still waits for the
    worker thread to finish with the writer before the cancellation goes on."""

    async def scenario() -> list[str]:
        events: list[str] = []
        loop = asyncio.get_running_loop()

        def slow_write() -> None:
            time.sleep(0.2)
            events.append("written")

        piece = loop.run_in_executor(None, slow_write)
        waiter = asyncio.ensure_future(_outlast(piece))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        events.append("cancelled")
        return events

    assert asyncio.run(scenario()) == ["written", "cancelled"]
