"""The binary history form: sent as views of its arrays, read from a stream into arrays."""

from __future__ import annotations

import io
import math
from array import array

import pytest

from cairn.core.columns import (
    SeriesPoints,
    decode_history,
    encode_history,
    history_parts,
    read_history,
)
from cairn.core.errors import InvalidArgument


def points(n: int) -> SeriesPoints:
    return SeriesPoints(
        array("q", range(n)), array("q", [7] * n), array("d", [i / 3 for i in range(n)])
    )


class Trickle(io.RawIOBase):
    """A stream that hands out at most ``piece`` bytes a read, as a socket may."""

    def __init__(self, data: bytes, piece: int) -> None:
        self._data = memoryview(data)
        self._piece = piece

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._piece, len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_a_history_round_trips(n: int) -> None:
    sent = points(n)
    sent.values[0:1] = array("d", [math.nan])[: min(n, 1)]
    body = b"".join(history_parts(sent))
    assert body == encode_history(sent)
    for piece in (1, 5, 4096):
        got = read_history(Trickle(body, piece).readinto, len(body))
        assert repr(got) == repr(sent) == repr(decode_history(body))


def test_a_bad_history_is_refused() -> None:
    body = encode_history(points(3))
    for bad in (b"", b"CMH", b"XXXX" + body[4:], body[:-1], body + b"\0"):
        with pytest.raises(InvalidArgument):
            read_history(Trickle(bad, 64).readinto)
    with pytest.raises(InvalidArgument, match="exactly 3 points"):
        read_history(Trickle(body, 64).readinto, len(body) + 8)  # before any array is made


def test_chunks_append_their_packed_arrays() -> None:
    out = points(2)
    more = points(3)
    out.extend_packed(more.steps.tobytes(), more.timestamps.tobytes(), more.values.tobytes())
    assert list(out.steps) == [0, 1, 0, 1, 2]
    assert list(out.values) == [0.0, 1 / 3, 0.0, 1 / 3, 2 / 3]


def test_order_checks() -> None:
    assert points(5).is_ordered()
    tied = SeriesPoints(array("q", [1, 1, 2]), array("q", [5, 5, 0]), array("d", [1, 2, 3]))
    assert tied.is_ordered()
    late = SeriesPoints(array("q", [1, 1, 2]), array("q", [5, 4, 0]), array("d", [1, 2, 3]))
    assert not late.is_ordered()
    assert list(late.ordered().values) == [2.0, 1.0, 3.0]
