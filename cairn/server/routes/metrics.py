"""Metric batches in (JSON or the compact binary form) and histories out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from cairn.core.columns import (
    BATCH_MEDIA_TYPE,
    HISTORY_MEDIA_TYPE,
    SeriesPoints,
    decode_batch,
    encode_history,
    history_parts,
)
from cairn.core.downsample import MAX_POINTS, MIN_POINTS
from cairn.core.errors import InvalidArgument
from cairn.core.model import MetricRecord
from cairn.server.deps import JSON, Service
from cairn.server.errors import error_responses
from cairn.server.schemas import (
    NAME_PATTERN,
    IdempotencyKeyHeader,
    KeysQuery,
    MetricsIn,
    RunIdPath,
)
from cairn.service import TrackingService

router = APIRouter(tags=["metrics"])
MISSING = error_responses(404)  # the run does not exist
# A binary history bigger than this goes out in pieces of it, straight from its arrays.
_PIECE = 1 << 20

_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/MetricsIn"}},
            BATCH_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/metrics",
    status_code=204,
    summary="Append a batch of metric points, once per idempotency key",
    openapi_extra=_BATCH_BODY,
    responses=error_responses(404, 409),  # a run that is missing or deleted
)
async def log_metrics(
    request: Request, service: Service, idempotency_key: IdempotencyKeyHeader = None
) -> None:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    body = await request.body()
    # Decoding a big batch and the transaction both run on a worker thread: the event
    # loop never waits on the database (or on a CPU-bound decode).
    await run_in_threadpool(_log_body, service, kind, body, idempotency_key)


def _log_body(
    service: TrackingService, kind: str, body: bytes, idempotency_key: str | None
) -> None:
    if kind == BATCH_MEDIA_TYPE:
        service.metrics.log_metric_batch(decode_batch(body), idempotency_key=idempotency_key)
    elif kind == "application/json":
        try:
            parsed = MetricsIn.model_validate_json(body)
        except ValueError as exc:
            raise InvalidArgument("body", f"is not a valid metric batch: {_first(exc)}") from None
        records = [
            MetricRecord(p.run_id, p.key, p.step, p.timestamp, p.value) for p in parsed.points
        ]
        service.metrics.log_metric_records(records, idempotency_key=idempotency_key)
    else:
        raise InvalidArgument(
            "content-type", f"must be application/json or {BATCH_MEDIA_TYPE}, got {kind!r}"
        )


def _first(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            where = ".".join(str(p) for p in found[0].get("loc", ()))
            return f"{where}: {found[0].get('msg')}"
    return str(exc)


@router.get(
    "/runs/{run_id}/metrics",
    response_class=JSON,
    summary="Latest point of each key",
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **MISSING},
)
def latest_metrics(run_id: RunIdPath, service: Service, key: KeysQuery = None) -> Any:
    latest = service.metrics.get_latest_metrics(run_id, key)
    return JSON({k: p._asdict() for k, p in latest.items()})


@router.get(
    "/runs/{run_id}/metrics/history",
    summary="Every point of one metric, in step order",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                HISTORY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            }
        },
        **MISSING,
    },
    response_class=JSON,
)
def metric_history(
    request: Request,
    run_id: RunIdPath,
    key: Annotated[
        str, Query(min_length=1, max_length=256, json_schema_extra={"pattern": NAME_PATTERN})
    ],
    service: Service,
) -> Response:
    series = service.metrics.get_metric_history(run_id, key)
    if HISTORY_MEDIA_TYPE not in request.headers.get("accept", ""):
        return JSON({"points": [list(p) for p in series.points()]})
    size = 8 + 24 * len(series)
    if size <= _PIECE:
        return Response(encode_history(series), media_type=HISTORY_MEDIA_TYPE)
    # A long history is sent from its arrays, not copied into one body first.
    return StreamingResponse(
        _pieces(series), media_type=HISTORY_MEDIA_TYPE, headers={"content-length": str(size)}
    )


@router.get(
    "/runs/{run_id}/metrics/chart",
    response_class=JSON,
    summary="One metric downsampled for a chart: min and max per bucket, NaN/inf kept",
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **MISSING},
)
def metric_chart(
    run_id: RunIdPath,
    key: Annotated[
        str, Query(min_length=1, max_length=256, json_schema_extra={"pattern": NAME_PATTERN})
    ],
    service: Service,
    points: Annotated[int, Query(ge=MIN_POINTS, le=MAX_POINTS)] = 2000,
    x: Literal["step", "time"] = "step",
) -> Any:
    # A plain def: the read and the downsampling run on a worker thread.
    return JSON(service.charts.metric_chart(run_id, key, points, x).to_json())


async def _pieces(series: SeriesPoints) -> AsyncIterator[bytes | memoryview]:
    for part in history_parts(series):
        for start in range(0, len(part), _PIECE):
            yield part[start : start + _PIECE]
