"""Panic is defined once, in overlays.yaml, and must stay safe whatever a file says."""

from __future__ import annotations

import re

import pytest

from controller.scene import parse_overlays, parse_scene
from controller.yamlsafe import SourceErrors

SAFE = """
overlays:
  panic:
    priority: 100
    lights: {roles: all, on: true, level: 100, kelvin: 4000, fade: 0s}
    music: {stop: true}
    freeze: true
    alert: high
"""


def test_the_shipped_kind_of_panic_is_accepted() -> None:
    assert "panic" in parse_overlays(SAFE, "overlays.yaml")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("level: 100", "level: 60", "every role (roles: all) to level 100"),
        ("fade: 0s", "fade: 30s", "must not fade"),
        ("kelvin: 4000", "kelvin: 2200", "neutral white, 3300-5300 K"),
        ("music: {stop: true}", "music: {duck_db: -12}", "must stop the music"),
        ("freeze: true", "freeze: false", "freeze the timeline"),
        ("alert: high", "alert: low", "high-priority alert"),
    ],
    ids=["dim", "fades", "warm", "music", "unfrozen", "quiet"],
)
def test_an_unsafe_panic_is_refused(old: str, new: str, message: str) -> None:
    text = SAFE.replace(old, new)
    assert text != SAFE
    with pytest.raises(SourceErrors, match=re.escape(message)):
        parse_overlays(text, "overlays.yaml")


def test_a_scene_cannot_redefine_panic() -> None:
    scene = """
name: X
roles: {ambient: a}
phases: [{id: one, duration: 1m}]
overlays:
  panic: {lights: {roles: all, level: 5, fade: 30s}}
"""
    with pytest.raises(SourceErrors, match=r"x.yaml:6:3: panic cannot be redefined in a scene"):
        parse_scene(scene, "x.yaml")
