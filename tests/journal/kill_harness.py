"""A room process for the kill loop (test_kill_loop.py): the real journal, resume and room
runtime on the system clock, with a simulated nurse. Prints one JSON line per thing it did,
flushed, so whatever the test reads happened before the SIGKILL::

    python tests/journal/kill_harness.py CONFIG

- ``{"ready": ...}`` once the room is safe and resumed: state, offset and the monotonic reading
  taken at the same instant, the journal's quick_check, the prompts on show;
- ``{"cmd": ...}`` after ``Room.submit`` returned (so after the journal's fsync): the outcome.

It starts the scene when nothing runs and acknowledges every check-in after a random delay.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import uuid
from pathlib import Path
from typing import Any

from controller.clock import SystemClock
from controller.commands import Command
from controller.config import load_config
from controller.resume import start_site
from controller.room import Room, RoomUpdate
from controller.session import ACTIVE


def say(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def submit(room: Room, verb: str, **args: Any) -> None:
    command = Command(verb, uuid.uuid4().hex[:16], "nurse-7", args)  # type: ignore[arg-type]
    outcome = await room.submit(command)
    say(cmd=command.cmd_id, verb=verb, args=args, accepted=outcome.accepted, reason=outcome.reason)


async def ack_later(room: Room, checkin: str) -> None:
    await asyncio.sleep(random.uniform(0.0, 0.6))
    await submit(room, "ack", checkin=checkin)


async def main(config_path: Path) -> None:
    clock = SystemClock()
    site = await start_site(load_config(config_path), clock=clock)
    room = site.rooms["room-1"]
    journal = site.extras["journal"]
    tasks: set[asyncio.Task[None]] = set()

    def acker(update: RoomUpdate) -> None:
        if update.kind == "event" and update.data.get("kind") == "checkin_due":
            task = asyncio.ensure_future(ack_later(room, str(update.data["checkin"])))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    room.add_listener(acker)
    now = clock.monotonic()
    view = room.session.view(now)
    say(
        ready=True,
        mono=now,
        state=view["state"],
        offset=room.session.offset(now),
        token=room.session.token,
        quick_check=journal.quick_check(),
        prompts=[c["id"] for c in view["checkins"]],
        notes=dict(room.health_notes),
    )
    for prompt in view["checkins"]:
        if prompt["state"] == "due":
            tasks.add(asyncio.ensure_future(ack_later(room, prompt["id"])))
    if room.state not in ACTIVE:
        await submit(room, "start", scene="kill")
    while True:
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
