"""Live room updates to the tablets: one listener per room, one JSON encoding per update.

    view = room_view(room)             # Room.view() plus the overlays staff may switch
    hub = RoomHub(room)
    conn = hub.join(ws, session_key="...", device_key=None)
    await conn.pump()                  # sends until the socket closes or the hub drops it
    hub.close_where(lambda c: c.session_key == key, code=4401, reason="logged out")

A tablet that cannot keep up is disconnected (1013) instead of buffering without bound; when it
reconnects it gets a fresh ``state`` message, and state is level-triggered, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from controller.room import Room, RoomUpdate

log = logging.getLogger("sessionctl.web.live")

QUEUE_LIMIT = 256
CLOSE_SESSION_ENDED = 4401
CLOSE_UNPAIRED = 4403
CLOSE_TOO_SLOW = 1013


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    session_key: str
    device_key: str | None
    queue: asyncio.Queue[str | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_LIMIT)
    )
    close_code: int | None = None
    close_reason: str = ""

    def offer(self, text: str) -> None:
        if self.close_code is not None:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.end(CLOSE_TOO_SLOW, "too slow; reconnect")

    def end(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            # Wake the pump even when the queue is full: drop one message to make room.
            if self.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
            self.queue.put_nowait(None)

    async def pump(self) -> None:
        """Send queued messages until told to stop or the socket goes away."""
        while True:
            text = await self.queue.get()
            if text is None or self.ws.closed:
                break
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                break
        if self.close_code is not None and not self.ws.closed:
            await self.ws.close(code=self.close_code, message=self.close_reason.encode())


class RoomHub:
    """Every open WebSocket of one room."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.connections: set[Connection] = set()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.room.add_listener(self._on_update)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.close_where(lambda c: True, code=1001, reason="server shutting down")

    def join(
        self, ws: web.WebSocketResponse, *, session_key: str, device_key: str | None
    ) -> Connection:
        conn = Connection(ws, session_key, device_key)
        conn.offer(encode({"type": "state", "data": room_view(self.room)}))
        self.connections.add(conn)
        return conn

    def leave(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def close_where(self, match: Callable[[Connection], bool], *, code: int, reason: str) -> int:
        hits = [c for c in self.connections if match(c)]
        for conn in hits:
            conn.end(code, reason)
        return len(hits)

    def _on_update(self, update: RoomUpdate) -> None:
        if not self.connections:
            return
        data = update.data
        if update.kind == "state":
            # Other listeners (MQTT) share this dict: add to a copy.
            data = {**data, "overlay_choices": overlay_choices(self.room)}
        text = encode({"type": update.kind, "data": data})
        for conn in list(self.connections):
            conn.offer(text)


def overlay_choices(room: Room) -> list[dict[str, str]]:
    """The overlays staff may switch in this room now: the shared ones, and the running scene's,
    in file order; panic has its own control. Listeners run synchronously with the change, so
    this matches the view it is sent with."""
    return [
        {"name": name, "title": overlay.title or name.replace("-", " ").capitalize()}
        for name, overlay in room.session.overlays.items()
        if name != "panic"
    ]


def room_view(room: Room) -> dict[str, Any]:
    """What the tablet gets for a room: ``Room.view()`` plus ``overlay_choices``."""
    return {**room.view(), "overlay_choices": overlay_choices(room)}


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)
