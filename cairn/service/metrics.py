"""Metric series: batched appends and reads of latest values and histories."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from cairn.core.columns import MetricBatch, SeriesPoints, batch_from_records
from cairn.core.errors import Conflict, InvalidArgument, NotFound
from cairn.core.model import MetricPoint, MetricRecord
from cairn.core.validation import (
    check_entity_id,
    check_metric_value,
    check_name,
    check_step,
    check_timestamp,
)
from cairn.service.base import ServiceBase
from cairn.store.metadata.tx import MetadataTx

__all__ = [
    "IDEMPOTENCY_WINDOW_MS",
    "MetricOps",
    "check_batch",
    "check_idempotency_key",
    "check_record",
]

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000
_KEY = re.compile(r"[A-Za-z0-9_.:-]{8,128}")


def check_idempotency_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidArgument(
            "idempotency_key", "must be 8 to 128 characters of letters, digits, '_.:-'"
        )
    return key


def check_record(record: MetricRecord) -> MetricRecord:
    """The full rule set for one point (the client's batcher runs a cached subset)."""
    if not isinstance(record, MetricRecord):
        raise InvalidArgument("metrics", "must be MetricRecord values")
    check_entity_id(record.run_id, "run_id")
    check_name(record.key, "metric key")
    value = check_metric_value(record.value, f"metric {record.key!r}")
    step = check_step(record.step)
    timestamp = check_timestamp(record.timestamp)
    if value is record.value and step is record.step and timestamp is record.timestamp:
        return record
    return MetricRecord(record.run_id, record.key, step, timestamp, value)


def check_batch(batch: Mapping[tuple[str, str], SeriesPoints]) -> None:
    """The rules for a batch from outside the process (the server's input)."""
    for (run_id, key), points in batch.items():
        check_entity_id(run_id, "run_id")
        check_name(key, "metric key")
        n = len(points.steps)
        if len(points.timestamps) != n or len(points.values) != n:
            raise InvalidArgument(f"metric {key!r}", "steps, timestamps and values must align")
        if n and min(points.steps) < 0:
            raise InvalidArgument("step", "must be between 0 and 2**63-1")
        if n and min(points.timestamps) < 0:
            raise InvalidArgument("timestamp", "must be between 0 and 2**63-1")


class MetricOps(ServiceBase):
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
        batch: Mapping[tuple[str, str], SeriesPoints],
        *,
        validated: bool = False,
        idempotency_key: str | None = None,
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
        with self.metadata.write() as tx:
            if idempotency_key is not None:
                now = self.clock()
                if not tx.idempotency.claim(idempotency_key, now):
                    return  # applied before: a retry after a lost response
                self._forget_old_keys(tx, now)
            run_ids = {run_id for run_id, _ in batch}
            live = tx.entities.live_run_ids(run_ids)
            if live != run_ids:
                bad = sorted(run_ids - live)[0]
                if tx.entities.run(bad) is not None:
                    raise Conflict(f"run {bad} is deleted; restore it before logging", id=bad)
                raise NotFound(f"no run with id {bad}", kind="run", id=bad)
            tx.metrics.append(batch)

    _claims = 0

    def _forget_old_keys(self, tx: MetadataTx, now: int) -> None:
        # Retries come within minutes; a day of keys is plenty, swept now and then.
        self._claims += 1
        if self._claims % 1000 == 1:
            tx.idempotency.forget_before(now - IDEMPOTENCY_WINDOW_MS)

    def log_metric_batch_validated(self, batch: MetricBatch) -> None:
        """For the in-process batcher, which already checked each point."""
        self.log_metric_batch(batch, validated=True)

    def get_latest_metrics(
        self, run_id: str, keys: Iterable[str] | None = None
    ) -> dict[str, MetricPoint]:
        """Latest point per key: highest step, then latest timestamp."""
        wanted = None if keys is None else [check_name(k, "metric key") for k in keys]
        with self.metadata.read() as tx:
            self._require_run(tx, run_id)
            return tx.metrics.latest(run_id, wanted)

    def get_metric_history(self, run_id: str, key: str) -> SeriesPoints:
        """Every point of one series, in (step, timestamp) order."""
        check_name(key, "metric key")
        with self.metadata.read() as tx:
            self._require_run(tx, run_id)
            return tx.metrics.history(run_id, key)
