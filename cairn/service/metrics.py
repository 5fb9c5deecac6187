"""Metric series: batched appends and reads of latest values and histories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cairn.core.columns import MetricBatch, SeriesPoints, batch_from_records
from cairn.core.identity import Role
from cairn.core.model import MetricPoint, MetricRecord
from cairn.core.validation import check_batch, check_idempotency_key, check_name, check_record
from cairn.service.base import Context, ServicePart
from cairn.store.metadata.tx import MetadataTx

__all__ = ["IDEMPOTENCY_WINDOW_MS", "MetricService"]

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000


class MetricService(ServicePart):
    """Metric series: batched appends, latest values and histories."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._claims = 0

    def log_metric_records(
        self,
        records: Sequence[MetricRecord],
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Append points given one by one (checked here), in one transaction."""
        self.log_metric_batch(
            batch_from_records(check_record(r) for r in records),
            idempotency_key=idempotency_key,
        )

    def log_metric_batch(
        self,
        batch: MetricBatch,
        *,
        idempotency_key: str | None = None,
        validated: bool = False,
    ) -> None:
        """Append points, all in one transaction. ``validated`` skips the checks the
        caller already ran (the in-process batcher). A batch sent again with the same
        ``idempotency_key`` is applied once."""
        if not validated:
            check_batch(batch)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        if not any(len(points) for points in batch.values()):
            return
        if self.access.restricted() is not None:
            for run_id in sorted({run_id for run_id, _ in batch}):
                self._allow(run_id, Role.WRITER, "run")
        with self.metadata.write() as tx:
            if idempotency_key is not None:
                now = self.clock()
                if not tx.idempotency.claim(idempotency_key, now):
                    return  # applied before: a retry after a lost response
                self._forget_old_keys(tx, now)
            # The runs must be running: one statement checks it and records their heartbeat.
            self._require_recording(tx, {run_id for run_id, _ in batch}, self.clock())
            tx.metrics.append(batch)

    def _forget_old_keys(self, tx: MetadataTx, now: int) -> None:
        # Retries come within minutes; a day of keys is plenty, swept now and then.
        self._claims += 1
        if self._claims % 1000 == 1:
            tx.idempotency.forget_before(now - IDEMPOTENCY_WINDOW_MS)

    def get_latest_metrics(
        self, run_id: str, keys: Iterable[str] | None = None
    ) -> dict[str, MetricPoint]:
        """Latest point per key: highest step, then latest timestamp."""
        wanted = None if keys is None else [check_name(k, "metric key") for k in keys]
        self._allow(run_id, Role.READER, "run")
        with self.metadata.read() as tx:
            self._require_run(tx, run_id)
            return tx.metrics.latest(run_id, wanted)

    def get_metric_history(self, run_id: str, key: str) -> SeriesPoints:
        """Every point of one series, in (step, timestamp) order."""
        check_name(key, "metric key")
        self._allow(run_id, Role.READER, "run")
        with self.metadata.read() as tx:
            self._require_run(tx, run_id)
            return tx.metrics.history(run_id, key)
