"""Lights running Tasmota (devices.md §3).

Each command is one ``cmnd/<topic>/Backlog``, e.g. ``Fade 1; Speed2 20; Dimmer 10; CT 370``.
Tasmota fades natively for at most 20 s (speed 40), so the fade planner sends longer fades
in chunks of up to 20 s; this driver only picks the speed so that the device's own fade lasts
as long as the chunk. It is ``Speed2``, not ``Speed``: ``Speed`` is saved to flash, and a
40-minute fade would write it 120 times (devices.md §3.2)::

    drivers:
      tas:
        type: tasmota
        devices:
          lamp: {topic: room1-lamp}        # the device's %topic%; default: the device name
          strip: {mired_range: [153, 454]}

Availability follows ``tele/<topic>/LWT`` (``Online``/``Offline``); the dimmer level the
device reports on ``stat/<topic>/RESULT`` is used to size the next fade's speed.
"""

from __future__ import annotations

import json
from typing import Any

from drivers.base import Capabilities, DriverConfigError, LightCommand
from drivers.mqtt_common import MqttLights

MAX_SPEED = 40
SPEED_UNIT = 0.5
"""``Speed n`` = n × 0.5 s for the full 0–100 % range."""


def dimmer(level: float) -> int:
    value = round(max(0.0, min(100.0, level)))
    return max(1, value) if level > 0 else 0


def speed_for(transition: float, delta: float) -> int:
    """The ``Speed`` that makes a fade of ``delta`` percent last ``transition`` seconds.

    Tasmota's fade time is proportional to the change: Speed × 0.5 s × delta / 100. A small
    change over a long time would need more than ``Speed 40``; it is capped, and the fade ends
    early (the planner's chunks keep such steps small).

    >>> speed_for(10, 100), speed_for(5, 25), speed_for(20, 1)
    (20, 40, 40)
    """
    span = max(abs(delta), 1.0)
    raw = transition / SPEED_UNIT * 100.0 / span
    return int(max(1, min(MAX_SPEED, round(raw))))


class TasmotaLights(MqttLights):
    """Options: ``devices`` (per device: ``topic``, capability overrides), ``command_prefix``
    (``cmnd``), ``tele_prefix`` (``tele``), ``stat_prefix`` (``stat``), ``qos``."""

    kind = "tasmota"

    def __init__(self, name: str, options: Any, context: Any) -> None:
        self.prefixes = {
            key: str(options.get(f"{key}_prefix", key if key != "command" else "cmnd"))
            for key in ("command", "tele", "stat")
        }
        super().__init__(name, options, context)
        self.levels: dict[str, float] = {}

    def _default_caps(self) -> Capabilities:
        return Capabilities(max_transition=MAX_SPEED * SPEED_UNIT, min_interval=0.5)

    def _parse_device(self, device: str, spec: dict[str, Any]) -> dict[str, Any]:
        topic = str(spec.pop("topic", device))
        if not topic or any(c in topic for c in "+#") or topic.startswith("/"):
            raise DriverConfigError(f"{self.name}: bad Tasmota topic for {device!r}")
        return {"topic": topic}

    def _online_payloads(self, device: str) -> tuple[str, str]:
        return ("Online", "Offline")

    def _subscriptions(self) -> list[tuple[str, str, str]]:
        subs = []
        for device, spec in self._specs.items():
            subs.append((f"{self.prefixes['tele']}/{spec['topic']}/LWT", device, "availability"))
            subs.append((f"{self.prefixes['stat']}/{spec['topic']}/RESULT", device, "state"))
        return subs

    def _on_state(self, device: str, payload: bytes) -> None:
        super()._on_state(device, payload)
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if isinstance(data, dict):
            if isinstance(data.get("Dimmer"), int | float):
                self.levels[device] = float(data["Dimmer"])
            if data.get("POWER") == "OFF":
                self.levels[device] = 0.0

    def _messages(self, device: str, command: LightCommand) -> list[tuple[str, str]]:
        s = command.setting
        target = float(dimmer(s.level)) if s.on else 0.0
        parts: list[str] = []
        if command.transition > 0:
            # Unknown current level: assume the full range, so the fade ends early rather than
            # running on into the next chunk.
            current = self.levels.get(device)
            delta = 100.0 if current is None else target - current
            # Speed2: the same as Speed but not saved to flash (devices.md §3.2); Speed on
            # every chunk would wear the flash.
            parts += ["Fade 1", f"Speed2 {speed_for(command.transition, delta)}"]
        else:
            parts.append("Fade 0")
        if s.on:
            # Dimmer before CT: with the default SetOption20 a CT switches a light that is
            # off on at its old level for one Backlog step, a flash when fading up from off.
            parts.append(f"Dimmer {int(target)}")
            if s.mired is not None:
                parts.append(f"CT {round(s.mired)}")
        else:
            parts.append("Power OFF")
        self.levels[device] = target
        topic = f"{self.prefixes['command']}/{self._specs[device]['topic']}/Backlog"
        return [(topic, "; ".join(parts))]
