"""S2 (cross-site requests and WebSockets) and S4 (a paired tablet reaches only its room)."""

from __future__ import annotations

import aiohttp
import pytest

from controller.web.auth import Devices
from tests.web.conftest import HDR, WebRig

START = {"cmd_id": "s1", "scene": "demo"}


def _origin(web: WebRig) -> str:
    return str(web.server.make_url("")).rstrip("/")


async def test_state_change_needs_the_custom_header(web: WebRig) -> None:
    client = await web.login()
    r = await client.post("/api/v1/rooms/room-1/commands/start", json=START)
    assert r.status == 403
    assert "X-Sessionctl" in (await r.json())["error"]
    r = await client.post("/api/v1/logout")
    assert r.status == 403
    assert (await client.get("/api/v1/me")).status == 200
    assert web.site.rooms["room-1"].view()["session"] is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_cross_site_post_refused(web: WebRig, headers: dict[str, str]) -> None:
    client = await web.login()
    r = await client.post(
        "/api/v1/rooms/room-1/commands/start", json=START, headers={**HDR, **headers}
    )
    assert r.status == 403
    assert web.site.rooms["room-1"].view()["session"] is None


async def test_cross_site_login_refused(web: WebRig) -> None:
    client = await web.client()
    r = await client.post(
        "/api/v1/login",
        json={"staff": "nurse-1", "pin": "482915"},
        headers={**HDR, "Origin": "http://evil.example"},
    )
    assert r.status == 403


async def test_same_origin_post_accepted(web: WebRig) -> None:
    client = await web.login()
    headers = {**HDR, "Origin": _origin(web), "Sec-Fetch-Site": "same-origin"}
    r = await client.post("/api/v1/rooms/room-1/commands/start", json=START, headers=headers)
    assert r.status == 200
    assert (await r.json())["accepted"] is True


async def test_websocket_from_another_origin_refused(web: WebRig) -> None:
    client = await web.login()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(
            "/api/v1/rooms/room-1/ws", headers={"Origin": "http://evil.example"}
        )
    assert info.value.status == 403
    ws = await client.ws_connect("/api/v1/rooms/room-1/ws", headers={"Origin": _origin(web)})
    assert (await ws.receive_json())["type"] == "state"
    await ws.close()


async def test_websocket_needs_login(web: WebRig) -> None:
    client = await web.client()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/v1/rooms/room-1/ws")
    assert info.value.status == 401


async def test_paired_tablet_reaches_only_its_room(web: WebRig) -> None:
    tablet = await web.login()
    await web.pair(tablet, "room-1")
    assert (await (await tablet.get("/api/v1/me")).json())["room"] == "room-1"
    rooms = (await (await tablet.get("/api/v1/rooms")).json())["rooms"]
    assert [r["room"]["id"] for r in rooms] == ["room-1"]
    for path in (
        "/api/v1/rooms/room-2",
        "/api/v1/rooms/room-2/audit",
        "/api/v1/scenes?room=room-2",
        "/api/v1/rooms/nowhere",
    ):
        assert (await tablet.get(path)).status == 403, path
    r = await tablet.post("/api/v1/rooms/room-2/commands/panic", json={"cmd_id": "p"}, headers=HDR)
    assert r.status == 403
    assert web.site.rooms["room-2"].view()["overlays"] == []
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await tablet.ws_connect("/api/v1/rooms/room-2/ws")
    assert info.value.status == 403
    r = await tablet.post("/api/v1/rooms/room-1/commands/panic", json={"cmd_id": "p"}, headers=HDR)
    assert (await r.json())["accepted"] is True


async def test_pairing_outlives_the_login_and_the_process(web: WebRig) -> None:
    tablet = await web.login()
    await web.pair(tablet, "room-2")
    await tablet.post("/api/v1/logout", headers=HDR)
    r = await tablet.post("/api/v1/login", json={"staff": "nurse-2", "pin": "739104"}, headers=HDR)
    assert (await r.json())["room"] == "room-2"
    token = tablet.session.cookie_jar.filter_cookies(tablet.make_url("/"))["sessionctl-device"]
    fresh = Devices(web.site.config.site.state_dir, lifetime=3600)
    assert fresh.room_of(token.value) == "room-2"
    assert oct(fresh.path.stat().st_mode & 0o777) == "0o600"
    assert token.value not in fresh.path.read_text()


async def test_unpair_revokes_and_closes_the_socket(web: WebRig) -> None:
    tablet = await web.login()
    await web.pair(tablet, "room-1")
    token = tablet.session.cookie_jar.filter_cookies(tablet.make_url("/"))["sessionctl-device"]
    ws = await tablet.ws_connect("/api/v1/rooms/room-1/ws")
    await ws.receive_json()
    assert (await tablet.delete("/api/v1/pair", headers=HDR)).status == 204
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4403
    assert web.ctx.devices.room_of(token.value) is None
    assert (await tablet.get("/api/v1/rooms/room-2")).status == 200


async def test_pair_unknown_room_is_404(web: WebRig) -> None:
    client = await web.login()
    r = await client.post("/api/v1/pair", json={"room": "room-9"}, headers=HDR)
    assert r.status == 404
    r = await client.post("/api/v1/pair", json={"room": "room-1", "x": 1}, headers=HDR)
    assert r.status == 400
