"""S7 (security headers on every response) and the API's behaviour per endpoint."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import aiohttp
import pytest

from controller.clock import SystemClock
from controller.commands import Command, Outcome
from controller.room import Room
from controller.web.security import CSP
from tests.web.conftest import HDR, WebRig


def _check_headers(r: aiohttp.ClientResponse, what: str) -> None:
    h = r.headers
    assert h.get("Content-Security-Policy") == CSP, what
    assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP
    assert "unsafe-inline" not in CSP
    assert h.get("X-Content-Type-Options") == "nosniff", what
    assert h.get("Referrer-Policy") == "no-referrer", what
    if r.status != 204:
        assert "charset=utf-8" in h.get("Content-Type", "") or h["Content-Type"].startswith(
            ("image/png", "font/")
        ), what


async def test_security_headers_on_every_kind_of_response(web: WebRig) -> None:
    anon = await web.client()
    client = await web.login()
    cases: list[tuple[Any, str, str, dict[str, Any]]] = [
        (anon, "GET", "/", {}),
        (anon, "GET", "/app.js", {}),
        (anon, "GET", "/no-such-file.js", {}),
        (anon, "GET", "/../etc/passwd", {}),
        (anon, "GET", "/.hidden", {}),
        (anon, "GET", "/healthz", {}),
        (anon, "GET", "/readyz", {}),
        (anon, "GET", "/api/v1/rooms", {}),
        (anon, "GET", "/api/v1/nope", {}),
        (anon, "POST", "/api/v1/login", {"json": {}}),
        (anon, "DELETE", "/api/v1/rooms", {"headers": HDR}),
        (client, "GET", "/api/v1/rooms", {}),
        (client, "GET", "/api/v1/scenes/demo/timeline.svg", {}),
        (client, "GET", "/api/v1/rooms/room-1/ws", {}),
        (
            client,
            "POST",
            "/api/v1/rooms/room-1/commands/stop",
            {"headers": HDR, "data": b"x" * 70_000},
        ),
        (client, "POST", "/api/v1/logout", {"headers": HDR}),
    ]
    statuses = []
    for c, method, path, kw in cases:
        r = await c.request(method, path, **kw)
        statuses.append(r.status)
        _check_headers(r, f"{method} {path} -> {r.status}")
        if r.status >= 400:
            body = await r.json()
            assert set(body) <= {"error", "retry_after"} and "Traceback" not in body["error"]
    assert statuses == [
        200,
        200,
        404,
        404,
        404,
        200,
        200,
        401,
        404,
        403,
        405,
        200,
        200,
        400,
        413,
        204,
    ]


async def test_api_answers_are_not_cached(web: WebRig) -> None:
    client = await web.login()
    r = await client.get("/api/v1/rooms/room-1")
    assert r.headers["Cache-Control"] == "no-store"


class _Recorder:
    def __init__(self) -> None:
        self.commands: list[Command] = []

    def record(
        self,
        room: Room,
        events: Any,
        *,
        command: Command | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        if command is not None:
            self.commands.append(command)


async def test_commands_carry_the_logged_in_staff_as_actor(web: WebRig) -> None:
    recorder = _Recorder()
    web.site.rooms["room-1"].recorder = recorder
    client = await web.login("nurse-2")
    r = await client.post(
        "/api/v1/rooms/room-1/commands/start", json={"cmd_id": "c1", "scene": "demo"}, headers=HDR
    )
    assert (await r.json())["accepted"] is True
    assert recorder.commands[-1].actor == "nurse-2"
    r = await client.post(
        "/api/v1/rooms/room-1/commands/pause",
        json={"cmd_id": "c2", "actor": "someone-else"},
        headers=HDR,
    )
    assert r.status == 400
    assert "actor" in (await r.json())["error"]


async def test_command_outcomes(web: WebRig) -> None:
    client = await web.login()
    post = client.post
    r = await post("/api/v1/rooms/room-1/commands/resume", json={"cmd_id": "r1"}, headers=HDR)
    assert r.status == 200
    body = await r.json()
    assert body["accepted"] is False and body["reason"]
    r = await post("/api/v1/rooms/room-1/commands/extend", json={"cmd_id": "e"}, headers=HDR)
    assert r.status == 400 and "seconds" in (await r.json())["error"]
    r = await post("/api/v1/rooms/room-1/commands/dance", json={"cmd_id": "d"}, headers=HDR)
    assert r.status == 404
    first = await (
        await post(
            "/api/v1/rooms/room-1/commands/start",
            json={"cmd_id": "s", "scene": "demo"},
            headers=HDR,
        )
    ).json()
    again = await (
        await post(
            "/api/v1/rooms/room-1/commands/start",
            json={"cmd_id": "s", "scene": "demo"},
            headers=HDR,
        )
    ).json()
    assert first["accepted"] and again["duplicate"] and again["session"] == first["session"]
    r = await post("/api/v1/rooms/room-9/commands/panic", json={"cmd_id": "p"}, headers=HDR)
    assert r.status == 404


async def test_scenes_and_timeline(web: WebRig) -> None:
    client = await web.login()
    scenes = (await (await client.get("/api/v1/scenes?room=room-1")).json())["scenes"]
    demo = next(s for s in scenes if s["id"] == "demo")
    assert demo["length"] == 180.0
    assert demo["phases"][0]["start"] == 0.0
    assert {"id", "title", "start", "end", "holds"} == set(demo["phases"][0])
    assert (await client.get("/api/v1/scenes?room=room-9")).status == 404
    r = await client.get("/api/v1/scenes/demo/timeline.svg")
    if importlib.util.find_spec("controller.plot") is None:
        assert r.status == 503
    else:
        assert r.status == 200 and r.content_type == "image/svg+xml"
        assert (await r.text()).startswith("<svg")
    assert (await client.get("/api/v1/scenes/nope/timeline.svg")).status == 404


async def test_audit_export(web: WebRig) -> None:
    journal_mod = pytest.importorskip("controller.journal")
    journal = journal_mod.Journal.open(web.site.config.site.journal.path, clock=SystemClock())
    try:
        web.site.rooms["room-1"].recorder = journal
        client = await web.login("nurse-2")
        start = {"cmd_id": "s1", "scene": "demo"}
        await client.post("/api/v1/rooms/room-1/commands/start", json=start, headers=HDR)
        await client.post("/api/v1/rooms/room-1/commands/pause", json={"cmd_id": "p1"}, headers=HDR)
        r = await client.get("/api/v1/rooms/room-1/audit")
        assert r.status == 200
        body = await r.json()
        assert body["room"] == "room-1"
        mine = [e for e in body["entries"] if e["cmd_id"] in ("s1", "p1")]
        assert mine and {e["actor"] for e in mine} == {"nurse-2"}
        r = await client.get("/api/v1/rooms/room-1/audit?format=csv&since=2000-01-01T00:00:00")
        assert r.content_type == "text/csv"
        lines = (await r.text()).splitlines()
        assert lines[0].startswith("seq,time,room,session,kind,actor,cmd_id")
        assert any(",nurse-2,p1," in line for line in lines)
        r = await client.get("/api/v1/rooms/room-1/audit?since=2199-01-01T00:00:00Z")
        assert (await r.json())["entries"] == []
        for bad in ("yesterday", "2999-01-01T00:00:00"):
            assert (await client.get(f"/api/v1/rooms/room-1/audit?since={bad}")).status == 400
        assert (await client.get("/api/v1/rooms/room-1/audit?format=xml")).status == 400
    finally:
        journal.close()


async def test_health_endpoints(web: WebRig) -> None:
    client = await web.client()
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await (await client.get("/readyz")).json()
    assert ready["ready"] is True
    assert ready["rooms"]["room-1"] == {"running": True, "ok": True, "faults": []}
    room2 = web.site.rooms["room-2"]
    faulted = asyncio.Event()
    room2.add_listener(lambda u: faulted.set() if u.data.get("kind") == "driver_fault" else None)
    room2.drivers.lights["lights"].set_fault("raise")  # type: ignore[attr-defined]
    c = await web.login()
    start = {"cmd_id": "s", "scene": "demo"}
    await c.post("/api/v1/rooms/room-2/commands/start", json=start, headers=HDR)
    await asyncio.wait_for(faulted.wait(), 5)
    ready = await (await client.get("/readyz")).json()
    assert ready["rooms"]["room-2"]["faults"] == ["lights"]
    assert ready["ready"] is True  # a faulty driver is local; the room still runs
    await web.site.rooms["room-1"].close()
    r = await client.get("/readyz")
    assert r.status == 503


async def test_live_updates_over_the_websocket(web: WebRig) -> None:
    client = await web.login()
    ws = await client.ws_connect("/api/v1/rooms/room-1/ws")
    first = await ws.receive_json()
    assert first["type"] == "state" and first["data"]["session"] is None
    await client.post(
        "/api/v1/rooms/room-1/commands/start", json={"cmd_id": "s", "scene": "demo"}, headers=HDR
    )
    kinds = set()
    state = None
    while state is None or state["session"] is None:
        msg = await ws.receive_json(timeout=5)
        if msg["type"] == "event":
            kinds.add(msg["data"]["kind"])
            assert msg["data"]["room"] == "room-1"
        else:
            state = msg["data"]
    assert state["session"]["scene"] == "demo"
    assert kinds
    await ws.send_json({"type": "ping"})
    while (msg := await ws.receive_json(timeout=5))["type"] != "pong":
        pass
    await ws.close()


async def test_websocket_closes_when_the_session_ends(web: WebRig) -> None:
    client = await web.login()
    ws = await client.ws_connect("/api/v1/rooms/room-1/ws")
    await ws.receive_json()
    await client.post("/api/v1/logout", headers=HDR)
    msg = await ws.receive(timeout=5)
    while msg.type == aiohttp.WSMsgType.TEXT:
        msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401

    other = await web.login("nurse-2")
    ws = await other.ws_connect("/api/v1/rooms/room-1/ws")
    await ws.receive_json()
    web.now.advance(1801)  # idle timeout; the socket's watchdog notices
    msg = await ws.receive(timeout=5)
    while msg.type == aiohttp.WSMsgType.TEXT:
        msg = await ws.receive(timeout=5)
    assert msg.data == 4401


async def test_openapi_needs_login_unless_public(web: WebRig) -> None:
    anon = await web.client()
    assert (await anon.get("/api/v1/openapi.json")).status == 401
    client = await web.login()
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    web.ctx.settings.public_api_docs = True
    assert (await anon.get("/api/v1/openapi.json")).status == 200
