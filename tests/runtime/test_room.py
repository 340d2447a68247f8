"""The room runtime on virtual time: cues on time, faults stay local, level-triggered re-sends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from controller.clock import VirtualClock
from controller.commands import Command
from controller.config import RoomConfig
from controller.room import Room
from controller.site import build_room_drivers
from controller.virtualtime import run_virtual
from drivers.base import DriverContext
from drivers.mock import MockAudio, MockLights
from tests.core.conftest import scene_from

SCENE = scene_from(
    """
name: R
roles: {ambient: a, accent: b}
phases:
  - id: one
    duration: 10m
    cues:
      - {at: 0s, lights: {roles: [ambient, accent], level: 60, kelvin: 3500}}
      - {at: 0s, music: {play: p, volume: 30, fade: 10s}}
      - {at: 2m, lights: {roles: [ambient, accent], level: 10, kelvin: 2200, fade: 40m}}
  - id: two
    duration: 1h
""",
    "r.yaml",
)

ROOM = RoomConfig.model_validate(
    {
        "id": "room-1",
        "drivers": {
            "hue": {"type": "mock-light", "devices": {"ceiling": {"max_transition": 6553.5}}},
            "tas": {
                "type": "mock-light",
                "devices": {"lamp": {"max_transition": 20, "min_interval": 0.5}},
            },
            "audio": {"type": "mock-audio"},
        },
        "roles": {"ambient": "hue/ceiling", "accent": "tas/lamp"},
        "audio": "audio",
        "apply_timeout": 2,
    }
)


def run(body: Callable[[Room, VirtualClock], Awaitable[None]], config: RoomConfig = ROOM) -> None:
    clock = VirtualClock()

    async def main() -> None:
        room_holder: dict[str, Room] = {}

        def context(_: str) -> DriverContext:
            return DriverContext(
                monotonic=clock.monotonic,
                state_dir=Path("."),
                on_availability=lambda d, dev, ok: room_holder["room"].on_availability(d, dev, ok),
            )

        drivers = build_room_drivers(config, context)
        room = Room(config, {"r": SCENE}, drivers, clock=clock, overlays=SCENE.overlays)
        room_holder["room"] = room
        await room.start()
        try:
            await body(room, clock)
        finally:
            await room.close()

    run_virtual(main(), clock)


def lights(room: Room, name: str) -> MockLights:
    driver = room.drivers.lights[name]
    assert isinstance(driver, MockLights)
    return driver


async def start(room: Room) -> float:
    outcome = await room.submit(Command("start", "s1", "nurse", {"scene": "r"}))
    assert outcome.accepted
    return room.clock.monotonic()


def test_a_40_minute_fade_is_one_command_natively_and_chunks_otherwise() -> None:
    async def body(room: Room, clock: VirtualClock) -> None:
        t0 = await start(room)
        await asyncio.sleep(60 * 60)
        hue = [c for c in lights(room, "hue").calls if c.at > t0 + 1]
        assert len(hue) == 1 and hue[0].at == pytest.approx(t0 + 120)
        assert hue[0].command.transition == pytest.approx(2400)
        tas = [c for c in lights(room, "tas").calls if c.at > t0 + 1]
        assert len(tas) == 2400 / 20
        assert lights(room, "tas").level_at("lamp") == pytest.approx(10)
        assert lights(room, "hue").level_at("ceiling", t0 + 120 + 1200) == pytest.approx(35)

    run(body)


def test_a_hanging_driver_delays_no_other_driver_and_no_cue() -> None:
    async def body(room: Room, clock: VirtualClock) -> None:
        lights(room, "tas").set_fault("hang")
        t0 = await start(room)
        await asyncio.sleep(300)
        hue = lights(room, "hue").calls[1:]  # after the safe state sent by start()
        assert [round(c.at - t0, 6) for c in hue] == [0.0, 120.0]
        health = room.health()["drivers"]["tas"]
        assert not health["ok"] and "no answer within 2s" in health["last_error"]
        assert room.health()["drivers"]["hue"]["ok"]

    run(body)


def test_a_driver_that_comes_back_is_sent_the_desired_state_again() -> None:
    async def body(room: Room, clock: VirtualClock) -> None:
        tas = lights(room, "tas")
        tas.set_fault("offline")
        t0 = await start(room)
        await asyncio.sleep(30)
        assert len(tas.calls) == 1 and tas.calls[0].at <= t0  # only the safe state, from start()
        tas.set_fault(None)
        await asyncio.sleep(0.5)
        assert tas.setting_at("lamp").level == pytest.approx(60)
        assert room.health()["drivers"]["tas"]["ok"]

    run(body)


def test_a_failing_driver_is_retried_with_back_off_and_recovers() -> None:
    async def body(room: Room, clock: VirtualClock) -> None:
        hue = lights(room, "hue")
        hue.set_fault("raise")
        await start(room)
        await asyncio.sleep(10)
        failures = room.health()["drivers"]["hue"]["failures"]
        assert 2 <= failures <= 5
        hue.set_fault(None)
        await asyncio.sleep(40)
        assert hue.setting_at("ceiling").level == pytest.approx(60)
        events: list[Any] = []
        room.add_listener(events.append)
        assert room.health()["drivers"]["hue"]["ok"]

    run(body)


def test_panic_reaches_every_light_and_the_music_at_once() -> None:
    async def body(room: Room, clock: VirtualClock) -> None:
        await start(room)
        await asyncio.sleep(200)
        t = clock.monotonic()
        await room.submit(Command("panic", "p1", "nurse", {}))
        await asyncio.sleep(0)
        for name, device in (("hue", "ceiling"), ("tas", "lamp")):
            last = lights(room, name).calls_for(device)[-1]
            assert last.at == t and last.command.transition == 0
            assert last.command.setting.level == 100 and last.command.setting.mired == 250
        audio = room.drivers.audio
        assert isinstance(audio, MockAudio)
        assert audio.calls[-1].command is not None and audio.calls[-1].command.urgent
        assert not audio.playing
        assert room.view()["alert"] == "high"

    run(body)


def test_panic_does_not_wait_for_a_driver_in_back_off() -> None:
    async def body(room: Room, clock: VirtualClock) -> None:
        hue = lights(room, "hue")
        hue.set_fault("raise")
        await start(room)
        await asyncio.sleep(60)  # back-off has grown towards its 30 s cap
        hue.set_fault(None)
        t = clock.monotonic()
        await room.submit(Command("panic", "p1", "nurse", {}))
        await asyncio.sleep(0)
        last = hue.calls_for("ceiling")[-1]
        assert last.at == t and last.command.setting.level == 100

    run(body)


def test_panic_overtakes_a_call_still_in_flight() -> None:
    async def body(room: Room, clock: VirtualClock) -> None:
        tas = lights(room, "tas")
        await start(room)
        tas.set_fault("slow", delay=1.5)
        await room.submit(Command("extend", "e1", "nurse", {"seconds": 60}))
        await asyncio.sleep(115)  # the 2-minute cue goes to the slow lamp at t=120
        await asyncio.sleep(5.5)
        tas.set_fault(None)
        t = clock.monotonic()
        await room.submit(Command("panic", "p1", "nurse", {}))
        await asyncio.sleep(0)
        assert tas.calls_for("lamp")[-1].at == t
        assert tas.setting_at("lamp").level == 100
        await asyncio.sleep(5)
        assert room.health()["drivers"]["tas"]["ok"], "the overtaken call counts for nothing"

    run(body)


def test_no_busy_loop_while_a_stepping_driver_is_in_back_off() -> None:
    config = ROOM.model_copy(deep=True)
    config.drivers["tas"] = config.drivers["tas"].model_validate(
        {"type": "mock-light", "devices": {"lamp": {"max_transition": 0, "min_interval": 0.5}}}
    )

    async def body(room: Room, clock: VirtualClock) -> None:
        turns = 0
        original = room._turn

        async def counting() -> None:
            nonlocal turns
            turns += 1
            await original()

        room._turn = counting  # type: ignore[method-assign]
        await start(room)
        await asyncio.sleep(121)  # the software fade is stepping now
        lights(room, "tas").set_fault("raise")
        before = turns
        await asyncio.sleep(60)
        assert turns - before < 200, f"{turns - before} loop turns in a minute of back-off"

    run(body, config)


def test_recovery_is_announced_once() -> None:
    async def body(room: Room, clock: VirtualClock) -> None:
        events: list[str] = []
        room.add_listener(lambda u: events.append(u.data["kind"]) if u.kind == "event" else None)
        hue = lights(room, "hue")
        hue.set_fault("raise")
        await start(room)
        await asyncio.sleep(3)
        hue.set_fault(None)
        await asyncio.sleep(600)
        assert events.count("driver_recovered") == 1

    run(body)


class PacedLights(MockLights):
    """A driver that paces itself, like Hue at ten commands a second, and says so."""

    def apply_budget(self, devices: int) -> float:
        return 4.0


def test_a_driver_that_paces_itself_gets_its_own_budget() -> None:
    async def body(room: Room, clock: VirtualClock) -> None:
        context = DriverContext(monotonic=clock.monotonic, state_dir=Path("."))
        paced = PacedLights("tas", {"devices": {"lamp": {}}, "fault": "slow", "delay": 3}, context)
        room.drivers.lights["tas"] = paced
        room._lanes["tas"].driver = paced
        await start(room)
        await asyncio.sleep(10)
        assert room.health()["drivers"]["tas"]["ok"], "3 s is within its 4 s budget"
        assert paced.setting_at("lamp").level == 60

    run(body)
