"""Readiness and the watchdog of the real service, in-process, against a fake notify socket.

These tests measure the runtime itself, so they run in real time (short intervals) and compare
times with generous margins.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path

import pytest

from controller.config import load_config
from controller.service import Service
from tests.service.conftest import NotifySocket, http_get, write_config

WATCHDOG_SEC = 0.4  # what WatchdogSec would be; pings every 0.2 s


@pytest.fixture
def watchdog_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", str(int(WATCHDOG_SEC * 1e6)))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))


async def _started(service: Service, ns: NotifySocket) -> asyncio.Task[int]:
    task = asyncio.create_task(service.run())
    for _ in range(500):  # bounded: until READY or the service died
        if ns.lines("READY=1") or task.done():
            break
        await asyncio.sleep(0.01)
    assert ns.lines("READY=1"), task.result() if task.done() else ns.lines()
    return task


async def test_ready_once_then_pings_at_half_the_interval(
    tmp_path: Path, notify_socket: NotifySocket, watchdog_env: None
) -> None:
    service = Service(load_config(write_config(tmp_path)))
    task = await _started(service, notify_socket)
    assert service.url is not None
    status, _body = await asyncio.to_thread(http_get, service.url + "/healthz")
    assert status == 200
    await notify_socket.until("WATCHDOG=1", count=8, timeout=10)
    service.stop_requested.set()
    assert await task == 0

    assert notify_socket.lines("READY=") == ["READY=1"]
    pings = notify_socket.times("WATCHDOG=1")
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    mean = sum(gaps) / len(gaps)
    assert WATCHDOG_SEC / 2 * 0.8 <= mean <= WATCHDOG_SEC / 2 * 1.5, gaps
    assert max(gaps) < WATCHDOG_SEC, gaps  # never long enough for systemd to kill us
    ready_at = notify_socket.times("READY=1")[0]
    assert all(t >= ready_at for t in pings)
    assert notify_socket.lines("STOPPING=1") == ["STOPPING=1"]
    assert any(s.startswith("STATUS=1 room") for s in notify_socket.lines("STATUS="))


async def test_a_blocked_loop_stops_the_pings(
    tmp_path: Path, notify_socket: NotifySocket, watchdog_env: None
) -> None:
    service = Service(load_config(write_config(tmp_path)))
    task = await _started(service, notify_socket)
    await notify_socket.until("WATCHDOG=1", count=3, timeout=10)
    blocked_from = time.monotonic()
    time.sleep(3 * WATCHDOG_SEC)  # the event loop is stuck: a hung driver call, say
    blocked_to = time.monotonic()
    await asyncio.sleep(WATCHDOG_SEC)
    service.stop_requested.set()
    assert await task == 0
    pings = notify_socket.times("WATCHDOG=1")
    during = [t for t in pings if blocked_from + 0.05 < t < blocked_to]
    assert during == [], "pinged while the loop was blocked"
    before = max(t for t in pings if t <= blocked_from + 0.05)
    after = min(t for t in pings if t >= blocked_to)
    # systemd would have seen no ping for longer than WatchdogSec and restarted the service.
    assert after - before > WATCHDOG_SEC


async def test_no_pings_without_watchdog(
    tmp_path: Path, notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.setenv("WATCHDOG_PID", "1")  # the watchdog belongs to another process
    service = Service(load_config(write_config(tmp_path)))
    task = await _started(service, notify_socket)
    await asyncio.sleep(0.5)
    service.stop_requested.set()
    assert await task == 0
    assert notify_socket.lines("WATCHDOG=") == []


async def test_pings_stop_when_a_room_loop_dies(
    tmp_path: Path, notify_socket: NotifySocket, watchdog_env: None
) -> None:
    service = Service(load_config(write_config(tmp_path, rooms=2)))
    task = await _started(service, notify_socket)
    await notify_socket.until("WATCHDOG=1", count=2, timeout=10)
    room = service.site.rooms["room-2"] if service.site else None
    assert room is not None
    await room.close()  # the loop of one room is gone, as after an unexpected exception
    stopped = time.monotonic()
    await asyncio.sleep(3 * WATCHDOG_SEC)
    service.stop_requested.set()
    assert await task == 0
    assert [t for t in notify_socket.times("WATCHDOG=1") if t > stopped + 0.05] == []
