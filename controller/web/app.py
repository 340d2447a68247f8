"""The tablet web app: JSON API, live WebSocket, staff login and the static UI, on aiohttp
inside the controller's own event loop (no signal handlers of its own).

    site = build_site(config, clock=SystemClock())
    await site.start()
    runner = await start_web(site, config.site.web)      # listening now
    ...
    await runner.cleanup()                               # before site.close()

``build_app`` gives the bare application for tests (aiohttp's TestServer) and benchmarks.
"""

from __future__ import annotations

import mimetypes
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from controller.commands import VERBS
from controller.config import WebSettings
from controller.site import Site
from controller.web import handlers, login
from controller.web.auth import Devices, Sessions, Throttle
from controller.web.context import CTX, WebContext
from controller.web.live import RoomHub
from controller.web.security import ApiError, json_errors, same_origin_only, security_headers
from controller.web.staff import StaffStore

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY = 64 * 1024
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain",
}


def build_app(
    site: Site,
    settings: WebSettings,
    *,
    staff_store: StaffStore | None = None,
    secure: bool | None = None,
    now: Callable[[], float] = time.monotonic,
    throttle: Throttle | None = None,
    static_dir: Path = STATIC_DIR,
    ws_check_interval: float = 5.0,
) -> web.Application:
    """The application; ``secure`` (default: TLS configured) switches on ``__Host-`` cookies."""
    state_dir = site.config.site.state_dir
    ctx = WebContext(
        site=site,
        settings=settings,
        staff=staff_store or StaffStore(state_dir),
        sessions=Sessions(idle=settings.session_idle, absolute=settings.session_absolute),
        devices=Devices(state_dir, lifetime=settings.device_days * 86400),
        throttle=throttle or Throttle(),
        secure=bool(settings.tls_cert) if secure is None else secure,
        now=now,
        ws_check_interval=ws_check_interval,
    )
    app = web.Application(middlewares=[json_errors, same_origin_only], client_max_size=MAX_BODY)
    app[CTX] = ctx
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(_hubs)
    _routes(app, static_dir)
    return app


def _routes(app: web.Application, static_dir: Path) -> None:
    r = app.router
    r.add_get("/healthz", handlers.healthz)
    r.add_get("/readyz", handlers.readyz)
    r.add_get("/api/v1/openapi.json", handlers.openapi)
    r.add_post("/api/v1/login", login.login)
    r.add_post("/api/v1/logout", login.logout)
    r.add_get("/api/v1/me", login.me)
    r.add_get("/api/v1/device", login.device)
    r.add_post("/api/v1/pair", login.pair)
    r.add_delete("/api/v1/pair", login.unpair)
    r.add_get("/api/v1/rooms", handlers.rooms)
    r.add_get("/api/v1/rooms/{room}", handlers.room)
    r.add_get("/api/v1/rooms/{room}/audit", handlers.audit)
    r.add_get("/api/v1/rooms/{room}/ws", handlers.room_ws)
    for verb in VERBS:
        r.add_post(f"/api/v1/rooms/{{room}}/commands/{verb}", handlers.command)
    r.add_get("/api/v1/scenes", handlers.scenes)
    r.add_get("/api/v1/scenes/{scene}/timeline.svg", handlers.timeline_svg)
    # Everything outside /api is the tablet UI; unknown /api paths fall through to a JSON 404.
    r.add_get("/{path:(?!api/).*}", _static_handler(static_dir), name="static")


async def _hubs(app: web.Application) -> AsyncIterator[None]:
    ctx = app[CTX]
    for room_id, room in ctx.site.rooms.items():
        hub = ctx.hubs[room_id] = RoomHub(room)
        hub.start()
    yield
    for hub in ctx.hubs.values():
        hub.stop()


def _static_handler(root: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    root = root.resolve()

    async def static(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"] or "index.html"
        parts = Path(rel).parts
        if any(p.startswith(".") for p in parts):
            raise ApiError(404, "not found")
        path = (root / rel).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise ApiError(404, "not found")
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        kind = kind or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/json", "image/svg+xml"):
            kind += "; charset=utf-8"
        response = web.FileResponse(path, headers={"Content-Type": kind})
        if path.name == "index.html":
            response.headers["Cache-Control"] = "no-cache"
        return response

    return static


def tls_context(settings: WebSettings) -> ssl.SSLContext | None:
    """TLS 1.2+ from the configured certificate and key (OWASP ASVS 12.1.1)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def start_web(
    site: Site,
    settings: WebSettings,
    *,
    staff_store: StaffStore | None = None,
    app: web.Application | None = None,
) -> web.AppRunner:
    """Serve the app on ``settings.host:port`` (TLS when configured); returns the runner.

    The bound port is ``runner.addresses[0][1]`` (useful with port 0).
    """
    app = app or build_app(site, settings, staff_store=staff_store)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2)
    await runner.setup()
    tcp = web.TCPSite(runner, settings.host, settings.port, ssl_context=tls_context(settings))
    await tcp.start()
    return runner
