"""/metrics: Prometheus text format, cue lateness from the rooms' loops, driver and room state."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.clock import SystemClock
from controller.commands import parse_command
from controller.config import load_config
from controller.metrics import Histogram, add_metrics_route
from controller.site import build_site
from tests.service.conftest import write_config

SAMPLE = re.compile(r'^[a-z_:][a-z0-9_:]*(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+-]+$|^.* \+?Inf$')


def test_histogram_is_cumulative() -> None:
    h = Histogram((0.001, 0.01, 0.1))
    for value in (0.0005, 0.002, 0.002, 0.5):
        h.observe(value)
    lines = list(h.lines("x", {"room": "r"}))
    assert lines == [
        'x_bucket{room="r",le="0.001"} 1',
        'x_bucket{room="r",le="0.01"} 3',
        'x_bucket{room="r",le="0.1"} 3',
        'x_bucket{room="r",le="+Inf"} 4',
        'x_sum{room="r"} 0.5045',
        'x_count{room="r"} 4',
    ]


async def test_metrics_route_with_a_running_session(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, rooms=2))
    site = build_site(config, clock=SystemClock())
    app = web.Application()
    metrics = add_metrics_route(app, site)
    assert add_metrics_route(app, site) is metrics  # a second call changes nothing
    await site.start()
    try:
        room = site.rooms["room-1"]
        start = parse_command("start", {"cmd_id": "m1", "actor": "test", "scene": "demo"})
        assert (await room.submit(start)).accepted
        # The settle phase fades the floor light, which steps in software: a deadline per step.
        skip = parse_command("skip", {"cmd_id": "m2", "actor": "test", "phase": "settle"})
        assert (await room.submit(skip)).accepted
        async with asyncio.timeout(10):  # bounded: until the loop has woken for a deadline
            while metrics.lateness["room-1"].count == 0:
                await asyncio.sleep(0.05)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/metrics")
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
    finally:
        await site.close()
    for line in text.splitlines():
        assert line.startswith("# ") or SAMPLE.match(line), line
    assert 'sessionctl_room_state{room="room-1",state="running"} 1' in text
    assert 'sessionctl_room_state{room="room-2",state="ready"} 1' in text
    assert 'sessionctl_driver_up{room="room-2",driver="audio",kind="mock-audio"} 1' in text
    assert re.search(r"^sessionctl_checkins_open\{room=\"room-1\"\} \d+$", text, re.M)
    count = re.search(r'sessionctl_cue_lateness_seconds_count\{room="room-1"\} (\d+)', text)
    assert count is not None and int(count.group(1)) > 0
    assert "sessionctl_mqtt_connected" not in text  # no broker configured
