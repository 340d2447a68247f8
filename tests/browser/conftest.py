"""The real controller (web app + rooms on mock drivers) in a background thread, and Chromium.

    def test_x(server: LiveServer, tablet: Page) -> None:
        sign_in(tablet, server, room="room-1")
        tablet.get_by_role("radio", name=re.compile("Demo arc")).tap()

The server runs the same code as ``sessionctl serve`` (``build_site`` + ``start_web``) on
127.0.0.1 with a free port; each room starts idle, and each test uses rooms no other test uses.
Chromium is Debian's (/usr/bin/chromium), never a Playwright download.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from controller.clock import SystemClock
from controller.config import Config
from controller.room import RoomUpdate
from controller.site import Site, build_site
from controller.web.app import build_app, start_web
from controller.web.staff import StaffStore

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DEVICE = "Galaxy Tab S4"
STAFF, PIN = "nurse-1", "482915"
ROOMS = [f"room-{i}" for i in range(1, 16)]

T = TypeVar("T")

# Three check-ins due at once: the busiest screen the safety bar must stay visible over.
BUSY_SCENE = """\
name: Busy check-ins
description: Three check-ins come due at once (browser tests only).
route: demo
roles:
  ambient: Indirect room light
  accent: Lamp beside the recliner
  path: Floor light along the way to the door
phases:
  - id: observe
    title: Observation
    duration: 10m
    cues:
      - at: 0s
        lights: {roles: [ambient, accent, path], level: 50, kelvin: 3000}
      - at: 0s
        checkin: {id: vitals, kind: vitals, prompt: Vitals now, priority: high, ack_within: 5m}
      - at: 0s
        checkin:
          id: comfort
          kind: comfort
          prompt: Comfort check
          priority: medium
          ack_within: 5m
          responses:
            - {code: settled, label: Settled}
            - {code: uneasy, label: Uneasy}
      - at: 0s
        checkin: {id: water, kind: custom, prompt: Offer water, ack_within: 5m}
"""

try:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
except ImportError:  # pragma: no cover - the dev dependencies include playwright
    sync_playwright = None  # type: ignore[assignment]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests need {reason} under CI")
    pytest.skip(reason)


def _room(room_id: str) -> dict[str, Any]:
    return {
        "id": room_id,
        "name": room_id.replace("room-", "Room "),
        "drivers": {
            "lights": {
                "type": "mock-light",
                "devices": {
                    "ceiling": {"max_transition": 6553.5, "min_interval": 0.1},
                    "lamp": {"max_transition": 20, "min_interval": 0.5},
                    "floor": {"max_transition": 0, "min_interval": 0.2},
                },
            },
            "audio": {"type": "mock-audio"},
            "tablet-cue": {"type": "mock-prompt"},
        },
        "roles": {"ambient": "lights/ceiling", "accent": "lights/lamp", "path": "lights/floor"},
        "audio": "audio",
        "prompts": ["tablet-cue"],
        "safe_state": {"level": 40, "kelvin": 3500},
    }


class ServerNow:
    """The web layer's clock for login timeouts: real time plus whatever a test skips."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def skip(self, seconds: float) -> None:
        self.skipped += seconds


class LiveServer:
    """The controller on its own event loop in a thread; ``call`` runs a coroutine there."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.scenes_dir = state_dir / "scenes"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.site: Site | None = None
        self.port = 0
        self._runner: Any = None
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.now = ServerNow()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> Config:
        return Config.model_validate(
            {
                "site": {
                    "name": "Browser test clinic",
                    "scenes_dir": str(self.scenes_dir),
                    "playlists_dir": str(ROOT / "playlists"),
                    "state_dir": str(self.state_dir),
                    "web": {"host": "127.0.0.1", "port": 0},
                },
                "rooms": [_room(r) for r in ROOMS],
            }
        )

    def start(self) -> None:
        shutil.copytree(ROOT / "scenes", self.scenes_dir)
        (self.scenes_dir / "busy.yaml").write_text(BUSY_SCENE)
        StaffStore(self.state_dir).add(STAFF, PIN)
        self.thread.start()
        self.call(self._start(), timeout=20)

    async def _start(self) -> None:
        config = self.config()
        self.site = build_site(config, clock=SystemClock())
        for room_id, room in self.site.rooms.items():
            room.add_listener(functools.partial(self._keep_event, room_id))
        await self.site.start()
        app = build_app(self.site, config.site.web, now=self.now, ws_check_interval=0.5)
        self._runner = await start_web(self.site, config.site.web, app=app)
        self.port = self._runner.addresses[0][1]

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 5) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def view(self, room: str) -> dict[str, Any]:
        async def get() -> dict[str, Any]:
            assert self.site is not None
            return self.site.rooms[room].view()

        return self.call(get())

    def _keep_event(self, room_id: str, update: RoomUpdate) -> None:
        if update.kind == "event":
            self.events.setdefault(room_id, []).append(update.data)

    def event_kinds(self, room: str) -> list[str]:
        async def get() -> list[str]:
            return [str(e["kind"]) for e in self.events.get(room, [])]

        return self.call(get())

    def stop(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            if self.site is not None:
                await self.site.close()

        try:
            self.call(stop(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("browser-state"))
    live.start()
    yield live
    live.stop()


# Module scope, not session: the sync API keeps its event loop marked as running in this
# thread until it exits, which would break every asyncio test that runs after it.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if sync_playwright is None:
        _unavailable("the playwright Python package")
    if not CHROMIUM.exists():
        _unavailable(f"Debian chromium at {CHROMIUM} (apt install chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def new_context(playwright: Playwright, browser: Browser, device: str = DEVICE) -> BrowserContext:
    profile = dict(playwright.devices[device])
    profile["has_touch"] = True
    return browser.new_context(**profile)


@pytest.fixture
def context(playwright: Playwright, browser: Browser) -> Iterator[BrowserContext]:
    ctx = new_context(playwright, browser)
    ctx.set_default_timeout(8000)
    yield ctx
    ctx.close()


@pytest.fixture
def tablet(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Anything the Content Security Policy blocks is a bug in the UI (no inline code or style).
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield page
    assert not errors, f"JavaScript or CSP errors: {errors}"


def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page: Page, server: LiveServer, *, room: str | None = None, shot: str = "") -> None:
    """Sign in with the keypad; pair with ``room`` or carry on as a nurse station."""
    page.goto(server.url + "/")
    page.get_by_label("Staff ID").fill(STAFF)
    for digit in PIN:
        page.get_by_role("button", name=digit, exact=True).tap()
    if shot:
        screenshot(page, shot)
    page.get_by_role("button", name="Sign in").tap()
    if room is None:
        page.get_by_role("button", name=re.compile("nurse station")).tap()
        page.get_by_role("heading", name="All rooms").wait_for()
        return
    else:
        name = room.replace("room-", "Room ")
        pair = page.get_by_role("button", name=f"Pair with {name}", exact=True)
        pair.wait_for()
        if shot:
            screenshot(page, "pair")
        pair.tap()
    page.get_by_text("Live", exact=True).wait_for()


def start_demo(page: Page) -> None:
    page.get_by_role("radio", name=re.compile("^Demo arc")).tap()
    page.get_by_role("button", name=re.compile("^Start Demo arc")).tap()
    page.get_by_role("button", name="Pause").wait_for()


def progress(page: Page) -> float:
    value = page.get_by_role("progressbar", name="Session progress").get_attribute("aria-valuenow")
    return float(value or 0)
