"""A two-room site on mock drivers behind the real web app, served by aiohttp's TestServer.

async def test_x(web: WebRig):
    client = await web.login()                 # a logged-in TestClient
    r = await client.get("/api/v1/rooms")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web as aioweb
from aiohttp.test_utils import TestClient, TestServer

from controller.clock import SystemClock
from controller.config import Config, WebSettings
from controller.site import Site, build_site
from controller.web import audit
from controller.web.app import build_app
from controller.web.context import CTX, WebContext
from controller.web.staff import StaffStore

ROOT = Path(__file__).resolve().parents[2]
PINS = {"nurse-1": "482915", "nurse-2": "739104"}
HDR = {"X-Sessionctl": "1"}


def _room(room_id: str) -> dict[str, Any]:
    return {
        "id": room_id,
        "name": room_id.title(),
        "drivers": {
            "lights": {
                "type": "mock-light",
                "devices": {"ceiling": {"max_transition": 6553.5}, "lamp": {}, "floor": {}},
            },
            "audio": {"type": "mock-audio"},
        },
        "roles": {"ambient": "lights/ceiling", "accent": "lights/lamp", "path": "lights/floor"},
        "audio": "audio",
    }


def web_config(state_dir: Path, **web_settings: Any) -> Config:
    return Config.model_validate(
        {
            "site": {
                "scenes_dir": str(ROOT / "scenes"),
                "playlists_dir": str(ROOT / "playlists"),
                "state_dir": str(state_dir),
                "journal": {"path": str(state_dir / "journal.sqlite3")},
                "web": {"port": 0, **web_settings},
            },
            "rooms": [_room("room-1"), _room("room-2")],
        }
    )


class FakeNow:
    """The web layer's clock for session timeouts; moves only when told."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class WebRig:
    site: Site
    app: aioweb.Application
    server: TestServer
    now: FakeNow
    audit_log: list[dict[str, Any]] = field(default_factory=list)
    clients: list[TestClient[Any, Any]] = field(default_factory=list)

    @property
    def ctx(self) -> WebContext:
        return self.app[CTX]

    async def client(self) -> TestClient[Any, Any]:
        """A fresh browser: its own cookie jar."""
        client: TestClient[Any, Any] = TestClient(self.server)
        await client.start_server()
        self.clients.append(client)
        return client

    async def login(
        self, staff: str = "nurse-1", client: TestClient[Any, Any] | None = None
    ) -> TestClient[Any, Any]:
        client = client or await self.client()
        r = await client.post(
            "/api/v1/login", json={"staff": staff, "pin": PINS[staff]}, headers=HDR
        )
        assert r.status == 200, await r.text()
        return client

    async def pair(self, client: TestClient[Any, Any], room: str) -> None:
        r = await client.post("/api/v1/pair", json={"room": room}, headers=HDR)
        assert r.status == 200, await r.text()


@pytest.fixture(scope="session")
def staff_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """staff.json made once: scrypt is slow on purpose."""
    folder = tmp_path_factory.mktemp("staff")
    store = StaffStore(folder)
    for staff, pin in PINS.items():
        store.add(staff, pin)
    return folder / "staff.json"


async def make_rig(
    tmp_path: Path, staff_template: Path, *, secure: bool = False, **web_settings: Any
) -> AsyncIterator[WebRig]:
    config = web_config(tmp_path, **web_settings)
    (tmp_path / "staff.json").write_bytes(staff_template.read_bytes())
    site = build_site(config, clock=SystemClock())
    await site.start()
    now = FakeNow()
    settings: WebSettings = config.site.web
    app = build_app(site, settings, now=now, secure=secure, ws_check_interval=0.05)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    rig = WebRig(site, app, server, now)
    remove = audit.add_sink(rig.audit_log.append)
    try:
        yield rig
    finally:
        remove()
        for client in rig.clients:
            await client.close()
        await server.close()
        await site.close()


@pytest.fixture
async def web(tmp_path: Path, staff_template: Path) -> AsyncIterator[WebRig]:
    async for rig in make_rig(tmp_path, staff_template):
        yield rig
