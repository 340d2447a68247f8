"""What the MQTT light drivers share: the link, per-device availability, health, and asking
the room to re-send desired state after the broker or a device comes back.

A concrete driver subclasses :class:`MqttLights`, parses its device options in
``_parse_device`` and turns a :class:`LightCommand` into ``(topic, payload)`` messages in
``_messages``; everything else (start, apply, availability, reconnects) lives here.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol, cast

from drivers.base import (
    Capabilities,
    DriverConfigError,
    DriverContext,
    DriverError,
    DriverHealth,
    LightCommand,
    MqttLink,
)

log = logging.getLogger(__name__)


class CoalescingLink(MqttLink, Protocol):
    """A link that can keep only the latest queued message per topic (controller.mqtt)."""

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 0,
        retain: bool = False,
        coalesce: bool = False,
    ) -> None: ...


def compact_json(payload: Mapping[str, Any]) -> str:
    """The wire form: no spaces, keys in insertion order (what the devices' docs show)."""
    return json.dumps(payload, separators=(",", ":"))


def seconds(value: float) -> int | float:
    """A duration as an integer when whole, else to 0.1 s (the finest any device resolves)."""
    rounded = round(value, 1)
    return int(rounded) if rounded == int(rounded) else rounded


def parse_availability(
    payload: bytes, online: str = "online", offline: str = "offline"
) -> bool | None:
    """``online``/``offline`` plain or as ``{"state": "online"}``; None if neither."""
    text = payload.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        text = str(data.get("state", "")) if isinstance(data, dict) else ""
    if text.lower() == online.lower():
        return True
    if text.lower() == offline.lower():
        return False
    return None


def caps_from(spec: Mapping[str, Any], default: Capabilities) -> Capabilities:
    """Capability overrides from a device's options (``max_transition``, ``min_interval``,
    ``mired_range``, ``color_temp``, ``xy``, ``dimmable``)."""
    mired = spec.get("mired_range", default.mired_range)
    try:
        return Capabilities(
            max_transition=float(spec.get("max_transition", default.max_transition)),
            min_interval=float(spec.get("min_interval", default.min_interval)),
            mired_range=(int(mired[0]), int(mired[1])) if mired else None,
            color_temp=bool(spec.get("color_temp", default.color_temp)),
            xy=bool(spec.get("xy", default.xy)),
            dimmable=bool(spec.get("dimmable", default.dimmable)),
        )
    except (TypeError, ValueError, IndexError) as exc:
        raise DriverConfigError(f"bad capability option: {exc}") from exc


class MqttLights:
    """Base of the MQTT light drivers. Options: ``devices`` (a list of names or a mapping of
    name to per-device options), ``qos`` (default 1)."""

    kind = "mqtt-lights"

    def __init__(self, name: str, options: Mapping[str, Any], context: DriverContext) -> None:
        self.name = name
        self._context = context
        if context.mqtt is None:
            raise DriverConfigError(f"{name}: the {self.kind} driver needs an MQTT connection")
        self.link: MqttLink = context.mqtt
        self._coalescing = "coalesce" in inspect.signature(self.link.publish).parameters
        self.qos = int(options.get("qos", 1))
        raw = options.get("devices")
        if isinstance(raw, list):
            raw = {str(d): {} for d in raw}
        if not isinstance(raw, dict) or not raw:
            raise DriverConfigError(f"{name}: 'devices' must list at least one device")
        self.options = options
        self._specs: dict[str, dict[str, Any]] = {}
        self._caps: dict[str, Capabilities] = {}
        for device, spec in raw.items():
            spec = dict(spec or {})
            if not isinstance(spec, dict):
                raise DriverConfigError(f"{name}: options of device {device!r} must be a mapping")
            self._specs[str(device)] = self._parse_device(str(device), spec)
            self._caps[str(device)] = caps_from(spec, self._default_caps())
        self.devices = tuple(self._specs)
        self.health = DriverHealth()
        self.available: dict[str, bool | None] = {d: None for d in self.devices}
        self.reported: dict[str, bytes] = {}
        self._started = False
        self._link_up = False

    # -- for subclasses -------------------------------------------------------------------

    def _default_caps(self) -> Capabilities:
        return Capabilities()

    def _parse_device(self, device: str, spec: dict[str, Any]) -> dict[str, Any]:
        return spec

    def _messages(self, device: str, command: LightCommand) -> list[tuple[str, str]]:
        raise NotImplementedError

    def _subscriptions(self) -> list[tuple[str, str, str]]:
        """(topic, device, "availability" | "state") pairs to follow."""
        return []

    def _online_payloads(self, device: str) -> tuple[str, str]:
        return ("online", "offline")

    def _on_state(self, device: str, payload: bytes) -> None:
        self.reported[device] = payload

    # -- LightDriver ----------------------------------------------------------------------

    def capabilities(self, device: str) -> Capabilities:
        return self._caps[device]

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        for topic, device, what in self._subscriptions():
            self.link.subscribe(topic, self._handler(device, what))
        self.link.on_connect(self._link_connected)
        on_disconnect = getattr(self.link, "on_disconnect", None)
        if callable(on_disconnect):
            on_disconnect(self._link_lost)

    async def close(self) -> None:
        self._started = False

    async def apply(self, commands: Mapping[str, LightCommand]) -> None:
        unknown = [d for d in commands if d not in self._specs]
        if unknown:
            raise DriverError(f"{self.name}: unknown device(s) {', '.join(unknown)}")
        for device, command in commands.items():
            for topic, payload in self._messages(device, command):
                await self._publish(topic, payload)

    async def _publish(self, topic: str, payload: str) -> None:
        # Never retained: a retained command re-fires on every device reconnect ("ghost
        # switching", devices.md §7). Coalesced: while the broker is away only the latest
        # command per device waits, so reconnecting does not replay a stale backlog (a panic
        # and its release flashing the lights) ahead of the room's re-send of desired state.
        if self._coalescing:
            link = cast(CoalescingLink, self.link)
            await link.publish(topic, payload, qos=self.qos, retain=False, coalesce=True)
        else:
            await self.link.publish(topic, payload, qos=self.qos, retain=False)

    # -- availability ---------------------------------------------------------------------

    def _handler(self, device: str, what: str) -> Any:
        def handle(topic: str, payload: bytes) -> None:
            if what == "availability":
                online, offline = self._online_payloads(device)
                state = parse_availability(payload, online, offline)
                if state is not None:
                    self._set_available(device, state)
            else:
                self._on_state(device, payload)

        return handle

    def _set_available(self, device: str, available: bool) -> None:
        before = self.available.get(device)
        self.available[device] = available
        if available:
            self.health.devices_offline.discard(device)
        else:
            self.health.devices_offline.add(device)
        if before == available:
            return
        if before is not None or not available:
            log.info("%s: %s is %s", self.name, device, "online" if available else "offline")
        # Also on the first "online" since start: the device may have missed what we sent.
        self._context.report_availability(self.name, device, available)

    def _link_connected(self) -> None:
        was_down = not self._link_up and self.health.error is not None
        self._link_up = True
        self.health.available = True
        self.health.error = None
        if was_down:
            # The broker may have lost or never delivered what we sent while it was away: the
            # room re-sends every light's desired state on this report.
            self._context.report_availability(self.name, None, True)

    def _link_lost(self) -> None:
        self._link_up = False
        self.health.available = False
        self.health.error = "MQTT broker unreachable"
        self._context.report_availability(self.name, None, False)
