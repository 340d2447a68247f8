"""Hue v1 request bodies from light commands, and which requests to send. Sans-IO.

    >>> from drivers.base import LightCommand, LightSetting
    >>> lamp = Lamp(light_id=1, mired_range=(153, 454))
    >>> state_body(LightCommand(LightSetting(True, 50, mired=500), transition=30), lamp, None)
    {'on': True, 'bri': 127, 'ct': 454, 'transitiontime': 300}
    >>> state_body(LightCommand(LightSetting(True, 0)), lamp, True)
    {'on': False, 'transitiontime': 0}

A new command pre-empts a running transition by itself: the bridge starts the new transition
from wherever the lamp is. ``bri_inc: 0`` (the documented stop) is not used, because the
controller always knows the absolute state it wants (a pause sends the interpolated value), so
the stop would cost a second request against the 10/s budget and leave the lamp at a value
nobody chose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from drivers.base import Capabilities, LightCommand

MAX_TRANSITIONTIME = 65535  # uint16, in 100 ms units
MAX_TRANSITION_SECONDS = MAX_TRANSITIONTIME / 10
DEFAULT_MIRED_RANGE = (153, 500)

Body = dict[str, Any]


@dataclass(frozen=True)
class Lamp:
    """What one Hue light can do, as far as the bridge told us."""

    light_id: int
    mired_range: tuple[int, int] | None = DEFAULT_MIRED_RANGE
    color_temp: bool = True
    xy: bool = False
    dimmable: bool = True

    def capabilities(self, min_interval: float) -> Capabilities:
        return Capabilities(
            max_transition=MAX_TRANSITION_SECONDS,
            min_interval=min_interval,
            mired_range=self.mired_range if self.color_temp else None,
            color_temp=self.color_temp,
            xy=self.xy,
            dimmable=self.dimmable,
        )


def lamp_from_bridge(light_id: int, info: Mapping[str, Any]) -> Lamp:
    """A Lamp from the bridge's ``GET /lights`` entry (state keys and capabilities.control)."""
    state = info.get("state") or {}
    control = (info.get("capabilities") or {}).get("control") or {}
    ct = control.get("ct") if isinstance(control, dict) else None
    color_temp = "ct" in state or isinstance(ct, dict)
    mired: tuple[int, int] | None = None
    if color_temp:
        mired = DEFAULT_MIRED_RANGE
        if isinstance(ct, dict) and "min" in ct and "max" in ct:
            mired = (int(ct["min"]), int(ct["max"]))
    return Lamp(
        light_id=light_id,
        mired_range=mired,
        color_temp=color_temp,
        xy="xy" in state,
        dimmable="bri" in state,
    )


def transitiontime(seconds: float) -> int:
    """Seconds -> the bridge's 100 ms units, clamped to its uint16."""
    return max(0, min(MAX_TRANSITIONTIME, round(seconds * 10)))


def bri(level: float) -> int:
    """Percent -> 1..254 (1 is the dimmest *on* value; off is ``on: false``)."""
    return max(1, min(254, round(level * 254 / 100)))


def state_body(command: LightCommand, lamp: Lamp, known_on: bool | None) -> Body:
    """The body of ``PUT .../lights/<id>/state`` for ``command``.

    ``known_on`` is what we last saw of the lamp's power (None: unknown). ``on: true`` is left
    out when the lamp is known to be on, because re-sending it slows the bridge.
    """
    setting = command.setting
    tt = transitiontime(command.transition)
    if not setting.on or setting.level <= 0:
        return {"on": False, "transitiontime": tt}
    body: Body = {} if known_on is True else {"on": True}
    if lamp.dimmable:
        body["bri"] = bri(setting.level)
    if setting.xy is not None and lamp.xy:
        # xy wins over ct on the bridge anyway; sending one keeps the answer unambiguous.
        body["xy"] = [round(setting.xy[0], 4), round(setting.xy[1], 4)]
    elif setting.mired is not None and lamp.color_temp:
        low, high = lamp.mired_range or DEFAULT_MIRED_RANGE
        body["ct"] = max(low, min(high, round(setting.mired)))
    body["transitiontime"] = tt
    return body


@dataclass(frozen=True)
class Request:
    """One PUT: a light's state or a group's action, for the devices it covers."""

    target: Literal["light", "group"]
    target_id: int
    devices: tuple[str, ...]
    body: Body

    @property
    def path(self) -> str:
        kind = "lights" if self.target == "light" else "groups"
        leaf = "state" if self.target == "light" else "action"
        return f"/{kind}/{self.target_id}/{leaf}"


def _without_on_true(body: Body) -> Body:
    return {k: v for k, v in body.items() if not (k == "on" and v is True)}


def plan_requests(
    bodies: Mapping[str, Body],
    lamps: Mapping[str, Lamp],
    groups: Mapping[int, frozenset[str]],
) -> list[Request]:
    """Group actions where every light of a group gets the same body, light requests otherwise.

    Bodies that differ only by ``on: true`` still share a group action (it carries ``on: true``
    when any member needs it: harmless for the others). Larger groups are tried first.
    """
    remaining = dict(bodies)
    requests: list[Request] = []
    for group_id, members in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        if len(members) < 2 or not members <= remaining.keys():
            continue
        distinct = {repr(sorted(_without_on_true(remaining[d]).items())) for d in members}
        if len(distinct) != 1:
            continue
        ordered = tuple(d for d in bodies if d in members)
        body = _without_on_true(remaining[ordered[0]])
        if any(remaining[d].get("on") is True for d in members):
            body = {"on": True, **body}
        requests.append(Request("group", group_id, ordered, body))
        for device in members:
            del remaining[device]
    requests.extend(
        Request("light", lamps[device].light_id, (device,), body)
        for device, body in remaining.items()
    )
    return requests
