"""The server's perimeter (issue 14), probed as a web page or a rebound name would probe it:
a real server on 127.0.0.1 (uvicorn in a thread), requests with forged headers.

A forged Host is refused; a write from another site (its Origin, or what a browser says in
Sec-Fetch-Site) is refused and writes nothing; a write must say JSON, octets or the metric
batch type, even with no body; the client itself still works; CORS headers appear only for
the origins a setting lists.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import cairn
from cairn.core.digest import digest_bytes
from cairn.core.errors import InvalidArgument
from cairn.core.settings import Settings, settings_from
from cairn.server.perimeter import _host_name, allowed_hosts
from tests.servers import serve_in_thread

API = "/api/v1"
JSON = {"content-type": "application/json"}
OCTETS = {"content-type": "application/octet-stream"}
EVIL = "http://evil.example"


@dataclass
class Server:
    url: str
    home: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.url + API, timeout=30) as http:  # a loaded CI machine
            return http.request(method, path, **kwargs)

    def object_files(self) -> list[Path]:
        root = self.home / "objects" / "objects"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    with serve_in_thread(Settings(home=str(home))) as url:
        yield Server(url, home)


@pytest.fixture
def run_id(server: Server) -> str:
    project = server.call("POST", "/projects", json={"name": "p"}).json()
    experiment = server.call("POST", f"/projects/{project['id']}/experiments", json={"name": "e"})
    run = server.call("POST", f"/experiments/{experiment.json()['id']}/runs", json={})
    assert run.status_code == 200, run.text
    return str(run.json()["id"])


def refused(response: httpx.Response, status: int, field: str) -> str:
    """The one error shape, naming the field; the message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field
    assert "access-control-allow-origin" not in response.headers
    return str(error["message"])


# -- Host ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:5000", "localhost.attacker.example", "x:y"]
)
def test_a_forged_host_is_refused(server: Server, host: str) -> None:
    message = refused(server.call("GET", "/health", headers={"host": host}), 400, "host")
    assert "CAIRN_ALLOWED_HOSTS" in message
    assert refused(server.call("POST", "/projects", json={"name": "p"}, headers={"host": host}),
                   400, "host")  # fmt: skip
    assert server.call("GET", "/projects").json() == []  # nothing was made


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]", "LocalHost"])
def test_loopback_names_are_answered_on_any_port(server: Server, name: str) -> None:
    for host in (f"{name}:{server.port}", name, f"{name}:8443"):
        assert server.call("GET", "/health", headers={"host": host}).status_code == 200


def test_a_request_without_host_is_refused(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b'"field":"host"' in answer


def test_the_setting_extends_the_allowed_hosts(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "h"), allowed_hosts="cairn.example.com,*.lab.example")
    with serve_in_thread(settings) as url, httpx.Client(base_url=url + API) as http:
        for host in ("cairn.example.com", "CAIRN.example.com:443", "gpu1.lab.example", "localhost"):
            assert http.get("/health", headers={"host": host}).status_code == 200, host
        for host in ("lab.example", "evil.example", "cairn.example.com.evil.example"):
            assert http.get("/health", headers={"host": host}).status_code == 400, host


def test_the_allowed_hosts_default_to_the_bound_address_and_loopback() -> None:
    assert allowed_hosts(Settings()) == ["localhost", "127.0.0.1", "::1"]
    assert allowed_hosts(Settings(host="10.1.2.3")) == ["localhost", "127.0.0.1", "::1", "10.1.2.3"]
    # Bound to every address, the names clients use come from the setting alone.
    assert allowed_hosts(Settings(host="0.0.0.0")) == ["localhost", "127.0.0.1", "::1"]
    wide = Settings(host="::", allowed_hosts="gpu-box,[fe80::1]")
    assert allowed_hosts(wide) == ["localhost", "127.0.0.1", "::1", "gpu-box", "fe80::1"]


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("localhost", "localhost"),
        ("localhost:5000", "localhost"),
        ("[::1]:5000", "::1"),
        ("[::1]", "::1"),
        ("a.b:", None),
        ("a.b:x", None),
        ("[::1", None),
        ("[::1]x", None),
        (":5000", None),
        ("a:1234567", None),
    ],
)
def test_host_headers_are_parsed_strictly(value: str, name: str | None) -> None:
    assert _host_name(value) == name


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CAIRN_ALLOWED_HOSTS", "http://cairn.example.com"),
        ("CAIRN_ALLOWED_HOSTS", "cairn.example.com:5000"),
        ("CAIRN_ALLOWED_HOSTS", "*evil"),
        ("CAIRN_CORS_ORIGINS", "*"),
        ("CAIRN_CORS_ORIGINS", "https://nb.example/path"),
        ("CAIRN_CORS_ORIGINS", "nb.example"),
    ],
)
def test_malformed_host_and_origin_settings_are_refused(variable: str, value: str) -> None:
    with pytest.raises(InvalidArgument, match=variable):
        settings_from({variable: value})


# -- cross-site writes -------------------------------------------------------------------------
def test_a_cross_site_simple_upload_is_refused_and_writes_nothing(server: Server) -> None:
    """The issue's probe: a web page's `fetch` of text/plain to POST /objects."""
    body = b"fill the disk" * 1000
    headers = {"content-type": "text/plain", "origin": EVIL}
    refused(server.call("POST", "/objects", content=body, headers=headers), 403, "origin")
    # The same without an Origin (an older browser, a form): its type is refused.
    message = refused(
        server.call("POST", "/objects", content=body, headers={"content-type": "text/plain"}),
        400,
        "content-type",
    )
    assert "application/octet-stream" in message
    for kind in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        refused(server.call("POST", "/objects", content=body, headers={"content-type": kind}),
                400, "content-type")  # fmt: skip
    assert server.call("HEAD", f"/objects/{digest_bytes(body)}").status_code == 404
    assert server.object_files() == []


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_write_from_another_origin_is_refused_whatever_its_type(
    server: Server, run_id: str, method: str
) -> None:
    path = {
        "POST": f"/runs/{run_id}/hyperparameters",
        "PUT": f"/entities/{run_id}/description",
        "PATCH": f"/runs/{run_id}",
        "DELETE": f"/runs/{run_id}",
    }[method]
    body = {
        "POST": {"hyperparameters": {"lr": 1}},
        "PUT": {"description": "defaced"},
        "PATCH": {"status": "failed"},
        "DELETE": None,
    }[method]
    for origin in (EVIL, "null", f"http://localhost:{server.port + 1}", "https://127.0.0.1"):
        response = server.call(method, path, json=body, headers={"origin": origin})
        refused(response, 403, "origin")
    run = server.call("GET", f"/runs/{run_id}").json()
    assert (run["status"], run["deleted_at"], run["description"]) == ("running", None, "")
    assert server.call("GET", f"/runs/{run_id}/hyperparameters").json() == {}


def test_a_browser_saying_cross_site_is_refused_without_an_origin(
    server: Server, run_id: str
) -> None:
    path = f"/runs/{run_id}/hyperparameters"
    for site in ("cross-site", "same-site"):
        response = server.call(
            "POST", path, json={"hyperparameters": {"a": 1}}, headers={"sec-fetch-site": site}
        )
        assert site in refused(response, 403, "sec-fetch-site")
    for site in ("same-origin", "none"):
        response = server.call(
            "POST", path, json={"hyperparameters": {site: 1}}, headers={"sec-fetch-site": site}
        )
        assert response.status_code == 204, response.text


def test_a_create_run_from_another_site_is_refused_before_the_fast_path(
    server: Server, run_id: str
) -> None:
    experiment = server.call("GET", f"/runs/{run_id}").json()["experiment_id"]
    response = server.call(
        "POST", f"/experiments/{experiment}/runs", json={"name": "x"}, headers={"origin": EVIL}
    )
    refused(response, 403, "origin")
    assert server.call("GET", f"/experiments/{experiment}/runs").json()[0]["name"] != "x"


def test_the_servers_own_origin_may_write(server: Server, run_id: str) -> None:
    for origin in (server.url, f"http://localhost:{server.port}"):
        host = origin.removeprefix("http://")
        response = server.call(
            "POST",
            f"/runs/{run_id}/hyperparameters",
            json={"hyperparameters": {host: 1}},
            headers={"origin": origin, "host": host, "sec-fetch-site": "same-origin"},
        )
        assert response.status_code == 204, response.text


def test_reads_from_another_origin_are_answered_without_cors_headers(server: Server) -> None:
    """A page elsewhere may send a GET (it always could), but without CORS headers its
    browser will not let it read the answer."""
    response = server.call("GET", "/projects", headers={"origin": EVIL})
    assert response.status_code == 200
    assert not any(name.startswith("access-control-") for name in response.headers)


# -- content types on writes ---------------------------------------------------------------------
def test_a_bodiless_post_must_say_json(server: Server, run_id: str) -> None:
    """POST /runs/{id}/restore takes no body: a form could send it, so it must say JSON."""
    assert server.call("DELETE", f"/runs/{run_id}").status_code == 200
    message = refused(server.call("POST", f"/runs/{run_id}/restore"), 400, "content-type")
    assert "no content-type header" in message
    assert server.call("GET", f"/runs/{run_id}").json()["deleted_at"] is not None
    assert server.call("POST", f"/runs/{run_id}/restore", headers=JSON).status_code == 200
    assert server.call("GET", f"/runs/{run_id}").json()["deleted_at"] is None


@pytest.mark.parametrize(
    "kind", ["application/json; charset=utf-8", "Application/JSON", "application/json;x=1"]
)
def test_write_types_are_matched_without_parameters_or_case(server: Server, kind: str) -> None:
    response = server.call(
        "POST", "/projects", content=b'{"name": "p"}', headers={"content-type": kind}
    )
    assert (
        response.status_code != 400
        or response.json()["error"]["details"]["field"] != "content-type"
    )


def test_the_client_writes_through_the_perimeter(server: Server) -> None:
    """Every kind of write the client makes, bodiless POSTs included, is accepted."""
    client = cairn.Client(server.url)
    try:
        project = client.set_project("p")
        client.set_experiment("e", project=project)
        with client.start_run("r") as run:
            run.log_hyperparameters({"lr": 0.1})
            run.log_metric("loss", 0.5, step=1)
            run.log_artifact("model.bin", b"weights")
            run.set_description("described")
        run.delete()
        run.undelete()  # POST /runs/{id}/restore, no body
        client.resume_run(run.id).end()  # POST /runs/{id}/resume, no body
        project.delete()
        project.undelete()
        fetched = client.get_run(run.id)
        assert (fetched.info.deleted_at, fetched.status.value) == (None, "finished")
        assert fetched.get_metric_history("loss")[0].value == 0.5
        assert fetched.list_artifacts()[0].size == len(b"weights")
    finally:
        client.close()


# -- CORS ------------------------------------------------------------------------------------------
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type",
}


def test_no_cors_headers_by_default(server: Server) -> None:
    response = server.call("OPTIONS", "/projects", headers={"origin": EVIL, **PREFLIGHT})
    assert response.status_code in (400, 405)
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_listed_origins_get_cors_headers_and_may_write(tmp_path: Path) -> None:
    allowed = "https://notebooks.example.com"
    settings = Settings(home=str(tmp_path / "h"), cors_origins=allowed)
    with serve_in_thread(settings) as url, httpx.Client(base_url=url + API) as http:
        preflight = http.options("/projects", headers={"origin": allowed, **PREFLIGHT})
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == allowed
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in preflight.headers
        headers = {"origin": allowed, "sec-fetch-site": "cross-site"}
        made = http.post("/projects", json={"name": "from-a-notebook"}, headers=headers)
        assert made.status_code == 200, made.text
        assert made.headers["access-control-allow-origin"] == allowed
        other = http.post("/projects", json={"name": "evil"}, headers={"origin": EVIL})
        assert other.status_code == 403
        assert "access-control-allow-origin" not in other.headers
        names = [p["name"] for p in http.get("/projects").json()]
        assert names == ["from-a-notebook"]


def test_a_wildcard_bind_without_allowed_hosts_says_so_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cairn.server"):
        with serve_in_thread(Settings(home=str(tmp_path / "a"), host="0.0.0.0")):
            pass
        said = [r.getMessage() for r in caplog.records if r.name == "cairn.server"]
        assert any("CAIRN_ALLOWED_HOSTS" in m for m in said), said
        caplog.clear()
        with serve_in_thread(Settings(home=str(tmp_path / "b"), host="0.0.0.0", allowed_hosts="x")):
            pass
        assert not [r for r in caplog.records if "CAIRN_ALLOWED_HOSTS" in r.getMessage()]
