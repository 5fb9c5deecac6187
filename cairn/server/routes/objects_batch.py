"""Many small objects per request: which of these does the server lack, store these,
send me these. A folder of 10,000 small files goes up as one question and a few framed
bodies, and comes down as a few, instead of a request (or two) per file.

Bodies of these routes are held whole in memory, so each is bounded here (the
``/objects`` paths are exempt from the server's general body limit, for streamed
uploads): :data:`~cairn.core.frames.MAX_BATCH_BYTES` and
:data:`~cairn.core.frames.MAX_BATCH_OBJECTS` for a framed batch, :data:`MAX_DIGESTS`
digests for a question. Every object of an upload is hashed before any is stored: one
that does not hash to the digest it is sent as refuses the whole batch (400), and
nothing of it is stored.
"""

from __future__ import annotations

from typing import Annotated, Final, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from cairn.core import frames
from cairn.core.digest import Digest, digest_bytes, parse_digest
from cairn.core.errors import CairnError, InvalidArgument
from cairn.server.deps import Service
from cairn.server.errors import error_responses
from cairn.server.limits import BodyTooLarge, UploadTooLarge
from cairn.server.routes.artifacts import UploadFor, UploadKey
from cairn.server.schemas import DIGEST_PATTERN
from cairn.service import TrackingService

__all__ = ["MAX_DIGESTS", "router"]

router = APIRouter(tags=["artifacts"])

MAX_DIGESTS: Final = 100_000  # per question: ~6.6 MB of JSON
_QUESTION_BYTES: Final = MAX_DIGESTS * 70 + 1024
_OCTETS: Final = "application/octet-stream"

Digest64 = Annotated[str, Field(min_length=64, max_length=64, pattern=DIGEST_PATTERN)]


class DigestsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digests: Annotated[list[Digest64], Field(max_length=MAX_DIGESTS)]


_M = TypeVar("_M", bound=BaseModel)


def _json_body(model: type[BaseModel]) -> dict[str, object]:
    """The documented body of a route that reads its JSON by hand (bounded first)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class MissingOut(BaseModel):
    missing: list[str]


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digests: Annotated[list[Digest64], Field(max_length=frames.MAX_BATCH_OBJECTS)]


class BatchOut(BaseModel):
    count: int = Field(description="Objects in the batch")
    stored: int = Field(description="Of which the server lacked before (the others were kept)")
    bytes: int = Field(description="Bytes in the batch's objects")


async def _body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    parts: list[bytes] = []
    held = 0
    async for chunk in request.stream():
        held += len(chunk)
        if held > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)


def _parse(model: type[_M], body: bytes) -> _M:
    """A JSON body read by hand (bounded first), refused as any bad body is (400)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise InvalidArgument(where, error["msg"]) from None


@router.post(
    "/objects/missing",
    summary="Which of these objects the server lacks (one question for many)",
    description=(
        f'Body `{{"digests": [...]}}`, at most {MAX_DIGESTS:,} digests. The answer lists '
        "those not stored, each once, in the order asked."
    ),
    openapi_extra=_json_body(DigestsIn),
    responses=error_responses(413),
)
async def missing_objects(request: Request, service: Service) -> MissingOut:
    body = await _body(request, _QUESTION_BYTES)
    return await anyio.to_thread.run_sync(_missing, service, body)


def _missing(service: TrackingService, body: bytes) -> MissingOut:
    # Parsed here too, off the event loop: 100,000 digests are milliseconds of CPU.
    lacking = service.objects.missing(_parse(DigestsIn, body).digests)
    return MissingOut(missing=list(lacking))


@router.post(
    "/objects/batch",
    status_code=201,
    summary="Upload many small objects in one framed body, each checked against its digest",
    description=(
        "Body (`application/octet-stream`): for each object, its digest (32 raw bytes), its "
        "size (8 bytes, unsigned big-endian) and its bytes. At most "
        f"{frames.MAX_BATCH_OBJECTS:,} objects and {frames.MAX_BATCH_BYTES:,} bytes (413 "
        "above). Every object is hashed before any is stored: a body cut short, or an "
        "object that does not hash to its digest, is a 400 and nothing of the batch is "
        "stored. The objects are made durable together before the answer."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {_OCTETS: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses=error_responses(413, 507),
)
async def put_batch(
    request: Request, service: Service, entity: UploadFor = None, key: UploadKey = None
) -> BatchOut:
    body = await _body(request, frames.MAX_BATCH_BYTES + 40 * frames.MAX_BATCH_OBJECTS)
    return await anyio.to_thread.run_sync(_store, service, body, entity, key)


def _store(
    service: TrackingService, body: bytes, entity: str | None = None, key: str | None = None
) -> BatchOut:
    items = frames.decode(body)
    total = 0
    limit = service.settings.max_upload_bytes  # a batch is no way around it
    for index, (digest, data) in enumerate(items):
        if limit is not None and len(data) > limit:
            raise UploadTooLarge(limit, len(data))
        actual = digest_bytes(data)
        if actual != digest:
            raise InvalidArgument(
                "body",
                f"object {index} is sent as {digest} but its bytes hash to {actual}: "
                "nothing of the batch was stored",
                index=index,
                expected=digest,
                actual=actual,
            )
        total += len(data)
    if total > frames.MAX_BATCH_BYTES:
        raise BodyTooLarge(frames.MAX_BATCH_BYTES)
    lacking = set(service.objects.missing([digest for digest, _ in items]))
    send = {digest: bytes(data) for digest, data in items if digest in lacking}
    if entity is not None:  # the project's quota, before a byte is written (507)
        service.objects.room_for(entity, sum(map(len, send.values())), key)
    stored = service.objects.put_many(list(send.values()))
    if [info.digest for info in stored] != list(send):
        raise CairnError("the object store hashed a batch otherwise than the server did")
    return BatchOut(count=len(items), stored=len(send), bytes=total)


@router.post(
    "/objects/batch/read",
    summary="Download many small objects in one framed body, each verified as it is read",
    description=(
        f'Body `{{"digests": [...]}}`, at most {frames.MAX_BATCH_OBJECTS:,}, whose objects '
        f"total at most {frames.MAX_BATCH_BYTES:,} bytes (400 above: ask for fewer). The "
        "answer frames each object as `POST /objects/batch` does, in the order asked, "
        "each once; the client checks each against its digest. An object that is not "
        "stored is a 404 naming it; one whose stored bytes are corrupt a 500 "
        "`corrupt_object` (it is quarantined), before any byte is sent."
    ),
    response_class=Response,
    openapi_extra=_json_body(ReadIn),
    responses={200: {"content": {_OCTETS: {}}}, **error_responses(404, 413)},
)
async def read_batch(request: Request, service: Service) -> Response:
    framed = await anyio.to_thread.run_sync(_read, service, await _body(request, _QUESTION_BYTES))
    return Response(framed, media_type=_OCTETS)


def _read(service: TrackingService, body: bytes) -> bytes:
    asked = _parse(ReadIn, body).digests
    digests = list(dict.fromkeys(parse_digest(d, "digests") for d in asked))
    items: list[tuple[Digest, bytes]] = []
    total = 0
    for digest in digests:
        # open() first: it tells a quarantined object (corrupt) from an absent one.
        with service.objects.open(digest) as stream:
            data = stream.read(frames.MAX_BATCH_BYTES - total + 1)
            if total + len(data) > frames.MAX_BATCH_BYTES:
                raise InvalidArgument(
                    "digests",
                    f"name more bytes of objects than a batch holds "
                    f"({frames.MAX_BATCH_BYTES}): ask for fewer at a time",
                )
            stream.read()  # to its end, which verifies it (a no-op once it is whole)
        items.append((digest, data))
        total += len(data)
    return frames.encode(items)
