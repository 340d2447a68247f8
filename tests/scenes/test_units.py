"""Durations and colour temperature as scene files write them."""

from __future__ import annotations

import math

import pytest

from controller.units import (
    DurationError,
    format_clock,
    format_duration,
    kelvin_to_mired,
    mired_to_kelvin,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("2m30s", 150),
        ("1h", 3600),
        ("1h0m5s", 3605),
        ("0s", 0),
        ("1.5m", 90),
        ("0.5s", 0.5),
        (" 5m ", 300),
        ("1h 30m", 5400),
        (90, 90),
        (2.5, 2.5),
        (0, 0),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["5 minutes", "10 sec", "1d", "m", "", "h30", "1m1h", "-5m", "5m-", "1e3", "abc", "30s5m"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize("value", [-1, -0.5, math.inf, -math.inf, math.nan, True, False])
def test_parse_duration_rejects_numbers(value: float) -> None:
    with pytest.raises(DurationError):
        parse_duration(value)


def test_parse_duration_rejects_overflow_and_keeps_messages_short() -> None:
    with pytest.raises(DurationError) as info:
        parse_duration("9" * 400 + "h")
    assert len(str(info.value)) < 100


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (300, "5m"), (5400, "1h30m"), (150, "2m30s"), (0, "0s"), (90.5, "1m30.5s")],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_format_clock() -> None:
    assert format_clock(59) == "0:59"
    assert format_clock(3600 + 61) == "1:01:01"
    assert format_clock(-90) == "-1:30"


@pytest.mark.parametrize(("kelvin", "mired"), [(2200, 455), (2700, 370), (3500, 286), (4000, 250)])
def test_kelvin_and_mired_match_clinical_defaults_table(kelvin: int, mired: int) -> None:
    # clinical-defaults.md §7.2
    assert kelvin_to_mired(kelvin) == mired
    assert abs(mired_to_kelvin(mired) - kelvin) <= 10
