"""controller.mqtt against a real mosquitto: reconnects, outbox, will, credentials, close."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import aiomqtt
import pytest

from controller.mqtt import MqttConnection, MqttSettings, Outbox, _Outgoing
from tests.mqtt.broker import Broker, free_port
from tests.mqtt.conftest import USERS, Recorder
from tests.mqtt.util import eventually

pytestmark = pytest.mark.integration


def settings(port: int, **kw: object) -> MqttSettings:
    base: dict[str, object] = {
        "port": port,
        "prefix": "clinic",
        "client_id": "ctl-test",
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "keepalive": 5,
    }
    base.update(kw)
    return MqttSettings.model_validate(base)


def test_outbox_keeps_latest_retained_and_drops_oldest_plain_first() -> None:
    box = Outbox(limit=3)
    box.put(_Outgoing("a", b"1", 0, False))
    box.put(_Outgoing("s", b"old", 1, True))
    box.put(_Outgoing("b", b"2", 0, False))
    box.put(_Outgoing("s", b"new", 1, True))
    assert len(box) == 3
    box.put(_Outgoing("c", b"3", 0, False))
    assert box.dropped == 1
    out = []
    while (item := box.pop()) is not None:
        out.append((item.topic, item.payload))
    assert out == [("b", b"2"), ("s", b"new"), ("c", b"3")]


def test_outbox_drops_retained_only_when_nothing_else_is_left() -> None:
    box = Outbox(limit=2)
    for topic in ("x", "y", "z"):
        box.put(_Outgoing(topic, b"v", 1, True))
    assert box.dropped == 1
    assert [box.pop().topic, box.pop().topic] == ["y", "z"]  # type: ignore[union-attr]


def test_backoff_is_capped_and_jittered() -> None:
    link = MqttConnection(settings(1, reconnect_min=1, reconnect_max=30), rng=random.Random(1))
    delays = [link._backoff(n) for n in range(12)]
    assert all(0.5 <= d <= 30 for d in delays)
    assert delays[-1] >= 15 and delays[0] <= 1
    assert len({round(d, 6) for d in delays}) == len(delays)


async def test_round_trip_birth_and_single_room_will(broker: Broker, recorder: Recorder) -> None:
    link = MqttConnection(settings(broker.port), rooms=["room1"])
    seen: list[tuple[str, bytes]] = []
    link.subscribe("dev/+/state", lambda t, p: seen.append((t, p)))
    assert link.will_topic == "clinic/room1/status"
    await link.start()
    await link.wait_connected(5)
    await recorder.wait_for(lambda r: r.on("clinic/room1/status") == [b"online"])
    async with aiomqtt.Client("127.0.0.1", broker.port) as other:
        await other.publish("dev/lamp/state", b'{"state":"ON"}', qos=1)
    await eventually(lambda: seen == [("dev/lamp/state", b'{"state":"ON"}')])
    await link.publish("dev/lamp/set", '{"state":"OFF"}', qos=1)
    await recorder.wait_for(lambda r: r.on("dev/lamp/set") == [b'{"state":"OFF"}'])
    await link.close()
    await recorder.wait_for(lambda r: r.on("clinic/room1/status")[-1:] == [b"offline"])
    assert not link.connected


async def test_publishes_while_down_are_sent_in_order_after_connect(tmp_path: Path) -> None:
    port = free_port()
    link = MqttConnection(settings(port), rooms=["room1"])
    await link.start()
    for i in range(3):
        await link.publish("q/cmd", f"{i}", qos=1)
    await link.publish("q/state", "s1", qos=1, retain=True)
    await link.publish("q/state", "s2", qos=1, retain=True)
    await eventually(lambda: link.last_error is not None)
    assert link.queued == 4 and not link.connected
    broker = Broker(tmp_path / "b", port=port)
    broker.start()
    try:
        await link.wait_connected(5)
        assert await link.flush(5)
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe("q/state", qos=1)
            message = await anext(aiter(client.messages))
            assert message.payload == b"s2" and message.retain
        await link.close()
    finally:
        broker.stop()


async def test_outage_queue_arrives_in_order(tmp_path: Path) -> None:
    # A persistent-session subscriber on a persistent broker (stopped with SIGTERM, so it
    # saves) gets everything published while it was away, in order: no race with the link.
    broker = Broker(tmp_path / "p", persistence=True)
    broker.start()
    try:
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, identifier="rec", clean_session=False
        ) as client:
            await client.subscribe("order/#", qos=1)
        link = MqttConnection(settings(broker.port), rooms=["room1"])
        await link.start()
        await link.wait_connected(5)
        broker.stop()
        await eventually(lambda: not link.connected)
        for i in range(5):
            await link.publish("order/x", str(i), qos=1)
        broker.start()
        await link.wait_connected(5)
        assert await link.flush(5)
        got: list[bytes] = []
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, identifier="rec", clean_session=False
        ) as client:
            async for message in client.messages:
                got.append(bytes(message.payload))  # type: ignore[arg-type]
                if len(got) == 5:
                    break
        assert got == [b"0", b"1", b"2", b"3", b"4"]
        await link.close()
    finally:
        broker.stop()


async def test_mqtt5_connects(broker: Broker, recorder: Recorder) -> None:
    link = MqttConnection(settings(broker.port, protocol="5", clean_session=False), rooms=["r5"])
    await link.start()
    await link.wait_connected(5)
    await link.publish("v5/x", "hello", qos=1)
    await recorder.wait_for(lambda r: r.on("v5/x") == [b"hello"])
    await link.close()


async def test_broker_restart_resubscribes_and_calls_on_connect(broker: Broker) -> None:
    link = MqttConnection(settings(broker.port), rooms=["room1"])
    seen: list[bytes] = []
    connects: list[int] = []
    disconnects: list[int] = []
    link.subscribe("in/#", lambda t, p: seen.append(p))
    link.on_connect(lambda: connects.append(1))
    link.on_disconnect(lambda: disconnects.append(1))
    await link.start()
    await link.wait_connected(5)
    broker.kill()
    await eventually(lambda: disconnects == [1])
    broker.start()
    await eventually(lambda: len(connects) == 2)
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish("in/x", b"after-restart", qos=1)
    await eventually(lambda: seen == [b"after-restart"])
    await link.close()


async def test_bad_credentials_log_once_and_retry_slowly(
    auth_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="controller.mqtt")
    s = settings(auth_broker.port, username="room1", password="wrong", auth_retry=0.2)
    link = MqttConnection(s, rooms=["room1"])
    await link.start()
    await eventually(lambda: link.attempts >= 3)
    assert "refused the credentials" in (link.last_error or "")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "refused" in errors[0].getMessage()
    assert link.health()["connected"] is False
    await link.close()


async def test_good_credentials_connect(auth_broker: Broker) -> None:
    s = settings(auth_broker.port, username="room1", password=USERS["room1"])
    link = MqttConnection(s, rooms=["room1"])
    await link.start()
    await link.wait_connected(5)
    await link.close()


async def test_multi_room_process_uses_controller_will(broker: Broker, recorder: Recorder) -> None:
    link = MqttConnection(settings(broker.port), rooms=["room1", "room2"])
    assert link.will_topic == "clinic/_controller/ctl-test/status"
    await link.start()
    await link.wait_connected(5)
    for topic in ("clinic/room1/status", "clinic/room2/status", link.will_topic):
        await recorder.wait_for(lambda r, t=topic: r.on(t) == [b"online"])  # type: ignore[misc]
    await link.close()
    await recorder.wait_for(lambda r: r.on(link.will_topic)[-1:] == [b"offline"])


async def test_close_does_not_reconnect(broker: Broker) -> None:
    link = MqttConnection(settings(broker.port), rooms=["room1"])
    await link.start()
    await link.wait_connected(5)
    await link.close()
    broker.kill()
    broker.start()
    assert link.connects == 1 and not link.connected
