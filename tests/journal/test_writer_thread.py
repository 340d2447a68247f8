"""The journal writes on its own thread: a slow fsync holds back only the room whose events it
carries (journal before actuation, DESIGN.md §1.3), never another room's cue or the event loop
(§1.5). The timing test measures the runtime itself on the real clock, so it sleeps for real;
its bounds are ten times what it needs."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from controller.clock import SystemClock, VirtualClock
from controller.commands import Command
from controller.config import Config, load_config
from controller.journal import Journal
from controller.site import Site, build_site
from controller.virtualtime import run_virtual
from drivers.mock import MockLights
from tests.journal.conftest import ROOT

WRITE = 0.5  # seconds room A's write is held before its COMMIT
CUE = 2.0  # offset of room B's second light cue
LATE = 0.05  # what "on time" allows: 50 ms

SCENE = """\
name: Writer test
route: demo
roles: {ambient: Room light}
phases:
  - id: one
    duration: 10m
    cues:
      - {at: 0s, lights: {roles: [ambient], level: 60, kelvin: 3500}}
      - {at: 2s, lights: {roles: [ambient], level: 10, kelvin: 2200}}
"""


def two_rooms(folder: Path) -> Config:
    scenes = folder / "scenes"
    scenes.mkdir()
    (scenes / "overlays.yaml").write_text((ROOT / "scenes" / "overlays.yaml").read_text())
    (scenes / "cue.yaml").write_text(SCENE)
    rooms = "".join(
        f"""\
  - id: {name}
    drivers:
      lights: {{type: mock-light, devices: {{ceiling: {{max_transition: 6553.5}}}}}}
    roles: {{ambient: lights/ceiling}}
    safe_state: {{level: 40, kelvin: 3500}}
"""
        for name in ("room-a", "room-b")
    )
    path = folder / "site.yaml"
    path.write_text(
        "site:\n  state_dir: state\n  scenes_dir: scenes\n"
        f"  playlists_dir: {ROOT / 'playlists'}\n  web: {{enabled: false}}\nrooms:\n{rooms}"
    )
    return load_config(path)


class SlowDisk:
    """The journal's before-commit hook: once armed, the next commit waits ``WRITE`` seconds
    in the writer thread, as an SD card's fsync would."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.held: tuple[float, float] | None = None

    def __call__(self) -> None:
        if not self.armed.is_set():
            return
        self.armed.clear()
        start = time.monotonic()
        time.sleep(WRITE)
        self.held = (start, time.monotonic())


class Ticker:
    """How late a plain asyncio task wakes: the event loop's stall."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.worst = 0.0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + self.every
            await asyncio.sleep(self.every)
            self.worst = max(self.worst, time.monotonic() - due)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def cmd(verb: str, cmd_id: str, **args: Any) -> Command:
    return Command(verb, cmd_id, "nurse-3", args)  # type: ignore[arg-type]


def lights(site: Site, room: str) -> MockLights:
    driver = site.rooms[room].drivers.lights["lights"]
    assert isinstance(driver, MockLights)
    return driver


async def test_a_slow_write_holds_its_own_room_only(tmp_path: Path) -> None:
    config = two_rooms(tmp_path)
    clock = SystemClock()
    disk = SlowDisk()
    journal = Journal.open(config.site.journal.path, clock=clock, before_commit=disk)
    site = build_site(config, clock=clock, recorder=journal)
    await site.start(safe_state=True)
    try:
        b_started = clock.monotonic()
        assert (await site.rooms["room-b"].submit(cmd("start", "b1", scene="cue"))).accepted
        await asyncio.sleep(b_started + CUE - WRITE / 2 - clock.monotonic())
        ticker = Ticker()
        disk.armed.set()
        a_sent = clock.monotonic()
        outcome = await site.rooms["room-a"].submit(cmd("start", "a1", scene="cue"))
        a_done = clock.monotonic()
        await asyncio.sleep(0.1)
        await ticker.stop()
    finally:
        await site.close()
        journal.close()

    assert outcome.accepted
    assert disk.held is not None, "room A's write went through the slow disk"
    held_from, released = disk.held
    assert held_from <= b_started + CUE <= released, "B's cue came due during A's write"
    assert a_done - a_sent >= WRITE, "A's command waited for its write"
    a_calls = [c for c in lights(site, "room-a").calls if c.at >= a_sent]
    assert a_calls, "A's scene reached its light"
    assert all(c.at >= released for c in a_calls), "nothing reached A's driver before durable"
    cue = [c for c in lights(site, "room-b").calls if c.command.setting.level == 10.0]
    assert len(cue) == 1, lights(site, "room-b").calls
    lateness = cue[0].at - (b_started + CUE)
    assert -LATE < lateness < LATE, f"B's cue fired {lateness * 1000:.1f} ms late"
    assert ticker.worst < LATE, f"the event loop stalled {ticker.worst * 1000:.1f} ms"


def _kinds(journal: Journal, room: str) -> list[str]:
    return [r["kind"] for r in journal.rows(room=room) if r["room"] == room]


def test_each_rooms_records_keep_their_order(tmp_path: Path) -> None:
    config = two_rooms(tmp_path)
    clock = VirtualClock()

    async def main() -> tuple[list[str], list[str]]:
        journal = Journal.open(config.site.journal.path, clock=clock)
        site = build_site(config, clock=clock, recorder=journal)
        await site.start(safe_state=False)
        a, b = site.rooms["room-a"], site.rooms["room-b"]
        verbs = ["start", "pause", "resume", "extend", "pause", "resume", "stop"]
        args: dict[str, dict[str, Any]] = {
            "start": {"scene": "cue"},
            "extend": {"seconds": 60},
            "stop": {"override": True, "reason": "test"},
        }
        for i, verb in enumerate(verbs):
            # Both rooms' commands in flight at once, and driver events queued between them.
            a.on_driver_event("note", {"n": i})
            await asyncio.gather(
                a.submit(cmd(verb, f"a{i}", **args.get(verb, {}))),
                b.submit(cmd(verb, f"b{i}", **args.get(verb, {}))),
            )
        await site.close()
        journal.close()
        reopened = Journal.open(config.site.journal.path, clock=clock)
        try:
            return _kinds(reopened, "room-a"), _kinds(reopened, "room-b")
        finally:
            reopened.close()

    kinds_a, kinds_b = run_virtual(main(), clock)
    commands_a = [k for k in kinds_a if k in ("command", "note")]
    assert commands_a == ["note", "command"] * 7
    assert kinds_b.count("command") == 7 and "note" not in kinds_b


def test_close_writes_what_was_queued_and_joins_the_writer(tmp_path: Path) -> None:
    config = two_rooms(tmp_path)
    clock = VirtualClock()
    disk = SlowDisk()

    async def main() -> None:
        journal = Journal.open(config.site.journal.path, clock=clock, before_commit=disk)
        site = build_site(config, clock=clock, recorder=journal)
        await site.start(safe_state=False)
        room = site.rooms["room-a"]
        disk.armed.set()
        for i in range(5):  # queued, not awaited: as driver reports are
            room.on_driver_event("track_skipped", {"n": i})
        await site.close()
        journal.close()  # what serve's stop() does on SIGTERM

    run_virtual(main(), clock)
    assert disk.held is not None
    assert not [t for t in threading.enumerate() if t.name.startswith("journal-writer")]
    reopened = Journal.open(config.site.journal.path, clock=clock)
    try:
        assert _kinds(reopened, "room-a") == ["track_skipped"] * 5
    finally:
        reopened.close()


def test_sync_recorders_still_work(tmp_path: Path) -> None:
    """A recorder with only ``record`` (no thread) is called inline, as before."""
    config = two_rooms(tmp_path)
    clock = VirtualClock()
    seen: list[tuple[str, list[str], str | None]] = []

    class Inline:
        def record(
            self, room: Any, events: Any, *, command: Any = None, outcome: Any = None
        ) -> None:
            seen.append((room.id, [e.kind for e in events], command and command.verb))

    async def main() -> None:
        site = build_site(config, clock=clock, recorder=Inline())
        await site.start(safe_state=False)
        await site.rooms["room-a"].submit(cmd("start", "a1", scene="cue"))
        await site.close()

    run_virtual(main(), clock)
    assert [(room, verb) for room, _, verb in seen if verb is not None] == [("room-a", "start")]
