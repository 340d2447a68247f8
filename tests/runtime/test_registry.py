"""The driver registry: built-ins, third-party drivers through entry points, clear errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import drivers
from drivers.base import DriverConfigError, DriverContext, LightDriver

PLUGIN = """
from drivers.mock import MockLights


class FancyLights(MockLights):
    kind = "fancy-light"
"""


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A package installed the way pip leaves it: a module plus a .dist-info with entry points."""
    (tmp_path / "fancy_lights.py").write_text(PLUGIN)
    info = tmp_path / "fancy_lights-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fancy-lights\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[sessionctl.drivers]\nfancy-light = fancy_lights:FancyLights\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("fancy_lights", None)


def context() -> DriverContext:
    return DriverContext(monotonic=lambda: 0.0, state_dir=Path("."))


def test_builtins_are_listed() -> None:
    assert {"mock-light", "hue", "zigbee2mqtt", "tasmota", "mqtt-json", "vlc"} <= set(
        drivers.available()
    )


def test_an_entry_point_driver_is_found_and_built(installed_plugin: None) -> None:
    assert drivers.available()["fancy-light"] == "fancy_lights:FancyLights"
    built = drivers.build("fancy-light", "f", {"devices": ["lamp"]}, context())
    assert isinstance(built, LightDriver) and built.kind == "fancy-light"


def test_an_unknown_driver_type_names_the_known_ones() -> None:
    with pytest.raises(DriverConfigError, match=r"unknown driver type 'hew'; known types: .*hue"):
        drivers.build("hew", "x", {}, context())
