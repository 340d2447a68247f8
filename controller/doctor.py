"""``sessionctl doctor``: a checklist of what a room controller needs, with a fix for each failure.

    sudo -u sessionctl /opt/sessionctl/venv/bin/sessionctl doctor --config /etc/sessionctl/room.yaml

Each line is ``ok|FAIL|warn  <check>  — <detail or fix>``; the exit code is 1 when any check
FAILs (warnings do not fail). Checks: the config; the MQTT broker and its credentials; each Hue
bridge and its key; libvlc and the audio device for VLC drivers; the journal (``quick_check``);
free space in the state directory; clock synchronisation. Run it as the service user, so that
permissions are checked as the service sees them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from controller.yamlsafe import SourceErrors

if TYPE_CHECKING:
    from controller.config import Config

TIMEOUT = 3.0
LOW_DISK = 200 * 1024 * 1024
SYNC_FLAG = Path("/run/systemd/timesync/synchronized")
VLC_PACKAGES = "sudo apt-get install libvlc5 vlc-plugin-base"
_AUTH_CODES = frozenset({4, 5, 134, 135})

Status = Literal["ok", "FAIL", "warn"]


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    text: str

    def __str__(self) -> str:
        return f"{self.status:<4}  {self.name:<22}  — {self.text}"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("doctor", help="check config, broker, bridges, audio, journal, disk")
    p.add_argument(
        "--config",
        type=Path,
        help="site config (default: $SESSIONCTL_CONFIG, /etc/sessionctl/room.yaml, or the demo)",
    )
    p.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per network check")
    p.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from controller.resources import default_config

    config = args.config or default_config()
    checks = asyncio.run(run_checks(config, timeout=args.timeout, emit=print))
    return 1 if any(c.status == "FAIL" for c in checks) else 0


async def run_checks(
    path: Path, *, timeout: float = TIMEOUT, emit: Callable[[str], None] | None = None
) -> list[Check]:
    """Every check in order; ``emit`` gets each line as soon as it is known."""
    out: list[Check] = []

    def add(check: Check) -> None:
        out.append(check)
        if emit is not None:
            emit(str(check))

    config, check = _check_config(path)
    add(check)
    if config is None:
        return out
    steps: list[Awaitable[list[Check]]] = [
        _check_broker(config, timeout),
        _check_hue(config, timeout),
        _check_vlc(config),
    ]
    for step in steps:
        for c in await step:
            add(c)
    for c in (_check_journal(config), _check_disk(config), _check_clock(), _check_tablet(config)):
        add(c)
    return out


# -- config ------------------------------------------------------------------------------------


def _check_config(path: Path) -> tuple[Config | None, Check]:
    from controller.config import load_config

    name = "config"
    try:
        config = load_config(path)
    except SourceErrors as exc:
        first = str(exc.errors[0]) if exc.errors else str(exc)
        more = f" (+{len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        return None, Check("FAIL", name, f"{first}{more} — fix the file and run doctor again")
    try:
        scenes = _build_site(config)
    except SourceErrors as exc:
        return None, Check("FAIL", name, f"{exc.errors[0]} — fix the scene and run doctor again")
    except Exception as exc:
        from controller.service import locate_driver_error

        return None, Check("FAIL", name, f"{locate_driver_error(config, str(exc))}")
    if not scenes:
        return None, Check(
            "FAIL", name, f"no scenes in {config.site.scenes_dir}: fix site.scenes_dir"
        )
    rooms = ", ".join(r.id for r in config.rooms)
    return config, Check("ok", name, f"{path}: rooms {rooms}; {scenes} scene(s)")


def _build_site(config: Config) -> int:
    """Build (not start) every room and driver, so option errors show up here; the number of
    scenes the rooms can run."""
    from controller.clock import SystemClock
    from controller.site import build_site

    site = build_site(config, clock=SystemClock())
    return len(site.library.scenes)


# -- broker ------------------------------------------------------------------------------------


async def _check_broker(config: Config, timeout: float) -> list[Check]:
    settings = config.site.mqtt
    if settings is None:
        return []
    import aiomqtt
    from aiomqtt.exceptions import MqttConnectError

    where = f"{settings.host}:{settings.port}"
    name = "MQTT broker"
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        identifier=f"{settings.client_id}-doctor",
        tls_context=settings.tls.context() if settings.tls else None,
        timeout=timeout,
    )
    try:
        async with asyncio.timeout(timeout + 1):
            async with client:
                pass
    except MqttConnectError as exc:
        code = getattr(exc.rc, "value", exc.rc)
        if code in _AUTH_CODES:
            return [
                Check(
                    "FAIL",
                    name,
                    f"{where} refused user {settings.username!r}: set site.mqtt.username/"
                    "password to an account in the broker's password_file "
                    "(sudo mosquitto_passwd /etc/mosquitto/passwd <user>)",
                )
            ]
        return [Check("FAIL", name, f"{where} refused the connection: {exc}")]
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        return [
            Check(
                "FAIL",
                name,
                f"no broker answers at {where} ({exc or 'timeout'}): start it "
                "(sudo systemctl start mosquitto) or fix site.mqtt.host/port",
            )
        ]
    user = f" as {settings.username}" if settings.username else " (anonymous)"
    return [Check("ok", name, f"{where} accepted the connection{user}")]


# -- Hue ---------------------------------------------------------------------------------------


def _drivers_of(config: Config, kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for room in config.rooms:
        for name, entry in room.drivers.items():
            if entry.type == kind:
                yield room.id, name, entry.options


async def _check_hue(config: Config, timeout: float) -> list[Check]:
    out = []
    seen: set[str] = set()
    for room_id, name, options in _drivers_of(config, "hue"):
        from drivers.hue import HueOptions

        opts = HueOptions.parse(name, options, config.site.state_dir)
        if opts.host in seen:
            continue
        seen.add(opts.host)
        out.append(await _check_bridge(f"Hue {room_id}/{name}", opts, config, timeout))
    return out


async def _check_bridge(label: str, opts: Any, config: Config, timeout: float) -> Check:
    import aiohttp

    from drivers.hue_api import read_key

    host = opts.host
    pair = f"press the bridge's link button, then: sessionctl hue pair --host {host}"
    pair += f" --state-dir {config.site.state_dir}"
    key = opts.username or read_key(opts.key_file, host)
    if key is None:
        return Check("FAIL", label, f"not paired (no key in {opts.key_file}): {pair}")
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
            http.get(f"http://{host}/api/{key}/lights") as response,
        ):
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check(
            "FAIL",
            label,
            f"no Hue bridge answers at {host} ({exc or 'timeout'}): check its power and "
            "network cable, and the address in the config (give it a fixed DHCP lease)",
        )
    if isinstance(body, list) and any(
        isinstance(e, dict) and e.get("error", {}).get("type") == 1 for e in body
    ):
        return Check("FAIL", label, f"{host} does not know this key: {pair}")
    if not isinstance(body, dict):
        return Check("FAIL", label, f"{host} answered something unexpected: {str(body)[:80]}")
    missing = [d for d, i in opts.lights.items() if str(i) not in body]
    if missing:
        return Check(
            "warn",
            label,
            f"{host} has no light for {', '.join(missing)}: run `sessionctl hue list "
            f"--host {host}` and fix the ids in the config",
        )
    return Check("ok", label, f"{host} paired; {len(opts.lights)} light(s) found")


# -- audio -------------------------------------------------------------------------------------


async def _check_vlc(config: Config) -> list[Check]:
    out = []
    for room_id, name, options in _drivers_of(config, "vlc"):
        out.append(await asyncio.to_thread(_vlc_one, f"audio {room_id}/{name}", options))
    return out


def _vlc_one(label: str, options: dict[str, Any]) -> Check:
    from drivers.base import DriverError
    from drivers.vlc_runtime import VlcRuntime

    aout = str(options.get("aout", "alsa"))
    device = options.get("device")
    try:
        runtime = VlcRuntime.open(
            aout=aout,
            device=str(device) if device else None,
            library=options.get("libvlc"),
        )
    except DriverError as exc:
        return Check("FAIL", label, f"{exc} ({VLC_PACKAGES})")
    version = runtime.version
    runtime.close()
    if aout != "alsa":
        return Check("ok", label, f"libvlc {version}, output {aout}")
    problem = _alsa_problem(str(device) if device else None)
    if problem:
        return Check("FAIL", label, problem)
    return Check("ok", label, f"libvlc {version}, ALSA {device or 'default'}")


def _alsa_problem(device: str | None) -> str | None:
    """Why the ALSA device cannot open, checked without making a sound."""
    controls = sorted(Path("/dev/snd").glob("controlC*"))
    if not controls:
        return "no sound card (/dev/snd is empty): enable the audio output (raspi-config)"
    if not any(os.access(c, os.R_OK | os.W_OK) for c in controls):
        return (
            "cannot open /dev/snd: add the service user to group audio "
            "(sudo usermod -aG audio sessionctl; the unit has SupplementaryGroups=audio)"
        )
    card = re.search(r"CARD=([^,]+)", device or "")
    if card:
        cards = Path("/proc/asound/cards")
        text = cards.read_text() if cards.exists() else ""
        if f"[{card.group(1)}" not in text.replace(" ", ""):
            return (
                f"no ALSA card {card.group(1)!r}: list cards with `aplay -L` and set the "
                "driver's device (e.g. hw:CARD=Headphones)"
            )
    return None


# -- journal, disk, clock ----------------------------------------------------------------------


def _check_journal(config: Config) -> Check:
    path = config.site.journal.path
    name = "journal"
    if not path.exists():
        return Check("ok", name, f"{path} not created yet (the service creates it)")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        return Check(
            "FAIL",
            name,
            f"{path}: {exc}: run doctor as the service user (sudo -u sessionctl ...); if the "
            "file is damaged, stop the service and move it aside (it starts a new journal)",
        )
    if rows != [("ok",)]:
        return Check(
            "FAIL",
            name,
            f"{path} is damaged ({rows[0][0]}): stop the service, move the file aside and start "
            "again; keep the damaged copy for the audit trail",
        )
    return Check("ok", name, f"{path} quick_check ok")


def _check_disk(config: Config) -> Check:
    state = config.site.state_dir
    name = "disk space"
    if not state.is_dir():
        return Check(
            "FAIL",
            "state directory",
            f"{state} does not exist: run scripts/install-pi (or mkdir it, owned by sessionctl)",
        )
    free = shutil.disk_usage(state).free
    text = f"{free / 2**20:.0f} MB free in {state}"
    if free < LOW_DISK:
        return Check("warn", name, f"{text}: free space (sudo journalctl --vacuum-size=100M)")
    if not os.access(state, os.W_OK):
        return Check("warn", name, f"{text}, but not writable by this user (run as sessionctl)")
    return Check("ok", name, text)


def _check_tablet(config: Config) -> Check:
    name = "tablet link"
    web = config.site.web
    if not web.enabled:
        return Check("ok", name, "web app disabled")
    if web.tls_cert is not None:
        return Check("ok", name, f"https on {web.host}:{web.port}")
    if is_loopback(web.host):
        return Check("ok", name, f"http on {web.host}:{web.port} (this machine only)")
    return Check(
        "warn",
        name,
        f"plain http on {web.host}:{web.port}: staff PINs and session cookies cross the network "
        "unencrypted; set site.web.tls_cert and tls_key (docs/deployment.md)",
    )


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_clock() -> Check:
    name = "clock"
    if SYNC_FLAG.exists():
        return Check("ok", name, "NTP synchronised")
    answer = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        answer = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        ).stdout.strip()
    if answer == "yes":
        return Check("ok", name, "NTP synchronised")
    return Check(
        "warn",
        name,
        "not NTP synchronised: a session interrupted by a reboot resumes paused; "
        "enable time sync (sudo timedatectl set-ntp true) and check the network",
    )
