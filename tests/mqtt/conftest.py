"""Fixtures: a real mosquitto per test (fast: ~20 ms to start), plus an auth+ACL variant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.mqtt.broker import Broker

ROOM_ACL = "pattern readwrite clinic/%u/#\nuser admin\ntopic readwrite #\n"
USERS = {"room1": "pw-room1", "room2": "pw-room2", "admin": "pw-admin"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Broker]:
    """Users room1, room2 (confined to clinic/<user>/#) and admin (everything)."""
    b = Broker(tmp_path / "auth-broker", users=USERS, acl=ROOM_ACL)
    b.start()
    yield b
    b.stop()


class Recorder:
    """A plain aiomqtt subscriber that keeps every message it sees, in order."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[aiomqtt.Message] = []
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        async for message in self.client.messages:
            async with self._changed:
                self.messages.append(message)
                self._changed.notify_all()

    def on(self, topic: str) -> list[bytes]:
        return [bytes(m.payload) for m in self.messages if str(m.topic) == topic]  # type: ignore[arg-type]

    def json_on(self, topic: str) -> list[object]:
        return [json.loads(p) for p in self.on(topic)]

    async def wait_for(self, predicate: object, timeout: float = 5.0) -> None:
        """Wait until ``predicate(self)`` is true (a bounded wait, not a timed assertion)."""

        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))  # type: ignore[operator]

        await asyncio.wait_for(_wait(), timeout)


@pytest.fixture
async def recorder(broker: Broker) -> AsyncIterator[Recorder]:
    """Subscribed to everything on the anonymous broker."""
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="recorder") as client:
        await client.subscribe("#", qos=1)
        rec = Recorder(client)
        task = asyncio.create_task(rec.run())
        yield rec
        task.cancel()
