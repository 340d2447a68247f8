"""Fade planning per device capability: native, chunked, software steps."""

from __future__ import annotations

import itertools

import pytest

from controller.fades import commands_for_fade, fit_to_device, interpolate, plan_step
from drivers.base import Capabilities, LightSetting

START = LightSetting(True, 60, 286)
GOAL = LightSetting(True, 10, 455)


def test_native_device_gets_one_command_for_a_40_minute_fade() -> None:
    hue = Capabilities(max_transition=6553.5, min_interval=0.1)
    sequence = commands_for_fade(START, GOAL, 2400, hue)
    assert len(sequence) == 1
    assert sequence[0][1].transition == 2400
    assert sequence[0][1].setting == GOAL


def test_tasmota_like_device_gets_20_second_chunks() -> None:
    tasmota = Capabilities(max_transition=20, min_interval=0.5)
    sequence = commands_for_fade(START, GOAL, 60, tasmota)
    assert [t for t, _ in sequence] == [0, 20, 40]
    assert all(c.transition == 20 for _, c in sequence)
    assert sequence[0][1].setting.level == pytest.approx(60 - 50 / 3)
    assert sequence[-1][1].setting.level == pytest.approx(10)


def test_software_steps_respect_the_rate_limit() -> None:
    plain = Capabilities(max_transition=0, min_interval=0.5)
    sequence = commands_for_fade(START, GOAL, 30, plain)
    times = [t for t, _ in sequence]
    assert all(b - a >= 0.5 - 1e-9 for a, b in itertools.pairwise(times))
    assert sequence[-1][1].setting.level == pytest.approx(10)
    assert all(c.transition == 0 for _, c in sequence)
    levels = [c.setting.level for _, c in sequence]
    assert levels == sorted(levels, reverse=True)


def test_colour_temperature_is_clamped_to_the_lamp() -> None:
    narrow = Capabilities(mired_range=(153, 370))
    assert fit_to_device(GOAL, narrow).mired == 370


def test_fade_to_off_keeps_the_light_on_until_the_end() -> None:
    off = LightSetting(False, 0, 455)
    assert interpolate(START, off, 0.5).on is True
    assert interpolate(START, off, 1.0).on is False
    step = plan_step(START, off, 100, Capabilities(max_transition=20), now=0)
    assert step.command.setting.on is True and step.next_at == 20
