"""Hue bodies, request planning and the throttle: pure logic, no bridge."""

from __future__ import annotations

import doctest

import pytest

import drivers.hue_payload
from drivers.base import LightCommand, LightSetting
from drivers.hue_payload import Lamp, bri, lamp_from_bridge, plan_requests, state_body
from drivers.hue_throttle import WINDOW_MARGIN, SlidingWindow


def test_docstring_examples() -> None:
    assert doctest.testmod(drivers.hue_payload).failed == 0


@pytest.mark.parametrize(
    ("level", "expected"), [(0.1, 1), (0.4, 1), (1, 3), (50, 127), (99.9, 254), (100, 254)]
)
def test_level_to_bri_never_reaches_off(level: float, expected: int) -> None:
    assert bri(level) == expected


def test_transition_is_clamped_to_the_uint16() -> None:
    three_hours = LightCommand(LightSetting(True, 10), transition=3 * 3600)
    assert state_body(three_hours, Lamp(1), None)["transitiontime"] == 65535


def test_xy_is_sent_instead_of_ct_when_the_lamp_has_colour() -> None:
    setting = LightSetting(True, 50, mired=300, xy=(0.5, 0.4))
    assert "xy" in state_body(LightCommand(setting), Lamp(1, xy=True), True)
    assert state_body(LightCommand(setting), Lamp(1, xy=False), True)["ct"] == 300


def test_off_is_off_whatever_else_the_setting_says() -> None:
    assert state_body(LightCommand(LightSetting(False, 80, mired=300), 5), Lamp(1), True) == {
        "on": False,
        "transitiontime": 50,
    }


def test_lamp_capabilities_from_the_bridge() -> None:
    ct_only = {"state": {"on": True, "bri": 1, "ct": 300}, "capabilities": {"control": {}}}
    lamp = lamp_from_bridge(4, ct_only)
    assert (lamp.mired_range, lamp.xy, lamp.dimmable) == ((153, 500), False, True)
    plug = lamp_from_bridge(5, {"state": {"on": False}})
    assert (plug.color_temp, plug.dimmable, plug.mired_range) == (False, False, None)
    assert plug.capabilities(0.1).mired_range is None


def test_group_body_carries_on_true_when_any_member_needs_it() -> None:
    lamps = {"a": Lamp(1), "b": Lamp(2)}
    bodies = {
        "a": {"bri": 100, "transitiontime": 0},
        "b": {"on": True, "bri": 100, "transitiontime": 0},
    }
    [request] = plan_requests(bodies, lamps, {7: frozenset({"a", "b"})})
    assert (request.target, request.target_id, request.path) == ("group", 7, "/groups/7/action")
    assert request.body == {"on": True, "bri": 100, "transitiontime": 0}


def test_largest_matching_group_wins() -> None:
    lamps = {d: Lamp(i) for i, d in enumerate("abc", 1)}
    bodies = {d: {"bri": 10, "transitiontime": 0} for d in "abc"}
    groups = {1: frozenset("ab"), 2: frozenset("abc")}
    assert [r.target_id for r in plan_requests(bodies, lamps, groups)] == [2]


def test_sliding_window_allows_a_burst_then_paces() -> None:
    window = SlidingWindow(limit=3, window=1.0)
    for t in (0.0, 0.01, 0.02):
        assert window.delay(t) == 0
        window.record(t)
    assert window.delay(0.5) == pytest.approx(0.5 + WINDOW_MARGIN)
    assert window.delay(1.0 + WINDOW_MARGIN) == 0
