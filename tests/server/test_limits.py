"""Limits and bad input at the REST boundary, and the one error shape.

Each refusal is a 4xx in the shape {"error": {"code", "message", "details"}} whose message
names the field and the rule; nothing is half-written. The app runs in-process (ASGI) over
a real SQLite store, with small limits so that "too large" is cheap to reach.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cairn.core.digest import digest_bytes
from cairn.core.errors import (
    AlreadyExists,
    CairnError,
    Conflict,
    CorruptObject,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QueryError,
    QuotaExceeded,
    RateLimited,
    SchemaOutOfDate,
    StorageFull,
    StoreBusy,
    StoreUnavailable,
    Unauthenticated,
)
from cairn.core.settings import Settings
from cairn.server import API_PREFIX, create_app
from cairn.server.errors import STATUS
from cairn.service import TrackingService, open_service

MAX_REQUEST = 16 * 1024
MAX_ATTRIBUTE = 256
JSON_TYPE = {"content-type": "application/json"}
OCTETS = {"content-type": "application/octet-stream"}

# The wire contract: status and code of every CairnError. Changing a row breaks clients.
WIRE: dict[type[CairnError], tuple[int, str]] = {
    InvalidArgument: (400, "invalid_argument"),
    QueryError: (400, "query_error"),
    Unauthenticated: (401, "unauthenticated"),
    PermissionDenied: (403, "permission_denied"),
    NotFound: (404, "not_found"),
    AlreadyExists: (409, "already_exists"),
    Conflict: (409, "conflict"),
    RateLimited: (429, "rate_limited"),
    CorruptObject: (500, "corrupt_object"),
    SchemaOutOfDate: (503, "schema_out_of_date"),
    StoreUnavailable: (503, "store_unavailable"),
    StoreBusy: (503, "store_busy"),
    StorageFull: (507, "storage_full"),
    QuotaExceeded: (507, "quota_exceeded"),
}


@dataclass
class Api:
    """Calls the app in-process; each call returns the whole response."""

    app: FastAPI
    run_id: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            # raise_app_exceptions=False: a 500 comes back as the response a client sees.
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://[::1]") as client:
                return await client.request(method, API_PREFIX + path, **kwargs)

        return asyncio.run(send())

    def raw_json(self, method: str, path: str, text: str) -> httpx.Response:
        """JSON as written (httpx's own encoder refuses NaN)."""
        return self.call(method, path, content=text.encode(), headers=JSON_TYPE)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TrackingService]:
    settings = Settings(
        home=str(tmp_path / "home"),
        max_request_bytes=MAX_REQUEST,
        max_attribute_bytes=MAX_ATTRIBUTE,
    )
    opened = open_service(settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def api(service: TrackingService) -> Api:
    project = service.entities.set_project("p")
    experiment = service.entities.set_experiment(project.id, "e")
    run = service.entities.create_run(experiment.id, "r")
    return Api(create_app(service.settings, service), run.id)


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error body, checked for the one shape, the status and the code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert sorted(error) == ["code", "details", "message"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    assert error["code"] == code
    return error


# -- the error shape ----------------------------------------------------------------------
def _all_subclasses(root: type[CairnError]) -> set[type[CairnError]]:
    found: set[type[CairnError]] = set()
    pending = [root]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub)
            pending.append(sub)
    return found


def test_the_status_mapping_is_pinned() -> None:
    assert {cls: status for cls, (status, _) in WIRE.items()} == STATUS
    assert {cls: cls.code for cls in WIRE} == {cls: code for cls, (_, code) in WIRE.items()}
    # A new error type needs a row above (and a decision about its status).
    assert _all_subclasses(CairnError) <= set(WIRE)


@pytest.mark.parametrize("error", list(WIRE), ids=lambda cls: cls.__name__)
def test_every_cairn_error_has_the_one_shape(error: type[CairnError], api: Api) -> None:
    def fail() -> None:
        if error is InvalidArgument:
            raise InvalidArgument("thing", "must be better", limit=3)
        if error is QueryError:
            raise QueryError("expected a number at position 4", position=4, expected=["1"])
        raise error(f"{error.__name__} happened", id="x", kind="run")

    api.app.add_api_route(f"{API_PREFIX}/test-only/fail", fail)
    status, code = WIRE[error]
    found = error_of(api.call("GET", "/test-only/fail"), status, code)
    if error is QueryError:
        assert found == {
            "code": "query_error",
            "message": "query: expected a number at position 4",
            "details": {"field": "query", "position": 4, "expected": ["1"]},
        }
    elif error is InvalidArgument:
        assert found == {
            "code": "invalid_argument",
            "message": "thing: must be better",
            "details": {"field": "thing", "limit": 3},
        }
    else:
        assert found["message"] == f"{error.__name__} happened"
        assert found["details"] == {"id": "x", "kind": "run"}


def test_an_unexpected_error_is_a_500_in_the_same_shape(api: Api) -> None:
    def fail() -> None:
        raise RuntimeError("a bug, with secrets in its message")

    api.app.add_api_route(f"{API_PREFIX}/test-only/bug", fail)
    found = error_of(api.call("GET", "/test-only/bug"), 500, "internal")
    assert found == {"code": "internal", "message": "internal server error", "details": {}}


def test_details_that_json_cannot_carry_become_their_repr(api: Api) -> None:
    def fail() -> None:
        raise NotFound("no such thing", missing={1, 2}, ratio=math.nan)

    api.app.add_api_route(f"{API_PREFIX}/test-only/odd", fail)
    found = error_of(api.call("GET", "/test-only/odd"), 404, "not_found")
    assert found["details"] == {"missing": "{1, 2}", "ratio": "nan"}


def test_an_unknown_route_is_a_404_in_the_shape(api: Api) -> None:
    found = error_of(api.call("GET", "/no/such/route"), 404, "not_found")
    assert found["message"] == f"no route for GET {API_PREFIX}/no/such/route"
    error_of(api.call("GET", "/../../etc/passwd"), 404, "not_found")


def test_a_wrong_method_is_a_405_that_lists_every_allowed_one(api: Api) -> None:
    response = api.call("DELETE", "/projects")
    found = error_of(response, 405, "method_not_allowed")
    # GET and POST /projects are two routes; both are named.
    assert response.headers["allow"] == "GET, POST"
    assert found["details"] == {"method": "DELETE", "allowed": ["GET", "POST"]}
    assert "DELETE" in found["message"]
    assert "GET, POST" in found["message"]


# -- request body size ---------------------------------------------------------------------
def _chunks(total: int, size: int = 4096) -> AsyncIterator[bytes]:
    async def generate() -> AsyncIterator[bytes]:
        for start in range(0, total, size):
            yield b" " * min(size, total - start)

    return generate()


@pytest.mark.parametrize("path", ["/projects", "/metrics"])
def test_a_body_above_the_limit_is_a_413_with_a_content_length(api: Api, path: str) -> None:
    body = b'{"name": "' + b"x" * MAX_REQUEST + b'"}'
    response = api.call("POST", path, content=body, headers=JSON_TYPE)
    found = error_of(response, 413, "payload_too_large")
    assert found["details"] == {"field": "body", "limit": MAX_REQUEST}
    assert found["message"] == f"body: must be at most {MAX_REQUEST} bytes"


@pytest.mark.parametrize("path", ["/projects", "/metrics"])
def test_a_body_above_the_limit_is_a_413_when_chunked(api: Api, path: str) -> None:
    response = api.call("POST", path, content=_chunks(MAX_REQUEST + 1), headers=JSON_TYPE)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    found = error_of(response, 413, "payload_too_large")
    assert found["details"] == {"field": "body", "limit": MAX_REQUEST}


def test_a_body_at_the_limit_is_read(api: Api) -> None:
    body = json.dumps({"name": "at-the-limit"}).encode()
    padded = body[:-1] + b" " * (MAX_REQUEST - len(body)) + b"}"
    assert len(padded) == MAX_REQUEST
    assert api.call("POST", "/projects", content=padded, headers=JSON_TYPE).status_code == 200


def test_nothing_of_a_refused_body_is_written(api: Api, service: TrackingService) -> None:
    before = service.entities.list_projects()
    api.call("POST", "/projects", content=_chunks(MAX_REQUEST * 2), headers=JSON_TYPE)
    assert service.entities.list_projects() == before


# -- malformed JSON, wrong types, unknown fields --------------------------------------------
@pytest.mark.parametrize("text", ['{"name": ', "{'name': 'p'}", "", "nul\x00"])
def test_malformed_json_is_a_400(api: Api, text: str) -> None:
    found = error_of(api.raw_json("POST", "/projects", text), 400, "invalid_argument")
    assert found["details"]["field"] == "body"
    assert found["message"].startswith("body: ")


def test_malformed_json_in_a_metric_batch_is_a_400(api: Api) -> None:
    found = error_of(api.raw_json("POST", "/metrics", '{"points": ['), 400, "invalid_argument")
    assert found["details"]["field"] == "body"


def test_a_body_that_is_not_json_by_its_content_type_is_a_400(api: Api) -> None:
    response = api.call(
        "POST", "/projects", content=b'{"name": "p"}', headers={"content-type": "text/plain"}
    )
    found = error_of(response, 400, "invalid_argument")
    assert found["details"] == {"field": "content-type"}
    assert "application/json" in found["message"]
    assert "text/plain" in found["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/projects", {"name": 5}, "name"),
        ("/projects", {"name": ["p"]}, "name"),
        ("/projects", {"name": "p", "tags": "one-string"}, "tags"),
        ("/projects", {"name": "p", "tags": [1]}, "tags.0"),
        ("/projects", [{"name": "p"}], "body"),
        ("/projects", {}, "name"),
        (
            "/runs/{run}/hyperparameters",
            {"hyperparameters": {"lr": 0.1}, "overwrite": 0},
            "overwrite",
        ),
        ("/runs/{run}/hyperparameters", {"hyperparameters": {"lr": [0.1]}}, "hyperparameter 'lr'"),
        ("/runs/{run}/hyperparameters", {"hyperparameters": ["lr"]}, "hyperparameters"),
        ("/entities/{run}/tags", {"tags": [None]}, "tags.0"),
    ],
)
def test_a_wrong_type_is_a_400_naming_the_field(api: Api, path: str, body: Any, field: str) -> None:
    response = api.call("POST", path.format(run=api.run_id), json=body)
    found = error_of(response, 400, "invalid_argument")
    assert found["details"]["field"] == field
    assert found["message"].startswith(f"{field}: ")


@pytest.mark.parametrize("value", ['"5"', "true", "1.5", "-1"])
def test_a_wrong_type_in_a_metric_point_is_a_400(api: Api, value: str) -> None:
    point = f'{{"run_id": "{api.run_id}", "key": "k", "step": {value}, "timestamp": 0, "value": 1}}'
    found = error_of(
        api.raw_json("POST", "/metrics", f'{{"points": [{point}]}}'), 400, "invalid_argument"
    )
    assert "step" in found["message"]


def test_a_wrong_status_is_a_400_naming_the_values(api: Api) -> None:
    found = error_of(
        api.call("PATCH", f"/runs/{api.run_id}", json={"status": "done"}), 400, "invalid_argument"
    )
    assert found["details"]["field"] == "status"
    assert "finished" in found["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/projects", {"name": "p", "colour": "red"}, "colour"),
        ("PATCH", "/runs/{run}", {"status": "finished", "reason": "done"}, "reason"),
        ("POST", "/entities/{run}/tags", {"tags": ["t"], "tag": "t"}, "tag"),
    ],
)
def test_an_unknown_field_is_a_400_naming_it(
    api: Api, method: str, path: str, body: Any, field: str
) -> None:
    response = api.call(method, path.format(run=api.run_id), json=body)
    found = error_of(response, 400, "invalid_argument")
    assert found["details"]["field"] == field
    assert found["message"] == f"{field}: Extra inputs are not permitted"


def test_an_unknown_field_in_a_metric_point_is_named(api: Api) -> None:
    point = {"run_id": api.run_id, "key": "k", "step": 0, "timestamp": 0, "value": 1, "unit": "s"}
    found = error_of(
        api.call("POST", "/metrics", json={"points": [point]}), 400, "invalid_argument"
    )
    assert "points.0.unit" in found["message"]


def test_refused_input_writes_nothing(api: Api, service: TrackingService) -> None:
    api.call("POST", f"/entities/{api.run_id}/tags", json={"tags": ["ok", "x" * 257]})
    api.call("PATCH", f"/entities/{api.run_id}/attributes", json={"attributes": {"a": 1, "": 2}})
    assert service.labels.get_tags(api.run_id) == []
    assert service.labels.get_attributes(api.run_id) == {}


# -- oversized values --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/projects", {"name": "x" * 257}, "name"),
        ("POST", "/projects", {"name": "p", "owner": "o" * 257}, "owner"),
        ("POST", "/projects", {"name": "p", "tags": ["t"] * 1001}, "tags"),
        ("POST", "/projects", {"name": "p", "tags": ["t" * 257]}, "tags.0"),
        ("POST", "/entities/{run}/tags", {"tags": ["x" * 257]}, "tags.0"),
        ("POST", "/runs/{run}/hyperparameters", {"hyperparameters": {"k" * 257: 1}}, None),
    ],
)
def test_an_oversized_value_is_a_400(
    api: Api, method: str, path: str, body: Any, field: str | None
) -> None:
    response = api.call(method, path.format(run=api.run_id), json=body)
    found = error_of(response, 400, "invalid_argument")
    if field is not None:
        assert found["details"]["field"] == field
    assert "256" in found["message"] or "1000" in found["message"]


def test_an_attribute_above_max_attribute_bytes_is_a_400(api: Api) -> None:
    value = "v" * MAX_ATTRIBUTE
    response = api.call(
        "PATCH", f"/entities/{api.run_id}/attributes", json={"attributes": {"big": value}}
    )
    found = error_of(response, 400, "invalid_argument")
    assert "'big'" in found["message"]
    assert f"above the limit of {MAX_ATTRIBUTE} bytes" in found["message"]
    fits = {"attributes": {"big": "v" * (MAX_ATTRIBUTE - 2)}}  # 2 bytes of JSON quotes
    assert api.call("PATCH", f"/entities/{api.run_id}/attributes", json=fits).status_code == 204


def test_an_integer_hyperparameter_beyond_64_bits_is_a_400(api: Api) -> None:
    body = {"hyperparameters": {"seed": 2**64}}
    found = error_of(
        api.call("POST", f"/runs/{api.run_id}/hyperparameters", json=body), 400, "invalid_argument"
    )
    assert "64 bits" in found["message"]


# -- NaN and infinities --------------------------------------------------------------------
def test_nan_and_infinities_go_through_metrics(api: Api) -> None:
    points = ", ".join(
        f'{{"run_id": "{api.run_id}", "key": "loss", "step": {step}, "timestamp": {step}, '
        f'"value": {value}}}'
        for step, value in enumerate(["NaN", "Infinity", "-Infinity", "0.5"])
    )
    assert api.raw_json("POST", "/metrics", f'{{"points": [{points}]}}').status_code == 204
    history = api.call("GET", f"/runs/{api.run_id}/metrics/history", params={"key": "loss"})
    assert history.status_code == 200
    values = [value for _, _, value in json.loads(history.text)["points"]]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, 0.5]
    latest = json.loads(api.call("GET", f"/runs/{api.run_id}/metrics").text)
    assert latest["loss"]["value"] == 0.5


def test_nan_and_infinities_go_through_hyperparameters(api: Api) -> None:
    text = '{"hyperparameters": {"a": NaN, "b": Infinity, "c": -Infinity}}'
    assert api.raw_json("POST", f"/runs/{api.run_id}/hyperparameters", text).status_code == 204
    back = json.loads(api.call("GET", f"/runs/{api.run_id}/hyperparameters").text)
    assert math.isnan(back["a"])
    assert (back["b"], back["c"]) == (math.inf, -math.inf)


def test_nan_and_infinities_go_through_attributes(api: Api) -> None:
    text = '{"attributes": {"a": NaN, "b": [Infinity, -Infinity], "c": {"d": NaN}}}'
    assert api.raw_json("PATCH", f"/entities/{api.run_id}/attributes", text).status_code == 204
    back = json.loads(api.call("GET", f"/entities/{api.run_id}/attributes").text)
    assert math.isnan(back["a"])
    assert back["b"] == [math.inf, -math.inf]
    assert math.isnan(back["c"]["d"])


# -- ids and artifact keys ------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["not-a-uuid", "0190ABCD-0000-7000-8000-00000000BEEF", "%2e%2e"])
def test_a_malformed_id_in_the_path_is_a_400(api: Api, bad: str) -> None:
    found = error_of(api.call("GET", f"/runs/{bad}"), 400, "invalid_argument")
    assert found == {
        "code": "invalid_argument",
        "message": "run_id: must be a lowercase UUID string",
        "details": {"field": "run_id"},
    }


def test_a_malformed_id_is_refused_even_when_there_is_nothing_to_write(api: Api) -> None:
    response = api.call("POST", "/runs/not-a-uuid/hyperparameters", json={"hyperparameters": {}})
    error_of(response, 400, "invalid_argument")


@pytest.mark.parametrize(
    "key", ["../x", "/etc/passwd", "a\\b", "a/../../b", "..", "./a", "a//b", "a/", "C:/x", "a\x00b"]
)
def test_path_traversal_in_an_artifact_key_is_a_400(
    api: Api, service: TrackingService, key: str
) -> None:
    content = b"some bytes"
    digest = digest_bytes(content)
    assert api.call("PUT", f"/objects/{digest}", content=content, headers=OCTETS).status_code == 201
    body = {"key": key, "kind": "file", "digest": digest}
    found = error_of(
        api.call("POST", f"/entities/{api.run_id}/artifacts", json=body), 400, "invalid_argument"
    )
    assert found["details"]["field"] == "key"
    assert service.artifacts.list_artifacts(api.run_id) == []
    # ... and the same key is refused when reading
    found = error_of(
        api.call("GET", f"/entities/{api.run_id}/artifact-files", params={"key": key}),
        400,
        "invalid_argument",
    )
    assert found["details"]["field"] == "key"
