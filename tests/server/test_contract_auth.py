"""The REST API against its own OpenAPI document with authentication on, every generated
request sending an admin's token (schemathesis, as in test_contract.py; 2 examples per
operation and phase, where it has 15: the full run takes that one's time again).

With authentication on the document declares the bearer scheme and a 401 on every
operation but the health check and the login, and schemathesis's ``ignored_auth`` check
runs: each operation sent again without the token must be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import ignored_auth

from cairn.core.columns import BATCH_MEDIA_TYPE
from cairn.core.settings import Settings
from cairn.server import API_PREFIX, create_app
from cairn.service import TrackingService, open_service
from tests.server.test_contract import _ACCEPTED, _REFUSED, _content_addressed_put, _excluded

ADMIN = "contract-admin"

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 1,
        "generation": {"max-examples": 2, "deterministic": True, "database": "none"},
        "checks": {
            "negative_data_rejection": {"expected-statuses": [*_REFUSED, "413"]},
            "positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, "413"]},
        },
    }
)
schema = schemathesis.openapi.from_dict(
    create_app(Settings(home="unused", auth=True)).openapi(), config=CONFIG
)
schemathesis.serializer.alias(BATCH_MEDIA_TYPE, "application/octet-stream")

SERVICE: dict[str, TrackingService] = {}
# The Host schemathesis sends to an ASGI app, allowed where the server has an allow-list.
HOSTS: dict[str, Any] = (
    {"allowed_hosts": "testserver"} if "allowed_hosts" in Settings.__dataclass_fields__ else {}
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    settings = Settings(
        home=str(tmp_path_factory.mktemp("contract-auth")),
        max_request_bytes=1 << 20,
        auth=True,
        **HOSTS,
    )
    service = open_service(settings)
    service.auth.create_user(ADMIN, admin=True)
    SERVICE["service"] = service
    try:
        yield create_app(settings, service)
    finally:
        SERVICE.clear()
        service.close()


def _token() -> str:
    """A new admin token for each case: a case may revoke the one it sent (logout)."""
    service = SERVICE["service"]
    name = f"case-{len(service.auth.list_tokens(ADMIN))}"
    return service.auth.create_token(name, user=ADMIN).secret


def test_the_document_declares_the_bearer_scheme() -> None:
    document = create_app(Settings(home="unused", auth=True)).openapi()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for operation in item.values():
            open_to_all = path.endswith(("/health", "/auth/login"))
            assert ("security" in operation) is not open_to_all, path
            # The login answers 401 for a wrong password; the health check never does.
            assert ("401" in operation["responses"]) is not path.endswith("/health"), path
    plain = create_app(Settings(home="unused")).openapi()
    assert "securitySchemes" not in plain["components"]


@schema.parametrize()
def test_api_with_a_token_conforms_to_its_document(case: Case[Any], app: FastAPI) -> None:
    _content_addressed_put(case)
    # The ignored_auth check's probes (the request again without the token) go by the
    # schema's own transport: it must know the app.
    case.operation.schema.app = app
    # As test_contract.py excludes, but ignored_auth: here it has a scheme to check.
    excluded = [check for check in _excluded(case) if check is not ignored_auth]
    if case.operation.path == f"{API_PREFIX}/auth/logout":
        excluded.append(ignored_auth)  # its "again without the token" follows the revocation
    case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {_token()}"}, excluded_checks=excluded
    )
