"""Room overlays from the tablet, panic from a signed-out paired tablet, and what a room's audit
export may show (site-level login rows stay out; typed staff ids are checked before storing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from controller.clock import SystemClock
from controller.web.audit import INVALID_ID
from tests.web.conftest import HDR, WebRig

Client = TestClient[Any, Any]


async def _signed_out_tablet(web: WebRig, room: str) -> Client:
    """A tablet paired with ``room`` whose staff login has ended (device cookie only)."""
    client = await web.login()
    await web.pair(client, room)
    assert (await client.post("/api/v1/logout", headers=HDR)).status == 204
    assert (await client.get("/api/v1/me")).status == 401
    return client


def _device_id(web: WebRig, room: str) -> str:
    (entry,) = [d for d in web.ctx.devices.listing() if d["room"] == room]
    return str(entry["id"])


async def _panic(client: Client, room: str, cmd_id: str, **headers: str) -> Any:
    return await client.post(
        f"/api/v1/rooms/{room}/commands/panic",
        json={"cmd_id": cmd_id},
        headers={**HDR, **headers},
    )


@pytest.fixture
def journal(web: WebRig) -> Iterator[Any]:
    journal_mod = pytest.importorskip("controller.journal")
    opened = journal_mod.Journal.open(web.site.config.site.journal.path, clock=SystemClock())
    for room in web.site.rooms.values():
        room.recorder = opened
    yield opened
    opened.close()


# -- overlays ------------------------------------------------------------------------------


async def test_room_view_offers_overlays_but_not_panic(web: WebRig) -> None:
    client = await web.login()
    view = await (await client.get("/api/v1/rooms/room-1")).json()
    choices = {c["name"]: c["title"] for c in view["overlay_choices"]}
    assert choices == {
        "recovery": "Recovery from panic",
        "staff-entry": "Staff in the room",
        "calm": "Calm",
    }
    listed = await (await client.get("/api/v1/rooms")).json()
    assert all("overlay_choices" in v for v in listed["rooms"])
    ws = await client.ws_connect("/api/v1/rooms/room-1/ws")
    try:
        first = await ws.receive_json(timeout=5)
        assert first["type"] == "state"
        assert [c["name"] for c in first["data"]["overlay_choices"]] == list(choices)
    finally:
        await ws.close()


async def test_staff_entry_on_and_off_without_a_session(web: WebRig) -> None:
    client = await web.login("nurse-2")
    ws = await client.ws_connect("/api/v1/rooms/room-2/ws")
    try:
        await ws.receive_json(timeout=5)  # the state at connect
        body = {"cmd_id": "se-on", "name": "staff-entry", "on": True}
        r = await client.post("/api/v1/rooms/room-2/commands/overlay", json=body, headers=HDR)
        assert (await r.json())["accepted"] is True
        assert web.site.rooms["room-2"].view()["overlays"] == ["staff-entry"]
        # Pushed state messages carry the choices too, so the toggles stay in step.
        while True:
            msg = await ws.receive_json(timeout=5)
            if msg["type"] == "state" and "staff-entry" in msg["data"]["overlays"]:
                assert msg["data"]["overlay_choices"]
                break
        body = {"cmd_id": "se-off", "name": "staff-entry", "on": False}
        r = await client.post("/api/v1/rooms/room-2/commands/overlay", json=body, headers=HDR)
        assert (await r.json())["accepted"] is True
        assert web.site.rooms["room-2"].view()["overlays"] == []
        # Panic is not an overlay the toggles may switch.
        body = {"cmd_id": "p-ov", "name": "panic", "on": True}
        r = await client.post("/api/v1/rooms/room-2/commands/overlay", json=body, headers=HDR)
        assert (await r.json())["accepted"] is False
    finally:
        await ws.close()


# -- panic from a signed-out paired tablet --------------------------------------------------


async def test_device_endpoint_names_the_paired_room_only(web: WebRig) -> None:
    stranger = await web.client()
    assert await (await stranger.get("/api/v1/device")).json() == {
        "room": None,
        "room_name": None,
    }
    tablet = await _signed_out_tablet(web, "room-1")
    assert await (await tablet.get("/api/v1/device")).json() == {
        "room": "room-1",
        "room_name": "Room-1",
    }


async def test_signed_out_paired_tablet_can_panic_its_room(web: WebRig, journal: Any) -> None:
    tablet = await _signed_out_tablet(web, "room-1")
    r = await _panic(tablet, "room-1", "sp-1")
    assert r.status == 200
    body = await r.json()
    assert body["accepted"] is True and body["verb"] == "panic"
    assert "panic" in web.site.rooms["room-1"].view()["overlays"]

    actor = f"tablet:{_device_id(web, 'room-1')}"
    staff = await web.login("nurse-2")
    entries = (await (await staff.get("/api/v1/rooms/room-1/audit")).json())["entries"]
    panic = [e for e in entries if e["cmd_id"] == "sp-1"]
    assert panic and {e["actor"] for e in panic} == {actor}
    assert any(e["kind"] == "panic" and e["actor"] == actor for e in entries)


async def test_signed_out_tablet_cannot_release_or_do_anything_else(web: WebRig) -> None:
    tablet = await _signed_out_tablet(web, "room-1")
    assert (await _panic(tablet, "room-1", "sp-2")).status == 200
    for verb, extra in (
        ("release", {}),
        ("pause", {}),
        ("start", {"scene": "demo"}),
        ("overlay", {"name": "calm", "on": True}),
    ):
        r = await tablet.post(
            f"/api/v1/rooms/room-1/commands/{verb}",
            json={"cmd_id": f"x-{verb}", **extra},
            headers=HDR,
        )
        assert r.status == 401, verb
    assert (await tablet.get("/api/v1/rooms/room-1")).status == 401
    assert (await tablet.get("/api/v1/rooms/room-1/audit")).status == 401
    view = web.site.rooms["room-1"].view()
    assert view["overlays"] == ["panic"] and view["session"] is None


async def test_unpaired_signed_out_client_cannot_panic(web: WebRig) -> None:
    stranger = await web.client()
    r = await _panic(stranger, "room-1", "sp-3")
    assert r.status == 401
    # A made-up device cookie is no pairing either.
    forged = await web.client()
    forged.session.cookie_jar.update_cookies({"sessionctl-device": "x" * 43})
    assert (await _panic(forged, "room-1", "sp-4")).status == 401
    assert "panic" not in web.site.rooms["room-1"].view()["overlays"]


async def test_signed_out_tablet_cannot_panic_another_room(web: WebRig) -> None:
    tablet = await _signed_out_tablet(web, "room-1")
    r = await _panic(tablet, "room-2", "sp-5")
    assert r.status == 403
    assert "room-1" in (await r.json())["error"]
    assert (await _panic(tablet, "room-9", "sp-6")).status == 403
    assert "panic" not in web.site.rooms["room-2"].view()["overlays"]


async def test_signed_out_panic_keeps_the_cross_site_checks(web: WebRig) -> None:
    tablet = await _signed_out_tablet(web, "room-1")
    no_header = await tablet.post("/api/v1/rooms/room-1/commands/panic", json={"cmd_id": "c1"})
    assert no_header.status == 403
    foreign = await _panic(tablet, "room-1", "c2", Origin="https://evil.example")
    assert foreign.status == 403
    cross = await _panic(tablet, "room-1", "c3", **{"Sec-Fetch-Site": "cross-site"})
    assert cross.status == 403
    assert "panic" not in web.site.rooms["room-1"].view()["overlays"]
    # The body still cannot name an actor.
    r = await tablet.post(
        "/api/v1/rooms/room-1/commands/panic",
        json={"cmd_id": "c4", "actor": "nurse-1"},
        headers=HDR,
    )
    assert r.status == 400


async def test_a_logged_in_panic_is_still_the_staff_member(web: WebRig, journal: Any) -> None:
    client = await web.login("nurse-2")
    await web.pair(client, "room-2")
    assert (await (await _panic(client, "room-2", "lp-1")).json())["accepted"] is True
    entries = (await (await client.get("/api/v1/rooms/room-2/audit")).json())["entries"]
    assert {e["actor"] for e in entries if e["cmd_id"] == "lp-1"} == {"nurse-2"}


# -- the audit export of a room ------------------------------------------------------------


async def _login_attempt(client: Client, staff: str, pin: str = "000000") -> int:
    r = await client.post("/api/v1/login", json={"staff": staff, "pin": pin}, headers=HDR)
    return r.status


async def test_room_export_leaves_out_site_level_login_rows(web: WebRig, journal: Any) -> None:
    station = await web.client()
    assert await _login_attempt(station, "nurse-1") == 401  # a wrong PIN at a nurse station
    tablet = await web.login("nurse-2")
    await web.pair(tablet, "room-1")
    assert await _login_attempt(tablet, "nurse-2") == 401  # ... and at room-1's own tablet
    start = {"cmd_id": "ex-1", "scene": "demo"}
    await tablet.post("/api/v1/rooms/room-1/commands/start", json=start, headers=HDR)

    for fmt in ("json", "csv"):
        r = await tablet.get(f"/api/v1/rooms/room-1/audit?format={fmt}")
        text = await r.text()
        assert "127.0.0.1" not in text, "no client addresses in a room export"
        assert "wrong id or PIN" not in text
    entries = (await (await tablet.get("/api/v1/rooms/room-1/audit")).json())["entries"]
    assert entries and {e["room"] for e in entries} == {"room-1"}
    assert not {"login", "logout", "pair"} & {e["kind"] for e in entries}
    assert any(e["cmd_id"] == "ex-1" for e in entries)

    # The unfiltered trail (the CLI without --room) still has every login, as site rows.
    rows = list(journal.rows())
    logins = [r for r in rows if r["kind"] == "login"]
    assert len(logins) >= 3 and all(r["room"] is None for r in logins)
    assert {r["detail"]["room"] for r in logins} == {None, "room-1"}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("nobody", "nobody"),
        ("<script>alert(1)</script>", INVALID_ID),
        ("nurse-1\nFAKE login ok=True", INVALID_ID),
        ("n" * 65, INVALID_ID),
        ("x" * 5000, INVALID_ID),
        ("48291573", INVALID_ID),  # a PIN typed into the staff id field
        ("Zoë", INVALID_ID),
    ],
)
async def test_typed_staff_id_is_stored_only_when_well_formed(
    web: WebRig, journal: Any, typed: str, stored: str
) -> None:
    client = await web.client()
    pin = "739104-secret"
    assert await _login_attempt(client, typed, pin) == 401
    assert web.audit_log[-1]["staff"] == stored
    rows = [r for r in journal.rows() if r["kind"] == "login"]
    assert rows[-1]["actor"] == stored
    assert all(len(v) <= 64 for v in rows[-1]["detail"].values() if isinstance(v, str))
    raw = web.site.config.site.journal.path.read_bytes()
    assert pin.encode() not in raw and b"alert(1)" not in raw
    assert pin not in json.dumps(web.audit_log)


async def test_a_numeric_staff_id_that_exists_is_kept(web: WebRig) -> None:
    web.ctx.staff.add("104233", "591846")
    client = await web.client()
    assert await _login_attempt(client, "104233") == 401
    assert web.audit_log[-1]["staff"] == "104233"
    assert await _login_attempt(client, "104233", "591846") == 200
