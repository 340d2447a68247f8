"""Benchmark: simulate every shipped scene end to end on the virtual clock with mock drivers.

Target (issue 2): at most 100 ms of real time per 2-hour scene on a 2-core machine. The same
run measures two baselines over each scene's own cue list, so the result is a ratio:

- ``bare loop``: a plain Python loop that visits every cue and calls a no-op driver;
- ``bare asyncio``: an asyncio loop on the same virtual clock that sleeps to each cue and calls
  a no-op coroutine (the least a timer-driven runtime can do).

    .venv/bin/python bench/simulate.py            # table, then one JSON line
    .venv/bin/python bench/simulate.py --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.clock import VirtualClock  # noqa: E402
from controller.config import RoomConfig, load_config  # noqa: E402
from controller.scene import LoadedScene, SceneLibrary, playlist_names  # noqa: E402
from controller.simulate import simulate_scene  # noqa: E402
from controller.timeline import Timeline  # noqa: E402
from controller.virtualtime import run_virtual  # noqa: E402

TARGET_MS_PER_2H = 100.0


def bare_loop(timeline: Timeline) -> float:
    calls = 0

    def apply(_: object) -> None:
        nonlocal calls
        calls += 1

    started = time.perf_counter()
    for cue in timeline.cues:
        apply(cue)
    return time.perf_counter() - started


def bare_asyncio(timeline: Timeline) -> float:
    clock = VirtualClock()

    async def noop() -> None:
        return None

    async def main() -> None:
        for cue in timeline.cues:
            await asyncio.sleep(max(0.0, cue.time - clock.monotonic()))
            await noop()

    started = time.perf_counter()
    run_virtual(main(), clock)
    return time.perf_counter() - started


def _simulate_ms(scene: LoadedScene, room: RoomConfig | None, repeat: int) -> tuple[float, int]:
    runs, commands = [], 0
    for _ in range(repeat):
        report = simulate_scene(scene, room=room)
        runs.append(report.wall_seconds)
        commands = report.commands
    return statistics.median(runs) * 1000, commands


def measure(scene: LoadedScene, room: RoomConfig, repeat: int) -> dict[str, object]:
    timeline = Timeline(scene)
    ms, commands = _simulate_ms(scene, None, repeat)
    stepped_ms, stepped_commands = _simulate_ms(scene, room, repeat)
    base_loop = statistics.median(bare_loop(timeline) for _ in range(repeat)) * 1000
    base_async = statistics.median(bare_asyncio(timeline) for _ in range(repeat)) * 1000
    hours = timeline.length / 3600
    per_2h = ms / hours * 2 if hours else ms
    return {
        "scene": scene.id,
        "length_min": round(timeline.length / 60, 1),
        "cues": len(timeline.cues),
        "device_commands": commands,
        "simulate_ms": round(ms, 2),
        "demo_room_ms": round(stepped_ms, 2),
        "demo_room_commands": stepped_commands,
        "ms_per_2h": round(per_2h, 2),
        "bare_loop_ms": round(base_loop, 4),
        "bare_asyncio_ms": round(base_async, 3),
        "ratio_vs_bare_asyncio": round(ms / base_async, 1) if base_async else None,
        # Short scenes get the whole 100 ms: fixed start-up cost would dominate a per-hour rate.
        "within_target": ms <= TARGET_MS_PER_2H * max(1.0, hours / 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--room",
        type=Path,
        default=ROOT / "config" / "demo.yaml",
        help="room config simulated for the comparison column",
    )
    args = parser.parse_args()
    library = SceneLibrary.load(ROOT / "scenes", playlists=playlist_names(ROOT / "playlists"))
    room = load_config(args.room).rooms[0]
    rows = [measure(scene, room, args.repeat) for scene in library.scenes.values()]
    header = (
        f"{'scene':<14}{'min':>7}{'cues':>6}{'cmds':>7}{'sim ms':>9}{'ms/2h':>8}"
        f"{'bare loop ms':>14}{'bare async ms':>15}{'ratio':>7}  ok"
        f"{'demo room ms':>14}{'cmds':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['scene']:<14}{r['length_min']:>7}{r['cues']:>6}{r['device_commands']:>7}"
            f"{r['simulate_ms']:>9}{r['ms_per_2h']:>8}{r['bare_loop_ms']:>14}"
            f"{r['bare_asyncio_ms']:>15}{r['ratio_vs_bare_asyncio']:>7}  "
            f"{'yes' if r['within_target'] else 'NO ':<3}{r['demo_room_ms']:>13}"
            f"{r['demo_room_commands']:>6}"
        )
    print(
        f"target: <= {TARGET_MS_PER_2H:g} ms per 2-hour scene with one Hue-like mock bulb per "
        f"role; 'demo room' uses {args.room.name} (a native, a chunked and a software-stepped "
        "bulb), shown for comparison"
    )
    print(
        json.dumps({"benchmark": "simulate", "target_ms_per_2h": TARGET_MS_PER_2H, "scenes": rows})
    )
    return 0 if all(r["within_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
