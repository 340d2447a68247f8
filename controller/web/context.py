"""What every web handler shares, and the two questions each one asks first: who is calling,
and may they reach this room?

    ctx = request.app[CTX]
    caller = ctx.caller(request)            # 401 unless logged in; counts as activity
    room = ctx.room_for(request, caller)    # 403 for another room on a paired tablet, 404
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from controller.config import WebSettings
from controller.room import Room
from controller.site import Site
from controller.web.auth import Devices, Sessions, StaffSession, Throttle
from controller.web.live import RoomHub
from controller.web.security import ApiError
from controller.web.staff import StaffStore


@dataclass(frozen=True)
class Caller:
    staff: str
    session: StaffSession
    token: str
    device_token: str | None
    paired_room: str | None


@dataclass
class WebContext:
    site: Site
    settings: WebSettings
    staff: StaffStore
    sessions: Sessions
    devices: Devices
    throttle: Throttle
    secure: bool
    now: Callable[[], float] = time.monotonic
    ws_check_interval: float = 5.0
    hubs: dict[str, RoomHub] = field(default_factory=dict)
    svg_cache: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    verify_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix makes the browser insist on Secure, Path=/ and no Domain.
        return "__Host-sessionctl" if self.secure else "sessionctl-session"

    @property
    def device_cookie(self) -> str:
        return "__Host-sessionctl-device" if self.secure else "sessionctl-device"

    def set_cookie(
        self, response: web.StreamResponse, name: str, value: str, max_age: float
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=int(max_age),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure,
        )

    def clear_cookie(self, response: web.StreamResponse, name: str) -> None:
        response.del_cookie(name, path="/", secure=self.secure, httponly=True, samesite="Strict")

    def paired_room(self, request: web.Request) -> tuple[str | None, str | None]:
        """(device token, its room) of a paired tablet; (token or None, None) otherwise."""
        token = request.cookies.get(self.device_cookie)
        return token, self.devices.room_of(token)

    def caller(self, request: web.Request, *, touch: bool = True) -> Caller:
        token = request.cookies.get(self.session_cookie)
        session = self.sessions.get(token, self.now(), touch=touch)
        if session is None or token is None:
            raise ApiError(401, "not logged in")
        if session.staff not in self.staff:
            # Removed with `sessionctl staff remove`: the login ends at once.
            self.sessions.drop(token)
            raise ApiError(401, "not logged in")
        device_token, room = self.paired_room(request)
        return Caller(session.staff, session, token, device_token, room)

    def room_for(self, request: web.Request, caller: Caller, room_id: str | None = None) -> Room:
        room_id = room_id if room_id is not None else request.match_info["room"]
        if caller.paired_room is not None and room_id != caller.paired_room:
            raise ApiError(403, f"this tablet is paired with {caller.paired_room}")
        room = self.site.rooms.get(room_id)
        if room is None:
            raise ApiError(404, "no such room")
        return room


CTX = web.AppKey("sessionctl", WebContext)


def client_of(request: web.Request) -> str:
    return request.remote or "unknown"
