"""Big files as chunks: a client that split a file by content (the server's own chunking,
which ``GET /objects/chunked/settings`` tells) asks which chunks the server lacks
(``POST /objects/missing``), sends only those (``POST /objects/batch``), then records
the file as the list of its chunks (``POST /objects/chunked``). A file logged again
with one megabyte changed sends about that megabyte, not the whole file.

The list is read by hand, bounded first (the ``/objects`` paths are exempt from the
server's general body limit): at most :data:`~cairn.service.chunks.MAX_CHUNKS` chunks.
"""

from __future__ import annotations

from typing import Annotated, Final

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from cairn.server.deps import Service
from cairn.server.errors import error_responses
from cairn.server.limits import UploadTooLarge
from cairn.server.routes.artifacts import UploadFor, UploadKey
from cairn.server.routes.objects_batch import _body, _json_body, _parse
from cairn.server.schemas import DIGEST_PATTERN, DigestPath
from cairn.service import TrackingService
from cairn.service.chunks import MAX_CHUNKS, ChunkService

__all__ = ["router"]

router = APIRouter(tags=["artifacts"])

Digest64 = Annotated[str, Field(min_length=64, max_length=64, pattern=DIGEST_PATTERN)]
Size = Annotated[int, Field(ge=0, le=1 << 62)]
ChunkSize = Annotated[int, Field(ge=1, le=1 << 62)]
# Each chunk is ["<64 hex>", size]: ~90 bytes of JSON at most.
_BODY_BYTES: Final = MAX_CHUNKS * 96 + 4096


class ChunkingOut(BaseModel):
    chunk_size: int = Field(
        description="The average chunk size of the server's store; 0: it keeps files whole"
    )
    threshold: int = Field(description="Files from this size are chunked (0: none)")


class ChunkedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digest: Digest64
    size: Size
    chunks: Annotated[list[tuple[Digest64, ChunkSize]], Field(min_length=1, max_length=MAX_CHUNKS)]


class ChunkedOut(BaseModel):
    digest: str
    size: int


# [digest, size]: a list of two, not a tuple (whose schema in a response, `prefixItems`,
# the contract test's validator reads in the older form and refuses).
ChunkPair = Annotated[list[str | int], Field(min_length=2, max_length=2)]


class RecipeOut(BaseModel):
    digest: str
    size: int
    chunks: list[ChunkPair] | None = Field(
        description="The object's chunks (digest, size) in order; null: it is stored whole"
    )


def _chunks(service: TrackingService) -> ChunkService:
    return ChunkService(service.context)


@router.get(
    "/objects/chunked/settings",
    summary="How the server's store chunks big files (for a client to chunk alike)",
)
async def chunk_settings(service: Service) -> ChunkingOut:
    found = _chunks(service).chunking()  # no I/O: the store's own settings
    return ChunkingOut(chunk_size=found.chunk_size, threshold=found.threshold)


@router.post(
    "/objects/chunked",
    status_code=201,
    summary="Record a big file as the chunks it is made of, all uploaded already",
    description=(
        'Body `{"digest", "size", "chunks": [[digest, size], ...]}`, at most '
        f"{MAX_CHUNKS:,} chunks, each stored already (`POST /objects/missing` tells "
        "which the server lacks, `POST /objects/batch` sends them). The server checks "
        "that the chunks, joined, hash to `digest` before it records anything: 404 "
        "naming the first chunk not stored, 400 if the sizes or the bytes do not match, "
        "409 if its store keeps files whole (upload the file itself then)."
    ),
    openapi_extra=_json_body(ChunkedIn),
    responses=error_responses(404, 409, 413, 507),
)
async def record_chunked(
    request: Request, service: Service, entity: UploadFor = None, key: UploadKey = None
) -> ChunkedOut:
    body = _parse(ChunkedIn, await _body(request, _BODY_BYTES))
    info = await anyio.to_thread.run_sync(_record, service, body, entity, key)
    return ChunkedOut(digest=info[0], size=info[1])


def _record(
    service: TrackingService, body: ChunkedIn, entity: str | None, key: str | None
) -> tuple[str, int]:
    limit = service.settings.max_upload_bytes  # chunks are no way around it
    if limit is not None and body.size > limit:
        raise UploadTooLarge(limit, body.size)
    if entity is not None:  # the project's quota, before anything is recorded (507)
        service.objects.room_for(entity, body.size, key)
    info = _chunks(service).record(body.digest, body.size, body.chunks)
    return info.digest, info.size


@router.get(
    "/objects/{digest}/recipe",
    summary="The chunks a stored object is made of (null if it is stored whole)",
    responses=error_responses(404),
)
async def object_recipe(digest: DigestPath, service: Service) -> RecipeOut:
    chunks = await anyio.to_thread.run_sync(_chunks(service).recipe, digest)
    if chunks is None:
        size = await anyio.to_thread.run_sync(service.objects.size, digest)
        return RecipeOut(digest=digest, size=size, chunks=None)
    listed: list[list[str | int]] = [[str(d), n] for d, n in chunks]
    return RecipeOut(digest=digest, size=sum(n for _, n in chunks), chunks=listed)
