"""Any light speaking Home Assistant's MQTT JSON schema (devices.md §5.3).

    drivers:
      ha:
        type: mqtt-json
        devices:
          ceiling:
            command_topic: clinic/room1/light/ceiling/set
            state_topic: clinic/room1/light/ceiling/state          # optional
            availability_topic: clinic/room1/light/ceiling/avail   # optional
            payload_available: online                              # defaults
            payload_not_available: offline
            brightness_scale: 255
            transition: true          # the light honours "transition" (seconds)
            max_transition: 60
            min_mireds: 153
            max_mireds: 454

Command payload: ``{"state":"ON","brightness":128,"color_temp":370,"transition":2}``.
"""

from __future__ import annotations

from typing import Any

from drivers.base import Capabilities, DriverConfigError, LightCommand
from drivers.mqtt_common import MqttLights, compact_json, seconds

_TOPIC_KEYS = ("command_topic", "state_topic", "availability_topic")


class MqttJsonLights(MqttLights):
    """Options: ``devices`` (per device: topics, ``brightness_scale``, ``transition``,
    ``min_mireds``/``max_mireds``, ``payload_available``/``payload_not_available``,
    capability overrides), ``qos``."""

    kind = "mqtt-json"

    def _default_caps(self) -> Capabilities:
        return Capabilities(max_transition=60.0, min_interval=0.2)

    def _parse_device(self, device: str, spec: dict[str, Any]) -> dict[str, Any]:
        parsed: dict[str, Any] = {}
        for key in _TOPIC_KEYS:
            value = spec.pop(key, None)
            if value is not None and (
                not isinstance(value, str) or not value or "#" in value or "+" in value
            ):
                raise DriverConfigError(f"{self.name}: {key} of {device!r} must be a topic")
            parsed[key] = value
        if parsed["command_topic"] is None:
            raise DriverConfigError(f"{self.name}: device {device!r} needs a command_topic")
        try:
            parsed["scale"] = int(spec.pop("brightness_scale", 255))
        except (TypeError, ValueError) as exc:
            raise DriverConfigError(f"{self.name}: brightness_scale: {exc}") from exc
        if parsed["scale"] < 1:
            raise DriverConfigError(f"{self.name}: brightness_scale must be at least 1")
        parsed["online"] = str(spec.pop("payload_available", "online"))
        parsed["offline"] = str(spec.pop("payload_not_available", "offline"))
        if spec.pop("transition", True) is False:
            spec["max_transition"] = 0.0
        low, high = spec.pop("min_mireds", None), spec.pop("max_mireds", None)
        if low is not None or high is not None:
            spec["mired_range"] = (int(low or 153), int(high or 500))
        return parsed

    def _online_payloads(self, device: str) -> tuple[str, str]:
        spec = self._specs[device]
        return (spec["online"], spec["offline"])

    def _subscriptions(self) -> list[tuple[str, str, str]]:
        subs = []
        for device, spec in self._specs.items():
            if spec["availability_topic"]:
                subs.append((spec["availability_topic"], device, "availability"))
            if spec["state_topic"]:
                subs.append((spec["state_topic"], device, "state"))
        return subs

    def _messages(self, device: str, command: LightCommand) -> list[tuple[str, str]]:
        spec = self._specs[device]
        s = command.setting
        payload: dict[str, Any]
        if not s.on:
            payload = {"state": "OFF"}
        else:
            value = round(max(0.0, min(100.0, s.level)) * spec["scale"] / 100)
            payload = {"state": "ON", "brightness": max(1, value) if s.level > 0 else 0}
            if s.mired is not None and self._caps[device].color_temp:
                payload["color_temp"] = round(s.mired)
        if self._caps[device].max_transition > 0:
            payload["transition"] = seconds(max(command.transition, 0.0))
        return [(spec["command_topic"], compact_json(payload))]
