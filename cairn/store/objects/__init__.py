"""Content-addressed object storage: one port, a local-folder and an in-memory adapter."""

from cairn.store.objects.local import LocalObjectStore
from cairn.store.objects.memory import MemoryObjectStore
from cairn.store.objects.port import ObjectStore

__all__ = ["LocalObjectStore", "MemoryObjectStore", "ObjectStore"]
