"""The tracking service: one object with every tracking use case."""

from __future__ import annotations

from pathlib import Path

from cairn.core.settings import Settings
from cairn.service.admin import store_url
from cairn.service.artifacts import ArtifactOps
from cairn.service.base import Clock, system_clock
from cairn.service.entities import EntityOps
from cairn.service.labels import LabelOps
from cairn.service.metrics import MetricOps
from cairn.store.metadata import MetadataStore
from cairn.store.objects import LocalObjectStore

__all__ = ["TrackingService", "open_service"]


class TrackingService(EntityOps, LabelOps, MetricOps, ArtifactOps):
    """Projects, experiments, runs and their metadata and artifacts.

    Every write is one metadata transaction; artifact bytes are stored (once,
    by digest) before the transaction that records them.
    """


def open_service(settings: Settings, clock: Clock = system_clock) -> TrackingService:
    """The embedded store: SQLite (or ``store_uri``) plus a local object folder."""
    url = store_url(settings)
    objects = LocalObjectStore(settings.objects_uri or Path(settings.home) / "objects")
    metadata = MetadataStore(url, busy_timeout=settings.sqlite_busy_timeout)
    return TrackingService(metadata, objects, settings, clock)
