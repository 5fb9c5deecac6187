"""The tracking service: one part per aggregate, all on one context (stores, settings,
clock). It keeps the :class:`~cairn.service.contracts.Backend` contract."""

from __future__ import annotations

from cairn.core.errors import InvalidArgument
from cairn.core.settings import DIRECT_IO_CHOICES, Settings
from cairn.service.admin import open_metadata
from cairn.service.artifacts import ArtifactService
from cairn.service.auth import AuthService
from cairn.service.base import Clock, Context, system_clock
from cairn.service.charts import ChartService
from cairn.service.entities import EntityService
from cairn.service.labels import LabelService
from cairn.service.metrics import MetricService
from cairn.service.object_stores import open_objects
from cairn.service.objects import ObjectService
from cairn.service.roles import RoleService
from cairn.service.search import SearchService
from cairn.service.versioning import RepositoryService
from cairn.store.metadata import MetadataStore
from cairn.store.objects import ObjectStore

__all__ = ["TrackingService", "open_service"]


class TrackingService:
    """Projects, experiments and runs and their metadata and artifacts, one part each.

    Every write is one metadata transaction; artifact bytes are stored (once, by digest)
    before the transaction that records them. ``objects`` serves the server's object
    routes; the other parts are the :class:`~cairn.service.contracts.Backend` contract.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        objects: ObjectStore,
        settings: Settings,
        clock: Clock = system_clock,
    ) -> None:
        self.context = Context(metadata, objects, settings, clock)
        self.entities = EntityService(self.context)
        self.labels = LabelService(self.context)
        self.metrics = MetricService(self.context)
        self.artifacts = ArtifactService(self.context)
        self.repositories = RepositoryService(self.context)
        self.objects = ObjectService(self.context)
        self.search = SearchService(self.context)
        self.roles = RoleService(self.context)
        self.auth = AuthService(self.context)  # users, tokens, logins, the audit log
        self.charts = ChartService(self.context)  # the web UI's downsampled series

    @property
    def settings(self) -> Settings:
        return self.context.settings

    def close(self) -> None:
        try:
            self.auth.close()  # the audit events still queued
        finally:
            self.context.close()


def open_service(
    settings: Settings, clock: Clock = system_clock, *, server: bool = False
) -> TrackingService:
    """The embedded store: SQLite (or ``store_uri``) plus the object store that
    ``objects_uri`` names (a local folder by default, or an S3 bucket).

    ``server``: the service answers a server's requests, which turns ``direct_io="auto"``
    on (a server keeps many big objects that it writes once and rarely reads back at
    once; a laptop's embedded store often reads a model right after logging it).

    A home with no store gets a new one; a home whose database is missing or empty
    beside objects is an error, never a new store (:func:`~cairn.service.admin.check_home`).
    """
    if settings.direct_io not in DIRECT_IO_CHOICES:
        choices = ", ".join(DIRECT_IO_CHOICES)
        raise InvalidArgument("direct_io", f"must be one of {choices}, not {settings.direct_io!r}")
    direct_io = settings.direct_io == "on" or (settings.direct_io == "auto" and server)
    # The database first: its checks look at the objects folder before anything is made.
    metadata = open_metadata(settings)
    try:
        objects = open_objects(settings, direct_io=direct_io)
    except BaseException:
        metadata.close()
        raise
    return TrackingService(metadata, objects, settings, clock)
