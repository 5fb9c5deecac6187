"""The sparkline's pure parts: resampling a series and drawing it."""

from __future__ import annotations

import math

import pytest

from cairn.cli._sparkline import ASCII, BLOCKS, WIDTH, finite_range, resample, sparkline

NAN, INF = math.nan, math.inf


def test_a_short_series_is_kept_as_it_is() -> None:
    assert resample([3.0, 1.0, 2.0], 5) == [3.0, 1.0, 2.0]
    assert resample([], 5) == []


def test_a_long_series_becomes_the_means_of_equal_shares() -> None:
    assert resample([1.0, 3.0, 5.0, 7.0], 2) == [2.0, 6.0]
    # 10 into 4: shares of 2, 3, 2, 3 values, every value in exactly one
    assert resample([float(i) for i in range(10)], 4) == [0.5, 3.0, 5.5, 8.0]
    assert len(resample([0.0] * 100_001, WIDTH)) == WIDTH


def test_resampling_leaves_nan_and_infinities_out_of_a_mean() -> None:
    assert resample([1.0, NAN, 3.0, INF], 2) == [1.0, 3.0]
    [only] = resample([NAN, -INF], 1)
    assert math.isnan(only)


def test_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="width"):
        resample([1.0], 0)


def test_finite_range() -> None:
    assert finite_range([2.0, NAN, -1.0, INF, 5.0]) == (-1.0, 5.0)
    assert finite_range([NAN, INF]) is None
    assert finite_range([]) is None


def test_lowest_and_highest_get_the_first_and_last_block() -> None:
    assert sparkline([0.0, 1.0]) == "▁█"
    assert sparkline([0.9, 0.5, 0.25]) == "█▄▁"
    assert sparkline([float(i) for i in range(8)]) == BLOCKS


def test_a_flat_series_sits_in_the_middle_and_gaps_are_blank() -> None:
    assert sparkline([2.0, 2.0, 2.0]) == "▄▄▄"
    assert sparkline([0.0, NAN, 1.0, INF]) == "▁ █ "
    assert sparkline([NAN, NAN]) == "  "
    assert sparkline([]) == ""


def test_a_long_series_fits_the_width() -> None:
    line = sparkline([float(i) for i in range(10_000)], 40)
    assert len(line) == 40
    assert (line[0], line[-1]) == ("▁", "█")
    assert list(line) == sorted(line)  # a ramp stays a ramp


def test_huge_values_do_not_overflow() -> None:
    assert sparkline([-1e308, 0.0, 1e308]) == "▁▅█"


def test_other_characters() -> None:
    assert sparkline([0.0, 0.5, 1.0], chars=ASCII) == "_=#"
