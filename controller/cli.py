"""The ``sessionctl`` command.

    sessionctl validate scenes/              # exit 1 and list every error on any problem
    sessionctl simulate iv-infusion --at 23m # the room state 23 minutes in
    sessionctl simulate scenes/demo.yaml     # what every device receives, and when
    sessionctl schema > scenes/scene.schema.json
    sessionctl demo                          # the demo room on mock drivers

Feature modules add their own subcommands through ``register(subparsers)``; they are listed in
``SUBCOMMAND_MODULES`` and keep their heavy imports inside their handlers, so the CLI starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controller import __version__
from controller.resources import resource
from controller.scene import (
    OVERLAYS_FILE,
    LoadedScene,
    Overlay,
    SceneLibrary,
    folder_overlays,
    json_schema,
    parse_overlays,
    parse_scene,
    playlist_names,
)
from controller.units import DurationError, format_clock, mired_to_kelvin, parse_duration
from controller.yamlsafe import SourceError, SourceErrors

# Modules with a `register(subparsers)` function, added by the features that need them.
SUBCOMMAND_MODULES: list[str] = [
    "controller.demo",
    "controller.web.staff",
    "controller.serve",
    "controller.doctor",
    "controller.plot",
    "controller.export",
    "drivers.hue_pairing",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except SourceErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionctl",
        description="Session environment controller for ketamine-assisted therapy rooms: "
        "scene timelines for lights, music and staff check-ins.",
    )
    parser.add_argument("--version", action="version", version=f"sessionctl {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("validate", help="check scene files; list every error")
    p.add_argument("paths", nargs="+", type=Path, help="scene files or folders")
    p.add_argument("--playlists", type=Path, help="playlists folder (default: ../playlists)")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("simulate", help="run a scene on mock drivers in virtual time")
    p.add_argument("scene", help="a scene id or a scene file")
    p.add_argument(
        "--room", type=Path, help="room config to simulate (default: one mock bulb per role)"
    )
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--instant", action="store_true", help="as fast as possible (default)")
    speed.add_argument("--speed", type=float, help="N times faster than real time")
    p.add_argument("--at", help="print the room state at this offset (e.g. 23m) and exit")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--ack-after",
        default="1m",
        help="simulated staff acknowledge check-ins after this long ('never' to see escalation)",
    )
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("schema", help="print the JSON Schema of scene files")
    p.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")
    p.set_defaults(handler=cmd_schema)

    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


# -- validate ------------------------------------------------------------------------------


def _scene_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.glob("*.yaml"))
        else:
            files.append(path)
    return files


def _overlays_for(
    path: Path, cache: dict[Path, dict[str, Overlay]], errors: list[SourceError]
) -> dict[str, Overlay]:
    folder = path.parent
    if folder not in cache:
        cache[folder] = {}
        # Errors in the overlays file are reported when that file itself is validated.
        with contextlib.suppress(SourceErrors):
            cache[folder] = folder_overlays(folder)
    return cache[folder]


def cmd_validate(args: argparse.Namespace) -> int:
    errors: list[SourceError] = []
    cache: dict[Path, dict[str, Overlay]] = {}
    files = _scene_files(args.paths)
    checked = 0
    for path in files:
        checked += 1
        try:
            raw = path.read_bytes()
        except OSError as exc:
            errors.append(SourceError(str(path), 1, 1, f"cannot read: {exc.strerror}"))
            continue
        try:
            if path.name == OVERLAYS_FILE:
                parse_overlays(raw, str(path))
                continue
            playlists_dir = args.playlists or path.parent.parent / "playlists"
            parse_scene(
                raw,
                str(path),
                shared_overlays=_overlays_for(path, cache, errors),
                playlists=playlist_names(playlists_dir),
            )
        except SourceErrors as exc:
            errors += exc.errors
    for error in errors:
        print(error, file=sys.stderr)
    bad = len({e.file for e in errors})
    print(
        f"{checked} file(s) checked, {bad} with errors, {len(errors)} error(s)",
        file=sys.stderr if errors else sys.stdout,
    )
    return 1 if errors else 0


# -- simulate ------------------------------------------------------------------------------


def _find_scene(ref: str, room: Path | None) -> tuple[LoadedScene, dict[str, Overlay]]:
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        shared = folder_overlays(path.parent)
        scene = parse_scene(
            path.read_bytes(),
            str(path),
            shared_overlays=shared,
            playlists=playlist_names(path.parent.parent / "playlists"),
        )
        return scene, {"panic": scene.overlays["panic"], **shared}
    scenes_dir = resource("scenes")
    if room is not None:
        from controller.config import load_config

        scenes_dir = load_config(room).site.scenes_dir
    library = SceneLibrary.load(scenes_dir, playlists=playlist_names(resource("playlists")))
    try:
        return library.scene(ref), library.overlays
    except KeyError as exc:
        raise SourceErrors([SourceError(ref, 1, 1, str(exc.args[0]))]) from None


def _parse_offset(text: str) -> float:
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise SystemExit(f"sessionctl: --at: {exc}") from None


def cmd_simulate(args: argparse.Namespace) -> int:
    from controller.simulate import format_table, simulate_scene

    scene, overlays = _find_scene(args.scene, args.room)
    if args.at is not None:
        return _print_state_at(scene, _parse_offset(args.at), args.json)
    room = None
    if args.room is not None:
        from controller.config import load_config

        config = load_config(args.room)
        room = config.rooms[0]
    ack_after = None if args.ack_after == "never" else _parse_offset(args.ack_after)
    report = simulate_scene(
        scene, room=room, overlays=overlays, ack_after=ack_after, speed=args.speed
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(format_table(report))
    return 0


def _print_state_at(scene: LoadedScene, offset: float, as_json: bool) -> int:
    from controller.timeline import Timeline

    timeline = Timeline(scene)
    if offset > timeline.length:
        print(
            f"sessionctl: --at {format_clock(offset)} is past the end of {scene.id} "
            f"({format_clock(timeline.length)})",
            file=sys.stderr,
        )
        return 2
    state = timeline.state_at(offset)
    phase = timeline.phase_at(offset)
    due = [c.cue.checkin.id for c in timeline.checkins if c.time <= offset and c.cue.checkin]
    data: dict[str, Any] = {
        "scene": scene.id,
        "offset": offset,
        "phase": phase.id,
        "lights": {
            role: {
                "on": s.current.on,
                "level": round(s.current.level, 2),
                "kelvin": None
                if s.current.mired is None
                else round(mired_to_kelvin(s.current.mired), -1),
                "fading_to": None if not s.remaining else round(s.goal.level, 2),
                "fade_left": round(s.remaining, 2),
            }
            for role, s in state.lights.items()
        },
        "music": {
            "playlist": state.music.playlist,
            "playing": state.music.playing,
            "volume": round(state.music.volume, 2),
            "ramping_to": round(state.music.goal, 2),
            "ramp_left": round(state.music.remaining, 2),
            "position": round(state.music.position, 2),
        },
        "checkins_due_so_far": due,
    }
    if as_json:
        print(json.dumps(data, indent=1))
        return 0
    print(f"{scene.name} at {format_clock(offset)} — phase {phase.phase.label}")
    for role, light in data["lights"].items():
        text = f"{light['level']:g}%" if light["on"] else "off"
        if light["kelvin"]:
            text += f" {light['kelvin']}K"
        if light["fade_left"]:
            text += f", fading to {light['fading_to']:g}% ({light['fade_left']:g}s left)"
        print(f"  {role:<12} {text}")
    m = data["music"]
    music = f"{m['playlist']} at {m['volume']:g}%" if m["playing"] else "silent"
    if m["ramp_left"]:
        music += f", ramping to {m['ramping_to']:g}% ({m['ramp_left']:g}s left)"
    print(f"  {'music':<12} {music}")
    print(f"  check-ins so far: {', '.join(due) or 'none'}")
    return 0


# -- schema --------------------------------------------------------------------------------


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
