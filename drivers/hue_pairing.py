"""Pairing with a Hue bridge and listing what it has: plain functions plus their CLI commands.

    key = pair("192.168.1.20", Path("/var/lib/sessionctl"), on_wait=lambda left: print(left))
    print(list_bridge("192.168.1.20", Path("/var/lib/sessionctl")))   # YAML for the room config

From the shell (``register_cli`` adds these to ``sessionctl``)::

    sessionctl hue pair --host 192.168.1.20 [--state-dir DIR] [--timeout 30]
    sessionctl hue list --host 192.168.1.20 [--state-dir DIR]

The key goes to ``<state dir>/hue-<host>.json`` (mode 0600), which is where the driver looks by
default; nothing is written to the home directory (phue's default), which systemd's
``ProtectHome=yes`` hides anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from drivers.base import DriverError
from drivers.hue_api import (
    LINK_BUTTON_NOT_PRESSED,
    HueApiError,
    HueBridge,
    HueError,
    HueUnreachable,
    key_path,
    normalise_host,
    read_key,
    write_key,
)
from drivers.hue_payload import lamp_from_bridge

REQUEST_TIMEOUT = 5.0


class HuePairingError(DriverError):
    """Pairing or listing failed; the message says what to do."""


def _devicetype() -> str:
    # The bridge allows "<app, at most 20>#<device, at most 19>".
    return "sessionctl#" + (socket.gethostname() or "controller")[:19]


def pair(
    host: str,
    state_dir: Path,
    *,
    timeout: float = 30.0,
    interval: float = 1.0,
    on_wait: Callable[[float], None] | None = None,
) -> str:
    """Ask the bridge for a key until its link button is pressed (for ``timeout`` seconds).

    ``on_wait(seconds_left)`` is called each time the bridge says the button was not pressed
    yet. The key is stored in ``state_dir`` (0600) and returned.
    """
    host = normalise_host(host)
    bridge = HueBridge(host, "", timeout=REQUEST_TIMEOUT, state_dir=state_dir)
    deadline = time.monotonic() + timeout
    while True:
        try:
            key = bridge.register(_devicetype())
            break
        except HueUnreachable as exc:
            raise HuePairingError(f"no Hue bridge answers at {host}: {exc}") from exc
        except HueApiError as exc:
            if LINK_BUTTON_NOT_PRESSED not in exc.types:
                raise HuePairingError(
                    f"pairing with the Hue bridge at {host} failed: {exc}"
                ) from exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise HuePairingError(
                f"the link button on the Hue bridge at {host} was not pressed within "
                f"{timeout:g} s; press the round button on the bridge, then run "
                f"`sessionctl hue pair --host {host}` again"
            )
        if on_wait is not None:
            on_wait(left)
        time.sleep(min(interval, left))
    write_key(key_path(state_dir, host), host, key)
    return key


def list_bridge(host: str, state_dir: Path) -> str:
    """The bridge's lights and groups as a YAML snippet for the room config's ``drivers:``."""
    host = normalise_host(host)
    key = read_key(key_path(state_dir, host), host)
    if key is None:
        raise HuePairingError(
            f"not paired with the Hue bridge at {host} (no key in {key_path(state_dir, host)}); "
            f"run `sessionctl hue pair --host {host}` first"
        )
    bridge = HueBridge(host, key, timeout=REQUEST_TIMEOUT, state_dir=state_dir)
    try:
        lights = bridge.get_light()
        groups = bridge.get_group()
    except HueError as exc:
        raise HuePairingError(str(exc)) from exc
    return format_room_snippet(host, lights, groups)


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "light"
    if base[0].isdigit():
        base = "l_" + base
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}_{n}", n + 1
    taken.add(slug)
    return slug


def _by_id(table: Any) -> list[tuple[int, Mapping[str, Any]]]:
    if not isinstance(table, dict):
        return []
    rows = [(int(k), v) for k, v in table.items() if str(k).isdigit() and isinstance(v, dict)]
    return sorted(rows, key=lambda row: row[0])


def _light_note(light_id: int, info: Mapping[str, Any]) -> str:
    lamp = lamp_from_bridge(light_id, info)
    parts = [json.dumps(str(info.get("name", ""))), str(info.get("type", "light"))]
    if lamp.color_temp and lamp.mired_range:
        parts.append(f"ct {lamp.mired_range[0]}-{lamp.mired_range[1]} mired")
    if lamp.xy:
        parts.append("colour (xy)")
    if not lamp.dimmable:
        parts.append("on/off only")
    return ", ".join(parts)


def format_room_snippet(host: str, lights: Any, groups: Any) -> str:
    """Format GET /lights and GET /groups answers as a ``drivers:`` entry (pure)."""
    light_rows, group_rows = _by_id(lights), _by_id(groups)
    names: dict[int, str] = {}
    taken: set[str] = set()
    out = [
        f"# Hue bridge {host}: {len(light_rows)} lights, {len(group_rows)} groups.",
        "# Rename the devices as you like; map fixture roles to hue/<device>.",
        "drivers:",
        "  hue:",
        "    type: hue",
        f"    host: {json.dumps(host)}",
        "    lights:",
    ]
    for light_id, info in light_rows:
        names[light_id] = _slug(str(info.get("name", f"light {light_id}")), taken)
        out.append(f"      {names[light_id]}: {light_id}  # {_light_note(light_id, info)}")
    if not light_rows:
        out[-1] = "    lights: {}"
    if group_rows:
        out.append(
            "    # Group actions are used when all of a group's lights get the same command."
        )
        out.append("    groups:")
        group_names: set[str] = set()
        for group_id, info in group_rows:
            members = [names.get(int(x), f"light {x}") for x in info.get("lights", [])]
            note = f"{json.dumps(str(info.get('name', '')))} ({info.get('type', 'group')})"
            slug = _slug(str(info.get("name", f"group {group_id}")), group_names)
            out.append(f"      {slug}: {group_id}  # {note}: {', '.join(members)}")
    else:
        out.append("    groups: auto")
    return "\n".join(out) + "\n"


# -- command line ------------------------------------------------------------------------------


def default_state_dir() -> Path:
    """systemd's ``StateDirectory`` when run as the service, else ``./state``."""
    return Path(os.environ.get("STATE_DIRECTORY", "state").split(":")[0])


def _cli_pair(args: argparse.Namespace) -> int:
    print(f"Press the round link button on the Hue bridge at {args.host} now.", flush=True)

    def waiting(left: float) -> None:
        print(f"  waiting for the button... {left:.0f} s left", flush=True)

    try:
        pair(args.host, args.state_dir, timeout=args.timeout, on_wait=waiting)
    except HuePairingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Paired. Key stored in {key_path(args.state_dir, args.host)} (readable by you only).")
    return 0


def _cli_list(args: argparse.Namespace) -> int:
    try:
        print(list_bridge(args.host, args.state_dir), end="")
    except HuePairingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``hue pair`` and ``hue list`` to an argparse subparsers object."""
    hue = subparsers.add_parser("hue", help="pair with a Philips Hue bridge and list its lights")
    commands = hue.add_subparsers(dest="hue_command", metavar="ACTION", required=True)
    for name, handler, text in (
        ("pair", _cli_pair, "press the bridge's link button and store a key for it"),
        ("list", _cli_list, "print the bridge's lights and groups as room-config YAML"),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("--host", required=True, help="bridge address, or host:port")
        parser.add_argument(
            "--state-dir",
            type=Path,
            default=default_state_dir(),
            help="the controller's state directory (default: $STATE_DIRECTORY or ./state)",
        )
        if name == "pair":
            parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
        parser.set_defaults(handler=handler, func=handler)


register = register_cli  # the name controller/cli.py's SUBCOMMAND_MODULES looks for
