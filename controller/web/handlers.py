"""Room, scene, command, audit, live and health handlers (see API.md).

Commands are a thin adapter over ``Room.submit``: the body is checked by the shared
``parse_command`` and the actor is always the logged-in staff member, never the body. The one
exception is ``panic`` from a tablet paired with the room while nobody is signed in: an
emergency cannot wait for a PIN, so the tablet itself (``tablet:<device id>``) is the actor.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import importlib
import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from controller.commands import CommandError, parse_command
from controller.room import Room
from controller.scene import LoadedScene
from controller.timeline import Timeline
from controller.web.auth import token_key
from controller.web.context import CTX, WebContext
from controller.web.live import CLOSE_SESSION_ENDED, CLOSE_UNPAIRED, encode, room_view
from controller.web.login import json_body
from controller.web.openapi import openapi_document
from controller.web.security import ApiError, cross_site_reason

# -- health --------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


def _running(room: Room) -> bool:
    # Room keeps its loop task private; "started and not ended" is what readiness means.
    task = room._task
    return task is not None and not task.done()


async def readyz(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    rooms: dict[str, Any] = {}
    for room_id, room in ctx.site.rooms.items():
        health = room.health()
        rooms[room_id] = {
            "running": _running(room),
            "ok": health["ok"],
            "faults": sorted(n for n, d in health["drivers"].items() if not d["ok"]),
        }
    ready = bool(rooms) and all(r["running"] for r in rooms.values())
    return web.json_response({"ready": ready, "rooms": rooms}, status=200 if ready else 503)


async def openapi(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    if not ctx.settings.public_api_docs:
        ctx.caller(request, touch=False)
    return web.json_response(
        openapi_document(session_cookie=ctx.session_cookie, device_cookie=ctx.device_cookie)
    )


# -- rooms and scenes ----------------------------------------------------------------------


async def rooms(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    caller = ctx.caller(request)
    ids = [caller.paired_room] if caller.paired_room else list(ctx.site.rooms)
    return web.json_response(
        {"rooms": [room_view(ctx.site.rooms[i]) for i in ids if i in ctx.site.rooms]}
    )


async def room(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    return web.json_response(room_view(ctx.room_for(request, ctx.caller(request))))


def scene_summary(scene: LoadedScene) -> dict[str, Any]:
    timeline = Timeline(scene)
    return {
        "id": scene.id,
        "name": scene.name,
        "description": scene.scene.description,
        "route": scene.scene.route,
        "length": round(timeline.length, 3),
        "min_duration": scene.scene.min_duration,
        "phases": [
            {
                "id": span.id,
                "title": span.phase.label,
                "start": round(span.start, 3),
                "end": round(span.end, 3),
                "holds": span.phase.holds,
            }
            for span in timeline.phases
        ],
    }


def _offered(ctx: WebContext, request: web.Request) -> dict[str, LoadedScene]:
    """The scenes this caller may see: a room's, or (unpaired, no room asked) every scene."""
    caller = ctx.caller(request)
    room_id = request.query.get("room") or caller.paired_room
    if room_id is None:
        return dict(ctx.site.library.scenes)
    return dict(ctx.room_for(request, caller, room_id).scenes)


async def scenes(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    offered = _offered(ctx, request)
    return web.json_response({"scenes": [scene_summary(s) for _, s in sorted(offered.items())]})


async def timeline_svg(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    scene = _offered(ctx, request).get(request.match_info["scene"])
    if scene is None:
        raise ApiError(404, "no such scene")
    svg = ctx.svg_cache.get(scene.digest)
    if svg is None:
        try:
            plot = importlib.import_module("controller.plot")
        except ModuleNotFoundError as exc:
            if exc.name != "controller.plot":
                raise
            raise ApiError(503, "timeline pictures are not available in this build") from None
        svg = str(await asyncio.to_thread(plot.render_svg, scene))
        ctx.svg_cache[scene.digest] = svg
    return web.Response(text=svg, content_type="image/svg+xml", charset="utf-8")


# -- commands ------------------------------------------------------------------------------


async def command(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    verb = request.match_info.get("verb") or request.path.rsplit("/", 1)[-1]
    actor, target = _commander(ctx, request, verb)
    body = await json_body(request)
    if "actor" in body:
        raise ApiError(400, "actor comes from the login, not the body")
    try:
        cmd = parse_command(verb, {**body, "actor": actor})
    except CommandError as exc:
        raise ApiError(400, str(exc)) from None
    outcome = await target.submit(cmd)
    return web.json_response(outcome.as_dict())


def _commander(ctx: WebContext, request: web.Request, verb: str) -> tuple[str, Room]:
    """Who sends this command, and to which room: the logged-in staff member, or for ``panic``
    only, a signed-out tablet paired with this very room (the CSRF checks still apply)."""
    try:
        caller = ctx.caller(request)
    except ApiError as exc:
        if exc.status != 401 or verb != "panic":
            raise
        device = ctx.devices.lookup(request.cookies.get(ctx.device_cookie))
        if device is None:
            raise
        paired = str(device["room"])
        room_id = request.match_info["room"]
        if room_id != paired:
            raise ApiError(403, f"this tablet is paired with {paired}") from None
        room = ctx.site.rooms.get(room_id)
        if room is None:
            raise ApiError(404, "no such room") from None
        return f"tablet:{device['id']}", room
    return caller.staff, ctx.room_for(request, caller)


# -- audit ---------------------------------------------------------------------------------


def _journal() -> Any:
    try:
        return importlib.import_module("controller.journal")
    except ModuleNotFoundError as exc:
        if exc.name != "controller.journal":
            raise
        return None


COLUMNS = (
    "seq",
    "time",
    "room",
    "session",
    "kind",
    "actor",
    "cmd_id",
    "offset",
    "boot_id",
    "clock_synced",
    "detail",
)


def export_audit(path: Path, *, room: str, since: datetime | None, fmt: str) -> str:
    """The room's audit rows from the journal file, read-only (the writer keeps going)."""
    journal = _journal()
    if journal is None:
        raise ApiError(503, "audit export is not available: the journal is not installed")
    rows: list[dict[str, Any]] = []
    if path.exists():
        try:
            db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
            try:
                rows = list(journal.query_rows(db, room=room, since=since))
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise ApiError(503, f"the journal cannot be read: {exc}") from None
    if fmt == "json":
        return json.dumps({"room": room, "entries": rows}, default=str)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = [row.get(c) for c in COLUMNS]
        values[-1] = json.dumps(values[-1], sort_keys=True)
        writer.writerow(values)
    return out.getvalue()


async def audit(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    target = ctx.room_for(request, ctx.caller(request))
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ApiError(400, "format must be json or csv")
    since = None
    if "since" in request.query:
        try:
            since = datetime.fromisoformat(request.query["since"].replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "since must be an ISO 8601 date and time") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # the audit trail is in UTC (ASVS 16.2.2)
        if not 1970 <= since.year <= 2200:  # the journal stores nanoseconds in 64 bits
            raise ApiError(400, "since must be between 1970 and 2200")
    path = ctx.site.config.site.journal.path
    text = await asyncio.to_thread(export_audit, path, room=target.id, since=since, fmt=fmt)
    kind = "text/csv" if fmt == "csv" else "application/json"
    return web.Response(text=text, content_type=kind, charset="utf-8")


# -- live ----------------------------------------------------------------------------------


async def room_ws(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    # Browsers always send Origin on a WebSocket handshake; a foreign one is a cross-site
    # hijack attempt (OWASP ASVS 4.4.2). Cookies alone would let it through.
    reason = cross_site_reason(request)
    if reason is not None:
        raise ApiError(403, reason)
    caller = ctx.caller(request, touch=False)
    target = ctx.room_for(request, caller)
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
    await ws.prepare(request)
    hub = ctx.hubs[target.id]
    conn = hub.join(ws, session_key=token_key(caller.token), device_key=caller.device_token)
    pump = asyncio.create_task(conn.pump(), name=f"ws-{target.id}")
    watch = asyncio.create_task(_watch(ctx, caller.token, caller.device_token, conn.end))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            if _is_ping(msg.data):
                conn.offer(encode({"type": "pong"}))
    finally:
        hub.leave(conn)
        watch.cancel()
        conn.end(1000, "bye")
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(pump, 5)
    return ws


def _is_ping(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") == "ping"


async def _watch(ctx: WebContext, token: str, device: str | None, end: Any) -> None:
    """Close the socket when its login expires or its tablet is unpaired."""
    while True:
        await asyncio.sleep(ctx.ws_check_interval)
        if ctx.sessions.get(token, ctx.now()) is None:
            end(CLOSE_SESSION_ENDED, "session ended")
            return
        if device is not None and ctx.devices.room_of(device) is None:
            end(CLOSE_UNPAIRED, "unpaired")
            return
