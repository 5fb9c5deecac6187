"""The compact wire encoding of metric points, for the bulk paths.

JSON has no NaN or infinities and is slow for millions of numbers; these
encodings pack columns as little-endian arrays, so a batch or a history of a
million points is a few ``array.frombytes`` calls on either side.

Batch:   b"CMB1" u32 header_len, header (JSON: {"series": [[run_id, key], ...]}),
         u32 n, n x u32 series index, n x i64 step, n x i64 timestamp, n x f64 value
History: b"CMH1" u32 n, n x i64 step, n x i64 timestamp, n x f64 value
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from cairn.core.errors import InvalidArgument
from cairn.core.model import MetricPoint, MetricRecord

__all__ = [
    "BATCH_MEDIA_TYPE",
    "HISTORY_MEDIA_TYPE",
    "decode_batch",
    "decode_history",
    "encode_batch",
    "encode_history",
]

BATCH_MEDIA_TYPE = "application/x-cairn-metric-batch"
HISTORY_MEDIA_TYPE = "application/x-cairn-metric-history"
_BATCH_MAGIC = b"CMB1"
_HISTORY_MAGIC = b"CMH1"
_U32 = struct.Struct("<I")
_SWAP = sys.byteorder != "little"


def _bytes(values: array[Any]) -> bytes:
    if _SWAP:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _array(typecode: str, data: memoryview, count: int, field: str) -> array[Any]:
    out: array[Any] = array(typecode)
    width = out.itemsize * count
    if len(data) < width:
        raise InvalidArgument(field, "is truncated")
    out.frombytes(data[:width])
    if _SWAP:
        out.byteswap()
    return out


def encode_batch(records: Sequence[MetricRecord]) -> bytes:
    index: dict[tuple[str, str], int] = {}
    series: list[list[str]] = []
    positions: array[int] = array("I")
    for rec in records:
        key = (rec.run_id, rec.key)
        pos = index.get(key)
        if pos is None:
            pos = index[key] = len(series)
            series.append([rec.run_id, rec.key])
        positions.append(pos)
    header = json.dumps({"series": series}, ensure_ascii=False).encode()
    steps = array("q", [r.step for r in records])
    stamps = array("q", [r.timestamp for r in records])
    values = array("d", [r.value for r in records])
    return b"".join(
        (
            _BATCH_MAGIC,
            _U32.pack(len(header)),
            header,
            _U32.pack(len(records)),
            _bytes(positions),
            _bytes(steps),
            _bytes(stamps),
            _bytes(values),
        )
    )


def decode_batch(data: bytes) -> list[MetricRecord]:
    view = memoryview(data)
    if bytes(view[:4]) != _BATCH_MAGIC or len(view) < 8:
        raise InvalidArgument("body", "is not a Cairn metric batch (bad magic)")
    (header_len,) = _U32.unpack_from(view, 4)
    start = 8 + header_len
    try:
        header = json.loads(bytes(view[8:start]))
        series = [(str(run_id), str(key)) for run_id, key in header["series"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument("body", f"has a malformed batch header: {exc}") from None
    if len(view) < start + 4:
        raise InvalidArgument("body", "is truncated")
    (n,) = _U32.unpack_from(view, start)
    rest = view[start + 4 :]
    if len(rest) != n * (4 + 8 + 8 + 8):
        raise InvalidArgument("body", f"must hold exactly {n} points")
    positions = _array("I", rest, n, "body")
    steps = _array("q", rest[4 * n :], n, "body")
    stamps = _array("q", rest[12 * n :], n, "body")
    values = _array("d", rest[20 * n :], n, "body")
    if n and max(positions) >= len(series):
        raise InvalidArgument("body", "refers to a series its header does not list")
    return [
        MetricRecord(series[p][0], series[p][1], s, t, v)
        for p, s, t, v in zip(positions, steps, stamps, values, strict=True)
    ]


def encode_history(points: Sequence[MetricPoint]) -> bytes:
    steps, stamps, values = zip(*points, strict=True) if points else ((), (), ())
    return b"".join(
        (
            _HISTORY_MAGIC,
            _U32.pack(len(points)),
            _bytes(array("q", steps)),
            _bytes(array("q", stamps)),
            _bytes(array("d", values)),
        )
    )


def decode_history(data: bytes) -> list[MetricPoint]:
    view = memoryview(data)
    if bytes(view[:4]) != _HISTORY_MAGIC or len(view) < 8:
        raise InvalidArgument("body", "is not a Cairn metric history (bad magic)")
    (n,) = _U32.unpack_from(view, 4)
    rest = view[8:]
    if len(rest) != n * 24:
        raise InvalidArgument("body", f"must hold exactly {n} points")
    steps = _array("q", rest, n, "body")
    stamps = _array("q", rest[8 * n :], n, "body")
    values = _array("d", rest[16 * n :], n, "body")
    return list(map(MetricPoint._make, zip(steps, stamps, values, strict=True)))
