"""Music fades: how late the fade steps run against their schedule, and the CPU a 40-minute
fade costs at 25 steps/s, against a bare asyncio loop doing the same steps in the same run.

    .venv/bin/python bench/audio.py [--window 12] [--aout adummy] [--device null]

Nobody waits 40 minutes for a benchmark: each variant runs a ``--window`` of seconds of a
40-minute ramp (100 % → 0 %, ceiling 100) and the CPU share is extrapolated to the whole fade.
Variants, all in one process:

- ``bare loop``: asyncio sleeping to a 25/s grid anchored at the start, no other work;
- ``libvlc playing``: the VLC driver playing a generated pad at a steady volume (playback cost);
- ``playing + 40-min fade``: the same, with the driver's fade task stepping the volume.

The fade's own cost is the third row minus the second. On a 40-minute ramp the rounded VLC
volume changes about every 24 s, so most steps are wake-ups that send nothing: the number that
matters is the wake-up cost, which is what the bare loop measures. Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.base import DriverContext, MusicCommand
from drivers.demo_audio import write_pad
from drivers.vlc import VlcAudio

RATE = 25.0
FADE = 40 * 60.0


@dataclass
class Result:
    name: str
    steps: int
    late: list[float]
    cpu: float
    wall: float

    @property
    def cpu_share(self) -> float:
        return self.cpu / self.wall

    def row(self) -> dict[str, float | int | str]:
        late_ms = sorted(x * 1000 for x in self.late) or [0.0]
        return {
            "name": self.name,
            "steps": self.steps,
            "late_mean_ms": round(statistics.fmean(late_ms), 3),
            "late_p99_ms": round(late_ms[min(len(late_ms) - 1, int(0.99 * len(late_ms)))], 3),
            "late_max_ms": round(late_ms[-1], 3),
            "cpu_pct": round(100 * self.cpu_share, 3),
            "cpu_s_per_40min": round(self.cpu_share * FADE, 2),
        }


async def measure(
    name: str, window: float, body: Callable[[float], Awaitable[list[float]]]
) -> Result:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    late = await body(window)
    return Result(name, len(late), late, time.process_time() - cpu0, time.perf_counter() - wall0)


async def bare_loop(window: float) -> list[float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    late: list[float] = []
    i = 0
    while loop.time() - start < window:
        i += 1
        due = start + i / RATE
        await asyncio.sleep(due - loop.time())
        late.append(max(0.0, loop.time() - due))
    return late


async def driver_window(audio: VlcAudio, window: float, fade: bool) -> list[float]:
    stream = audio.current
    assert stream is not None
    if fade:
        stream.fader.set_level(0.0, FADE)
        stream.fader.stats.samples = []
    await asyncio.sleep(window)
    late = stream.fader.stats.samples or []
    stream.fader.set_level(stream.fader.value(), 0.0)  # freeze where it is
    await stream.fader.wait()
    stream.fader.set_level(100.0, 0.0)
    await stream.fader.wait()
    return late


async def run(window: float, aout: str, device: str | None) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_pad(folder / "pad.wav", (196.0, 294.0, 392.0), 20.0, swell=10.0)
        (folder / "bench.yaml").write_text("tracks: [pad.wav]\nloop: true\n")
        context = DriverContext(
            monotonic=time.monotonic, state_dir=folder, media_dir=folder, playlists_dir=folder
        )
        options = {"aout": aout, "device": device, "min_fade_in": 0, "ceiling": 100}
        audio = VlcAudio("bench", options, context)
        await audio.start()
        try:
            results = [await measure("bare loop (25 steps/s)", window, bare_loop)]
            await audio.apply(MusicCommand("bench", True, 100.0))
            await asyncio.sleep(0.5)  # past start-up
            results.append(
                await measure(
                    "libvlc playing", window, lambda w: driver_window(audio, w, fade=False)
                )
            )
            results.append(
                await measure(
                    "playing + 40-min fade", window, lambda w: driver_window(audio, w, fade=True)
                )
            )
        finally:
            await audio.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=12.0, help="seconds measured per variant")
    parser.add_argument("--aout", default="adummy")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    results = asyncio.run(run(args.window, args.aout, args.device))
    rows = [r.row() for r in results]
    bare, playing, fading = results
    print(
        f"{'variant':26} {'steps':>6} {'late mean':>10} {'p99 ms':>8} {'max ms':>8}"
        f" {'CPU %':>7} {'CPU s/40 min':>13}"
    )
    for row in rows:
        print(
            f"{row['name']:26} {row['steps']:>6} {row['late_mean_ms']:>10} {row['late_p99_ms']:>8}"
            f" {row['late_max_ms']:>8} {row['cpu_pct']:>7} {row['cpu_s_per_40min']:>13}"
        )
    fade_cpu = max(0.0, fading.cpu_share - playing.cpu_share)
    lateness_ratio = statistics.fmean(fading.late or [0]) / max(1e-9, statistics.fmean(bare.late))
    cpu_ratio = fade_cpu / max(1e-9, bare.cpu_share)
    print(
        f"fade task alone ≈ {100 * fade_cpu:.3f} % CPU ({fade_cpu * FADE:.1f} CPU-s per 40 min, "
        f"extrapolated from {args.window:g} s); vs bare loop: CPU ×{cpu_ratio:.2f}, "
        f"mean lateness ×{lateness_ratio:.2f}"
    )
    print(
        json.dumps(
            {
                "bench": "audio",
                "window_s": args.window,
                "aout": args.aout,
                "rate": RATE,
                "rows": rows,
                "fade_cpu_pct": round(100 * fade_cpu, 3),
                "cpu_ratio_vs_bare": round(cpu_ratio, 2),
                "lateness_ratio_vs_bare": round(lateness_ratio, 2),
                "extrapolated": True,
            }
        )
    )


if __name__ == "__main__":
    main()
