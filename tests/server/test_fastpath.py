"""cairn/server/fastpath.py answers create_run ahead of FastAPI: every request gets the
answer the route gives, whichever of the two answers it.

Each case is sent to two apps on two stores set up alike, one as built and one without the
fast path (the route answers everything there), and the answers are compared byte for byte,
ids aside. A spy on the fast path's service call says which requests it answered itself.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cairn.core.settings import Settings
from cairn.server import API_PREFIX, create_app
from cairn.server import fastpath as fastpath_module
from cairn.server.fastpath import FastCreateRun
from cairn.service import TrackingService, open_service

MAX_REQUEST = 16 * 1024
UNKNOWN = "0190abcd-0000-7000-8000-00000000beef"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Store:
    """One app on its own store, with the entities the cases name: {experiment}, {parent}
    (a run of the same project) and {foreign} (a run of another project)."""

    app: FastAPI
    ids: dict[str, str]

    def send(self, body: bytes | Callable[[], AsyncIterator[bytes]], path: str, ctype: str) -> str:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
                content = body if isinstance(body, bytes) else body()
                headers = {"content-type": ctype} if ctype else {}
                url = API_PREFIX + path.format(**self.ids)
                return await client.post(url, content=content, headers=headers)

        response = asyncio.run(call())
        names = {value: f"<{key}>" for key, value in self.ids.items()}
        answer = f"{response.status_code} {sorted(response.headers.multi_items())} {response.text}"
        return _UUID.sub(lambda m: names.get(m.group(), "<id>"), answer)


@contextmanager
def open_store(tmp_path: Path, fast: bool) -> Iterator[Store]:
    settings = Settings(
        home=str(tmp_path / ("fast" if fast else "route")), max_request_bytes=MAX_REQUEST
    )
    service: TrackingService = open_service(settings, clock=lambda: 1_700_000_000_000)
    try:
        project = service.entities.set_project("p")
        experiment = service.entities.set_experiment(project.id, "e")
        parent = service.entities.create_run(experiment.id, "parent")
        elsewhere = service.entities.set_experiment(service.entities.set_project("other").id, "e")
        foreign = service.entities.create_run(elsewhere.id, "foreign")
        service.entities.create_run(experiment.id, "taken")
        app = create_app(settings, service)
        if not fast:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not FastCreateRun]
        ids = {"experiment": experiment.id, "parent": parent.id, "foreign": foreign.id}
        yield Store(app, ids)
    finally:
        service.close()


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    with open_store(tmp_path, True) as fast, open_store(tmp_path, False) as route:
        yield fast, route


@pytest.fixture
def answered_fast(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The experiment ids of the requests the fast path answered itself."""
    seen: list[str] = []
    real = fastpath_module.create_or_get_run

    def spy(service: TrackingService, experiment_id: str, body: Any) -> Any:
        seen.append(experiment_id)
        return real(service, experiment_id, body)

    monkeypatch.setattr(fastpath_module, "create_or_get_run", spy)
    return seen


RUNS = "/experiments/{experiment}/runs"
JSON = "application/json"

# (body, content type, path, answered by the fast path)
CASES: dict[str, tuple[bytes, str, str, bool]] = {
    "minimal": (b'{"name": "a"}', JSON, RUNS, True),
    "everything": (
        b'{"name": "b", "parent_id": null, "description": "d\\u00e9", "owner": "ann", '
        b'"tags": ["y", "x", "y"], "get_or_create": false}',
        JSON,
        RUNS,
        True,
    ),
    "utf-8 as is": ('{"name": "caf\u00e9 \U0001f3c1"}'.encode(), JSON, RUNS, True),
    "charset": (b'{"name": "c"}', "Application/JSON; charset=utf-8", RUNS, True),
    "child": (b'{"name": "d", "parent_id": "{parent}"}', JSON, RUNS, True),
    "get existing": (b'{"name": "taken", "get_or_create": true, "tags": ["t"]}', JSON, RUNS, True),
    # Domain errors, raised by the service under the fast path.
    "taken": (b'{"name": "taken"}', JSON, RUNS, True),
    "unknown experiment": (b'{"name": "e"}', JSON, f"/experiments/{UNKNOWN}/runs", True),
    "unknown parent": (b'{"name": "f", "parent_id": "%s"}' % UNKNOWN.encode(), JSON, RUNS, True),
    "foreign parent": (b'{"name": "g", "parent_id": "{foreign}"}', JSON, RUNS, True),
    "control character": (b'{"name": "h\\u0001"}', JSON, RUNS, True),
    "not a uuid parent": (
        b'{"name": "i", "parent_id": "%s"}' % UNKNOWN.upper().encode(),
        JSON,
        RUNS,
        True,
    ),
    # Refused by the route's validation: FastAPI answers, with the body handed on.
    "bad experiment id": (b'{"name": "j"}', JSON, "/experiments/nope/runs", False),
    "upper-case experiment id": (
        b'{"name": "j"}',
        JSON,
        f"/experiments/{UNKNOWN.upper()}/runs",
        False,
    ),
    "wrong type": (b'{"name": 3}', JSON, RUNS, False),
    "extra field": (b'{"nam": "k"}', JSON, RUNS, False),
    "too long": (b'{"name": "%s"}' % (b"l" * 300), JSON, RUNS, False),
    "bool as string": (b'{"name": "m", "get_or_create": "true"}', JSON, RUNS, False),
    "not an object": (b'["n"]', JSON, RUNS, False),
    "null": (b"null", JSON, RUNS, False),
    "invalid JSON": (b'{"name": ', JSON, RUNS, False),
    "NaN": (b'{"name": NaN}', JSON, RUNS, False),
    "not UTF-8": (b'{"name": "\xff"}', JSON, RUNS, False),
    "empty": (b"", JSON, RUNS, False),
    "text/plain": (b'{"name": "o"}', "text/plain", RUNS, False),
    "no content type": (b'{"name": "p"}', "", RUNS, False),
    "+json": (b'{"name": "q"}', "application/merge-patch+json", RUNS, False),
    "trailing slash": (b'{"name": "r"}', JSON, RUNS + "/", False),
    "too large": (b'{"name": "s", "description": "%s"}' % (b"x" * MAX_REQUEST), JSON, RUNS, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_fast_path_answers_as_the_route_does(
    stores: tuple[Store, Store], answered_fast: list[str], case: str
) -> None:
    body, ctype, path, fast = CASES[case]
    body = body.replace(b"{parent}", stores[0].ids["parent"].encode())
    body = body.replace(b"{foreign}", stores[0].ids["foreign"].encode())
    route_body = body.replace(stores[0].ids["parent"].encode(), stores[1].ids["parent"].encode())
    route_body = route_body.replace(
        stores[0].ids["foreign"].encode(), stores[1].ids["foreign"].encode()
    )
    got = stores[0].send(body, path, ctype)
    assert answered_fast == ([answered_fast[0]] if fast else []), got
    answered_fast.clear()
    assert got == stores[1].send(route_body, path, ctype)
    assert answered_fast == []


def test_a_chunked_body_is_read_and_counted_against_the_limit(
    stores: tuple[Store, Store], answered_fast: list[str]
) -> None:
    def chunks(*parts: bytes) -> Callable[[], AsyncIterator[bytes]]:
        async def body() -> AsyncIterator[bytes]:
            for part in parts:
                yield part

        return body

    small = chunks(b'{"name":', b' "chunked"}')
    assert stores[0].send(small, RUNS, JSON).startswith("200 ")
    assert len(answered_fast) == 1
    big = chunks(b'{"name": "big", "description": "', b"x" * MAX_REQUEST, b'"}')
    answer = stores[0].send(big, RUNS, JSON)
    assert answer.startswith("413 ") and "payload_too_large" in answer
    assert len(answered_fast) == 1
