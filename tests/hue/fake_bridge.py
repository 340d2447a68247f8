"""A fake Philips Hue bridge speaking the v1 subset phue uses, for tests and benchmarks.

It runs on the caller's event loop (the driver's phue calls run in a worker thread, so the loop
is free to answer them) and answers the way a bridge does: arrays of ``success``/``error``
objects with HTTP 200, error type 1 for an unknown key, 101 before the link button is pressed,
201 for a brightness sent to a lamp that is off, 7 for a value out of range, and HTTP 429 when
pushed past its rate limit (a sliding window, like the real one). Every request is recorded
with its arrival time (``time.monotonic()``) and exact body::

    async with FakeHueBridge(lights=8, groups={1: [1, 2, 3]}) as bridge:
        host = bridge.host                      # "127.0.0.1:<port>", for phue / the driver
        bridge.press_link_button()
        ...
        assert len(bridge.puts("lights")) == 8
        bridge.answering = False                # stop answering (requests hang, then drop)
        bridge.delay = 0.2                      # answer every request 200 ms late
        bridge.busy = 2                         # the next two PUTs answer error 901
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from aiohttp import web

Json = Any


@dataclass
class FakeLight:
    """One lamp: its capabilities and its current (target) state."""

    name: str
    type: str = "Extended color light"
    ct_range: tuple[int, int] | None = (153, 500)
    xy: bool = True
    dimmable: bool = True
    state: dict[str, Json] = field(default_factory=dict)

    def __post_init__(self) -> None:
        defaults: dict[str, Json] = {"on": False, "alert": "none", "reachable": True}
        if self.dimmable:
            defaults["bri"] = 254
        if self.ct_range:
            defaults["ct"] = 366
            defaults["colormode"] = "ct"
        if self.xy:
            defaults["xy"] = [0.4573, 0.41]
        self.state = {**defaults, **self.state}

    def as_json(self, light_id: str) -> dict[str, Json]:
        control: dict[str, Json] = {}
        if self.ct_range:
            control["ct"] = {"min": self.ct_range[0], "max": self.ct_range[1]}
        return {
            "state": dict(self.state),
            "type": self.type,
            "name": self.name,
            "modelid": "LCT015",
            "uniqueid": f"00:17:88:01:00:00:00:{int(light_id):02x}-0b",
            "capabilities": {"control": control},
        }


@dataclass
class RecordedRequest:
    at: float
    method: str
    path: str
    body: Json
    status: int | None = None  # None: dropped, never answered
    answer: Json = None

    @property
    def kind(self) -> Literal["lights", "groups", "other"]:
        parts = self.path.strip("/").split("/")
        if self.method == "PUT" and len(parts) == 5 and parts[2] in ("lights", "groups"):
            return "lights" if parts[2] == "lights" else "groups"
        return "other"


class _Reply(Exception):
    def __init__(self, status: int, payload: Json) -> None:
        self.status = status
        self.payload = payload


def _error(kind: int, address: str, description: str) -> dict[str, Json]:
    return {"error": {"type": kind, "address": address, "description": description}}


class FakeHueBridge:
    """See the module docstring. ``lights`` is a count or ``{id: FakeLight}``."""

    def __init__(
        self,
        *,
        lights: int | Mapping[int, FakeLight] = 3,
        groups: Mapping[int, Iterable[int]] | None = None,
        usernames: Iterable[str] = ("test-key",),
        light_limit: int = 10,
        group_limit: int = 1,
        window: float = 1.0,
        link_window: float = 30.0,
    ) -> None:
        if isinstance(lights, int):
            lights = {i: FakeLight(f"Lamp {i}") for i in range(1, lights + 1)}
        self.lights: dict[str, FakeLight] = {str(k): v for k, v in lights.items()}
        self.groups: dict[str, list[str]] = {
            str(g): [str(x) for x in members] for g, members in (groups or {}).items()
        }
        self.usernames = set(usernames)
        self.limits = {"lights": light_limit, "groups": group_limit}
        self.window = window
        self.link_window = link_window
        self.requests: list[RecordedRequest] = []
        self.answering = True
        self.delay = 0.0
        self.busy = 0  # the next N state PUTs answer error 901 (bridge busy) with HTTP 200
        self._accepted: dict[str, deque[float]] = {"lights": deque(), "groups": deque()}
        self._link_pressed_at: float | None = None
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.host = ""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.host = f"127.0.0.1:{port}"
        return self.host

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- knobs and records ---------------------------------------------------------------------

    def press_link_button(self) -> None:
        """Open the pairing window (thread-safe enough: one float assignment)."""
        self._link_pressed_at = time.monotonic()

    def puts(self, kind: Literal["lights", "groups"] | None = None) -> list[RecordedRequest]:
        """Answered PUTs to light states / group actions (429s included; check ``status``)."""
        return [
            r
            for r in self.requests
            if r.kind != "other" and (kind is None or r.kind == kind) and r.status is not None
        ]

    def max_in_window(self, kind: Literal["lights", "groups"], window: float | None = None) -> int:
        """The most accepted PUTs of ``kind`` that arrived within any ``window`` seconds."""
        span = self.window if window is None else window
        times = [r.at for r in self.puts(kind) if r.status == 200]
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= span:
                start += 1
            best = max(best, end - start + 1)
        return best

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Json = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = RecordedRequest(time.monotonic(), request.method, request.path, body)
        self.requests.append(record)
        if not self.answering:
            await self._closing.wait()  # hang like a dead bridge until the test shuts us down
            raise web.HTTPServiceUnavailable()
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            status, payload = 200, self._route(record, raw)
        except _Reply as reply:
            status, payload = reply.status, reply.payload
        record.status, record.answer = status, payload
        if isinstance(payload, str):
            return web.Response(status=status, text=payload)
        return web.json_response(payload, status=status)

    def _route(self, record: RecordedRequest, raw: bytes) -> Json:
        parts = [p for p in record.path.split("/") if p]
        method = record.method
        if not parts or parts[0] != "api":
            raise _Reply(404, "not found")
        if len(parts) == 1 and method == "POST":
            return self._register(record.body)
        if parts[1:] == ["config"] and method == "GET":
            return {"name": "Fake bridge", "apiversion": "1.48.0", "swversion": "1948086000"}
        user, rest = parts[1], parts[2:]
        if user not in self.usernames:
            return [_error(1, "/" + "/".join(rest), "unauthorized user")]
        if raw and not isinstance(record.body, (dict, list)):
            return [_error(2, "/" + "/".join(rest), "body contains invalid json")]
        if method == "GET":
            return self._get(rest)
        if method == "PUT" and self.busy > 0 and rest and rest[0] in ("lights", "groups"):
            self.busy -= 1
            return [_error(901, "/" + "/".join(rest), "Internal error, 503")]
        if method == "PUT" and len(rest) == 3 and rest[0] == "lights" and rest[2] == "state":
            self._rate_check("lights", record.at)
            return self._put_light(rest[1], record.body)
        if method == "PUT" and len(rest) == 3 and rest[0] == "groups" and rest[2] == "action":
            self._rate_check("groups", record.at)
            return self._put_group(rest[1], record.body)
        address = "/" + "/".join(rest)
        return [_error(4, address, f"method, {method}, not available for resource, {address}")]

    def _rate_check(self, kind: str, now: float) -> None:
        accepted = self._accepted[kind]
        while accepted and now - accepted[0] >= self.window:
            accepted.popleft()
        if len(accepted) >= self.limits[kind]:
            raise _Reply(429, "Rate limit exceeded")
        accepted.append(now)

    def _register(self, body: Json) -> Json:
        if not isinstance(body, dict) or not isinstance(body.get("devicetype"), str):
            return [_error(5, "/", "invalid/missing parameters in body")]
        pressed = self._link_pressed_at
        if pressed is None or time.monotonic() - pressed > self.link_window:
            return [_error(101, "", "link button not pressed")]
        key = secrets.token_hex(20)
        self.usernames.add(key)
        return [{"success": {"username": key}}]

    def _get(self, rest: list[str]) -> Json:
        lights = {i: light.as_json(i) for i, light in self.lights.items()}
        groups = {g: self._group_json(g) for g in self.groups}
        if not rest:
            return {"lights": lights, "groups": groups, "config": {"name": "Fake bridge"}}
        table = {"lights": lights, "groups": groups, "config": {"name": "Fake bridge"}}
        node: Json = table.get(rest[0])
        for part in rest[1:]:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return [_missing("/" + "/".join(rest))]
        return node

    def _group_json(self, group_id: str) -> dict[str, Json]:
        members = self.groups[group_id]
        any_on = any(self.lights[m].state.get("on") for m in members if m in self.lights)
        return {
            "name": f"Group {group_id}",
            "lights": list(members),
            "type": "Room",
            "state": {"any_on": any_on, "all_on": any_on},
            "action": {"on": any_on},
        }

    # -- state changes -------------------------------------------------------------------------

    def _put_light(self, light_id: str, body: Json) -> Json:
        light = self.lights.get(light_id)
        address = f"/lights/{light_id}/state"
        if light is None:
            return [_missing(f"/lights/{light_id}")]
        if not isinstance(body, dict) or not body:
            return [_error(5, address, "invalid/missing parameters in body")]
        return self._apply(light, address, body)

    def _put_group(self, group_id: str, body: Json) -> Json:
        address = f"/groups/{group_id}/action"
        if group_id == "0":
            members = list(self.lights)
        elif group_id in self.groups:
            members = self.groups[group_id]
        else:
            return [_missing(f"/groups/{group_id}")]
        if not isinstance(body, dict) or not body:
            return [_error(5, address, "invalid/missing parameters in body")]
        # The bridge checks a group action against what any lamp could take, then each lamp
        # takes what it can (ct clamped to its range, bri ignored while it stays off).
        universal = FakeLight("any", state={"on": True})
        answer: list[Json] = []
        for key, value in body.items():
            problem = self._check(universal, address, key, value, turning_on=True)
            answer.append(problem or {"success": {f"{address}/{key}": value}})
        accepted = {k: v for k, v in body.items() if "error" not in answer[list(body).index(k)]}
        for member in members:
            if member in self.lights:
                self._take(self.lights[member], accepted)
        return answer

    def _take(self, light: FakeLight, body: dict[str, Json]) -> None:
        if "on" in body:
            light.state["on"] = body["on"]
        if not light.state.get("on"):
            return
        if "bri" in body and light.dimmable:
            light.state["bri"] = body["bri"]
        if "ct" in body and light.ct_range:
            low, high = light.ct_range
            light.state["ct"] = max(low, min(high, body["ct"]))
        if "xy" in body and light.xy:
            light.state["xy"] = body["xy"]
        if "transitiontime" in body:
            light.state["_transitiontime"] = body["transitiontime"]

    def _apply(self, light: FakeLight, address: str, body: dict[str, Json]) -> Json:
        answer: list[Json] = []
        turning_on = body.get("on") is True
        for key, value in body.items():
            problem = self._check(light, address, key, value, turning_on)
            answer.append(problem or {"success": {f"{address}/{key}": value}})
        if all("success" in item for item in answer):
            self._take(light, body)
        return answer

    def _check(
        self, light: FakeLight, address: str, key: str, value: Json, turning_on: bool
    ) -> Json | None:
        """The error object for one attribute of a state body, or None when it is fine."""
        where = f"{address}/{key}"
        if key == "on":
            return None if isinstance(value, bool) else _invalid(where, key, value)
        if key == "transitiontime":
            return None if _int_in(value, 0, 65535) else _invalid(where, key, value)
        if key == "bri_inc":
            return None if _int_in(value, -254, 254) else _invalid(where, key, value)
        if key not in ("bri", "ct", "xy"):
            return _error(6, where, f"parameter, {key}, not available")
        available = {"bri": light.dimmable, "ct": light.ct_range, "xy": light.xy}[key]
        if not available:
            return _error(6, where, f"parameter, {key}, not available")
        if not light.state.get("on") and not turning_on:
            return _error(201, where, f"parameter, {key}, is not modifiable. Device is set to off.")
        if key == "bri":
            return None if _int_in(value, 1, 254) else _invalid(where, key, value)
        if key == "ct":
            low, high = light.ct_range or (0, 0)
            return None if _int_in(value, low, high) else _invalid(where, key, value)
        ok = isinstance(value, list) and len(value) == 2
        ok = ok and all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in value)
        return None if ok else _invalid(where, key, value)


def _int_in(value: Json, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _invalid(address: str, key: str, value: Json) -> Json:
    return _error(7, address, f"invalid value, {value}, for parameter, {key}")


def _missing(address: str) -> Json:
    return _error(3, address, f"resource, {address}, not available")
