"""Login, logout, who-am-I and tablet pairing handlers (see API.md).

A login always issues a fresh token and ends any session the browser still carried (no
fixation). Every attempt is audited with the staff id, client and device, never the PIN.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from aiohttp import web

from controller.web.audit import audit_login
from controller.web.auth import token_key
from controller.web.context import CTX, WebContext, client_of
from controller.web.live import CLOSE_SESSION_ENDED, CLOSE_UNPAIRED
from controller.web.security import ApiError


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = json.loads(await request.text())
    except ValueError:
        raise ApiError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _throttle_keys(client: str, device: dict[str, Any] | None, staff: str) -> list[str]:
    device_key = f"dev:{client}|{device['id'] if device else '-'}"
    # A paired tablet is exempt from the account-wide delay so that guessing elsewhere
    # cannot keep staff out of their own room's tablet.
    return [device_key] if device else [device_key, f"acct:{staff}"]


async def login(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    body = await json_body(request)
    staff, pin = body.get("staff"), body.get("pin")
    if not isinstance(staff, str) or not isinstance(pin, str) or not staff or not pin:
        raise ApiError(400, "staff and pin are required text fields")
    client = client_of(request)
    device = ctx.devices.lookup(request.cookies.get(ctx.device_cookie))
    device_id = device["id"] if device else None
    room = device["room"] if device else None
    keys = _throttle_keys(client, device, staff)

    async with ctx.verify_lock:  # one PIN check at a time: no parallel burst past the throttle
        wait = ctx.throttle.wait_for(keys, ctx.now())
        if wait > 0:
            audit_login(
                staff,
                ok=False,
                reason="throttled",
                client=client,
                device=device_id,
                room=room,
                known=staff in ctx.staff,
            )
            retry = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "too many failed attempts; wait and try again",
                {"retry_after": retry},
                {"Retry-After": str(retry)},
            )
        ok = await asyncio.to_thread(ctx.staff.verify, staff, pin)
        if not ok:
            ctx.throttle.failed({*keys, f"acct:{staff}"}, ctx.now())
    if not ok:
        audit_login(
            staff,
            ok=False,
            reason="wrong id or PIN",
            client=client,
            device=device_id,
            room=room,
            known=staff in ctx.staff,
        )
        raise ApiError(401, "wrong staff id or PIN")

    ctx.throttle.succeeded(keys)
    old_token = request.cookies.get(ctx.session_cookie)
    if ctx.sessions.drop(old_token) is not None:
        _close_sockets(ctx, old_token, code=CLOSE_SESSION_ENDED, reason="logged in again")
    token = ctx.sessions.create(staff, ctx.now(), device=device_id)
    audit_login(staff, ok=True, reason="ok", client=client, device=device_id, room=room)
    response = web.json_response({"staff": staff, "room": room})
    ctx.set_cookie(response, ctx.session_cookie, token, ctx.settings.session_absolute)
    return response


def _close_sockets(ctx: WebContext, token: str | None, *, code: int, reason: str) -> None:
    key = token_key(token or "")
    for hub in ctx.hubs.values():
        hub.close_where(lambda c: c.session_key == key, code=code, reason=reason)


async def logout(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    token = request.cookies.get(ctx.session_cookie)
    session = ctx.sessions.drop(token)
    if session is not None:
        _close_sockets(ctx, token, code=CLOSE_SESSION_ENDED, reason="logged out")
        audit_login(
            session.staff,
            ok=True,
            reason="logout",
            client=client_of(request),
            device=session.device,
            kind="logout",
        )
    response = web.Response(status=204)
    ctx.clear_cookie(response, ctx.session_cookie)
    return response


async def me(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    caller = ctx.caller(request, touch=False)
    expires = ctx.sessions.expires_in(caller.session, ctx.now())
    return web.json_response(
        {"staff": caller.staff, "room": caller.paired_room, "expires_in": round(expires, 1)}
    )


async def device(request: web.Request) -> web.StreamResponse:
    """Which room this tablet is paired with; no login needed, so the signed-out screen of a
    paired tablet can offer its room's panic control. Tells a browser only about its own cookie.
    """
    ctx = request.app[CTX]
    room_id = ctx.devices.room_of(request.cookies.get(ctx.device_cookie))
    room = ctx.site.rooms.get(room_id) if room_id is not None else None
    if room is None:
        return web.json_response({"room": None, "room_name": None})
    return web.json_response({"room": room.id, "room_name": room.config.title})


async def pair(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    caller = ctx.caller(request)
    body = await json_body(request)
    room_id = body.get("room")
    if not isinstance(room_id, str) or set(body) != {"room"}:
        raise ApiError(400, "give exactly one field: room")
    if room_id not in ctx.site.rooms:
        raise ApiError(404, "no such room")
    if caller.device_token is not None:
        ctx.devices.unpair(caller.device_token)
        _close_device(ctx, caller.device_token)
    token = ctx.devices.pair(room_id, by=caller.staff)
    device = ctx.devices.lookup(token)
    caller.session.device = None if device is None else device["id"]
    audit_login(
        caller.staff,
        ok=True,
        reason="paired",
        client=client_of(request),
        device=caller.session.device,
        room=room_id,
        kind="pair",
    )
    response = web.json_response({"room": room_id})
    ctx.set_cookie(response, ctx.device_cookie, token, ctx.settings.device_days * 86400)
    return response


def _close_device(ctx: WebContext, device_token: str) -> None:
    for hub in ctx.hubs.values():
        hub.close_where(
            lambda c: c.device_key == device_token, code=CLOSE_UNPAIRED, reason="unpaired"
        )


async def unpair(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    caller = ctx.caller(request)
    if caller.device_token is not None:
        room = ctx.devices.room_of(caller.device_token)
        if ctx.devices.unpair(caller.device_token):
            _close_device(ctx, caller.device_token)
            audit_login(
                caller.staff,
                ok=True,
                reason="unpaired",
                client=client_of(request),
                device=caller.session.device,
                room=room,
                kind="unpair",
            )
    caller.session.device = None
    response = web.Response(status=204)
    ctx.clear_cookie(response, ctx.device_cookie)
    return response
