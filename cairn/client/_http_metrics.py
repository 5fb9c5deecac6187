"""Metric series over REST (the :class:`~cairn.service.contracts.Metrics` part of the HTTP
backend): batches go as one binary request each, histories come back binary."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from cairn.client._transport import Response, Transport, check
from cairn.client._transport import path_id as _id
from cairn.core.columns import (
    BATCH_MEDIA_TYPE,
    HISTORY_MEDIA_TYPE,
    MetricBatch,
    SeriesPoints,
    batch_from_records,
    encode_batch,
    read_history,
)
from cairn.core.model import MetricPoint, MetricRecord
from cairn.core.settings import Settings
from cairn.core.validation import check_name, check_record

__all__ = ["HttpMetrics"]

_KEYS_PER_REQUEST = 100


class HttpMetrics:
    """Metric series."""

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self._t = transport
        self.settings = settings

    def log_metric_records(
        self,
        records: Sequence[MetricRecord],
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Append points given one by one (checked here), as one batch."""
        batch = batch_from_records(check_record(r) for r in records)
        self.log_metric_batch(batch, idempotency_key=idempotency_key, validated=True)

    def log_metric_batch(
        self,
        batch: MetricBatch,
        *,
        idempotency_key: str | None = None,
        validated: bool = False,
    ) -> None:
        """One request per batch; a retry carries the same idempotency key, so the
        server applies it once however often it arrives. The server checks every point
        whether or not the caller did (``validated``)."""
        if not batch:
            return
        key = idempotency_key or secrets.token_hex(16)
        self._t.request(
            "POST",
            "/metrics",
            content=encode_batch(batch),
            headers={"content-type": BATCH_MEDIA_TYPE, "idempotency-key": key},
        )

    def get_latest_metrics(
        self, run_id: str, keys: Iterable[str] | None = None
    ) -> dict[str, MetricPoint]:
        path = f"/runs/{_id(run_id, 'run_id')}/metrics"
        if keys is None:
            found: dict[str, Any] = self._t.get(path)
        else:
            wanted = [check_name(k, "metric key") for k in keys]
            found = {}
            # In pieces: no URL outgrows what a server or a proxy takes (none for no key).
            for start in range(0, len(wanted), _KEYS_PER_REQUEST):
                found.update(self._t.get(path, key=wanted[start : start + _KEYS_PER_REQUEST]))
        return {k: MetricPoint(p["step"], p["timestamp"], p["value"]) for k, p in found.items()}

    def get_metric_history(self, run_id: str, key: str) -> SeriesPoints:
        """The binary history, read from the connection straight into its arrays: a
        long one never sits in memory twice (as the body, then as arrays)."""
        path = f"/runs/{_id(run_id, 'run_id')}/metrics/history"
        params = {"key": check_name(key, "metric key")}

        def attempt() -> SeriesPoints:
            response = self._t.open(
                "GET", path, params=params, headers={"accept": HISTORY_MEDIA_TYPE}, preload=False
            )
            done = False
            try:
                if response.status >= 400:  # a small error body
                    url = self._t.url(path, params)
                    check(Response(response.status, response.headers, response.data, url))
                size = response.headers.get("content-length")
                series = read_history(response.readinto, None if size is None else int(size))
                done = True
                return series
            finally:
                if not done:
                    response.close()  # a body left unread: the connection cannot be reused
                response.release_conn()

        return self._t.retrying(attempt)
