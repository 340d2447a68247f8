"""``sessionctl demo``: the demo room on mock drivers, with the tablet and a live terminal view.

    sessionctl demo                    # tablet on http://127.0.0.1:8080, demo arc starts at once
    sessionctl demo --port 8090 --no-start
    sessionctl demo --speed 20         # terminal only, 20x real time, exits at the arc's end

The terminal view shows what the mock devices are doing right now: each bulb's level and colour,
the music, the phase and the open check-ins.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any, TextIO

from controller.resources import resource
from controller.units import format_clock, mired_to_kelvin

DEMO_CONFIG = resource("config/demo.yaml")
DEMO_SCENE = "demo"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="run the demo room on mock drivers with the tablet")
    p.add_argument("--config", type=Path, default=DEMO_CONFIG, help="site config (mock drivers)")
    p.add_argument("--port", type=int, help="tablet port (default 8080)")
    p.add_argument("--state-dir", type=Path, help="where the journal and demo login live")
    p.add_argument("--scene", default=DEMO_SCENE, help="scene started in the first room")
    p.add_argument("--no-start", action="store_true", help="wait for staff to start a scene")
    p.add_argument(
        "--speed",
        type=float,
        help="simulate N times faster than real time (no tablet); exits at the end",
    )
    p.add_argument(
        "--exit-at-end",
        action="store_true",
        help="exit when the scene reaches its end (the discharge hold)",
    )
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.config import load_config

    config = load_config(args.config)
    state_dir = args.state_dir or _writable(config.site.state_dir)
    config.site.state_dir = state_dir
    config.site.journal.path = state_dir / config.site.journal.path.name
    if args.port is not None:
        config.site.web.port = args.port
    if args.speed:
        return _run_fast(config, args)
    return asyncio.run(_run_live(config, args))


def _writable(state_dir: Path) -> Path:
    """The config's state folder, or one in the user's home when that is not writable (the
    demo config of an installation lives in a root-owned folder)."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe = state_dir / ".write-test"
        probe.touch()
        probe.unlink()
        return state_dir
    except OSError:
        return Path.home() / ".local" / "state" / "sessionctl" / "demo"


async def _run_live(config: Any, args: argparse.Namespace) -> int:
    from controller.commands import Command
    from controller.service import Service
    from controller.web.demo import ensure_demo_staff

    config.site.state_dir.mkdir(parents=True, exist_ok=True)
    staff, pin = ensure_demo_staff(config.site.state_dir)
    service = Service(config)
    runner = asyncio.create_task(service.run())
    while service.site is None or service.url is None:
        if runner.done():
            return runner.result()
        await asyncio.sleep(0.05)
    out = sys.stdout
    out.write(
        f"sessionctl demo: tablet on {service.url}  (login: {staff} / PIN {pin})\n"
        "Ctrl-C stops the demo.\n"
    )
    room = next(iter(service.site.rooms.values()))
    if not args.no_start and room.session.state.value in ("ready", "ended", "aborted"):
        await room.submit(Command("start", f"demo-{id(service)}", "demo", {"scene": args.scene}))
    view = asyncio.create_task(_terminal_view(service.site, out, args.exit_at_end))
    done, _ = await asyncio.wait({runner, view}, return_when=asyncio.FIRST_COMPLETED)
    if view in done:
        service.stop_requested.set()
    code = await runner
    view.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await view
    return code


def _run_fast(config: Any, args: argparse.Namespace) -> int:
    from controller.clock import VirtualClock
    from controller.commands import Command
    from controller.site import build_site
    from controller.virtualtime import run_virtual

    clock = VirtualClock()

    async def main() -> int:
        site = build_site(config, clock=clock)
        await site.start()
        room = next(iter(site.rooms.values()))
        outcome = await room.submit(Command("start", "demo-start", "demo", {"scene": args.scene}))
        if not outcome.accepted:
            print(f"sessionctl demo: {outcome.reason}", file=sys.stderr)
            await site.close()
            return 1
        await _terminal_view(site, sys.stdout, True, every=5.0)
        await site.close()
        return 0

    return run_virtual(main(), clock, speed=args.speed)


async def _terminal_view(site: Any, out: TextIO, exit_at_end: bool, every: float = 1.0) -> None:
    """Print the rooms' state until the first room's scene reaches its end (if asked)."""
    tty = out.isatty()
    last = ""
    while True:
        text = "\n".join(describe_room(room) for room in site.rooms.values())
        if tty:
            out.write("\x1b[H\x1b[J" + text + "\n")
        elif text != last:
            out.write(text + "\n")
        out.flush()
        last = text
        room = next(iter(site.rooms.values()))
        session = room.session
        if exit_at_end and _at_end(session):
            out.write(f"{room.id}: the scene reached its end; staff would now end the session.\n")
            return
        await asyncio.sleep(every)


def _at_end(session: Any) -> bool:
    run = session.run
    if run is None:
        return session.state.value in ("ended", "aborted")
    final = run.phase_index == len(run.timeline.phases) - 1
    return session.state.value in ("ended", "aborted") or (
        session.state.value == "holding" and final
    )


def describe_room(room: Any) -> str:
    """A few lines about a room: phase and time, each mock light, the music, check-ins."""
    view = room.view()
    session = view.get("session")
    head = f"{view['room']['name']} [{view['state']}]"
    if session:
        head += (
            f" {session['scene_name']} — {session['phase']['title']} "
            f"{format_clock(session['offset'])}/{format_clock(session['length'])}"
        )
    if view.get("overlays"):
        head += f"  overlays: {', '.join(view['overlays'])}"
    lines = [head]
    now = room.clock.monotonic()
    for name, driver in room.drivers.lights.items():
        for device in driver.devices:
            setting_at = getattr(driver, "setting_at", None)
            if setting_at is None:
                continue
            s = setting_at(device, now)
            colour = f" {round(mired_to_kelvin(s.mired), -1):g}K" if s.mired else ""
            state = f"{s.level:5.1f}%{colour}" if s.on else "  off"
            lines.append(f"  {name}/{device:<10} {state}")
    audio = room.drivers.audio
    if audio is not None and hasattr(audio, "volume_at"):
        music = f"{audio.playlist} at {audio.volume_at(now):.0f}%" if audio.playing else "silent"
        track = audio.track_at(now) if hasattr(audio, "track_at") else None
        if track is not None:
            music += f", {track[0]} {format_clock(track[1])}"
        lines.append(f"  music            {music}")
    checkins = view.get("checkins") or []
    if checkins:
        shown = ", ".join(
            f"{c['id']} ({c['priority']}{', ack' if c['state'] != 'due' else ''})" for c in checkins
        )
        lines.append(f"  check-ins        {shown}")
    return "\n".join(lines)
