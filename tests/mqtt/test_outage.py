"""Broker outages and id clashes against a real mosquitto: no stale command backlog, no message
lost in the send window, zigbee2mqtt bridge state kept across a reconnect, back-off on kicks."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import aiomqtt
import pytest

from controller.mqtt import MqttConnection, MqttSettings, default_client_id
from drivers.base import DriverContext, LightCommand, LightSetting
from drivers.zigbee2mqtt import Zigbee2MqttLights
from tests.mqtt.broker import Broker
from tests.mqtt.util import eventually

pytestmark = pytest.mark.integration


def settings(port: int, **kw: object) -> MqttSettings:
    base: dict[str, object] = {
        "port": port,
        "prefix": "clinic",
        "client_id": "ctl-outage",
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "keepalive": 5,
    }
    base.update(kw)
    return MqttSettings.model_validate(base)


async def collect_until_sentinel(port: int, client_id: str) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id, clean_session=False) as c:
        async for message in c.messages:
            if str(message.topic) == "sentinel":
                return got
            got.append((str(message.topic), bytes(message.payload)))  # type: ignore[arg-type]
    return got


async def test_outage_sends_only_the_latest_light_command_and_every_event(
    tmp_path: Path,
) -> None:
    # A persistent-session recorder on a persistent broker (SIGTERM saves) sees exactly what
    # the link sent after the outage, without racing the reconnect.
    broker = Broker(tmp_path / "p", persistence=True)
    broker.start()
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, identifier="rec", clean_session=False
    ) as client:
        await client.subscribe("#", qos=1)
    link = MqttConnection(settings(broker.port), rooms=["room1"])
    desired: dict[str, LightCommand] = {}

    def on_availability(driver: str, device: str | None, available: bool) -> None:
        # What the room does on a driver's "available again": re-send the desired state.
        if device is None and available:
            link_task.append(driver)
            loop_driver.apply_soon(dict(desired))

    link_task: list[str] = []
    context = DriverContext(
        monotonic=lambda: 0.0, state_dir=tmp_path, mqtt=link, on_availability=on_availability
    )
    driver = Zigbee2MqttLights("z2m", {"devices": ["ceiling"]}, context)
    loop_driver = _Applier(driver)
    try:
        await driver.start()
        await link.start()
        await link.wait_connected(5)
        broker.stop()
        await eventually(lambda: not link.connected)
        for i in range(50):
            desired["ceiling"] = LightCommand(LightSetting(on=True, level=float(i + 1)), 0.0)
            await driver.apply(desired)
            link.publish_nowait("clinic/room1/event", f"e{i}", qos=1)
        broker.start()
        await link.wait_connected(5)
        await eventually(lambda: link_task == ["z2m"] and loop_driver.idle)
        assert await link.flush(5)
        await link.publish("sentinel", "end", qos=1)
        assert await link.flush(5)
        got = await collect_until_sentinel(broker.port, "rec")
    finally:
        await link.close()
        broker.stop()
    latest = b'{"state":"ON","brightness":127,"transition":0}'
    # The re-send may still find the backlog's command queued and replace it: one or two.
    sent = [p for t, p in got if t == "zigbee2mqtt/ceiling/set"]
    assert set(sent) == {latest} and len(sent) <= 2
    assert [p for t, p in got if t == "clinic/room1/event"] == [f"e{i}".encode() for i in range(50)]


class _Applier:
    """Applies commands from a synchronous callback, as the room's driver lane does."""

    def __init__(self, driver: Zigbee2MqttLights) -> None:
        self.driver = driver
        self.pending = 0

    @property
    def idle(self) -> bool:
        return self.pending == 0

    def apply_soon(self, commands: dict[str, LightCommand]) -> None:
        import asyncio

        self.pending += 1

        async def run() -> None:
            try:
                await self.driver.apply(commands)
            finally:
                self.pending -= 1

        asyncio.get_running_loop().create_task(run())


async def test_message_waiting_for_the_send_window_survives_a_dropped_link(
    broker: Broker,
) -> None:
    link = MqttConnection(settings(broker.port), rooms=["room1"])
    await link.start()
    await link.wait_connected(5)
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGSTOP)  # no PUBACKs: the send window fills up
    try:
        for i in range(30):
            await link.publish("q/x", str(i), qos=1)
        # 20 in flight; the next one must not be lost while it waits for a window slot.
        await eventually(lambda: link.queued <= 10)
    finally:
        broker.kill()
    await eventually(lambda: not link.connected)
    assert link.queued == 30
    await link.close()


@pytest.mark.parametrize("offline", ["offline", '{"state":"offline"}'])
async def test_bridge_offline_survives_a_broker_reconnect(tmp_path: Path, offline: str) -> None:
    broker = Broker(tmp_path / "p", persistence=True)
    broker.start()
    link = MqttConnection(settings(broker.port), rooms=["room1"])
    reports: list[tuple[str, str | None, bool]] = []
    context = DriverContext(
        monotonic=lambda: 0.0,
        state_dir=tmp_path,
        mqtt=link,
        on_availability=lambda d, dev, a: reports.append((d, dev, a)),
    )
    driver = Zigbee2MqttLights("z2m", {"devices": ["ceiling"]}, context)
    seen: list[bytes] = []
    try:
        await driver.start()
        # Registered after the driver's: its worker runs after the driver's handler.
        link.subscribe("zigbee2mqtt/bridge/state", lambda t, p: seen.append(p))
        await link.start()
        await link.wait_connected(5)
        async with aiomqtt.Client("127.0.0.1", broker.port) as z2m:
            await z2m.publish("zigbee2mqtt/bridge/state", offline.encode(), qos=1, retain=True)
        await eventually(lambda: len(seen) == 1)
        assert reports == [("z2m", None, False)] and not driver.health.available
        broker.stop()  # SIGTERM: the retained "offline" is saved and comes back
        await eventually(lambda: not link.connected)
        broker.start()
        await link.wait_connected(5)
        # >= : each subscription on the filter re-subscribes, and each SUBSCRIBE brings the
        # retained message again.
        await eventually(lambda: len(seen) >= 2)
        assert not driver.health.available
        assert driver.health.error == "zigbee2mqtt bridge offline"
        assert ("z2m", None, True) not in reports
        online = offline.replace("offline", "online")
        async with aiomqtt.Client("127.0.0.1", broker.port) as z2m:
            await z2m.publish("zigbee2mqtt/bridge/state", online.encode(), qos=1, retain=True)
        await eventually(lambda: driver.health.available)
        assert reports[-1] == ("z2m", None, True) and driver.health.error is None
    finally:
        await link.close()
        broker.stop()


async def test_clashing_client_ids_back_off_instead_of_a_tight_loop(broker: Broker) -> None:
    s = settings(broker.port, reconnect_min=0.02, reconnect_max=0.3)
    first = MqttConnection(s, rooms=["room1"])
    second = MqttConnection(s, rooms=["room1"])
    await first.start()
    await first.wait_connected(5)
    await second.start()  # same id: the broker drops whichever connected earlier
    try:
        await eventually(lambda: first.failures >= 5 and second.failures >= 5, timeout=15)
        # A kick right after connecting is not a stable connection: the back-off kept growing.
        assert first.connects >= 2
    finally:
        await first.close()
        await second.close()


def test_default_client_id_is_unique_per_controller_and_stable() -> None:
    host = socket.gethostname()
    one = MqttConnection(MqttSettings(), rooms=["room1"])
    two = MqttConnection(MqttSettings(), rooms=["room2"])
    assert one.client_id.startswith("sessionctl-") and one.client_id.endswith("-room1")
    assert one.client_id != two.client_id
    assert one.client_id == MqttConnection(MqttSettings(), rooms=["room1"]).client_id
    assert MqttConnection(MqttSettings(client_id="pi1"), rooms=["room1"]).client_id == "pi1"
    lone = MqttConnection(MqttSettings())
    assert lone.client_id != one.client_id and lone.client_id.startswith("sessionctl-")
    assert len(default_client_id(["r" * 80] * 3)) <= 64
    if host.isalnum():
        assert host in one.client_id
