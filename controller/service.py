"""The service behind ``sessionctl serve`` (see :mod:`controller.serve` for what it does).

service = Service(load_config(Path("/etc/sessionctl/room.yaml")))
exit_code = await service.run()      # until SIGTERM/SIGINT or service.stop_requested.set()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from controller.bus import RoomBus
from controller.clock import SystemClock
from controller.config import Config
from controller.journal import Journal, open_journal
from controller.metrics import add_metrics_route
from controller.mqtt import MqttConnection
from controller.resume import resume_site
from controller.sdnotify import notify, watchdog_interval
from controller.site import Site, build_site
from controller.units import format_clock
from controller.web.app import build_app, start_web
from controller.yamlsafe import SourceError, SourceErrors, load_yaml
from drivers.base import DriverConfigError

log = logging.getLogger("sessionctl.serve")

STATUS_EVERY = 5.0
STOP_BUDGET = 10.0
"""Seconds each shutdown step may take; the unit's TimeoutStopSec (20 s) is the backstop."""


def apply_overrides(
    config: Config, *, state_dir: Path | None, host: str | None, port: int | None
) -> None:
    site = config.site
    if state_dir is not None:
        old, new = site.state_dir, state_dir.resolve()
        if site.journal.path.is_relative_to(old):
            site.journal.path = new / site.journal.path.relative_to(old)
        site.state_dir = new
    if host is not None:
        site.web.host = host
    if port is not None:
        site.web.port = port


def locate_driver_error(config: Config, message: str) -> SourceError:
    """Point a driver's config error at its entry in the file (the driver checks its options
    itself, after the YAML positions are gone, so find the entry again)."""
    file = str(config.path or "config")
    path: tuple[Any, ...] = ("rooms",)
    for i, room in enumerate(config.rooms):
        if message.startswith(f"room {room.id}:"):
            path = ("rooms", i)
        for name in room.drivers:
            if message.startswith(f"{name}:") or f"driver {name!r}" in message:
                path = ("rooms", i, "drivers", name)
                break
        else:
            continue
        break
    line, column = 1, 1
    if config.path is not None:
        with contextlib.suppress(OSError, SourceErrors):
            line, column = load_yaml(config.path.read_bytes(), file).position(path)
    return SourceError(file, line, column, message)


@dataclass
class Service:
    """One process's rooms and everything around them."""

    config: Config
    site: Site | None = None
    link: MqttConnection | None = None
    buses: list[RoomBus] = field(default_factory=list)
    journal: Journal | None = None
    runner: web.AppRunner | None = None
    url: str | None = None
    ready_at: float | None = None
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    _status: str = ""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_requested.set)
        try:
            try:
                await self.start()
            except OSError as exc:  # the port is taken, the state dir is not writable...
                log.error("cannot start: %s", exc)
                self._send_status(f"cannot start: {exc}")
                return 1
            notify("READY=1")
            self.ready_at = time.monotonic()
            log.info("ready", extra={"rooms": len(self.rooms), "web": self.url})
            self._tasks.append(asyncio.create_task(self._status_loop(), name="sd-status"))
            interval = watchdog_interval()
            if interval is not None:
                self._tasks.append(
                    asyncio.create_task(self._watchdog(interval), name="sd-watchdog")
                )
            await self.stop_requested.wait()
        finally:
            notify("STOPPING=1")
            self._send_status("stopping")
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        log.info("stopped")
        return 0

    @property
    def rooms(self) -> list[Any]:
        return list(self.site.rooms.values()) if self.site is not None else []

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        config.site.state_dir.mkdir(parents=True, exist_ok=True)
        if config.site.mqtt is not None:
            self.link = MqttConnection(config.site.mqtt, rooms=[r.id for r in config.rooms])
        clock = SystemClock()
        self.journal = open_journal(config, clock=clock)
        for notice in self.journal.notices:
            log.error("journal: %s", notice)
        try:
            self.site = build_site(config, clock=clock, mqtt=self.link, recorder=self.journal)
        except DriverConfigError as exc:
            raise SourceErrors([locate_driver_error(config, str(exc))]) from None
        self.site.extras["mqtt"] = self.link
        self.site.extras["journal"] = self.journal
        self._send_status("starting: rooms to their safe state")
        # Restores each room's session from the journal, safe state first, then starts the rooms.
        await resume_site(self.site, self.journal)
        if self.link is not None:
            for room in self.site.rooms.values():
                bus = RoomBus(room, self.link)
                await bus.start()
                self.buses.append(bus)
            await self.link.start()
        if config.site.web.enabled:
            await self._start_web()

    async def _start_web(self) -> None:
        assert self.site is not None
        settings = self.config.site.web
        app = build_app(self.site, settings)
        add_metrics_route(app, self.site)
        from controller.doctor import is_loopback

        if settings.tls_cert is None and not is_loopback(settings.host):
            log.warning(
                "the tablet app is served over plain http on %s: staff PINs and session "
                "cookies cross the network unencrypted; set site.web.tls_cert and tls_key",
                settings.host,
            )
        self.runner = await start_web(self.site, settings, app=app)
        host, port = self.runner.addresses[0][:2]
        scheme = "https" if settings.tls_cert is not None else "http"
        self.url = f"{scheme}://{host}:{port}"

    # -- run -----------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Whether the watchdog may be fed: every room's loop is alive."""
        return all(room.running for room in self.rooms)

    async def _watchdog(self, interval: float) -> None:
        while True:
            if self.healthy():
                notify("WATCHDOG=1")
            else:
                log.error("a room loop has stopped; no watchdog ping, systemd will restart us")
            await asyncio.sleep(interval)

    async def _status_loop(self) -> None:
        while True:
            self._send_status(self.status_text())
            await asyncio.sleep(STATUS_EVERY)

    def _send_status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            notify(f"STATUS={text}")

    def status_text(self) -> str:
        rooms = self.rooms
        parts = [f"{len(rooms)} room{'s' if len(rooms) != 1 else ''}"]
        idle = []
        for room in rooms:
            view = room.view()
            session = view.get("session")
            problems = [n for n, d in view["health"]["drivers"].items() if not d["ok"]]
            trouble = f" ({', '.join(problems)} failing)" if problems else ""
            if session is None or view["state"] in ("ended", "aborted", "ready"):
                if trouble:
                    parts.append(f"{room.id}: idle{trouble}")
                else:
                    idle.append(room.id)
                continue
            clock = f"{format_clock(session['offset'])}/{format_clock(session['length'])}"
            parts.append(f"{room.id}: {view['state']} {session['scene']} {clock}{trouble}")
        if idle:
            parts.append(f"{', '.join(idle)} idle" if len(idle) <= 3 else f"{len(idle)} idle")
        if self.journal is not None and self.journal.fault is not None:
            parts.append(f"journal: {self.journal.fault}")
        if self.link is not None:
            parts.append(
                "broker connected"
                if self.link.connected
                else f"broker unreachable ({self.link.last_error or 'connecting'})"
            )
        return "; ".join(parts)

    # -- stop ----------------------------------------------------------------------------

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.runner is not None:  # no new commands from tablets while the rooms stop
            await _bounded(self.runner.cleanup(), "web server")
        for bus in self.buses:
            await _bounded(bus.close(), "MQTT room API")
        if self.site is not None:
            # Rooms stop where they are: lights keep their state, nothing is sent to devices.
            await _bounded(self.site.close(), "rooms")
        if self.journal is not None:
            try:
                self.journal.close()
            except Exception as exc:
                log.error("closing the journal failed: %s", exc)
        if self.link is not None:
            await _bounded(self.link.close(timeout=STOP_BUDGET / 2), "MQTT link")


async def _bounded(step: Awaitable[Any], what: str) -> None:
    try:
        async with asyncio.timeout(STOP_BUDGET):
            await step
    except TimeoutError:
        log.error("stopping the %s took longer than %.0f s; going on", what, STOP_BUDGET)
    except Exception as exc:
        log.error("stopping the %s failed: %s", what, exc)
