"""The REST API against its own OpenAPI document, with schemathesis.

Every operation gets generated requests, valid and invalid (schemathesis's examples,
coverage and fuzzing phases), and chains of calls follow the links schemathesis infers
(its stateful phase); all go in-process to the ASGI app over a real SQLite store and
object folder. The checks: no 5xx; every status code, content type and response
header documented; every response body valid against its documented schema (errors
included: one shape); invalid input refused with a 4xx and valid input not refused; 405s
that name the allowed methods.

Ids drawn at random name nothing, so the store holds a real project, experiment, run and
object, and half the well-formed ids the fuzzer draws are swapped for the real ones: the
success paths get exercised too, not only the 404s.

Bounded for the suite: a fixed number of examples per operation, derandomized (the same
cases on every run), no example database, no network (ASGI, in-process).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import Case, HookContext, Response
from schemathesis.checks import CheckFunction
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.stateful.state_machine import APIStateMachine
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    ignored_auth,
    positive_data_acceptance,
    unsupported_method,
    use_after_free,
)

from cairn.core.columns import BATCH_MEDIA_TYPE
from cairn.core.digest import digest_bytes
from cairn.core.settings import Settings
from cairn.server import API_PREFIX, create_app
from cairn.server.schemas import DIGEST_PATTERN, UUID_PATTERN
from cairn.service import open_service

MAX_EXAMPLES = 15  # per operation and phase
TEST_HOST = "testserver"  # the Host schemathesis sends to an ASGI app (Starlette's TestClient)
WORKFLOWS = 25  # stateful scenarios, of up to STEPS calls each
STEPS = 10


def _document() -> dict[str, Any]:
    """The app's OpenAPI document (building the app opens no store)."""
    return create_app(Settings(home="unused")).openapi()


# schemathesis's defaults for what counts as refusing invalid and accepting valid data
_REFUSED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]
_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 1,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {
            # A body above the server's max_request_bytes is refused with 413, whether or
            # not it is otherwise valid (the limit is a setting, not part of the schema).
            "negative_data_rejection": {"expected-statuses": [*_REFUSED, "413"]},
            "positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, "413"]},
        },
    }
)
schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)
# Metric batches in their compact binary form: the fuzzer's random bytes are what
# decode_batch must refuse with a 400 (never a 500).
schemathesis.serializer.alias(BATCH_MEDIA_TYPE, "application/octet-stream")

EXCLUDED: list[CheckFunction] = [
    # No authentication exists yet: there is nothing an unauthenticated request could skip.
    ignored_auth,
    # DELETE /runs/{id} is a soft delete: the run stays readable (marked deleted) until
    # restored, by design, so "still there after DELETE" is not a failure here.
    use_after_free,
]
# The path /objects/compose is also /objects/{digest} with digest "compose": PUT or GET
# there reach the object routes (and get a 400 for the digest), so neither a 405 nor an
# Allow of POST alone can be expected of it.
EXCLUDED_FOR = {
    # PUT /objects/{digest} takes these paths' PUT (and answers 400: not a digest), not 405.
    **{
        f"{API_PREFIX}/objects/{path}": [unsupported_method, allow_header_conformance]
        for path in ("compose", "missing", "batch", "chunked")
    },
    # Without authentication no caller is known, so a token must name its user: a rule
    # between the server's settings and the body that JSON Schema cannot state.
    f"{API_PREFIX}/tokens": [positive_data_acceptance],
    # A query is a string of the search language and a cursor is what a page handed out:
    # JSON Schema cannot say which strings parse, so a schema-valid body may get a 400
    # (a QueryError naming the position), which is right.
    **{
        f"{API_PREFIX}/search/{path}": [positive_data_acceptance]
        for path in ("runs", "runs/count", "experiments", "projects", "repositories")
    },
}

# Real ids by path parameter, filled in by the `app` fixture before any case is drawn.
REAL: dict[str, str] = {}
_WELL_FORMED = {
    "project_id": UUID_PATTERN,
    "experiment_id": UUID_PATTERN,
    "run_id": UUID_PATTERN,
    "entity_id": UUID_PATTERN,
    "digest": DIGEST_PATTERN,
}


@schema.hook
def flatmap_path_parameters(
    context: HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Half the time, a well-formed id becomes the real one of its kind. Malformed ids stay:
    they may be what makes a case invalid on purpose."""
    if not path_parameters:
        return st.just(path_parameters)
    swapped = dict(path_parameters)
    for name, value in path_parameters.items():
        pattern = _WELL_FORMED.get(name)
        if name in REAL and pattern and isinstance(value, str) and re.match(pattern, value):
            swapped[name] = REAL[name]
    return st.sampled_from([path_parameters, swapped])


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    settings = Settings(
        home=str(tmp_path_factory.mktemp("contract")),
        max_request_bytes=1 << 20,
        allowed_hosts=TEST_HOST,
    )
    service = open_service(settings)
    project = service.entities.set_project("contract")
    experiment = service.entities.set_experiment(project.id, "fuzzed")
    run = service.entities.create_run(experiment.id, "target")
    writer = service.objects.writer()
    writer.write(b"an object")
    stored = writer.commit(digest_bytes(b"an object"))
    REAL.update(
        project_id=project.id,
        experiment_id=experiment.id,
        run_id=run.id,
        entity_id=run.id,
        digest=stored.digest,
    )
    try:
        yield create_app(settings, service)
    finally:
        REAL.clear()
        service.close()


def _content_addressed_put(case: Case[Any]) -> None:
    """A PUT /objects/{digest} body must hash to the digest, which no schema can say: a
    well-formed digest becomes the body's own, so valid uploads succeed."""
    if case.method != "PUT" or case.operation.path != f"{API_PREFIX}/objects/{{digest}}":
        return
    parameters = case.path_parameters or {}
    digest = parameters.get("digest")
    body = getattr(case.body, "data", case.body)  # bytes arrive wrapped (Binary)
    if isinstance(body, bytes) and isinstance(digest, str) and re.match(DIGEST_PATTERN, digest):
        parameters["digest"] = digest_bytes(body)


# Operations whose bodies carry blobs ({kind, body}): what makes a blob valid (a requirement
# that parses, a digest the object store holds, a range whose begin is before its end)
# cannot be said in JSON Schema, so a schema-valid blob may be refused with a 400.
BLOB_BODIES = {
    f"{API_PREFIX}/repositories/{{repository_id}}/commits",
    f"{API_PREFIX}/repositories/{{repository_id}}/trees",  # base64 of canonical objects
    f"{API_PREFIX}/repositories/{{repository_id}}/merge",
    f"{API_PREFIX}/runs/{{run_id}}/capture",
    f"{API_PREFIX}/objects/batch",  # framed objects: digest, size, bytes
    f"{API_PREFIX}/objects/chunked",  # chunks that are stored and make the file's digest
}


def _excluded(case: Case[Any]) -> list[CheckFunction]:
    excluded = EXCLUDED + EXCLUDED_FOR.get(case.operation.path, [])
    if case.media_type == BATCH_MEDIA_TYPE or case.operation.path in BLOB_BODIES:
        # Any bytes are `format: binary`; the batch layout cannot be said in JSON Schema.
        excluded.append(positive_data_acceptance)
    return excluded


@schema.parametrize()
def test_api_conforms_to_its_document(case: Case[Any], app: FastAPI) -> None:
    _content_addressed_put(case)
    case.call_and_validate(app=app, excluded_checks=_excluded(case))


def test_api_workflows_conform_to_its_document(tmp_path: Path) -> None:
    """Chains of calls along the links schemathesis infers from the document: create a
    project, read it back, add an experiment to it, a run to that, and so on."""
    base: type[APIStateMachine] = schema.as_state_machine()
    homes = itertools.count()

    class Workflow(base):  # type: ignore[valid-type,misc]
        """Each scenario starts from an empty store of its own: Hypothesis replays
        scenarios, and a replay must see the same responses as the first run."""

        def setup(self) -> None:
            home = tmp_path / f"scenario-{next(homes)}"
            settings = Settings(home=str(home), max_request_bytes=1 << 20, allowed_hosts=TEST_HOST)
            self.service = open_service(settings)
            self.app = create_app(settings, self.service)

        def teardown(self) -> None:
            self.service.close()
            super().teardown()

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"app": self.app}

        def before_call(self, case: Case[Any]) -> None:
            # A digest taken from an earlier answer (POST /objects) names other bytes.
            _content_addressed_put(case)

        def validate_response(
            self,
            response: Response,
            case: Case[Any],
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=_excluded(case),
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=WORKFLOWS,
            stateful_step_count=STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
