"""Every decoder is bounded: the binary metric batch (its header nesting 100,000 deep was
an uncaught RecursionError, a 500 and a reset connection), JSON bodies (64 levels at most,
measured before a parser recurses) and query strings give 400 (413 for size) in the error
shape. Hypothesis fuzzes the batch decoder (random bytes, mutated valid batches): nothing
but InvalidArgument comes out, and through a real server nothing but a 2xx or a 4xx."""

from __future__ import annotations

import json
import socket
import struct
from array import array
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cairn
from cairn.core.columns import BATCH_MEDIA_TYPE, SeriesPoints, decode_batch, encode_batch
from cairn.core.jsondepth import MAX_JSON_DEPTH, nests_deeper_than
from cairn.core.settings import Settings
from tests.servers import serve_in_thread

DEEP = 100_000


def batch_body(header: bytes, tail: bytes = b"") -> bytes:
    return b"CMB2" + struct.pack("<I", len(header)) + header + tail


def valid_batch(run_id: str = "r", n: int = 2) -> bytes:
    series = SeriesPoints(array("q", range(n)), array("q", range(n)), array("d", [0.5] * n))
    return encode_batch({(run_id, "loss"): series, (run_id, "acc"): series})


# -- the decoder itself -------------------------------------------------------------------------
def test_a_header_nesting_100000_deep_is_an_invalid_argument() -> None:
    with pytest.raises(cairn.InvalidArgument, match="deeper than 3 levels"):
        decode_batch(batch_body(b"[" * DEEP + b"]" * DEEP))
    with pytest.raises(cairn.InvalidArgument, match="deeper than 3 levels"):
        decode_batch(batch_body(b'{"series": ' + b"[" * DEEP))  # never closed


@pytest.mark.parametrize(
    "header",
    [
        b"{}",
        b"[]",
        b'"series"',
        b'{"series": {}}',
        b'{"series": ["abc"]}',  # a string of three characters is not a series
        b'{"series": [["r", "k", true]]}',
        b'{"series": [["r", "k", -1]]}',
        b'{"series": [["r", "k", 1.5]]}',
        b'{"series": [[1, "k", 0]]}',
        b'{"series": [["r", "k", 0, 0]]}',
        b'{"series": [["r", "k", 99999999999999999999999]]}',
        b"\xff\xfe",
    ],
)
def test_a_header_of_another_shape_is_an_invalid_argument(header: bytes) -> None:
    with pytest.raises(cairn.InvalidArgument):
        decode_batch(batch_body(header))


def test_a_header_longer_than_the_body_is_an_invalid_argument() -> None:
    body = bytearray(valid_batch())
    body[4:8] = struct.pack("<I", 0xFFFFFFFF)
    with pytest.raises(cairn.InvalidArgument, match="shorter than"):
        decode_batch(bytes(body))


@st.composite
def mutated_batches(draw: st.DrawFn) -> bytes:
    """A valid batch, then a few byte flips, cuts and insertions."""
    body = bytearray(valid_batch(draw(st.text(max_size=8)), draw(st.integers(0, 4))))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and where < len(body):
            body[where] = draw(st.integers(0, 255))
        elif action == "cut":
            del body[where : where + draw(st.integers(1, 16))]
        else:
            body[where:where] = draw(st.binary(min_size=1, max_size=16))
    return bytes(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=20,
)


@st.composite
def odd_headers(draw: st.DrawFn) -> bytes:
    """A well-formed batch whose header is any JSON (maybe with points after it)."""
    header = json.dumps(draw(json_values)).encode()
    return batch_body(header, draw(st.binary(max_size=48)))


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=256) | mutated_batches() | odd_headers())
def test_fuzzed_batches_raise_nothing_but_invalid_argument(body: bytes) -> None:
    try:
        decoded = decode_batch(body)
    except cairn.InvalidArgument:
        return
    for (run_id, key), series in decoded.items():  # what decodes is well-formed
        assert isinstance(run_id, str) and isinstance(key, str)
        assert len(series.steps) == len(series.timestamps) == len(series.values)


# -- the depth measure against a parser's own count -----------------------------------------
def parser_depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((parser_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((parser_depth(v) for v in value.values()), default=0)
    return 0


deep_values = st.recursive(
    st.none() | st.text(alphabet='[]{}"\\ab', max_size=6) | st.integers(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text('[]{}"\\k'), inner),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(deep_values, st.integers(0, 12))
def test_the_depth_measure_agrees_with_the_parser(value: object, limit: int) -> None:
    text = json.dumps(value).encode()
    assert nests_deeper_than(text, limit) == (parser_depth(json.loads(text)) > limit)


# -- through a real server ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server on loopback and a running run on it: (base URL, run id)."""
    home: Path = tmp_path_factory.mktemp("decoders") / "home"
    with (
        serve_in_thread(Settings(home=str(home))) as url,
        cairn.Client(settings=Settings(url=url, retry_timeout=5.0, capture="none")) as client,
    ):
        client.set_project("decoders")
        client.set_experiment("fuzz")
        yield url, client.start_run("r").id


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error, dict)
    return error


def test_a_deep_batch_header_is_a_400_through_the_server(server: tuple[str, str]) -> None:
    url, _ = server
    body = batch_body(b"[" * DEEP + b"]" * DEEP)
    response = httpx.post(
        f"{url}/api/v1/metrics", content=body, headers={"content-type": BATCH_MEDIA_TYPE}
    )
    error = assert_error_shape(response, 400)
    assert "deeper than 3 levels" in str(error["message"])
    assert httpx.get(f"{url}/api/v1/health").status_code == 200  # the server serves on


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/metrics", b'{"points": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
        ("/api/v1/projects", b'{"name": "x", "deep": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
        ("/api/v1/projects", b'{"name": ' + b"{" * DEEP),  # never closed
        ("/api/v1/entities/{run}/attributes", None),  # 65 levels: stored once, now refused
    ],
)
def test_a_deep_json_body_is_a_400_before_it_is_parsed(
    server: tuple[str, str], path: str, body: bytes | None
) -> None:
    url, run_id = server
    method = "POST"
    if body is None:
        method = "PATCH"
        depth = MAX_JSON_DEPTH
        body = b'{"attributes": {"a": ' + b"[" * depth + b"]" * depth + b"}}"
    response = httpx.request(
        method,
        url + path.format(run=run_id),
        content=body,
        headers={"content-type": "application/json"},
    )
    error = assert_error_shape(response, 400)
    assert error["details"] == {"field": "body", "limit": MAX_JSON_DEPTH}


def test_json_within_the_depth_limit_is_taken(server: tuple[str, str]) -> None:
    url, run_id = server
    depth = MAX_JSON_DEPTH - 2  # the body's own object and the attributes' own
    value = json.loads("[" * depth + "]" * depth)
    response = httpx.patch(
        f"{url}/api/v1/entities/{run_id}/attributes", json={"attributes": {"nested": value}}
    )
    assert response.status_code == 204, response.text


def test_a_body_past_the_size_limit_is_a_413(tmp_path: Path) -> None:
    with serve_in_thread(Settings(home=str(tmp_path), max_request_bytes=1000)) as url:
        body = batch_body(b"[" * 2000)
        response = httpx.post(
            f"{url}/api/v1/metrics", content=body, headers={"content-type": BATCH_MEDIA_TYPE}
        )
        assert_error_shape(response, 413)


def raw_get(url: str, target: bytes) -> bytes:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_query_strings_are_bounded(server: tuple[str, str]) -> None:
    url, run_id = server
    many = httpx.get(f"{url}/api/v1/runs/{run_id}/metrics", params={"key": ["a"] * 1001})
    assert_error_shape(many, 400)  # a list query holds 1000 values at most
    long = httpx.get(f"{url}/api/v1/runs/{run_id}/metrics", params={"key": "a" * 300})
    assert_error_shape(long, 400)  # a key is 256 characters at most
    # A URL of 64 KiB or more is refused by the HTTP parser itself, before the app.
    huge = raw_get(url, f"/api/v1/runs/{run_id}/metrics?key=".encode() + b"a" * 70_000)
    assert huge.startswith(b"HTTP/1.1 400 ")


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=256) | mutated_batches() | odd_headers())
def test_fuzzed_batches_never_get_a_5xx_from_the_server(
    server: tuple[str, str], body: bytes
) -> None:
    url, run_id = server
    body = body.replace(b'"r"', json.dumps(run_id).encode())  # sometimes a real run
    response = httpx.post(
        f"{url}/api/v1/metrics", content=body, headers={"content-type": BATCH_MEDIA_TYPE}
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error_shape(response, response.status_code)
