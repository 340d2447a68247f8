"""Run inside ``unshare -rm``: mount a tiny tmpfs, run a room on it, fill it or make it
read-only, and print what the room did as one JSON line (see test_storage.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from controller.clock import VirtualClock
from controller.commands import Command
from controller.config import load_config
from controller.resume import start_site
from controller.virtualtime import run_virtual

_n = 0


def cmd(verb: str, **args: Any) -> Command:
    global _n
    _n += 1
    return Command(verb, f"r{_n}", "nurse-3", args)  # type: ignore[arg-type]


def fill(folder: Path) -> bool:
    try:
        with open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        return True


async def full(config_path: Path, mount: Path) -> dict[str, Any]:
    config = load_config(config_path)
    config.site.journal.path = mount / "journal.sqlite3"
    site = await start_site(config, clock=CLOCK)
    room = site.rooms["room-1"]
    assert (await room.submit(cmd("start", scene="arc"))).accepted
    await asyncio.sleep(3)
    out: dict[str, Any] = {"filled": fill(mount)}
    await asyncio.sleep(40)  # the comfort check-in and a phase change try to write
    out["notes_full"] = dict(room.health_notes)
    out["state_full"] = room.state.value
    out["offset_full"] = room.session.offset(CLOCK.monotonic())
    await room.submit(cmd("stop", override=True, reason="other"))
    out["start_refused"] = not (await room.submit(cmd("start", scene="arc"))).accepted
    await asyncio.sleep(1)
    out["offset_later"] = room.session.offset(CLOCK.monotonic()) + 1
    (mount / "filler").unlink()
    await room.submit(cmd("start", scene="arc"))
    out["notes_freed"] = dict(room.health_notes)
    await site.close()
    site.extras["journal"].close()
    return out


async def readonly(config_path: Path, mount: Path) -> dict[str, Any]:
    config = load_config(config_path)
    config.site.journal.path = mount / "journal.sqlite3"
    site = await start_site(config, clock=CLOCK)
    room = site.rooms["room-1"]
    assert (await room.submit(cmd("start", scene="arc"))).accepted
    await asyncio.sleep(8)  # past the baseline check-in (5 s): journalled at offset 5
    await site.close()
    site.extras["journal"].close()
    # A filesystem cannot be remounted read-only under a file open for writing, so the
    # read-only case is the restart: the kernel remounted the card read-only after errors.
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    out: dict[str, Any] = {}
    CLOCK.advance(2)
    again = await start_site(config, clock=CLOCK)
    room = again.rooms["room-1"]
    out["restart_fault"] = again.extras["journal"].fault
    out["restart_state"] = room.state.value
    out["restart_offset"] = room.session.offset(CLOCK.monotonic())
    out["expected_offset"] = 10.0
    out["restart_notes"] = dict(room.health_notes)
    out["restart_aside"] = [str(p) for p in again.extras["journal"].moved_aside]
    await room.submit(cmd("stop", override=True, reason="other"))
    out["restart_start_refused"] = not (await room.submit(cmd("start", scene="arc"))).accepted
    await again.close()
    return out


CLOCK = VirtualClock()

if __name__ == "__main__":
    config_path, mount, scenario = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mount)], check=True)
    body = full if scenario == "full" else readonly
    result = run_virtual(body(config_path, mount), CLOCK)
    print(json.dumps(result, default=str))
