"""Objects (content-addressed bytes, streamed both ways) and the artifacts that name them.

An upload is: ``PUT /objects/{digest}`` for each file the server lacks (``HEAD`` tells),
or ``POST /objects`` for a client that hashes while it sends (the answer names the
digest), big files as parts joined by ``POST /objects/compose``; then one
``POST /entities/{id}/artifacts`` records the key. Bodies stream in pieces to a
worker thread and are never held whole in memory; the server hashes what it receives
and stores nothing whose digest differs from the one in the URL. Bytes received for a
stored digest replace the stored copy (which heals a damaged one); a read that finds a
copy damaged moves it aside, after which ``HEAD`` answers 404 until it is uploaded again.
:func:`sweeping` removes the temp files of uploads a killed server left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, BinaryIO, Final

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response, StreamingResponse

from cairn.core.digest import parse_digest
from cairn.core.errors import CorruptObject, NotFound
from cairn.core.model import ArtifactInfo
from cairn.core.objects import ObjectWriter
from cairn.core.validation import check_artifact_key, check_entity_id
from cairn.files.artifacts import ArtifactKind
from cairn.server.deps import Service
from cairn.server.errors import error_responses
from cairn.server.limits import UploadTooLarge
from cairn.server.schemas import (
    ARTIFACT_KEY_PATTERN,
    DIGEST_PATTERN,
    UUID_PATTERN,
    ArtifactKey,
    ArtifactKeyQuery,
    DigestPath,
    EntityIdPath,
)
from cairn.service import TrackingService

__all__ = ["DIGEST_HEADER", "router", "sweeping"]

log = logging.getLogger("cairn.server")
router = APIRouter(tags=["artifacts"])

DIGEST_HEADER: Final = "x-cairn-digest"
# Bodies go to the object writer in pieces of this size, one worker-thread hop each:
# big enough that the hops cost little, small enough to stay in the CPU's cache while
# they are hashed and written (measured on 256 MiB: 1 MiB beat 4 MiB).
_PIECE: Final = 1 << 20
_READ: Final = 1 << 20
_OCTETS = "application/octet-stream"
_SWEEP_EVERY: Final = 300.0  # seconds between sweeps, at most (a shorter grace: grace / 2)

Digest64 = Annotated[str, Field(min_length=64, max_length=64, pattern=DIGEST_PATTERN)]
UploadFor = Annotated[
    str | None,
    Query(
        description="The project, experiment or run the bytes are uploaded for: with a "
        "per-project quota, its project's room is checked before a byte is written (507 "
        "`quota_exceeded`). Without it only the artifact's record checks the quota.",
        json_schema_extra={"pattern": UUID_PATTERN},
    ),
    AfterValidator(lambda value: None if value is None else check_entity_id(value, "entity")),
]
UploadKey = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=1024,
        description="The artifact key the bytes are uploaded for, with `entity`: the bytes "
        "it holds now count as room (the upload replaces them)",
        json_schema_extra={"pattern": ARTIFACT_KEY_PATTERN},
    ),
    AfterValidator(lambda value: None if value is None else check_artifact_key(value)),
]
_UPLOAD_ERRORS = error_responses(413, 507)  # larger than CAIRN_MAX_UPLOAD_BYTES; no room
_BINARY_BODY = {
    "requestBody": {
        "required": True,
        "content": {_OCTETS: {"schema": {"type": "string", "format": "binary"}}},
    }
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComposeIn(_In):
    parts: Annotated[list[Digest64], Field(min_length=1, max_length=10_000)]
    digest: Digest64


class RecordArtifactIn(_In):
    key: ArtifactKey
    kind: ArtifactKind
    digest: Digest64


class ObjectOut(BaseModel):
    digest: str
    size: int


class ArtifactFileOut(BaseModel):
    path: str
    digest: str
    size: int


class ArtifactFilesOut(BaseModel):
    kind: ArtifactKind
    entries: list[ArtifactFileOut]


# -- objects --------------------------------------------------------------------------------
@router.head(
    "/objects/{digest}",
    summary="Whether an object is stored (200 with its size as content-length, or 404)",
    response_class=Response,  # no body, so no content type
    responses=error_responses(404),
)
async def head_object(digest: DigestPath, service: Service) -> Response:
    size = await anyio.to_thread.run_sync(service.objects.size, digest)
    return Response(headers={"content-length": str(size), DIGEST_HEADER: digest})


@router.get(
    "/objects/{digest}",
    summary="Stream an object's bytes",
    description=(
        "The server hashes the bytes as it reads them; if they do not match the digest it "
        "drops the connection before the last piece, so a complete body is never corrupt. "
        "`GET /objects/{digest}/verify` then answers 500 `corrupt_object`."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {_OCTETS: {}}}, **error_responses(404)},
)
async def get_object(digest: DigestPath, service: Service) -> StreamingResponse:
    stream = await anyio.to_thread.run_sync(service.objects.open, digest)
    try:
        size = await anyio.to_thread.run_sync(service.objects.size, digest)
    except BaseException:
        stream.close()
        raise
    return StreamingResponse(
        _send_object(stream, digest),
        media_type=_OCTETS,
        headers={"content-length": str(size), DIGEST_HEADER: digest},
    )


async def _send_object(stream: BinaryIO, digest: str) -> AsyncIterator[bytes]:
    """The object in pieces, each read (and hashed) on a worker thread while the one
    before it is being sent. A new ``bytes`` per piece: nothing is reused while the
    server may still be sending it."""
    loop = asyncio.get_running_loop()
    reading = loop.run_in_executor(None, stream.read, _READ)
    try:
        while chunk := await reading:
            reading = loop.run_in_executor(None, stream.read, _READ)
            yield chunk
    except CorruptObject:
        log.error("object %s is corrupt: dropped its download", digest)
        raise
    finally:
        # Closed once no thread reads from it any more (the client may have gone).
        reading.add_done_callback(lambda _: stream.close())


@router.get(
    "/objects/{digest}/verify",
    summary="Read a whole object and check it against its digest",
    responses=error_responses(404, 500),  # 500 `corrupt_object`: the bytes do not match
)
async def verify_object(digest: DigestPath, service: Service) -> ObjectOut:
    info = await anyio.to_thread.run_sync(service.objects.verify, digest)
    return ObjectOut(digest=info.digest, size=info.size)


@router.put(
    "/objects/{digest}",
    status_code=201,
    summary="Upload an object; the server checks that its bytes hash to the digest",
    responses={
        200: {
            "description": "An object of that digest was already stored: the bytes received "
            "replaced it (so a damaged copy is healed)"
        },
        **_UPLOAD_ERRORS,
    },
    openapi_extra=_BINARY_BODY,
)
async def put_object(
    digest: DigestPath,
    request: Request,
    service: Service,
    entity: UploadFor = None,
    key: UploadKey = None,
) -> JSONResponse:
    expected = parse_digest(digest)
    bound = await _admit(request, service, entity, key)
    existed = await anyio.to_thread.run_sync(service.objects.exists, expected)
    writer = await anyio.to_thread.run_sync(service.objects.writer)  # makes a temp file
    try:
        await _receive(request, writer, bound)
        info = await anyio.to_thread.run_sync(writer.commit, expected)
    finally:
        await anyio.to_thread.run_sync(writer.abort)  # a no-op after a commit
    body = ObjectOut(digest=info.digest, size=info.size).model_dump()
    return JSONResponse(body, status_code=200 if existed else 201)


@router.post(
    "/objects",
    status_code=201,
    summary="Upload bytes; the server names them by their digest",
    description=(
        "For a client that hashes while it sends: the answer names the digest of the "
        "bytes received, for the client to compare with its own. Bytes already stored "
        "are stored once; no body is the empty object."
    ),
    responses=_UPLOAD_ERRORS,
    openapi_extra={"requestBody": {**_BINARY_BODY["requestBody"], "required": False}},
)
async def post_object(
    request: Request, service: Service, entity: UploadFor = None, key: UploadKey = None
) -> ObjectOut:
    bound = await _admit(request, service, entity, key)
    writer = await anyio.to_thread.run_sync(service.objects.writer)  # makes a temp file
    try:
        await _receive(request, writer, bound)
        info = await anyio.to_thread.run_sync(writer.commit)
    finally:
        await anyio.to_thread.run_sync(writer.abort)  # a no-op after a commit
    return ObjectOut(digest=info.digest, size=info.size)


class _Bound:
    """What an upload may bring: ``limit`` bytes (``max_upload_bytes``), and ``room`` in
    the quota of the project of ``entity``; None: no bound."""

    def __init__(
        self,
        service: TrackingService,
        limit: int | None,
        room: int | None,
        entity: str | None,
        key: str | None,
    ) -> None:
        self.service = service
        self.limit = limit
        self.room = room
        self.entity = entity
        self.key = key
        self.counts = limit is not None or room is not None

    async def check(self, received: int) -> None:
        """Refuse the upload once ``received`` bytes pass a bound, before they are written."""
        if self.limit is not None and received > self.limit:
            raise UploadTooLarge(self.limit)
        if self.room is not None and self.entity is not None and received > self.room:
            # Asked again: the error names the project and its usage (and if another
            # upload freed room meanwhile, this one goes on).
            left = await anyio.to_thread.run_sync(
                self.service.objects.room_for, self.entity, received, self.key
            )
            self.room = None if left is None else left + received


async def _admit(
    request: Request, service: TrackingService, entity: str | None, key: str | None
) -> _Bound:
    """Refuse an upload now if its declared length is more than the server takes, or than
    its project has room for; else the bounds to count its bytes against as they come
    (a chunked body declares none)."""
    length = request.headers.get("content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    limit = service.settings.max_upload_bytes
    if limit is not None and declared is not None and declared > limit:
        raise UploadTooLarge(limit, declared)
    room = None
    if entity is not None:
        incoming = declared or 0
        left = await anyio.to_thread.run_sync(service.objects.room_for, entity, incoming, key)
        room = None if left is None else left + incoming
    return _Bound(service, limit, room, entity, key)


async def _receive(request: Request, writer: ObjectWriter, bound: _Bound | None = None) -> None:
    """Hand the request body to ``writer`` in pieces of about :data:`_PIECE` bytes, each
    written on a worker thread while the next piece arrives (at most two pieces held).
    Bytes past a ``bound`` refuse the upload before they are written."""
    loop = asyncio.get_running_loop()
    writing: asyncio.Future[None] | None = None
    received = 0
    try:
        piece: list[bytes] = []
        held = 0
        async for chunk in request.stream():
            if bound is not None and bound.counts:
                received += len(chunk)
                await bound.check(received)
            piece.append(chunk)
            held += len(chunk)
            if held >= _PIECE:
                if writing is not None:
                    await writing
                writing = loop.run_in_executor(None, _write_piece, writer, piece)
                piece, held = [], 0
        if writing is not None:
            await writing
        if piece:
            writing = loop.run_in_executor(None, _write_piece, writer, piece)
            await writing
    finally:
        if writing is not None and not writing.done():
            # The body broke off while a piece is being written: the caller aborts the
            # writer next, which must wait until no thread uses it.
            await _outlast(writing)


async def _outlast(future: asyncio.Future[None]) -> None:
    """Wait until ``future`` is done, even if this task is cancelled meanwhile (the
    cancellation is raised once it is)."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


def _write_piece(writer: ObjectWriter, piece: list[bytes]) -> None:
    # The writer copies each chunk into its buffers and hashes it here; its own thread
    # writes full buffers to disk meanwhile.
    for chunk in piece:
        writer.write(chunk)


@router.post(
    "/objects/compose",
    summary="Store the concatenation of uploaded parts as one object, checked by digest",
    responses={**error_responses(404), **_UPLOAD_ERRORS},
)
async def compose_object(
    body: ComposeIn, service: Service, entity: UploadFor = None, key: UploadKey = None
) -> ObjectOut:
    limit = service.settings.max_upload_bytes
    if limit is not None or (entity is not None and service.settings.project_quota_bytes):
        size = await anyio.to_thread.run_sync(_parts_size, service, body.parts)
        if limit is not None and size > limit:
            raise UploadTooLarge(limit, size)
        if entity is not None:
            await anyio.to_thread.run_sync(service.objects.room_for, entity, size, key)
    info = await anyio.to_thread.run_sync(service.objects.compose, body.parts, body.digest)
    return ObjectOut(digest=info.digest, size=info.size)


def _parts_size(service: TrackingService, parts: list[str]) -> int:
    """The size of what composing ``parts`` makes (a missing part counts 0: compose
    itself says it is missing)."""
    total = 0
    for part in parts:
        with contextlib.suppress(NotFound):
            total += service.objects.size(part)
    return total


# -- artifacts ------------------------------------------------------------------------------
@router.post(
    "/entities/{entity_id}/artifacts",
    summary="Record uploaded objects as an artifact (a file, or a tree manifest)",
    responses=error_responses(404, 409, 507),  # 507: the project's quota has no room
)
async def record_artifact(
    entity_id: EntityIdPath, body: RecordArtifactIn, service: Service
) -> ArtifactInfo:
    return await anyio.to_thread.run_sync(
        service.artifacts.record_artifact, entity_id, body.key, body.kind, body.digest
    )


@router.get(
    "/entities/{entity_id}/artifacts",
    summary="The artifacts of an entity",
    responses=error_responses(404),
)
def list_artifacts(entity_id: EntityIdPath, service: Service) -> list[ArtifactInfo]:
    return service.artifacts.list_artifacts(entity_id)


@router.get(
    "/entities/{entity_id}/artifact-files",
    summary="What a key names: an artifact, a file in a tree or a folder of one",
    responses=error_responses(404),
)
async def artifact_files(
    entity_id: EntityIdPath, service: Service, key: ArtifactKeyQuery
) -> ArtifactFilesOut:
    found = await anyio.to_thread.run_sync(service.artifacts.resolve_artifact, entity_id, key)
    entries: list[Any] = [
        ArtifactFileOut(path=e.path, digest=e.digest, size=e.size) for e in found.entries
    ]
    return ArtifactFilesOut(kind=found.kind, entries=entries)


# -- leftovers ------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def sweeping(service: TrackingService, grace: float) -> AsyncIterator[None]:
    """While the server runs: remove the temp files of object writes abandoned ``grace``
    seconds ago (an upload cut off, a server killed mid-upload), at start-up and then
    every few minutes, on a worker thread. Start-up does not wait for the first sweep."""
    task = asyncio.create_task(_sweep_forever(service, grace), name="cairn-object-sweep")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _sweep_forever(service: TrackingService, grace: float) -> None:
    every = min(_SWEEP_EVERY, grace / 2)
    while True:
        try:
            await anyio.to_thread.run_sync(service.objects.sweep, grace)
        except Exception:  # a sweep that fails is tried again later; never the server's end
            log.exception("sweeping the object store's temp files failed")
        await asyncio.sleep(every)
