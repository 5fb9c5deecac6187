"""Which object store a service gets: the ``objects_uri`` setting's scheme chooses."""

from __future__ import annotations

from cairn.core.errors import InvalidArgument, StoreUnavailable
from cairn.core.settings import Settings
from cairn.service.admin import objects_folder
from cairn.store.objects import LocalObjectStore, ObjectStore
from cairn.store.objects.chunked import ChunkedStore
from cairn.store.objects.port import RecipeStore

__all__ = ["open_objects"]


def open_objects(settings: Settings, *, direct_io: bool = False) -> ObjectStore:
    """``s3://bucket/prefix``: an S3 bucket (``s3_endpoint_url``, ``s3_region``;
    credentials from the standard AWS variables and files); a path or ``file://``: a
    local folder (``direct_io`` applies to it); unset: ``$CAIRN_HOME/objects``. Objects
    of ``chunk_min_file`` bytes or more are stored in chunks of ``chunk_size`` (unless 0)."""
    store = _adapter(settings, direct_io)
    if not settings.chunk_size:
        return store
    return ChunkedStore(store, chunk_size=settings.chunk_size, min_file=settings.chunk_min_file)


def _adapter(settings: Settings, direct_io: bool) -> RecipeStore:
    uri = settings.objects_uri
    scheme = uri.partition("://")[0].lower() if uri and "://" in uri else ""
    if scheme == "s3":
        # Imported here: obstore loads only for a store that uses it.
        try:
            from cairn.store.objects.s3 import S3ObjectStore, parse_s3_uri
        except ModuleNotFoundError as exc:
            raise StoreUnavailable(
                f"objects_uri {uri!r} needs the s3 extra ({exc.name} is missing): "
                "pip install 'cairn[s3]'",
                missing=exc.name,
            ) from None

        bucket, prefix = parse_s3_uri(uri or "")
        store = S3ObjectStore(
            bucket, prefix, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region
        )
        store.check()  # a missing bucket or refused credentials: an error now, not later
        return store
    if scheme == "file":
        return LocalObjectStore((uri or "")[len("file://") :], direct_io=direct_io)
    if scheme:
        raise InvalidArgument(
            "objects_uri",
            f"{uri!r}: the scheme {scheme!r} is not one Cairn stores objects in "
            "(a folder, file:///folder or s3://bucket/prefix)",
        )
    return LocalObjectStore(objects_folder(settings), direct_io=direct_io)
