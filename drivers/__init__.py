"""The driver registry: built-in drivers plus any installed under the ``sessionctl.drivers``
entry-point group.

    >>> sorted(k for k in available() if k.startswith("mock"))
    ['mock-audio', 'mock-light', 'mock-prompt']

A third-party package adds a driver by declaring, in its own ``pyproject.toml``::

    [project.entry-points."sessionctl.drivers"]
    my-lights = "my_package.lights:MyLights"

where ``MyLights(name, options, context)`` follows :class:`drivers.base.LightDriver`.
Built-ins are imported lazily so that, say, a room without Hue never imports ``phue``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, cast

from drivers.base import Driver, DriverConfigError, DriverContext, DriverFactory

ENTRY_POINT_GROUP = "sessionctl.drivers"

BUILTINS: dict[str, str] = {
    "mock-light": "drivers.mock:MockLights",
    "mock-audio": "drivers.mock:MockAudio",
    "mock-prompt": "drivers.mock:MockPrompts",
    "hue": "drivers.hue:HueLights",
    "zigbee2mqtt": "drivers.zigbee2mqtt:Zigbee2MqttLights",
    "tasmota": "drivers.tasmota:TasmotaLights",
    "mqtt-json": "drivers.mqtt_json:MqttJsonLights",
    "vlc": "drivers.vlc:VlcAudio",
}


def available() -> dict[str, str]:
    """Every driver kind this installation knows, mapped to ``module:attribute``."""
    found = dict(BUILTINS)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def factory(kind: str) -> DriverFactory:
    """The class (or callable) that builds drivers of ``kind``."""
    target = available().get(kind)
    if target is None:
        known = ", ".join(sorted(available()))
        raise DriverConfigError(f"unknown driver type {kind!r}; known types: {known}")
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverConfigError(f"driver type {kind!r} cannot be loaded: {exc}") from exc
    return cast(DriverFactory, getattr(module, attribute))


def build(kind: str, name: str, options: Mapping[str, Any], context: DriverContext) -> Driver:
    """Build one driver instance from its room-config entry."""
    return factory(kind)(name, options, context)
