"""The Hue driver against the fake bridge: request counts, rate limits, faults, errors."""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest

from drivers.base import DriverContext, DriverError, LightCommand, LightSetting
from drivers.hue_api import key_path, write_key
from drivers.mock import MockLights
from tests.hue.conftest import AvailabilityLog, MakeBridge, MakeDriver
from tests.hue.fake_bridge import FakeLight

PANIC = LightCommand(LightSetting(True, 100.0, mired=250), 0.0)


def cmd(level: float, mired: float | None = 370, transition: float = 0.0) -> LightCommand:
    return LightCommand(LightSetting(level > 0, level, mired=mired), transition)


async def test_forty_minute_fade_is_one_request_per_light(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=8)
    driver = await make_driver(bridge, groups="off")
    await driver.apply({d: cmd(10, 454, transition=2400) for d in driver.devices})
    puts = bridge.puts()
    assert len(puts) == 8
    assert all(p.status == 200 and p.kind == "lights" for p in puts)
    assert {p.body["transitiontime"] for p in puts} == {24000}
    assert {p.body["bri"] for p in puts} == {25}
    assert driver.capabilities("lamp1").max_transition == 6553.5


async def test_forty_minute_fade_on_a_group_is_one_group_action(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=8, groups={1: range(1, 9)})
    driver = await make_driver(bridge)  # groups: auto
    await driver.apply({d: cmd(10, 454, transition=2400) for d in driver.devices})
    puts = bridge.puts()
    assert [(p.path, p.body) for p in puts] == [
        (
            "/api/test-key/groups/1/action",
            {"on": True, "bri": 25, "ct": 454, "transitiontime": 24000},
        )
    ]
    assert all(light.state["bri"] == 25 for light in bridge.lights.values())


async def test_group_only_when_every_member_gets_the_same(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=4, groups={1: [1, 2], 2: [3, 4]})
    driver = await make_driver(bridge)
    await driver.apply({"lamp1": cmd(50), "lamp2": cmd(50), "lamp3": cmd(50), "lamp4": cmd(60)})
    paths = sorted(p.path.removeprefix("/api/test-key") for p in bridge.puts())
    assert paths == ["/groups/1/action", "/lights/3/state", "/lights/4/state"]


async def test_panic_on_twelve_lights_is_fast_and_never_rate_limited(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    """Measures real time: twelve individual commands at the bridge's 10/s limit."""
    bridge = await make_bridge(lights=12)
    driver = await make_driver(bridge, groups="off")
    started = time.monotonic()
    await driver.apply(dict.fromkeys(driver.devices, PANIC))
    elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert [p.status for p in bridge.puts()] == [200] * 12
    assert all(
        light.state["on"] and light.state["bri"] == 254 and light.state["ct"] == 250
        for light in bridge.lights.values()
    )
    assert {p.body["transitiontime"] for p in bridge.puts()} == {0}


async def test_new_command_preempts_a_running_fade(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=2)
    driver = await make_driver(bridge, groups="off")
    await driver.apply({d: cmd(5, 454, transition=2400) for d in driver.devices})
    await driver.apply({d: PANIC for d in driver.devices})
    last = {p.path: p.body for p in bridge.puts()}
    assert last["/api/test-key/lights/1/state"] == {"bri": 254, "ct": 250, "transitiontime": 0}
    assert bridge.lights["1"].state["_transitiontime"] == 0


async def test_burst_of_applies_stays_inside_the_rate_limits(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    """50 overlapping applies; the fake's window is 0.25 s so the test stays short."""
    bridge = await make_bridge(lights=6, groups={1: [1, 2, 3]}, window=0.25)
    driver = await make_driver(bridge)
    rng = random.Random(7)
    latest: dict[str, int] = {}
    tasks = []
    for i in range(50):
        chosen = rng.sample(driver.devices, rng.randint(1, 6))
        level = 1 + i  # every apply distinct, so the final state shows who won
        latest.update(dict.fromkeys(chosen, level))
        tasks.append(asyncio.create_task(driver.apply(dict.fromkeys(chosen, cmd(level)))))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert all(p.status == 200 for p in bridge.puts())
    assert bridge.max_in_window("lights") <= 10
    assert bridge.max_in_window("groups") <= 1
    for device, level in latest.items():
        light = bridge.lights[device.removeprefix("lamp")]
        assert light.state["bri"] == round(level * 254 / 100)
    assert len(bridge.puts()) < 50  # coalesced: the latest desired state per device wins


async def test_back_to_back_applies_stay_inside_the_rate_limits(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=3, window=0.2)
    driver = await make_driver(bridge, groups="off")
    for i in range(15):
        await driver.apply({d: cmd(10 + i) for d in driver.devices})
    assert [p.status for p in bridge.puts()] == [200] * 45
    assert bridge.max_in_window("lights") <= 10


async def test_two_drivers_on_one_bridge_share_its_budget(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=16, window=0.2)
    first = await make_driver(bridge, groups="off", lights={f"a{i}": i for i in range(1, 9)})
    second = await make_driver(bridge, groups="off", lights={f"b{i}": i for i in range(9, 17)})
    await asyncio.gather(
        first.apply(dict.fromkeys(first.devices, PANIC)),
        second.apply(dict.fromkeys(second.devices, PANIC)),
    )
    assert [p.status for p in bridge.puts()] == [200] * 16
    assert bridge.max_in_window("lights") <= 10


async def test_http_429_backs_off_and_retries(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=3, light_limit=2, window=0.3)
    driver = await make_driver(bridge, groups="off", light_limit=10, rate_window=0.3)
    await driver.apply({d: cmd(40) for d in driver.devices})
    statuses = [p.status for p in bridge.puts()]
    assert 429 in statuses
    assert statuses.count(200) == 3
    assert all(light.state["bri"] == 102 for light in bridge.lights.values())


async def test_bridge_busy_error_backs_off_and_retries(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=1)
    driver = await make_driver(bridge)
    bridge.busy = 1
    await driver.apply({"lamp1": cmd(40)})
    answers = [p.answer[0] for p in bridge.puts()]
    assert [next(iter(a)) for a in answers] == ["error", "success"]
    assert answers[0]["error"]["type"] == 901
    assert bridge.lights["1"].state["bri"] == 102


async def test_colour_temperature_clamped_to_each_lamp(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    lights = {
        1: FakeLight("Warm only", ct_range=(153, 454)),
        2: FakeLight("Cool end", ct_range=(200, 500)),
        3: FakeLight("White", type="Dimmable light", ct_range=None, xy=False),
    }
    bridge = await make_bridge(lights=lights)
    driver = await make_driver(bridge, groups="off")
    assert driver.capabilities("lamp1").mired_range == (153, 454)
    assert driver.capabilities("lamp3").color_temp is False
    await driver.apply({"lamp1": cmd(50, 500), "lamp2": cmd(50, 153), "lamp3": cmd(50, 300)})
    bodies = {p.path.rsplit("/", 2)[-2]: p.body for p in bridge.puts()}
    assert bodies["1"]["ct"] == 454
    assert bodies["2"]["ct"] == 200
    assert "ct" not in bodies["3"]
    assert all(p.status == 200 and "success" in p.answer[0] for p in bridge.puts())


async def test_on_true_is_sent_only_when_needed(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=1)
    driver = await make_driver(bridge)
    for level in (50, 60, 0, 30):
        await driver.apply({"lamp1": cmd(level, None)})
    assert [p.body for p in bridge.puts()] == [
        {"on": True, "bri": 127, "transitiontime": 0},
        {"bri": 152, "transitiontime": 0},
        {"on": False, "transitiontime": 0},
        {"on": True, "bri": 76, "transitiontime": 0},
    ]


async def test_lamp_switched_off_elsewhere_is_switched_back_on(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=1)
    driver = await make_driver(bridge)
    await driver.apply({"lamp1": cmd(50, None)})
    bridge.lights["1"].state["on"] = False  # the wall switch or another app
    await driver.apply({"lamp1": cmd(60, None)})
    bodies = [p.body for p in bridge.puts()]
    assert bodies[1:] == [
        {"bri": 152, "transitiontime": 0},
        {"on": True, "bri": 152, "transitiontime": 0},
    ]
    assert bridge.puts()[1].answer[0]["error"]["type"] == 201
    assert bridge.lights["1"].state["on"] is True


async def test_dead_bridge_delays_nobody_and_recovers(
    make_bridge: MakeBridge,
    make_driver: MakeDriver,
    context: DriverContext,
    availability: AvailabilityLog,
) -> None:
    """Measures the loop's responsiveness while the bridge hangs (real time)."""
    bridge = await make_bridge(lights=2)
    driver = await make_driver(bridge, timeout=0.5, retry_initial=0.1, retry_max=0.2)
    other = MockLights("mock", {"devices": ["x"]}, context)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    bridge.answering = False
    started = time.monotonic()
    apply = asyncio.create_task(driver.apply({"lamp1": cmd(50)}))
    await other.apply({"x": cmd(50)})  # another driver is not held up
    assert time.monotonic() - started < 0.2
    with pytest.raises(DriverError, match="did not answer"):
        await apply
    assert time.monotonic() - started < 0.5 + 1.0
    assert driver.health.available is False
    assert ("hue", None, False) in availability.events
    with pytest.raises(DriverError, match="unreachable"):
        await driver.apply({"lamp1": cmd(50)})  # fails fast while the bridge is down
    bridge.answering = True
    await availability.wait_for(("hue", None, True))
    assert driver.health.available is True
    await driver.apply({"lamp1": cmd(70)})
    ticking.cancel()
    assert max(gaps) < 0.25  # the event loop never waited on the bridge
    assert bridge.lights["1"].state["bri"] == 178


async def test_unauthorised_key_gives_one_clear_error(
    make_bridge: MakeBridge, make_driver: MakeDriver, availability: AvailabilityLog
) -> None:
    bridge = await make_bridge(lights=2)
    driver = await make_driver(bridge, username="not-a-key")
    assert driver.health.available is False
    assert availability.events == [("hue", None, False)]
    with pytest.raises(DriverError) as caught:
        await driver.apply({"lamp1": cmd(50)})
    message = str(caught.value)
    assert "unauthorized" in message
    assert f"sessionctl hue pair --host {bridge.host}" in message
    assert driver.health.error is not None and "sessionctl hue pair" in driver.health.error
    assert bridge.puts() == []


async def test_missing_key_names_pairing_and_picks_up_a_new_key(
    make_bridge: MakeBridge, make_driver: MakeDriver, context: DriverContext
) -> None:
    bridge = await make_bridge(lights=1)
    driver = await make_driver(bridge, username=None)
    with pytest.raises(DriverError, match="sessionctl hue pair"):
        await driver.apply({"lamp1": cmd(50)})
    write_key(key_path(context.state_dir, bridge.host), bridge.host, "test-key")
    await driver.apply({"lamp1": cmd(50)})
    assert driver.health.available is True
    assert bridge.lights["1"].state["bri"] == 127


async def test_light_the_bridge_does_not_have_is_reported(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=1)
    driver = await make_driver(bridge, lights={"lamp1": 1, "ghost": 9})
    assert driver.health.devices_offline == {"ghost"}
    assert driver.health.error is not None and "ghost (light 9)" in driver.health.error
    with pytest.raises(DriverError, match="not available"):
        await driver.apply({"ghost": cmd(50)})
    await driver.apply({"lamp1": cmd(50)})
    assert bridge.lights["1"].state["bri"] == 127


async def test_phue_never_writes_to_home(
    make_bridge: MakeBridge,
    make_driver: MakeDriver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    bridge = await make_bridge(lights=2)
    driver = await make_driver(bridge)
    await driver.apply({d: cmd(20) for d in driver.devices})
    assert os.listdir(home) == []


async def test_queued_commands_coalesce_latest_wins(
    make_bridge: MakeBridge, make_driver: MakeDriver
) -> None:
    bridge = await make_bridge(lights=2)
    driver = await make_driver(bridge, groups="off")
    await asyncio.gather(
        driver.apply({"lamp1": cmd(10, None)}),
        driver.apply({"lamp2": cmd(20, None)}),
        driver.apply({"lamp2": cmd(30, None)}),  # replaces the queued 20 % before it is sent
    )
    sent = sorted((p.path, p.body["bri"]) for p in bridge.puts())
    assert sent == [("/api/test-key/lights/1/state", 25), ("/api/test-key/lights/2/state", 76)]


async def test_bridge_dead_at_start_is_retried_in_the_background(
    make_bridge: MakeBridge, make_driver: MakeDriver, availability: AvailabilityLog
) -> None:
    bridge = await make_bridge(lights=1)
    bridge.answering = False
    started = time.monotonic()
    driver = await make_driver(bridge, timeout=0.3, retry_initial=0.1, retry_max=0.2)
    assert time.monotonic() - started < 0.3 + 1.0  # start() never waits out a dead bridge
    assert driver.health.available is False
    bridge.answering = True
    await availability.wait_for(("hue", None, True))
    await driver.apply({"lamp1": cmd(50)})
    assert bridge.lights["1"].state["bri"] == 127


async def test_rooms_sharing_a_bridge_panic_at_once_without_false_unreachable(
    make_bridge: MakeBridge, make_driver: MakeDriver, availability: AvailabilityLog
) -> None:
    """Three rooms' drivers on one bridge, each wanting one group action (1/s): time spent
    waiting for the shared budget or for the worker thread is not the bridge failing to
    answer."""
    bridge = await make_bridge(lights=9, groups={1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]})
    drivers = [
        await make_driver(bridge, lights={f"r{r}l{i}": i for i in range(3 * r + 1, 3 * r + 4)})
        for r in range(3)
    ]
    await asyncio.gather(*(d.apply(dict.fromkeys(d.devices, PANIC)) for d in drivers))
    assert all(d.health.available and d.health.error is None for d in drivers)
    assert not [e for e in availability.events if e[2] is False]
    assert all(light.state["bri"] == 254 for light in bridge.lights.values())
    assert all(p.status == 200 for p in bridge.puts())
    assert bridge.max_in_window("lights") <= 10
    assert bridge.max_in_window("groups") <= 1
