"""Mock backends: they record every call with its time and model the device over time.

A mock bulb told to fade natively reports the right level mid-fade, so tests and
``sessionctl simulate`` see what a real room would look like. Fault knobs make a device raise,
hang, answer slowly or go offline::

    lights = MockLights("mock", {"devices": {"ceiling": {"max_transition": 6553}}}, context)
    lights.set_fault("hang")            # every apply now waits until it is cancelled
    lights.set_fault(None)
    lights.level_at("ceiling", 12.0)    # the modelled level at monotonic time 12 s
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.base import (
    Capabilities,
    DriverConfigError,
    DriverContext,
    DriverError,
    DriverHealth,
    LightCommand,
    LightSetting,
    MusicCommand,
    PromptView,
    wait_for_cancel,
)

Fault = Literal["raise", "hang", "slow", "offline"]
_FAULTS = ("raise", "hang", "slow", "offline")


def _lerp(a: float, b: float, f: float) -> float:
    return a + (b - a) * min(1.0, max(0.0, f))


@dataclass(frozen=True)
class LightCall:
    at: float
    device: str
    command: LightCommand


@dataclass
class _BulbModel:
    """A bulb's state as a linear transition from ``start`` to ``end`` over [t0, t1]."""

    start: LightSetting = field(default_factory=LightSetting)
    end: LightSetting = field(default_factory=LightSetting)
    t0: float = 0.0
    t1: float = 0.0

    def at(self, now: float) -> LightSetting:
        if now >= self.t1 or self.t1 <= self.t0:
            return self.end
        f = (now - self.t0) / (self.t1 - self.t0)
        mired = self.end.mired
        if self.start.mired is not None and self.end.mired is not None:
            mired = _lerp(self.start.mired, self.end.mired, f)
        start_level = self.start.level if self.start.on else 0.0
        end_level = self.end.level if self.end.on else 0.0
        return LightSetting(
            on=self.start.on or self.end.on,
            level=_lerp(start_level, end_level, f),
            mired=mired,
            xy=self.end.xy,
        )


class _FaultKnobs:
    def __init__(self, options: Mapping[str, Any]) -> None:
        self.fault: Fault | None = None
        self.delay = float(options.get("delay", 0.5))
        initial = options.get("fault")
        if initial is not None:
            self.set_fault(initial)

    def set_fault(self, fault: str | None, *, delay: float | None = None) -> None:
        if fault is not None and fault not in _FAULTS:
            raise DriverConfigError(f"unknown fault {fault!r}; one of {', '.join(_FAULTS)}")
        self.fault = fault  # type: ignore[assignment]
        if delay is not None:
            self.delay = delay

    async def before_call(self, name: str) -> None:
        if self.fault == "raise":
            raise DriverError(f"{name}: injected failure")
        if self.fault == "offline":
            raise DriverError(f"{name}: device offline (injected)")
        if self.fault == "hang":
            await wait_for_cancel()
        if self.fault == "slow":
            await asyncio.sleep(self.delay)


class MockLights:
    """Mock bulbs. Options: ``devices`` (a list of names, or a mapping of name to capability
    overrides: ``max_transition``, ``min_interval``, ``mired_range``, ``xy``), ``fault``,
    ``delay``."""

    kind = "mock-light"

    def __init__(self, name: str, options: Mapping[str, Any], context: DriverContext) -> None:
        self.name = name
        self._now = context.monotonic
        self._context = context
        raw = options.get("devices")
        if isinstance(raw, list):
            raw = {str(d): {} for d in raw}
        if not isinstance(raw, dict) or not raw:
            raise DriverConfigError(f"{name}: 'devices' must list at least one device")
        self._caps: dict[str, Capabilities] = {}
        for device, spec in raw.items():
            spec = spec or {}
            mired = spec.get("mired_range", (153, 500))
            self._caps[str(device)] = Capabilities(
                max_transition=float(spec.get("max_transition", 6553.5)),
                min_interval=float(spec.get("min_interval", 0.1)),
                mired_range=(int(mired[0]), int(mired[1])) if mired else None,
                color_temp=bool(spec.get("color_temp", True)),
                xy=bool(spec.get("xy", False)),
            )
        self.devices = tuple(self._caps)
        self._bulbs = {d: _BulbModel() for d in self.devices}
        self.calls: list[LightCall] = []
        self.health = DriverHealth()
        self._faults = _FaultKnobs(options)
        self.started = False

    def capabilities(self, device: str) -> Capabilities:
        return self._caps[device]

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False

    def set_fault(self, fault: str | None, *, delay: float | None = None) -> None:
        """Make later calls raise, hang, answer slowly or fail as offline; None heals."""
        was_offline = self._faults.fault == "offline"
        self._faults.set_fault(fault, delay=delay)
        if fault == "offline" and not was_offline:
            self.health.available = False
            self._context.report_availability(self.name, None, False)
        elif was_offline and fault != "offline":
            self.health.available = True
            self._context.report_availability(self.name, None, True)

    async def apply(self, commands: Mapping[str, LightCommand]) -> None:
        await self._faults.before_call(self.name)
        now = self._now()
        for device, command in commands.items():
            if device not in self._bulbs:
                raise DriverError(f"{self.name}: no device {device!r}")
            bulb = self._bulbs[device]
            current = bulb.at(now)
            caps = self._caps[device]
            transition = min(command.transition, caps.max_transition)
            self._bulbs[device] = _BulbModel(current, command.setting, now, now + transition)
            self.calls.append(LightCall(now, device, command))

    def setting_at(self, device: str, when: float | None = None) -> LightSetting:
        return self._bulbs[device].at(self._now() if when is None else when)

    def level_at(self, device: str, when: float | None = None) -> float:
        setting = self.setting_at(device, when)
        return setting.level if setting.on else 0.0

    def calls_for(self, device: str) -> list[LightCall]:
        return [c for c in self.calls if c.device == device]


@dataclass(frozen=True)
class AudioCall:
    at: float
    command: MusicCommand | None
    chime: str | None = None


class MockAudio:
    """A mock player: models playlist, track, position and volume ramps over time.

    Tracks come from the playlist files (``context.playlists_dir``) in their play order; the
    mock gives every track ``track_seconds`` (default 150 s, the length of the generated demo
    pads) instead of opening media files.
    """

    kind = "mock-audio"

    def __init__(self, name: str, options: Mapping[str, Any], context: DriverContext) -> None:
        self.name = name
        self._now = context.monotonic
        self._playlists_dir = context.playlists_dir
        self._track_seconds = float(options.get("track_seconds", 150.0))
        self._tracks: dict[str, tuple[list[str], bool]] = {}
        self.health = DriverHealth()
        self._faults = _FaultKnobs(options)
        self.calls: list[AudioCall] = []
        self.playlist: str | None = None
        self.playing = False
        self._v0 = 0.0
        self._v1 = 0.0
        self._t0 = 0.0
        self._t1 = 0.0
        self._position_anchor: tuple[float, float] = (0.0, 0.0)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def set_fault(self, fault: str | None, *, delay: float | None = None) -> None:
        self._faults.set_fault(fault, delay=delay)
        self.health.available = fault != "offline"

    def volume_at(self, when: float | None = None) -> float:
        now = self._now() if when is None else when
        if not self.playing:
            return 0.0
        if now >= self._t1 or self._t1 <= self._t0:
            return self._v1
        return _lerp(self._v0, self._v1, (now - self._t0) / (self._t1 - self._t0))

    def track_at(self, when: float | None = None) -> tuple[str, float] | None:
        """The track playing at ``when`` and how far into it, if the playlist is known."""
        if not self.playing or self.playlist is None:
            return None
        return self.track_for(self.playlist, self.position_at(when))

    def track_for(self, playlist: str, position: float) -> tuple[str, float] | None:
        """The track ``position`` seconds into ``playlist``, and how far into it."""
        order = self._order(playlist)
        if order is None:
            return None
        files, loop = order
        from drivers.playlists import locate

        found = locate([self._track_seconds] * len(files), position, loop=loop)
        return None if found is None else (files[found[0]], found[1])

    def _order(self, playlist: str) -> tuple[list[str], bool] | None:
        if playlist not in self._tracks:
            if self._playlists_dir is None:
                return None
            from drivers.playlists import load_playlist

            try:
                loaded = load_playlist(self._playlists_dir, playlist)
            except DriverConfigError:
                return None
            self._tracks[playlist] = ([t.file for t in loaded.order()], loaded.loop)
        return self._tracks[playlist]

    def position_at(self, when: float | None = None) -> float:
        now = self._now() if when is None else when
        anchor_time, anchor_pos = self._position_anchor
        return anchor_pos + (now - anchor_time) if self.playing else anchor_pos

    async def apply(self, command: MusicCommand) -> None:
        await self._faults.before_call(self.name)
        now = self._now()
        self.calls.append(AudioCall(now, command))
        current = self.volume_at(now)
        if not command.playing or command.playlist is None:
            if command.urgent or command.ramp <= 0:
                self.playing = False
                self._v0 = self._v1 = 0.0
                self._t0 = self._t1 = now
            else:
                self._v0, self._v1, self._t0, self._t1 = current, 0.0, now, now + command.ramp
            return
        if command.playlist != self.playlist or not self.playing:
            self.playlist = command.playlist
            self._position_anchor = (now, command.position)
            current = 0.0 if not self.playing else current
            self.playing = True
        ramp = 0.0 if command.urgent else command.ramp
        self._v0, self._v1, self._t0, self._t1 = current, command.volume, now, now + ramp

    async def chime(self, kind: str) -> None:
        await self._faults.before_call(self.name)
        self.calls.append(AudioCall(self._now(), None, chime=kind))


@dataclass(frozen=True)
class PromptCall:
    at: float
    prompts: tuple[PromptView, ...]


class MockPrompts:
    """A mock in-room prompt display that records what it was asked to show."""

    kind = "mock-prompt"

    def __init__(self, name: str, options: Mapping[str, Any], context: DriverContext) -> None:
        self.name = name
        self._now = context.monotonic
        self.health = DriverHealth()
        self._faults = _FaultKnobs(options)
        self.calls: list[PromptCall] = []
        self.showing: tuple[PromptView, ...] = ()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def set_fault(self, fault: str | None, *, delay: float | None = None) -> None:
        self._faults.set_fault(fault, delay=delay)

    async def show(self, prompts: Sequence[PromptView]) -> None:
        await self._faults.before_call(self.name)
        self.showing = tuple(prompts)
        self.calls.append(PromptCall(self._now(), self.showing))
