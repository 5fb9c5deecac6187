"""Content-addressed object storage: one port, a local-folder and an in-memory adapter (the S3
one, `cairn.store.objects.s3`, is imported where used: it needs the s3 extra)."""

from cairn.store.objects.local import LocalObjectStore
from cairn.store.objects.memory import MemoryObjectStore
from cairn.store.objects.port import ObjectStore

__all__ = ["LocalObjectStore", "MemoryObjectStore", "ObjectStore"]
