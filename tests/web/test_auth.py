"""S1 (PIN guessing) and S3 (cookies, tokens, logout, timeouts) against the real app."""

from __future__ import annotations

from http.cookies import SimpleCookie

from aiohttp.test_utils import TestClient

from tests.web.conftest import HDR, PINS, WebRig


def _set_cookie(response: object, name: str) -> str:
    headers = response.headers  # type: ignore[attr-defined]
    for raw in headers.getall("Set-Cookie", []):
        if raw.startswith(name + "="):
            return str(raw)
    raise AssertionError(f"no Set-Cookie for {name}")


async def _raw(web: WebRig, method: str, path: str, cookie: str, **kw: object) -> int:
    """A request with exactly this session cookie and no jar (what a thief would send)."""
    client = await web.client()
    headers = {"Cookie": f"sessionctl-session={cookie}", **HDR}
    r = await client.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]
    return r.status


def _token(client: TestClient) -> str:  # type: ignore[type-arg]
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))[
        "sessionctl-session"
    ].value


async def test_login_cookie_flags_and_payload(web: WebRig) -> None:
    client = await web.client()
    r = await client.post(
        "/api/v1/login", json={"staff": "nurse-1", "pin": PINS["nurse-1"]}, headers=HDR
    )
    assert r.status == 200
    assert await r.json() == {"staff": "nurse-1", "room": None}
    cookie = SimpleCookie(_set_cookie(r, "sessionctl-session"))["sessionctl-session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["domain"]
    assert len(cookie.value) >= 43  # 32 random bytes, base64url


async def test_new_token_at_every_login_and_old_one_dies(web: WebRig) -> None:
    client = await web.login()
    first = _token(client)
    await web.login(client=client)
    second = _token(client)
    assert first != second
    assert await _raw(web, "GET", "/api/v1/me", first) == 401
    assert await _raw(web, "GET", "/api/v1/me", second) == 200


async def test_logout_invalidates_server_side(web: WebRig) -> None:
    client = await web.login()
    token = _token(client)
    r = await client.post("/api/v1/logout", headers=HDR)
    assert r.status == 204
    # Replaying the old cookie (as if the browser had kept it) gets nothing.
    assert await _raw(web, "GET", "/api/v1/rooms", token) == 401
    assert (
        await _raw(web, "POST", "/api/v1/rooms/room-1/commands/panic", token, json={"cmd_id": "x"})
        == 401
    )
    assert web.site.rooms["room-1"].view()["overlays"] == []
    assert [a["kind"] for a in web.audit_log][-1] == "logout"


async def test_idle_timeout_and_me_does_not_extend(web: WebRig) -> None:
    client = await web.login()
    web.now.advance(1000)
    me = await (await client.get("/api/v1/me")).json()
    assert me["expires_in"] == 800
    web.now.advance(700)
    assert (await client.get("/api/v1/rooms")).status == 200  # activity: idle clock restarts
    web.now.advance(1799)
    assert (await client.get("/api/v1/me")).status == 200
    web.now.advance(2)
    assert (await client.get("/api/v1/me")).status == 401


async def test_absolute_timeout_despite_activity(web: WebRig) -> None:
    client = await web.login()
    for _ in range(24):
        web.now.advance(1790)
        assert (await client.get("/api/v1/rooms")).status == 200
    web.now.advance(1790)  # 12 h 26 min after login
    r = await client.get("/api/v1/rooms")
    assert r.status == 401
    assert await r.json() == {"error": "not logged in"}


async def test_wrong_pin_is_401_and_logged_with_staff_id(web: WebRig) -> None:
    client = await web.client()
    r = await client.post("/api/v1/login", json={"staff": "nurse-1", "pin": "000000"}, headers=HDR)
    assert r.status == 401
    assert "error" in await r.json()
    record = web.audit_log[-1]
    assert record["kind"] == "login" and record["staff"] == "nurse-1" and record["ok"] is False
    assert "000000" not in repr(web.audit_log)
    r = await client.post("/api/v1/login", json={"staff": "nobody", "pin": "000000"}, headers=HDR)
    assert r.status == 401
    assert web.audit_log[-1]["staff"] == "nobody"


async def _guess(client: TestClient, staff: str = "nurse-1", pin: str = "111111"):  # type: ignore[no-untyped-def,type-arg]
    return await client.post("/api/v1/login", json={"staff": staff, "pin": pin}, headers=HDR)


async def test_guessing_backs_off_exponentially_capped_never_locked(web: WebRig) -> None:
    client = await web.client()
    for _ in range(3):  # free attempts
        assert (await _guess(client)).status == 401
    waits = []
    for _ in range(10):
        assert (await _guess(client)).status == 401
        r = await _guess(client)
        assert r.status == 429
        body = await r.json()
        assert int(r.headers["Retry-After"]) == body["retry_after"]
        waits.append(body["retry_after"])
        web.now.advance(body["retry_after"])
    assert waits[:4] == [1, 2, 4, 8]
    assert max(waits) == 60 and waits[-1] == 60
    # After the wait a correct PIN still works: no permanent lock.
    r = await _guess(client, pin=PINS["nurse-1"])
    assert r.status == 200
    throttled = [a for a in web.audit_log if a["reason"] == "throttled"]
    assert len(throttled) == 10


async def test_throttled_attempt_does_not_check_the_pin(web: WebRig) -> None:
    client = await web.client()
    for _ in range(4):
        await _guess(client)
    assert (await _guess(client, pin=PINS["nurse-1"])).status == 429


async def test_account_delay_spares_a_paired_tablet(web: WebRig) -> None:
    tablet = await web.login("nurse-2")
    await web.pair(tablet, "room-1")
    await tablet.post("/api/v1/logout", headers=HDR)
    # A patient's phone guesses nurse-2's PIN until the account is slowed down.
    phone = await web.client()
    for _ in range(5):
        await _guess(phone, "nurse-2")
    assert (await _guess(phone, "nurse-2")).status == 429
    # An unpaired device (same address in this test, no device cookie) is held back too...
    other = await web.client()
    assert (await _guess(other, "nurse-2", PINS["nurse-2"])).status == 429
    # ...but the paired tablet logs in at once with the right PIN.
    r = await _guess(tablet, "nurse-2", PINS["nurse-2"])
    assert r.status == 200
    assert (await r.json())["room"] == "room-1"


async def test_failures_are_forgotten_after_a_quiet_spell(web: WebRig) -> None:
    client = await web.client()
    for _ in range(5):
        await _guess(client)
    assert (await _guess(client)).status == 429
    web.now.advance(901)
    for _ in range(3):
        assert (await _guess(client)).status == 401


async def test_malformed_login_is_400(web: WebRig) -> None:
    client = await web.client()
    for body in ({}, {"staff": 1, "pin": "x"}, {"staff": "a"}, [1]):
        r = await client.post("/api/v1/login", json=body, headers=HDR)
        assert r.status == 400
    r = await client.post("/api/v1/login", data=b"{not json", headers=HDR)
    assert r.status == 400


async def test_removed_staff_lose_their_session(web: WebRig) -> None:
    client = await web.login("nurse-2")
    assert web.ctx.staff.remove("nurse-2")
    assert (await client.get("/api/v1/rooms")).status == 401


async def test_every_endpoint_but_login_needs_a_session(web: WebRig) -> None:
    client = await web.client()
    for path in (
        "/api/v1/me",
        "/api/v1/rooms",
        "/api/v1/rooms/room-1",
        "/api/v1/scenes",
        "/api/v1/scenes/demo/timeline.svg",
        "/api/v1/rooms/room-1/audit",
        "/api/v1/openapi.json",
    ):
        assert (await client.get(path)).status == 401, path
    for path in ("/api/v1/rooms/room-1/commands/start", "/api/v1/pair"):
        r = await client.post(
            path, json={"cmd_id": "a", "scene": "demo", "room": "room-1"}, headers=HDR
        )
        assert r.status == 401, path
    assert web.site.rooms["room-1"].view()["session"] is None
    # Public, but only about this browser's own pairing (none here).
    assert await (await client.get("/api/v1/device")).json() == {"room": None, "room_name": None}
