"""Fixtures for the Hue driver: a fake bridge on the test's loop and drivers pointed at it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.base import DriverContext
from drivers.hue import HueLights
from tests.hue.fake_bridge import FakeHueBridge


class AvailabilityLog:
    """Records ``report_availability`` calls and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, bool]] = []
        self._changed = asyncio.Event()

    def __call__(self, driver: str, device: str | None, available: bool) -> None:
        self.events.append((driver, device, available))
        self._changed.set()

    async def wait_for(self, event: tuple[str, str | None, bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while event not in self.events:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def availability() -> AvailabilityLog:
    return AvailabilityLog()


@pytest.fixture
def context(tmp_path: Path, availability: AvailabilityLog) -> DriverContext:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    return DriverContext(
        monotonic=time.monotonic, state_dir=state_dir, on_availability=availability
    )


MakeBridge = Callable[..., Awaitable[FakeHueBridge]]
MakeDriver = Callable[..., Awaitable[HueLights]]


@pytest.fixture
async def make_bridge() -> AsyncIterator[MakeBridge]:
    bridges: list[FakeHueBridge] = []

    async def make(**kwargs: Any) -> FakeHueBridge:
        bridge = FakeHueBridge(**kwargs)
        await bridge.start()
        bridges.append(bridge)
        return bridge

    yield make
    for bridge in bridges:
        await bridge.close()


@pytest.fixture
async def make_driver(context: DriverContext) -> AsyncIterator[MakeDriver]:
    """``await make_driver(bridge, groups="off", ...)``: a started driver, one device per lamp
    named ``lamp<id>``, using the fake's default key."""
    drivers: list[HueLights] = []

    async def make(bridge: FakeHueBridge, *, start: bool = True, **options: Any) -> HueLights:
        opts: dict[str, Any] = {
            "host": bridge.host,
            "username": "test-key",
            "lights": {f"lamp{i}": int(i) for i in bridge.lights},
            "timeout": 1.0,
            "light_limit": bridge.limits["lights"],
            "group_limit": bridge.limits["groups"],
            "rate_window": bridge.window,
            **options,
        }
        opts = {k: v for k, v in opts.items() if v is not None}
        driver = HueLights("hue", opts, context)
        drivers.append(driver)
        if start:
            await driver.start()
        return driver

    yield make
    for driver in drivers:
        await driver.close()
