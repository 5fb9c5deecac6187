"""HTTP transport for the client: retries with backoff, and errors mapped back to
the CairnError types the server raised."""

from __future__ import annotations

import json as _json
import random
import time
from collections.abc import Mapping
from typing import Any

import httpx

from cairn.core.errors import CairnError, SchemaOutOfDate, StoreUnavailable, error_from_wire

__all__ = ["Transport"]

# Worth another try: the server may be restarting, or a proxy dropped us.
_RETRY_STATUS = {502, 503, 504}
_RETRY_ERRORS = (httpx.TransportError,)


class Transport:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        retry_timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_timeout = retry_timeout
        self.http = httpx.Client(
            base_url=f"{self.base_url}/api/v1",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            headers={"user-agent": "cairn-client"},
        )

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send, retrying transport failures and 502/503/504 with jittered exponential
        backoff until ``retry_timeout`` seconds have passed (plus at most one attempt's
        own ``request_timeout``). Every Cairn request is safe to repeat (idempotent by
        design or by idempotency key)."""
        if json is not None:
            # Python's JSON, NaN and infinities included (the server reads them back);
            # httpx's own encoder refuses them.
            content = _json.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {**(headers or {}), "content-type": "application/json"}
        deadline = time.monotonic() + self.retry_timeout
        delay = 0.05
        while True:
            try:
                response = self.http.request(
                    method, path, params=params, content=content, headers=headers
                )
            except _RETRY_ERRORS as exc:
                failure: Exception = exc
            else:
                if response.status_code < 400:
                    return response
                failure = decode_error(response)
                if response.status_code not in _RETRY_STATUS or isinstance(
                    failure, SchemaOutOfDate
                ):
                    raise failure
            left = deadline - time.monotonic()
            if left <= 0:
                if isinstance(failure, CairnError):
                    raise failure
                raise StoreUnavailable(
                    f"cannot reach the Cairn server at {self.base_url}: {failure}",
                    url=self.base_url,
                ) from failure
            # Jittered, so many clients retrying at once do not arrive in step.
            time.sleep(min(delay * (0.5 + random.random()), left))
            delay = min(delay * 2, 2.0)

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: Any = None) -> Any:
        response = self.request("POST", path, json=body)
        return None if response.status_code == 204 else response.json()


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def decode_error(response: httpx.Response) -> CairnError:
    error = _json_or_empty(response).get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        details = error.get("details")
        return error_from_wire(
            error["code"],
            str(error.get("message", "")),
            details if isinstance(details, dict) else {},
        )
    return CairnError(
        f"HTTP {response.status_code} from {response.request.url}: {response.text[:200]}",
        status=response.status_code,
    )
