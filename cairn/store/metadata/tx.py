"""One transaction on the metadata store, split into one repository per aggregate."""

from __future__ import annotations

import threading

from sqlalchemy.engine import Connection, Engine

from cairn.store.metadata.artifacts import ArtifactRows
from cairn.store.metadata.entities import EntityRows
from cairn.store.metadata.hyperparameters import HyperparameterRows
from cairn.store.metadata.idempotency import IdempotencyRows
from cairn.store.metadata.identity import IdentityRows
from cairn.store.metadata.labels import LabelRows
from cairn.store.metadata.metrics import MetricRows
from cairn.store.metadata.search import SearchRows
from cairn.store.metadata.versioning import VersioningRows

__all__ = ["MetadataTx", "SeriesCache"]


class SeriesCache:
    """(run id, metric key) -> series id, shared by every transaction of a store.

    Series ids never change once committed, so the hot logging path skips the
    lookup query after the first batch of each key. A long-lived server sees
    series without end: past ``limit`` entries the cache starts over (a miss
    costs one query), so its memory stays bounded.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> int | None:
        return self._ids.get(key)

    def update(self, found: dict[tuple[str, str], int]) -> None:
        with self._lock:
            if len(self._ids) + len(found) > self._limit:
                self._ids = {}
            self._ids.update(found)


class MetadataTx:
    def __init__(self, conn: Connection, engine: Engine, series: SeriesCache) -> None:
        self.conn = conn
        self.entities = EntityRows(conn, engine)
        self.hyperparameters = HyperparameterRows(conn, engine)
        self.metrics = MetricRows(conn, engine, series)
        self.labels = LabelRows(conn, engine)
        self.artifacts = ArtifactRows(conn, engine)
        self.idempotency = IdempotencyRows(conn, engine)
        self.versioning = VersioningRows(conn, engine)
        self.search = SearchRows(conn)
        self.identity = IdentityRows(conn)

    def commit_caches(self) -> None:
        self.metrics.commit_cache()
