"""Metric points as columns: the in-memory batch, the stored chunk and the wire form.

A series (run, key) holds its points as three parallel arrays: steps (int64),
timestamps (int64 ms) and values (float64). Batches travel and are stored in
this form, so logging a million points costs a few array operations instead of
a million row objects, and NaN and infinities survive everywhere (JSON and SQLite
NULLs would lose them).

Binary forms are little-endian arrays:
  batch    b"CMB2" u32 header_len, header JSON {"series": [[run_id, key, n], ...]},
           then per series: n x i64 step, n x i64 timestamp, n x f64 value
  history  b"CMH1" u32 n, n x i64 step, n x i64 timestamp, n x f64 value

A history can be long (millions of points): ``history_parts`` and ``read_history`` send and
receive it without a copy of the whole body beside its arrays.
"""

from __future__ import annotations

import json
import operator
import struct
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from cairn.core.errors import InvalidArgument
from cairn.core.jsondepth import nests_deeper_than
from cairn.core.model import MetricPoint, MetricRecord

__all__ = [
    "BATCH_MEDIA_TYPE",
    "HISTORY_MEDIA_TYPE",
    "MetricBatch",
    "SeriesPoints",
    "batch_from_records",
    "concat",
    "decode_batch",
    "decode_history",
    "encode_batch",
    "encode_history",
    "history_parts",
    "pack",
    "read_history",
    "unpack",
]

BATCH_MEDIA_TYPE = "application/x-cairn-metric-batch"
HISTORY_MEDIA_TYPE = "application/x-cairn-metric-history"
_BATCH_MAGIC = b"CMB2"
_HISTORY_MAGIC = b"CMH1"
_U32 = struct.Struct("<I")
_HEADER_DEPTH = 3  # {"series": [[run_id, key, n], ...]}
_SWAP = array("H", [1]).tobytes() != b"\x01\x00"  # a big-endian machine


def pack(values: array[Any]) -> bytes:
    """Little-endian bytes of an array."""
    if _SWAP:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def unpack(typecode: str, data: bytes | memoryview) -> array[Any]:
    out: array[Any] = array(typecode)
    if len(data) % out.itemsize:
        raise InvalidArgument("body", f"holds a partial {typecode!r} array")
    out.frombytes(data)
    if _SWAP:
        out.byteswap()
    return out


@dataclass(slots=True)
class SeriesPoints:
    """The points of one series, as parallel arrays."""

    steps: array[int] = field(default_factory=lambda: array("q"))
    timestamps: array[int] = field(default_factory=lambda: array("q"))
    values: array[float] = field(default_factory=lambda: array("d"))

    def __len__(self) -> int:
        return len(self.steps)

    def append(self, step: int, timestamp: int, value: float) -> None:
        self.steps.append(step)
        self.timestamps.append(timestamp)
        self.values.append(value)

    def extend(self, other: SeriesPoints) -> None:
        self.steps.extend(other.steps)
        self.timestamps.extend(other.timestamps)
        self.values.extend(other.values)

    def extend_packed(self, steps: bytes, timestamps: bytes, values: bytes) -> None:
        """Append a stored chunk's packed arrays, without an array of its own between."""
        if _SWAP:
            self.steps.extend(unpack("q", steps))
            self.timestamps.extend(unpack("q", timestamps))
            self.values.extend(unpack("d", values))
            return
        self.steps.frombytes(steps)
        self.timestamps.frombytes(timestamps)
        self.values.frombytes(values)

    def is_ordered(self) -> bool:
        """Whether points are in (step, timestamp) order already (the usual case)."""
        steps, stamps = self.steps, self.timestamps
        # Steps usually rise strictly: compared in C, not a Python loop step per point.
        if all(map(operator.lt, steps, islice(steps, 1, None))):
            return True
        for i in range(1, len(steps)):
            if steps[i] < steps[i - 1] or (steps[i] == steps[i - 1] and stamps[i] < stamps[i - 1]):
                return False
        return True

    def ordered(self) -> SeriesPoints:
        """Sorted by (step, timestamp); equal points keep their logging order."""
        if self.is_ordered():
            return self
        order = sorted(range(len(self)), key=lambda i: (self.steps[i], self.timestamps[i]))
        return SeriesPoints(
            array("q", [self.steps[i] for i in order]),
            array("q", [self.timestamps[i] for i in order]),
            array("d", [self.values[i] for i in order]),
        )

    def latest(self) -> MetricPoint:
        """Highest step, then latest timestamp; the last logged among equals."""
        best = 0
        steps, stamps = self.steps, self.timestamps
        for i in range(1, len(steps)):
            if (steps[i], stamps[i]) >= (steps[best], stamps[best]):
                best = i
        return MetricPoint(steps[best], stamps[best], self.values[best])

    def points(self) -> list[MetricPoint]:
        """As a list of MetricPoint (a caller building a million of them does well to
        pause the garbage collector meanwhile: see the client's history read)."""
        rows = zip(self.steps, self.timestamps, self.values, strict=True)
        return list(map(MetricPoint._make, rows))


# (run id, metric key) -> points
MetricBatch = dict[tuple[str, str], SeriesPoints]


def batch_from_records(records: Iterable[MetricRecord]) -> MetricBatch:
    batch: MetricBatch = {}
    for rec in records:
        series = batch.get((rec.run_id, rec.key))
        if series is None:
            series = batch[(rec.run_id, rec.key)] = SeriesPoints()
        series.append(rec.step, rec.timestamp, rec.value)
    return batch


def encode_batch(batch: Mapping[tuple[str, str], SeriesPoints]) -> bytes:
    header = {"series": [[run_id, key, len(s)] for (run_id, key), s in batch.items()]}
    head = json.dumps(header, ensure_ascii=False).encode()
    parts = [_BATCH_MAGIC, _U32.pack(len(head)), head]
    for series in batch.values():
        parts += (pack(series.steps), pack(series.timestamps), pack(series.values))
    return b"".join(parts)


def decode_batch(data: bytes) -> MetricBatch:
    """A binary batch, checked whole: any body that is not one is ``InvalidArgument``
    (never another error: the server answers 400 whatever the bytes)."""
    view = memoryview(data)
    if len(view) < 8 or bytes(view[:4]) != _BATCH_MAGIC:
        raise InvalidArgument("body", "is not a Cairn metric batch (bad magic)")
    (head_len,) = _U32.unpack_from(view, 4)
    pos = 8 + head_len
    if pos > len(view):
        raise InvalidArgument("body", f"is shorter than its {head_len}-byte batch header")
    listed = _batch_header(view[8:pos])
    if sum(n * 24 for *_, n in listed) != len(view) - pos:
        raise InvalidArgument("body", "does not hold the points its header lists")
    batch: MetricBatch = {}
    for run_id, key, n in listed:
        if (run_id, key) in batch:
            raise InvalidArgument("body", f"lists series {run_id}/{key} twice")
        steps = unpack("q", view[pos : pos + 8 * n])
        stamps = unpack("q", view[pos + 8 * n : pos + 16 * n])
        values = unpack("d", view[pos + 16 * n : pos + 24 * n])
        batch[(run_id, key)] = SeriesPoints(steps, stamps, values)
        pos += 24 * n
    return batch


def _batch_header(head: memoryview) -> list[tuple[str, str, int]]:
    """``{"series": [[run_id, key, n], ...]}``, nothing else: three levels deep at most
    (measured before parsing: a header nesting 100,000 deep is refused, not recursed)."""
    if nests_deeper_than(head, _HEADER_DEPTH):
        raise InvalidArgument(
            "body", f"has a batch header nesting deeper than {_HEADER_DEPTH} levels"
        )
    try:
        header = json.loads(bytes(head))
    except (ValueError, RecursionError) as exc:  # RecursionError: belt and braces
        raise InvalidArgument("body", f"has a malformed batch header: {exc}") from None
    series = header.get("series") if isinstance(header, dict) else None
    if not isinstance(series, list):
        raise InvalidArgument("body", 'has a batch header without a "series" list')
    listed = []
    for item in series:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], str)
            and type(item[2]) is int
            and item[2] >= 0
        ):
            raise InvalidArgument(
                "body", "has a batch header series that is not [run_id, key, points >= 0]"
            )
        listed.append((item[0], item[1], item[2]))
    return listed


def history_parts(series: SeriesPoints) -> list[bytes | memoryview]:
    """The binary history as pieces to send one after the other: views of the arrays
    themselves (copies only on a big-endian machine)."""
    if len(series) >= 1 << 32:
        raise InvalidArgument("history", "holds more points than one response can")
    head = _HISTORY_MAGIC + _U32.pack(len(series))
    columns = (series.steps, series.timestamps, series.values)
    if _SWAP:
        return [head, *(pack(c) for c in columns)]
    return [head, *(memoryview(c).cast("B") for c in columns)]


def encode_history(series: SeriesPoints) -> bytes:
    return b"".join(history_parts(series))


def read_history(readinto: Callable[[memoryview], int], size: int | None = None) -> SeriesPoints:
    """A binary history read from a stream straight into its arrays. ``readinto`` fills
    the start of a buffer, as a file's does, and returns how many bytes (0 at the end);
    ``size``, the stream's length if known, is checked before the arrays are made."""
    head = bytearray(8)
    if _fill(readinto, memoryview(head)) < 8 or bytes(head[:4]) != _HISTORY_MAGIC:
        raise InvalidArgument("body", "is not a Cairn metric history (bad magic)")
    (n,) = _U32.unpack_from(head, 4)
    if size is not None and size != 8 + 24 * n:
        raise InvalidArgument("body", f"must hold exactly {n} points")
    series = SeriesPoints(array("q", [0]) * n, array("q", [0]) * n, array("d", [0.0]) * n)
    for column in (series.steps, series.timestamps, series.values):
        if _fill(readinto, memoryview(column).cast("B")) < 8 * n:
            raise InvalidArgument("body", f"must hold exactly {n} points")
        if _SWAP:
            column.byteswap()
    if _fill(readinto, memoryview(bytearray(1))):
        raise InvalidArgument("body", f"must hold exactly {n} points")
    return series


def _fill(readinto: Callable[[memoryview], int], buffer: memoryview) -> int:
    """Read into ``buffer`` until it is full or the stream ends; how many bytes came."""
    done = 0
    while done < len(buffer):
        got = readinto(buffer[done:])
        if not got:
            break
        done += got
    return done


def decode_history(data: bytes) -> SeriesPoints:
    view = memoryview(data)
    if len(view) < 8 or bytes(view[:4]) != _HISTORY_MAGIC:
        raise InvalidArgument("body", "is not a Cairn metric history (bad magic)")
    (n,) = _U32.unpack_from(view, 4)
    if len(view) != 8 + 24 * n:
        raise InvalidArgument("body", f"must hold exactly {n} points")
    return SeriesPoints(
        unpack("q", view[8 : 8 + 8 * n]),
        unpack("q", view[8 + 8 * n : 8 + 16 * n]),
        unpack("d", view[8 + 16 * n :]),
    )


def concat(parts: Sequence[SeriesPoints]) -> SeriesPoints:
    if len(parts) == 1:
        return parts[0]
    out = SeriesPoints()
    for part in parts:
        out.extend(part)
    return out
