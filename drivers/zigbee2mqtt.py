"""Lights behind zigbee2mqtt (devices.md §2).

Commands are JSON on ``<base>/<friendly name>/set``; a whole fade is one message with a native
``transition`` in seconds (up to ~6553 s), so a 40-minute infusion dim costs one command::

    drivers:
      z2m:
        type: zigbee2mqtt
        base_topic: zigbee2mqtt            # default
        devices:
          ceiling: {}                      # friendly name = device name
          lamp: {friendly_name: "Room 1 lamp", mired_range: [153, 370]}
          old-bulb: {transition: false}    # ignores transitions: the controller steps it

Availability follows ``<base>/<name>/availability`` in both payload styles (``online`` and
``{"state":"online"}``) and ``<base>/bridge/state`` for the whole bridge.
"""

from __future__ import annotations

from typing import Any

from drivers.base import Capabilities, DriverConfigError, LightCommand
from drivers.mqtt_common import MqttLights, compact_json, parse_availability, seconds

BRIDGE_OFFLINE = "zigbee2mqtt bridge offline"
# ZCL moveToLevel carries tenths of a second in a uint16 (devices.md §2.3).
MAX_TRANSITION = 6553.0


def brightness(level: float) -> int:
    """Percent to z2m's 0–254; a light that is on never rounds down to 0."""
    value = round(max(0.0, min(100.0, level)) * 254 / 100)
    return max(1, value) if level > 0 else 0


class Zigbee2MqttLights(MqttLights):
    """Options: ``base_topic``, ``devices`` (per device: ``friendly_name``, ``transition``
    (false for bulbs that ignore it), capability overrides), ``qos``."""

    kind = "zigbee2mqtt"

    def __init__(self, name: str, options: Any, context: Any) -> None:
        self.base = str(options.get("base_topic", "zigbee2mqtt")).rstrip("/")
        if not self.base or any(c in self.base for c in "+#"):
            raise DriverConfigError(f"{name}: base_topic must be a plain topic prefix")
        super().__init__(name, options, context)
        self.bridge_online: bool | None = None

    def _default_caps(self) -> Capabilities:
        # Zigbee meshes choke on bursts; 2 commands/s per bulb keeps a software step smooth.
        return Capabilities(max_transition=MAX_TRANSITION, min_interval=0.5)

    def _parse_device(self, device: str, spec: dict[str, Any]) -> dict[str, Any]:
        friendly = str(spec.pop("friendly_name", device))
        if not friendly or any(c in friendly for c in "+#"):
            raise DriverConfigError(f"{self.name}: bad friendly_name for {device!r}")
        if spec.pop("transition", True) is False:
            spec["max_transition"] = 0.0
        return {"topic": f"{self.base}/{friendly}"}

    def _subscriptions(self) -> list[tuple[str, str, str]]:
        subs = []
        for device, spec in self._specs.items():
            subs.append((f"{spec['topic']}/availability", device, "availability"))
            subs.append((spec["topic"], device, "state"))
        return subs

    async def start(self) -> None:
        await super().start()
        self.link.subscribe(f"{self.base}/bridge/state", self._bridge_state)

    def _bridge_state(self, topic: str, payload: bytes) -> None:
        state = parse_availability(payload)
        if state is None or state == self.bridge_online:
            return
        self.bridge_online = state
        self.health.available = state
        self.health.error = None if state else BRIDGE_OFFLINE
        self._context.report_availability(self.name, None, state)

    def _link_connected(self) -> None:
        # After a broker reconnect the retained bridge state comes again, but when it equals
        # what we remember (still "offline") _bridge_state ignores it: the link coming back
        # must not make the driver available while the bridge it drives is offline.
        if self.bridge_online is False:
            self._link_up = True
            self.health.available = False
            self.health.error = BRIDGE_OFFLINE
            return
        super()._link_connected()

    def _messages(self, device: str, command: LightCommand) -> list[tuple[str, str]]:
        s = command.setting
        payload: dict[str, Any]
        if not s.on:
            payload = {"state": "OFF"}
        else:
            payload = {"state": "ON", "brightness": brightness(s.level)}
            if s.mired is not None:
                payload["color_temp"] = round(s.mired)
            if s.xy is not None:
                payload["color"] = {"x": round(s.xy[0], 4), "y": round(s.xy[1], 4)}
        # Always explicit: a z2m per-device default transition would otherwise slow even panic.
        payload["transition"] = seconds(min(max(command.transition, 0.0), MAX_TRANSITION))
        return [(f"{self._specs[device]['topic']}/set", compact_json(payload))]
