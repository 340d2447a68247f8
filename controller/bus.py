"""The MQTT room API (DESIGN.md §5): a thin adapter between one room and the shared link.

Topics, under ``<prefix>/<room>/``:

| Topic | Direction | Payload |
|---|---|---|
| ``status`` | out, retained | ``online`` / ``offline`` (published by the link; the will) |
| ``state`` | out, retained | ``Room.view()`` as JSON, on every connect and change (≤ 10/s) |
| ``event`` | out | one JSON object per transition, prompt or driver fault |
| ``cmd/<verb>`` | in | ``{"cmd_id": "...", "actor": "...", ...}`` (controller.commands) |
| ``reply`` | out | ``Outcome.as_dict()``; refusals carry ``accepted: false`` and a reason |

    bus = RoomBus(room, link)
    await bus.start()     # before link.start(), or any time after
    ...
    await bus.close()

Anything arriving on ``cmd/...`` gets a reply: malformed, oversize or misaddressed input is
refused with a reason and logged, never raised. A QoS-1 redelivery of a command carries the
same ``cmd_id`` and the session answers it with the first outcome (``duplicate: true``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from controller.commands import Command, CommandError, Outcome, parse_command
from controller.mqtt import MqttConnection
from controller.room import RoomUpdate

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 4096
STATE_RATE = 10.0
"""Retained state publishes per second per room, at most; the latest view always goes out."""


class RoomLike(Protocol):
    id: str

    async def submit(self, command: Command) -> Outcome: ...

    def view(self) -> dict[str, Any]: ...

    def add_listener(self, listener: Callable[[RoomUpdate], None]) -> Callable[[], None]: ...


def to_json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)


class RoomBus:
    """One room on MQTT. ``discovery`` publishes Home Assistant sensors for the room."""

    def __init__(
        self,
        room: RoomLike,
        link: MqttConnection,
        *,
        prefix: str | None = None,
        state_rate: float = STATE_RATE,
        max_command_bytes: int = MAX_COMMAND_BYTES,
        discovery_prefix: str | None = None,
    ) -> None:
        self.room = room
        self.link = link
        self.prefix = prefix or link.settings.prefix
        self.base = f"{self.prefix}/{room.id}"
        self.interval = 1.0 / state_rate
        self.max_command_bytes = max_command_bytes
        self.discovery_prefix = discovery_prefix
        self.refused = 0
        self._latest: dict[str, Any] | None = None
        self._last_state_at = float("-inf")
        self._state_task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None

    @property
    def state_topic(self) -> str:
        return f"{self.base}/state"

    async def start(self) -> None:
        self.link.subscribe(f"{self.base}/cmd/#", self._on_command, qos=1)
        self.link.on_connect(self._on_connect)
        self._unlisten = self.room.add_listener(self._on_update)
        if self.link.connected:
            await self._on_connect()

    async def close(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        self.link.unsubscribe(f"{self.base}/cmd/#", self._on_command)
        if self._state_task is not None:
            self._state_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._state_task
        if self._latest is not None:
            await self._publish_state(self._latest)

    # -- out --------------------------------------------------------------------------

    async def _on_connect(self) -> None:
        # Brokers can lose retained messages (mosquitto on SIGKILL): re-assert on every connect.
        await self._publish_state(self.room.view())
        if self.discovery_prefix:
            for topic, config in self.discovery_configs():
                await self.link.publish(topic, to_json(config), qos=1, retain=True)

    def _on_update(self, update: RoomUpdate) -> None:
        if update.kind == "event":
            self.link.publish_nowait(f"{self.base}/event", to_json(update.data), qos=1)
            return
        self._latest = update.data
        if self._state_task is not None and not self._state_task.done():
            return  # a rate-limited publish is pending; it will send the latest view
        now = asyncio.get_running_loop().time()
        if now - self._last_state_at >= self.interval:
            # Queue it now, ahead of the command's reply: watchers see the change first.
            self._last_state_at = now
            self._latest = None
            self.link.publish_nowait(self.state_topic, to_json(update.data), qos=1, retain=True)
            return
        self._state_task = asyncio.ensure_future(self._state_soon())

    async def _state_soon(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._last_state_at + self.interval - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._latest is not None:
            await self._publish_state(self._latest)

    async def _publish_state(self, view: dict[str, Any]) -> None:
        self._last_state_at = asyncio.get_running_loop().time()
        self._latest = None
        await self.link.publish(self.state_topic, to_json(view), qos=1, retain=True)

    # -- in ---------------------------------------------------------------------------

    async def _on_command(self, topic: str, payload: bytes) -> None:
        verb = topic[len(self.base) + len("/cmd/") :]
        body: Any = None
        try:
            body = self._decode(payload)
            if isinstance(body, dict) and "room" in body:
                if body["room"] != self.room.id:
                    raise CommandError(
                        f"{verb}: addressed to room {body['room']!r}, this is room {self.room.id!r}"
                    )
                body = {k: v for k, v in body.items() if k != "room"}
            command = parse_command(verb, body)
        except CommandError as exc:
            await self._refuse(verb, body, str(exc))
            return
        try:
            outcome = await self.room.submit(command)
        except Exception as exc:
            log.exception("room %s: %s command %s failed", self.room.id, verb, command.cmd_id)
            await self._refuse(verb, body, f"{verb}: internal error ({type(exc).__name__})")
            return
        await self.link.publish(f"{self.base}/reply", to_json(outcome.as_dict()), qos=1)

    def _decode(self, payload: bytes) -> Any:
        if len(payload) > self.max_command_bytes:
            raise CommandError(
                f"command too large ({len(payload)} bytes, at most {self.max_command_bytes})"
            )
        try:
            return json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CommandError(f"command is not valid UTF-8 JSON: {exc}"[:200]) from None

    async def _refuse(self, verb: str, body: Any, reason: str) -> None:
        self.refused += 1
        cmd_id = body.get("cmd_id") if isinstance(body, dict) else None
        if not isinstance(cmd_id, str) or len(cmd_id) > 64:
            cmd_id = None
        log.warning("room %s: refused MQTT command %r: %s", self.room.id, verb[:64], reason)
        reply = Outcome(cmd_id or "", verb[:64], False, reason).as_dict()
        reply["cmd_id"] = cmd_id
        await self.link.publish(f"{self.base}/reply", to_json(reply), qos=1)

    # -- Home Assistant discovery -----------------------------------------------------

    def discovery_configs(self) -> list[tuple[str, dict[str, Any]]]:
        """Sensors for the room's phase, remaining time and open check-ins, one device."""
        room = self.room.id
        node = f"sessionctl_{room}"
        availability = [{"topic": f"{self.base}/status"}]
        if self.link.will_topic != f"{self.base}/status":
            availability.append({"topic": self.link.will_topic})
        device = {
            "identifiers": [node],
            "name": f"Room {room}",
            "manufacturer": "sessionctl",
            "model": "room controller",
        }
        sensors = {
            "phase": (
                "Phase",
                "{{ value_json.session.phase.title if value_json.session else value_json.state }}",
                {},
            ),
            "remaining": (
                "Remaining",
                "{{ value_json.session.remaining | int if value_json.session else 0 }}",
                {"unit_of_measurement": "s", "device_class": "duration"},
            ),
            "checkins": ("Open check-ins", "{{ value_json.checkins | length }}", {}),
        }
        out = []
        for key, (name, template, extra) in sensors.items():
            unique = f"{node}_{key}"
            config = {
                "unique_id": unique,
                "object_id": unique,
                "name": name,
                "state_topic": self.state_topic,
                "value_template": template,
                "availability": availability,
                "availability_mode": "all",
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device,
                "origin": {"name": "sessionctl"},
                **extra,
            }
            out.append((f"{self.discovery_prefix}/sensor/{room}/{key}/config", config))
        return out
