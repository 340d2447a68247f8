"""Each MQTT light driver's wire bytes against recorded payloads in the devices' real formats
(tests/fixtures/mqtt/), through the real link and a real mosquitto."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from controller.fades import commands_for_fade
from controller.mqtt import MqttConnection, MqttSettings
from drivers import build
from drivers.base import DriverConfigError, DriverContext, LightCommand, LightDriver, LightSetting
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import Recorder
from tests.mqtt.util import eventually

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mqtt"
DRIVER_FILES = ["zigbee2mqtt.json", "tasmota.json", "mqtt_json.json"]


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


def setting(raw: dict[str, Any]) -> LightSetting:
    return LightSetting(on=raw["on"], level=float(raw["level"]), mired=raw.get("mired"))


class Availability:
    def __init__(self) -> None:
        self.reports: list[tuple[str, str | None, bool]] = []

    def __call__(self, driver: str, device: str | None, available: bool) -> None:
        self.reports.append((driver, device, available))


@pytest.fixture
async def link(broker: Broker) -> AsyncIterator[MqttConnection]:
    conn = MqttConnection(MqttSettings(port=broker.port, prefix="clinic", client_id="fx"))
    await conn.start()
    await conn.wait_connected(5)
    yield conn
    await conn.close()


def make_driver(
    spec: dict[str, Any], link: MqttConnection, tmp_path: Path, availability: Availability
) -> LightDriver:
    context = DriverContext(
        monotonic=lambda: 0.0, state_dir=tmp_path, mqtt=link, on_availability=availability
    )
    driver = build(spec["type"], "lights", spec["options"], context)
    assert isinstance(driver, LightDriver)
    return driver


async def feed(broker: Broker, messages: list[dict[str, str]]) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for m in messages:
            await client.publish(m["topic"], m["payload"].encode(), qos=1)


def wire(recorder: Recorder, prefix_filter: tuple[str, ...]) -> list[dict[str, str]]:
    return [
        {"topic": str(m.topic), "payload": bytes(m.payload).decode()}  # type: ignore[arg-type]
        for m in recorder.messages
        if str(m.topic).startswith(prefix_filter) and not m.retain
    ]


def command_topics(expected: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple({e["topic"] for e in expected})


@pytest.mark.parametrize("fixture", DRIVER_FILES)
async def test_driver_bytes_match_recorded_payloads(
    fixture: str, broker: Broker, recorder: Recorder, link: MqttConnection, tmp_path: Path
) -> None:
    data = load(fixture)
    for case in data["cases"]:
        recorder.messages.clear()
        driver = make_driver(data["driver"], link, tmp_path, Availability())
        await driver.start()
        await link.flush()
        if case.get("before"):
            await feed(broker, case["before"])
            reported: dict[str, bytes] = driver.reported  # type: ignore[attr-defined]
            await eventually(lambda r=reported: len(r) > 0)  # type: ignore[misc]
        c = case["command"]
        await driver.apply({c["device"]: LightCommand(setting(c), float(c["transition"]))})
        topics, want = command_topics(case["expect"]), len(case["expect"])
        await recorder.wait_for(lambda r, t=topics, n=want: len(wire(r, t)) >= n)  # type: ignore[misc]
        assert wire(recorder, topics) == case["expect"], case["name"]


async def test_z2m_40_minute_fade_is_one_message(
    recorder: Recorder, link: MqttConnection, tmp_path: Path
) -> None:
    data = load("zigbee2mqtt.json")
    await _check_fade(data, data["fade_40_min"]["expect"], recorder, link, tmp_path)


async def test_tasmota_40_minute_fade_is_the_chunked_sequence(
    recorder: Recorder, link: MqttConnection, tmp_path: Path
) -> None:
    data = load("tasmota.json")
    lines = (FIXTURES / data["fade_40_min"]["expect_file"]).read_text().splitlines()
    expected = [json.loads(line) for line in lines]
    assert len(expected) == 120
    assert all(e["at"] == 20.0 * i for i, e in enumerate(expected))
    assert expected[-1]["payload"] == "Fade 1; Speed2 40; Dimmer 10; CT 454"
    await _check_fade(data, expected, recorder, link, tmp_path)


async def _check_fade(
    data: dict[str, Any],
    expected: list[dict[str, Any]],
    recorder: Recorder,
    link: MqttConnection,
    tmp_path: Path,
) -> None:
    fade = data["fade_40_min"]
    driver = make_driver(data["driver"], link, tmp_path, Availability())
    await driver.start()
    plan = commands_for_fade(
        setting(fade["from"]),
        setting(fade["to"]),
        fade["duration"],
        driver.capabilities(fade["device"]),
    )
    assert [t for t, _ in plan] == [e["at"] for e in expected]
    for _, command in plan:
        await driver.apply({fade["device"]: command})
        # The chunks are 20 s apart in a room; here they come at once, and the link keeps only
        # the latest queued command per device: let each one reach the wire first.
        await eventually(lambda: link.queued == 0)
    topics = command_topics(expected)
    await recorder.wait_for(lambda r: len(wire(r, topics)) >= len(expected))
    assert wire(recorder, topics) == [
        {"topic": e["topic"], "payload": e["payload"]} for e in expected
    ]


async def test_availability_in_every_payload_style(
    broker: Broker, link: MqttConnection, tmp_path: Path
) -> None:
    cases = load("availability.json")["cases"]
    drivers: dict[str, tuple[LightDriver, Availability]] = {}
    for name in DRIVER_FILES:
        spec = load(name)["driver"]
        availability = Availability()
        driver = make_driver(spec, link, tmp_path, availability)
        await driver.start()
        drivers[spec["type"]] = (driver, availability)
    await link.flush()
    for case in cases:
        driver, availability = drivers[case["driver"]]
        before = len(availability.reports)
        await feed(broker, [case])
        await eventually(lambda a=availability, n=before: len(a.reports) > n)  # type: ignore[misc]
        assert availability.reports[-1] == ("lights", case["device"], case["available"])
        offline = driver.health.devices_offline
        assert (case["device"] in offline) is (not case["available"])


async def test_commands_are_never_retained(
    broker: Broker, link: MqttConnection, tmp_path: Path
) -> None:
    for name in DRIVER_FILES:
        data = load(name)
        driver = make_driver(data["driver"], link, tmp_path, Availability())
        for case in data["cases"]:
            c = case["command"]
            await driver.apply({c["device"]: LightCommand(setting(c), float(c["transition"]))})
    await link.flush()
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe("#", qos=1)
        # The broker sends retained messages while handling the SUBSCRIBE, so everything
        # retained arrives before this later publish comes back.
        await client.publish("sentinel", b"end", qos=1)
        retained: list[str] = []
        async for message in client.messages:
            if str(message.topic) == "sentinel":
                break
            if not str(message.topic).endswith("/status"):
                retained.append(str(message.topic))
    assert retained == []


def test_drivers_need_the_mqtt_link(tmp_path: Path) -> None:
    context = DriverContext(monotonic=lambda: 0.0, state_dir=tmp_path)
    for name in DRIVER_FILES:
        spec = load(name)["driver"]
        with pytest.raises(DriverConfigError, match="MQTT"):
            build(spec["type"], "lights", spec["options"], context)
