"""Hue driver: requests per scene run and time to panic, against the bridge's rate limit.

    .venv/bin/python bench/hue.py [--sizes 1 10 50]

For each room size the driver runs against the fake bridge (tests/hue/fake_bridge.py, ~10 light
and 1 group command per second over a sliding window, HTTP 429 beyond) twice: lights addressed
one by one, and all lights in one bridge group. It measures

- the requests a scene start needs (a 40-minute fade on every light), against the minimum of one
  per light, or one group action;
- time to panic (instant full-on 4000 K on every light, the windows idle beforehand), against
  the fastest the bridge allows: ``max(rate-limit bound, requests x one round trip)``, where the
  round trip is measured in the same run by a naive phue loop;
- that naive loop itself as the baseline: phue ``set_light`` per light with no pacing, which is
  what a driver without a throttle does; beyond ten lights the bridge refuses the rest with 429.

Prints a table and one JSON line; about 20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import phue  # noqa: E402

from drivers.base import DriverContext, LightCommand, LightSetting  # noqa: E402
from drivers.hue import HueLights  # noqa: E402
from tests.hue.fake_bridge import FakeHueBridge  # noqa: E402

LIGHT_LIMIT, GROUP_LIMIT, WINDOW = 10, 1, 1.0
PANIC = LightCommand(LightSetting(True, 100.0, mired=250), 0.0)
FADE = LightCommand(LightSetting(True, 10.0, mired=454), 2400.0)


@dataclass
class Row:
    lights: int
    mode: str
    scene_requests: int
    scene_min_requests: int
    panic_s: float
    panic_min_s: float
    ratio: float
    rejected_429: int
    naive_reached: int
    naive_s: float


def rate_bound(requests: int, limit: int) -> float:
    """Seconds the last of ``requests`` must wait in a sliding window of ``limit`` per WINDOW."""
    return ((requests - 1) // limit) * WINDOW if requests else 0.0


def naive_loop(host: str, n: int, state_dir: Path) -> tuple[int, float, float]:
    """Unpaced phue calls: (lights reached, total seconds, median seconds per request)."""
    bridge = phue.Bridge(host, "bench-key", config_file_path=str(state_dir / "naive.json"))
    reached, times = 0, []
    started = time.monotonic()
    for light in range(1, n + 1):
        t0 = time.monotonic()
        try:
            answer = bridge.set_light(light, {"on": True, "bri": 254, "ct": 250}, transitiontime=0)
            reached += "success" in answer[0][0]
        except ValueError:  # phue cannot parse the 429's text body
            pass
        times.append(time.monotonic() - t0)
    return reached, time.monotonic() - started, statistics.median(times)


async def one_case(n: int, grouped: bool, state_dir: Path) -> Row:
    groups = {1: list(range(1, n + 1))} if grouped and n > 1 else None
    async with FakeHueBridge(lights=n, groups=groups, usernames=["bench-key"]) as bridge:
        context = DriverContext(monotonic=time.monotonic, state_dir=state_dir)
        options: dict[str, Any] = {
            "host": bridge.host,
            "username": "bench-key",
            "lights": {f"l{i}": i for i in range(1, n + 1)},
            "groups": "auto" if groups else "off",
        }
        driver = HueLights("hue", options, context)
        await driver.start()
        try:
            await driver.apply(dict.fromkeys(driver.devices, FADE))
            scene_requests = len(bridge.puts())
            await asyncio.sleep(WINDOW + 0.1)  # panic comes long after the scene started
            started = time.monotonic()
            await driver.apply(dict.fromkeys(driver.devices, PANIC))
            panic_s = time.monotonic() - started
        finally:
            await driver.close()
        rejected = sum(1 for p in bridge.puts() if p.status == 429)
        await asyncio.sleep(WINDOW + 0.1)
        reached, naive_s, rtt = await asyncio.to_thread(naive_loop, bridge.host, n, state_dir)
    panic_requests = 1 if groups else n
    limit = GROUP_LIMIT if groups else LIGHT_LIMIT
    panic_min = max(rate_bound(panic_requests, limit), panic_requests * rtt)
    return Row(
        lights=n,
        mode="group" if groups else "lights",
        scene_requests=scene_requests,
        scene_min_requests=1 if groups else n,
        panic_s=round(panic_s, 4),
        panic_min_s=round(panic_min, 4),
        ratio=round(panic_s / panic_min, 2) if panic_min else 0.0,
        rejected_429=rejected,
        naive_reached=reached,
        naive_s=round(naive_s, 4),
    )


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'lights':>6} {'mode':<6} {'scene req':>9} {'min':>4} {'panic s':>8} "
        f"{'min s':>7} {'ratio':>6} {'429s':>5} {'naive reached':>14} {'naive s':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.lights:>6} {r.mode:<6} {r.scene_requests:>9} {r.scene_min_requests:>4} "
            f"{r.panic_s:>8.3f} {r.panic_min_s:>7.3f} {r.ratio:>6.2f} {r.rejected_429:>5} "
            f"{f'{r.naive_reached}/{r.lights}':>14} {r.naive_s:>8.3f}"
        )


async def main(sizes: list[int]) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for grouped in (False, True):
                if grouped and n < 2:
                    continue
                rows.append(await one_case(n, grouped, Path(tmp)))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    result = asyncio.run(main(parser.parse_args().sizes))
    print_table(result)
    print(json.dumps({"bench": "hue", "results": [asdict(r) for r in result]}))
