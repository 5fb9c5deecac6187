"""cairn/server/fastpath.py answers a sweep's hot routes (create_run, log_hyperparameters,
end_run) ahead of FastAPI: every request gets the answer the route gives, whichever of the
two answers it.

Each case is sent to two apps on two stores set up alike, one as built and one without the
fast path (the routes answer everything there), and the answers are compared byte for byte,
ids aside; so are the runs the case may have changed, read afterwards through FastAPI. A spy
on the fast path's executor says which requests it answered itself.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cairn.core.settings import Settings
from cairn.server import API_PREFIX, create_app
from cairn.server.fastpath import FastRoutes
from cairn.service import TrackingService, open_service

MAX_REQUEST = 16 * 1024
UNKNOWN = "0190abcd-0000-7000-8000-00000000beef"
ENDED_KEY = "ended-key-0001"  # the key the "ended" run was ended with
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Body = bytes | Callable[[], AsyncIterator[bytes]]
Headers = tuple[tuple[bytes, bytes], ...]


class SpyExecutor(ThreadPoolExecutor):
    """The fast path's executor, noting the path id of every call handed to it."""

    def __init__(self, seen: list[str]) -> None:
        super().__init__(2, thread_name_prefix="test-fast-path")
        self.seen = seen

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        # The path id: the first string (the call may come wrapped in its context's run).
        self.seen.append(next(arg for arg in args if isinstance(arg, str)))
        return super().submit(fn, *args, **kwargs)


@dataclass
class Store:
    """One app on its own store, with the entities the cases name: {experiment}, {parent}
    (a run of the same project), {foreign} (a run of another project), {running},
    {tuned} (running, with lr=0.1), {ended} (finished, with ENDED_KEY) and {deleted}."""

    app: FastAPI
    ids: dict[str, str]
    answered: list[str] = field(default_factory=list)  # by the fast path: the path ids

    def fill(self, text: bytes) -> bytes:
        for name, value in self.ids.items():
            text = text.replace(b"{%s}" % name.encode(), value.encode())
        return text

    def send(
        self,
        method: str,
        path: str,
        body: Body = b"",
        ctype: str = "",
        headers: Headers = (),
    ) -> str:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://[::1]") as client:
                content = self.fill(body) if isinstance(body, bytes) else body()
                sent = [(b"content-type", ctype.encode())] if ctype else []
                sent += list(headers)
                url = API_PREFIX + self.fill(path.encode()).decode()
                return await client.request(method, url, content=content, headers=sent)

        response = asyncio.run(call())
        names = {value: f"<{key}>" for key, value in self.ids.items()}
        answer = f"{response.status_code} {sorted(response.headers.multi_items())} {response.text}"
        return _UUID.sub(lambda m: names.get(m.group(), "<id>"), answer)

    def runs_now(self) -> list[str]:
        """The runs the cases change, as FastAPI's routes read them."""
        return [
            self.send("GET", f"/runs/{{{name}}}{what}")
            for name in ("running", "tuned", "ended", "deleted")
            for what in ("", "/hyperparameters", "/metrics")
        ]


@contextmanager
def open_store(tmp_path: Path, fast: bool) -> Iterator[Store]:
    settings = Settings(
        home=str(tmp_path / ("fast" if fast else "route")), max_request_bytes=MAX_REQUEST
    )
    service: TrackingService = open_service(settings, clock=lambda: 1_700_000_000_000)
    spy = None
    try:
        entities = service.entities
        project = entities.set_project("p")
        experiment = entities.set_experiment(project.id, "e")
        elsewhere = entities.set_experiment(entities.set_project("other").id, "e")
        ids = {
            "experiment": experiment.id,
            "parent": entities.create_run(experiment.id, "parent").id,
            "foreign": entities.create_run(elsewhere.id, "foreign").id,
            "running": entities.create_run(experiment.id, "taken").id,
            "tuned": entities.create_run(experiment.id, "tuned").id,
            "ended": entities.create_run(experiment.id, "ended").id,
            "deleted": entities.create_run(experiment.id, "deleted").id,
        }
        service.labels.log_hyperparameters(ids["tuned"], {"lr": 0.1})
        entities.end_run(ids["ended"], "finished", idempotency_key=ENDED_KEY)
        entities.delete_run(ids["deleted"])
        app = create_app(settings, service)
        store = Store(app, ids)
        if fast:
            spy = SpyExecutor(store.answered)
            (ours,) = [m for m in app.user_middleware if m.cls is FastRoutes]
            ours.kwargs["executor"] = spy
        else:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not FastRoutes]
        yield store
    finally:
        service.close()
        if spy is not None:
            spy.shutdown()


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    with open_store(tmp_path, True) as fast, open_store(tmp_path, False) as route:
        yield fast, route


JSON = "application/json"
RUNS = "/experiments/{experiment}/runs"
HP = "/runs/{running}/hyperparameters"
END = "/runs/{running}"


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: bytes
    fast: bool  # answered by the fast path
    ctype: str = JSON
    headers: Headers = ()


def key(value: bytes) -> Headers:
    return ((b"idempotency-key", value),)


def post(path: str, body: bytes, fast: bool, **more: Any) -> Case:
    return Case("POST", path, body, fast, **more)


def patch(path: str, body: bytes, fast: bool, **more: Any) -> Case:
    return Case("PATCH", path, body, fast, **more)


TOO_LARGE = b"x" * MAX_REQUEST
POINT = b'{"key": "loss", "step": 0, "timestamp": 1, "value": 0.5}'

CASES: dict[str, Case] = {
    # -- create_run ----------------------------------------------------------------------
    "minimal": post(RUNS, b'{"name": "a"}', True),
    "everything": post(
        RUNS,
        b'{"name": "b", "parent_id": null, "description": "d\\u00e9", "owner": "ann", '
        b'"tags": ["y", "x", "y"], "get_or_create": false}',
        True,
    ),
    "utf-8 as is": post(RUNS, '{"name": "caf\u00e9 \U0001f3c1"}'.encode(), True),
    "charset": post(RUNS, b'{"name": "c"}', True, ctype="Application/JSON; charset=utf-8"),
    "child": post(RUNS, b'{"name": "d", "parent_id": "{parent}"}', True),
    "get existing": post(RUNS, b'{"name": "taken", "get_or_create": true, "tags": ["t"]}', True),
    # Domain errors, raised by the service under the fast path.
    "taken": post(RUNS, b'{"name": "taken"}', True),
    "unknown experiment": post(f"/experiments/{UNKNOWN}/runs", b'{"name": "e"}', True),
    "unknown parent": post(RUNS, b'{"name": "f", "parent_id": "%s"}' % UNKNOWN.encode(), True),
    "foreign parent": post(RUNS, b'{"name": "g", "parent_id": "{foreign}"}', True),
    "control character": post(RUNS, b'{"name": "h\\u0001"}', True),
    "not a uuid parent": post(
        RUNS, b'{"name": "i", "parent_id": "%s"}' % UNKNOWN.upper().encode(), True
    ),
    # Refused by the route's validation: FastAPI answers, with the body handed on.
    "bad experiment id": post("/experiments/nope/runs", b'{"name": "j"}', False),
    "upper-case experiment id": post(
        f"/experiments/{UNKNOWN.upper()}/runs", b'{"name": "j"}', False
    ),
    "wrong type": post(RUNS, b'{"name": 3}', False),
    "extra field": post(RUNS, b'{"nam": "k"}', False),
    "too long": post(RUNS, b'{"name": "%s"}' % (b"l" * 300), False),
    "bool as string": post(RUNS, b'{"name": "m", "get_or_create": "true"}', False),
    "not an object": post(RUNS, b'["n"]', False),
    "null": post(RUNS, b"null", False),
    "invalid JSON": post(RUNS, b'{"name": ', False),
    "NaN": post(RUNS, b'{"name": NaN}', False),
    "not UTF-8": post(RUNS, b'{"name": "\xff"}', False),
    "empty": post(RUNS, b"", False),
    "text/plain": post(RUNS, b'{"name": "o"}', False, ctype="text/plain"),
    "no content type": post(RUNS, b'{"name": "p"}', False, ctype=""),
    "+json": post(RUNS, b'{"name": "q"}', False, ctype="application/merge-patch+json"),
    "trailing slash": post(RUNS + "/", b'{"name": "r"}', False),
    "too large": post(RUNS, b'{"name": "s", "description": "%s"}' % TOO_LARGE, False),
    "PUT": Case("PUT", RUNS, b'{"name": "t"}', False),
    # -- log_hyperparameters -------------------------------------------------------------
    "hp minimal": post(HP, b'{"hyperparameters": {"lr": 0.01}}', True),
    "hp everything": post(
        HP,
        '{"hyperparameters": {"lr": 0.01, "depth": 3, "opt": "adam", "nesterov": true, '
        '"big": 1e20, "whole": 2.0, "caf\u00e9": "\u00e9\\u00e9 \U0001f3c1", '
        '"neg": -9223372036854775808}, "overwrite": false}'.encode(),
        True,
    ),
    "hp none": post(HP, b'{"hyperparameters": {}}', True),
    "hp charset": post(HP, b'{"hyperparameters": {"a": 1}}', True, ctype="application/json;x=y"),
    "hp same again": post(
        "/runs/{tuned}/hyperparameters", b'{"hyperparameters": {"lr": 0.1}}', True
    ),
    "hp overwrite": post(
        "/runs/{tuned}/hyperparameters",
        b'{"hyperparameters": {"lr": 0.2, "new": 1}, "overwrite": true}',
        True,
    ),
    "hp header it does not read": post(
        HP, b'{"hyperparameters": {"a": 1}}', True, headers=key(b"x" * 200)
    ),
    # Domain errors, raised by the service under the fast path.
    "hp conflict": post("/runs/{tuned}/hyperparameters", b'{"hyperparameters": {"lr": 0.2}}', True),
    "hp conflict as int": post(
        "/runs/{tuned}/hyperparameters", b'{"hyperparameters": {"lr": 1}}', True
    ),
    "hp unknown run": post(f"/runs/{UNKNOWN}/hyperparameters", b'{"hyperparameters": {}}', True),
    "hp ended run": post("/runs/{ended}/hyperparameters", b'{"hyperparameters": {"a": 1}}', True),
    "hp deleted run": post(
        "/runs/{deleted}/hyperparameters", b'{"hyperparameters": {"a": 1}}', True
    ),
    "hp NaN value": post(HP, b'{"hyperparameters": {"a": NaN, "b": -Infinity}}', True),
    "hp list value": post(HP, b'{"hyperparameters": {"a": [1]}}', True),
    "hp null value": post(HP, b'{"hyperparameters": {"a": null}}', True),
    "hp int too big": post(HP, b'{"hyperparameters": {"a": 9223372036854775808}}', True),
    "hp control character": post(HP, b'{"hyperparameters": {"a\\u0001": 1}}', True),
    "hp NUL in text": post(HP, b'{"hyperparameters": {"a": "x\\u0000"}}', True),
    # Refused by the route's validation: FastAPI answers.
    "hp bad run id": post("/runs/nope/hyperparameters", b'{"hyperparameters": {}}', False),
    "hp upper-case run id": post(
        f"/runs/{UNKNOWN.upper()}/hyperparameters", b'{"hyperparameters": {}}', False
    ),
    "hp not a mapping": post(HP, b'{"hyperparameters": [["a", 1]]}', False),
    "hp overwrite as string": post(HP, b'{"hyperparameters": {}, "overwrite": "true"}', False),
    "hp overwrite NaN": post(HP, b'{"hyperparameters": {}, "overwrite": NaN}', False),
    "hp extra field": post(HP, b'{"hyperparameters": {}, "more": 1}', False),
    "hp missing": post(HP, b"{}", False),
    "hp empty key": post(HP, b'{"hyperparameters": {"": 1}}', False),
    "hp key too long": post(HP, b'{"hyperparameters": {"%s": 1}}' % (b"k" * 300), False),
    "hp invalid JSON": post(HP, b'{"hyperparameters": {', False),
    "hp empty": post(HP, b"", False),
    "hp text/plain": post(HP, b'{"hyperparameters": {}}', False, ctype="text/plain"),
    "hp no content type": post(HP, b'{"hyperparameters": {}}', False, ctype=""),
    "hp PUT": Case("PUT", HP, b'{"hyperparameters": {}}', False),
    "hp GET with a body": Case("GET", HP, b'{"hyperparameters": {}}', False),
    "hp trailing slash": post(HP + "/", b'{"hyperparameters": {}}', False),
    "hp too large": post(HP, b'{"hyperparameters": {"a": "%s"}}' % TOO_LARGE, False),
    # -- end_run -------------------------------------------------------------------------
    "end minimal": patch(END, b'{"status": "finished"}', True),
    "end failed": patch(END, b'{"status": "failed", "points": null}', True),
    "end with points": patch(
        END,
        b'{"status": "killed", "points": [%s, {"key": "acc", "step": 3.0, '
        b'"timestamp": 2, "value": NaN}, {"key": "loss", "step": 1, "timestamp": 3, '
        b'"value": -Infinity}]}' % POINT,
        True,
    ),
    "end with no points": patch(END, b'{"status": "finished", "points": []}', True),
    "end value as int": patch(
        END,
        b'{"status": "finished", "points": [{"key": "a", "step": 0, "timestamp": 1, "value": 1}]}',
        True,
    ),
    "end with a key": patch(END, b'{"status": "finished"}', True, headers=key(b"a-key_0.9:z")),
    "end with a key of 128": patch(END, b'{"status": "finished"}', True, headers=key(b"k" * 128)),
    "end retried": patch(
        "/runs/{ended}", b'{"status": "failed"}', True, headers=key(ENDED_KEY.encode())
    ),
    "end ended again alike": patch("/runs/{ended}", b'{"status": "finished"}', True),
    # Domain errors, raised by the service under the fast path.
    "end ended otherwise": patch("/runs/{ended}", b'{"status": "failed"}', True),
    "end ended with points": patch(
        "/runs/{ended}", b'{"status": "finished", "points": [%s]}' % POINT, True
    ),
    "end deleted run": patch("/runs/{deleted}", b'{"status": "finished"}', True),
    "end unknown run": patch(f"/runs/{UNKNOWN}", b'{"status": "finished"}', True),
    "end unknown run with points": patch(
        f"/runs/{UNKNOWN}", b'{"status": "finished", "points": [%s]}' % POINT, True
    ),
    "end point control character": patch(
        END,
        b'{"status": "finished", "points": [{"key": "a\\u0001", "step": 0, '
        b'"timestamp": 1, "value": 1.0}]}',
        True,
    ),
    "end key refused by the service": patch(
        END, b'{"status": "finished"}', True, headers=key(b"bad key!")
    ),
    "end key too short": patch(END, b'{"status": "finished"}', True, headers=key(b"short")),
    "end key empty": patch(END, b'{"status": "finished"}', True, headers=key(b"")),
    "end key latin-1": patch(END, b'{"status": "finished"}', True, headers=key(b"caf\xe9-key-01")),
    # Refused by the route's validation: FastAPI answers.
    "end bad run id": patch("/runs/nope", b'{"status": "finished"}', False),
    "end upper-case run id": patch(f"/runs/{UNKNOWN.upper()}", b'{"status": "finished"}', False),
    "end running": patch(END, b'{"status": "running"}', False),
    "end status as number": patch(END, b'{"status": 1}', False),
    "end missing status": patch(END, b"{}", False),
    "end extra field": patch(END, b'{"status": "finished", "reason": "x"}', False),
    "end step as string": patch(
        END,
        b'{"status": "finished", "points": [{"key": "a", "step": "0", "timestamp": 1, '
        b'"value": 1.0}]}',
        False,
    ),
    "end step NaN": patch(
        END,
        b'{"status": "finished", "points": [{"key": "a", "step": NaN, "timestamp": 1, '
        b'"value": 1.0}]}',
        False,
    ),
    "end negative step": patch(
        END,
        b'{"status": "finished", "points": [{"key": "a", "step": -1, "timestamp": 1, '
        b'"value": 1.0}]}',
        False,
    ),
    "end value as string": patch(
        END,
        b'{"status": "finished", "points": [{"key": "a", "step": 0, "timestamp": 1, '
        b'"value": "1.0"}]}',
        False,
    ),
    "end point of another run": patch(
        END,
        b'{"status": "finished", "points": [{"run_id": "{running}", "key": "a", "step": 0, '
        b'"timestamp": 1, "value": 1.0}]}',
        False,
    ),
    "end invalid JSON": patch(END, b'{"status": "fin', False),
    "end NaN status": patch(END, b'{"status": NaN}', False),
    "end empty": patch(END, b"", False),
    "end text/plain": patch(END, b'{"status": "finished"}', False, ctype="text/plain"),
    "end no content type": patch(END, b'{"status": "finished"}', False, ctype=""),
    "end POST": post(END, b'{"status": "finished"}', False),
    "end PUT": Case("PUT", END, b'{"status": "finished"}', False),
    "end trailing slash": patch(END + "/", b'{"status": "finished"}', False),
    "end too large": patch(
        END,
        b'{"status": "finished", "points": [%s]}' % b", ".join([POINT] * (MAX_REQUEST // 50)),
        False,
    ),
    "end key too long": patch(END, b'{"status": "finished"}', False, headers=key(b"k" * 129)),
    "end two keys": patch(
        END,
        b'{"status": "finished"}',
        False,
        headers=key(b"first-key-01") + key(b"second-key-02"),
    ),
    "end bad key and bad body": patch(END, b'{"status": 1}', False, headers=key(b"k" * 129)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_fast_path_answers_as_the_route_does(stores: tuple[Store, Store], case: str) -> None:
    fast, route = stores
    c = CASES[case]
    got = fast.send(c.method, c.path, c.body, c.ctype, c.headers)
    if c.fast:
        assert len(fast.answered) == 1, got
        assert fast.answered[0] in API_PREFIX + fast.fill(c.path.encode()).decode()
    else:
        assert fast.answered == [], got
    assert got == route.send(c.method, c.path, c.body, c.ctype, c.headers)
    assert fast.runs_now() == route.runs_now()
    assert len(fast.answered) == int(c.fast)  # the reads went to FastAPI


def chunks(*parts: bytes) -> Callable[[], AsyncIterator[bytes]]:
    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    return body


def test_a_chunked_body_is_read_and_counted_against_the_limit(
    stores: tuple[Store, Store],
) -> None:
    fast = stores[0]
    assert fast.send("POST", RUNS, chunks(b'{"name":', b' "chunked"}'), JSON).startswith("200 ")
    assert len(fast.answered) == 1
    big = chunks(b'{"name": "big", "description": "', TOO_LARGE, b'"}')
    answer = fast.send("POST", RUNS, big, JSON)
    assert answer.startswith("413 ") and "payload_too_large" in answer
    assert len(fast.answered) == 1
    run = fast.ids["running"].encode()
    points = chunks(b'{"status": "finished", ', b'"points": [%s]}' % POINT)
    answer = fast.send("PATCH", END, points, JSON, key(b"chunked-key"))
    assert answer.startswith("200 ") and '"status":"finished"' in answer, answer
    assert fast.answered[1:] == [run.decode()]
