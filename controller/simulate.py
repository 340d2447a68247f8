"""Run a scene end to end on mock drivers and virtual time, and report what each device got.

    report = simulate_scene(library.scene("iv-infusion"))
    print(format_table(report))        # time, device, what it was told
    report.wall_seconds                # how long the simulation took for real

The room runtime is the real one (``Room`` on a virtual-time event loop), so what simulate shows
is what a room would send, fade plans included.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.clock import VirtualClock
from controller.commands import Command
from controller.config import RoomConfig
from controller.room import Room, RoomDrivers, RoomUpdate
from controller.scene import LoadedScene, Overlay
from controller.session import SessionState
from controller.site import build_room_drivers
from controller.units import format_clock, mired_to_kelvin
from controller.virtualtime import run_virtual
from drivers.base import DriverContext
from drivers.mock import MockAudio, MockLights, MockPrompts

# Device capabilities used when a scene is simulated without a room config: a Hue-like bulb
# per role (native transitions up to 6553.5 s, about ten commands per second).
DEFAULT_CAPS: dict[str, Any] = {"max_transition": 6553.5, "min_interval": 0.1}


@dataclass(frozen=True)
class Record:
    offset: float
    device: str
    what: str
    data: dict[str, Any]


@dataclass
class Report:
    scene: str
    records: list[Record] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    length: float = 0.0
    wall_seconds: float = 0.0
    commands: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scene": self.scene,
            "length": self.length,
            "wall_seconds": round(self.wall_seconds, 6),
            "device_commands": self.commands,
            "records": [
                {"offset": round(r.offset, 3), "device": r.device, "what": r.what, **r.data}
                for r in self.records
            ],
            "events": self.events,
        }


def default_room(scene: LoadedScene) -> RoomConfig:
    """One mock bulb per scene role, mock audio and a mock prompt display."""
    return RoomConfig.model_validate(
        {
            "id": "sim",
            "name": "Simulated room",
            "drivers": {
                "lights": {
                    "type": "mock-light",
                    "devices": {role: dict(DEFAULT_CAPS) for role in scene.scene.roles},
                },
                "audio": {"type": "mock-audio"},
                "prompts": {"type": "mock-prompt"},
            },
            "roles": {role: [f"lights/{role}"] for role in scene.scene.roles},
            "audio": "audio",
            "prompts": ["prompts"],
        }
    )


def as_mock_room(room: RoomConfig) -> RoomConfig:
    """The same room with every real driver replaced by a mock of the same devices."""
    data = room.model_dump()
    for name, entry in room.drivers.items():
        if entry.type.startswith("mock-"):
            continue
        if name == room.audio:
            data["drivers"][name] = {"type": "mock-audio"}
        elif name in room.prompts:
            data["drivers"][name] = {"type": "mock-prompt"}
        else:
            devices = {
                ref.split("/", 1)[1]
                for refs in room.roles.values()
                for ref in refs
                if ref.split("/", 1)[0] == name
            }
            data["drivers"][name] = {
                "type": "mock-light",
                "devices": {d: dict(DEFAULT_CAPS) for d in sorted(devices)},
            }
    return RoomConfig.model_validate(data)


def simulate_scene(
    scene: LoadedScene,
    *,
    room: RoomConfig | None = None,
    overlays: Mapping[str, Overlay] | None = None,
    ack_after: float | None = 60.0,
    speed: float | None = None,
    tail: float = 1.0,
) -> Report:
    """Run ``scene`` to its end (continuing any hold) and collect what devices received."""
    room_config = as_mock_room(room) if room is not None else default_room(scene)
    clock = VirtualClock()
    report = Report(scene.id)
    started = time.perf_counter()
    run_virtual(
        _run(scene, room_config, overlays, clock, report, ack_after, tail), clock, speed=speed
    )
    report.wall_seconds = time.perf_counter() - started
    return report


async def _run(
    scene: LoadedScene,
    room_config: RoomConfig,
    overlays: Mapping[str, Overlay] | None,
    clock: VirtualClock,
    report: Report,
    ack_after: float | None,
    tail: float,
) -> None:
    playlists = None
    if scene.path is not None and (scene.path.parent.parent / "playlists").is_dir():
        playlists = scene.path.parent.parent / "playlists"

    def context_for(_: str) -> DriverContext:
        return DriverContext(
            monotonic=clock.monotonic, state_dir=Path("."), playlists_dir=playlists
        )

    drivers = build_room_drivers(room_config, context_for)
    room = Room(room_config, {scene.id: scene}, drivers, clock=clock, overlays=overlays)
    changed = asyncio.Event()

    def on_update(update: RoomUpdate) -> None:
        if update.kind == "event":
            report.events.append(update.data)
        changed.set()

    room.add_listener(on_update)
    await room.start(safe_state=False)
    t0 = clock.monotonic()
    await room.submit(Command("start", "sim-start", "simulate", {"scene": scene.id}))
    acked: set[str] = set()
    seq = 0
    session = room.session
    while True:
        now = clock.monotonic()
        waiting = [i for i in session.checkins.open_items() if i.id not in acked]
        for item in waiting:
            if ack_after is not None and now - item.due_at >= ack_after:
                acked.add(item.id)
                seq += 1
                await room.submit(
                    Command("ack", f"sim-ack-{seq}", "simulate", {"checkin": item.id})
                )
        if session.state == SessionState.HOLDING:
            run = session.run
            assert run is not None
            if run.phase_index == len(run.timeline.phases) - 1:
                break
            seq += 1
            await room.submit(Command("resume", f"sim-continue-{seq}", "simulate", {}))
            continue
        # Sleep until the room reports something or the next simulated acknowledgement is due.
        dues = [
            i.due_at + ack_after
            for i in session.checkins.open_items()
            if ack_after is not None and i.id not in acked
        ]
        timeout = max(0.0, min(dues) - clock.monotonic()) if dues else None
        changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await changed.wait()
    await asyncio.sleep(tail)
    assert session.run is not None
    report.length = session.run.timeline.length
    await room.close()
    _collect(drivers, t0, report)


def _collect(drivers: RoomDrivers, t0: float, report: Report) -> None:
    for driver in drivers.lights.values():
        if isinstance(driver, MockLights):
            for call in driver.calls:
                s = call.command.setting
                data = {
                    "on": s.on,
                    "level": round(s.level, 1),
                    "kelvin": None if s.mired is None else round(mired_to_kelvin(s.mired), -1),
                    "transition": round(call.command.transition, 1),
                }
                what = _light_text(data)
                report.records.append(
                    Record(call.at - t0, f"{driver.name}/{call.device}", what, data)
                )
    audio = drivers.audio
    if isinstance(audio, MockAudio):
        for a in audio.calls:
            if a.command is None:
                report.records.append(
                    Record(a.at - t0, audio.name, f"chime {a.chime}", {"chime": a.chime})
                )
                continue
            c = a.command
            music: dict[str, Any] = {
                "playlist": c.playlist,
                "playing": c.playing,
                "volume": round(c.volume, 1),
                "ramp": round(c.ramp, 1),
            }
            what = (
                f"play {c.playlist} → {c.volume:.0f}% over {c.ramp:g}s"
                if c.playing
                else ("stop" + (f" (fade {c.ramp:g}s)" if c.ramp else ""))
            )
            track = audio.track_for(c.playlist, c.position) if c.playlist else None
            if c.playing and track is not None:
                music["track"] = track[0]
                what += f" ({track[0]} at {format_clock(track[1])})"
            report.records.append(Record(a.at - t0, audio.name, what, music))
    for prompts in drivers.prompts:
        if isinstance(prompts, MockPrompts):
            for p in prompts.calls:
                shown = (
                    ", ".join(
                        f"{v.id}[{v.priority}{'' if v.state == 'due' else ' ack'}]"
                        for v in p.prompts
                    )
                    or "(none)"
                )
                report.records.append(
                    Record(
                        p.at - t0,
                        prompts.name,
                        f"prompts: {shown}",
                        {"prompts": [v.id for v in p.prompts]},
                    )
                )
    report.records.sort(key=lambda r: (r.offset, r.device))
    report.commands = len(report.records)


def _light_text(data: dict[str, Any]) -> str:
    if not data["on"]:
        return "off" + (f" over {data['transition']:g}s" if data["transition"] else "")
    text = f"{data['level']:g}%"
    if data["kelvin"]:
        text += f" {data['kelvin']}K"
    if data["transition"]:
        text += f" over {data['transition']:g}s"
    return text


def format_table(report: Report) -> str:
    width = max((len(r.device) for r in report.records), default=6)
    lines = [f"{'time':>8}  {'device':<{width}}  what", f"{'-' * 8}  {'-' * width}  ----"]
    for r in report.records:
        lines.append(f"{format_clock(r.offset):>8}  {r.device:<{width}}  {r.what}")
    lines.append(
        f"{len(report.records)} commands over {format_clock(report.length)} "
        f"(simulated in {report.wall_seconds * 1000:.0f} ms)"
    )
    return "\n".join(lines)
