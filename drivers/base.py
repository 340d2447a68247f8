"""Driver protocols and the value types drivers receive.

The controller never talks to a bulb or a player directly: it tells a driver the *desired*
state of each device it owns (level-triggered output, DESIGN.md §1.2) and the driver turns that
into its device's own protocol. A driver instance is one backend — a Hue bridge, the
zigbee2mqtt lights reached through one broker, a VLC player, a set of mock bulbs — and owns one
or more named devices.

Concrete drivers import nothing from ``controller`` but this module. Everything they need from
the process (the clock, the MQTT connection, the state directory, a place to report health)
arrives through :class:`DriverContext`.

A minimal light driver::

    class MyLights:
        kind = "my-lights"

        def __init__(self, name: str, options: Mapping[str, Any], context: DriverContext):
            self.name = name
            self.devices = tuple(options["devices"])
            self.health = DriverHealth()

        def capabilities(self, device: str) -> Capabilities:
            return Capabilities(max_transition=60.0, min_interval=0.1)

        async def start(self) -> None: ...
        async def apply(self, commands: Mapping[str, LightCommand]) -> None: ...
        async def close(self) -> None: ...
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

Priority = Literal["low", "medium", "high"]


class DriverError(Exception):
    """A driver could not do what it was asked; the message is shown to staff as room health."""


class DriverConfigError(DriverError):
    """A driver's options in the room config are wrong; raised while building the driver."""


@dataclass(frozen=True)
class Capabilities:
    """What a light can do by itself, used to plan fades (DESIGN.md §1.6).

    ``max_transition`` is the longest fade the device performs natively in one command
    (0 = none: the controller steps in software); ``min_interval`` is the shortest time
    between two commands to this device that keeps inside its rate limit.
    """

    max_transition: float = 0.0
    min_interval: float = 0.1
    mired_range: tuple[int, int] | None = (153, 500)
    color_temp: bool = True
    xy: bool = False
    dimmable: bool = True


@dataclass(frozen=True)
class LightSetting:
    """One light's state: on/off, level in percent, colour temperature in mired, xy colour."""

    on: bool = False
    level: float = 0.0
    mired: float | None = None
    xy: tuple[float, float] | None = None

    def with_level(self, level: float) -> LightSetting:
        return LightSetting(on=self.on, level=level, mired=self.mired, xy=self.xy)


@dataclass(frozen=True)
class LightCommand:
    """Go to ``setting`` over ``transition`` seconds (0 = at once)."""

    setting: LightSetting
    transition: float = 0.0


@dataclass(frozen=True)
class MusicCommand:
    """The desired state of a room's music.

    ``playlist`` None or ``playing`` False means silence. ``volume`` is the goal in percent of
    the room's calibrated ceiling, reached over ``ramp`` seconds from wherever the player is
    now; a change of playlist with a ramp is a crossfade. ``position`` is how far into the
    playlist the timeline is (seconds), so a restarted driver can seek there instead of
    starting over. ``urgent`` means stop or change at once (panic).
    """

    playlist: str | None
    playing: bool
    volume: float
    ramp: float = 0.0
    position: float = 0.0
    urgent: bool = False


@dataclass(frozen=True)
class PromptView:
    """An open check-in as staff should see it."""

    id: str
    kind: str
    prompt: str
    priority: Priority
    state: Literal["due", "acknowledged"]
    due_for: float
    escalates_in: float | None
    responses: tuple[tuple[str, str], ...] = ()


@dataclass
class DriverHealth:
    """A driver's own account of itself, shown to staff and published as room health."""

    available: bool = True
    error: str | None = None
    devices_offline: set[str] = field(default_factory=set)
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "error": self.error,
            "devices_offline": sorted(self.devices_offline),
            "errors": self.errors,
        }


AvailabilityListener = Callable[[str, str | None, bool], None]
"""Called as ``listener(driver_name, device_or_None, available)`` when availability changes."""


@runtime_checkable
class MqttLink(Protocol):
    """The process's shared MQTT connection, as drivers see it."""

    async def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 0, retain: bool = False
    ) -> None: ...

    def subscribe(
        self, topic_filter: str, handler: Callable[[str, bytes], Awaitable[None] | None]
    ) -> None:
        """Register ``handler(topic, payload)`` for a filter; it survives reconnects."""
        ...

    def on_connect(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Call ``callback`` after every (re)connect, e.g. to re-assert device state."""
        ...


@dataclass
class DriverContext:
    """What the process lends a driver."""

    monotonic: Callable[[], float]
    state_dir: Path
    media_dir: Path | None = None
    playlists_dir: Path | None = None
    mqtt: MqttLink | None = None
    on_availability: AvailabilityListener | None = None
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    """Report something staff and the audit trail should know (e.g. a skipped track)."""

    def report_availability(self, driver: str, device: str | None, available: bool) -> None:
        if self.on_availability is not None:
            self.on_availability(driver, device, available)

    def report_event(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)


class Driver(Protocol):
    kind: str
    name: str
    health: DriverHealth

    async def start(self) -> None:
        """Connect; must not raise because a peer is down (report it through ``health``)."""
        ...

    async def close(self) -> None: ...


def apply_budget(driver: object, devices: int) -> float | None:
    """How long a driver says one apply() to ``devices`` devices may take, if it says.

    A driver that paces itself (Hue: ten light commands a second per bridge) defines
    ``apply_budget(devices: int) -> float``; the room then waits at least that long before it
    calls the driver failed.
    """
    hint = getattr(driver, "apply_budget", None)
    return float(hint(devices)) if callable(hint) else None


@runtime_checkable
class LightDriver(Driver, Protocol):
    devices: tuple[str, ...]

    def capabilities(self, device: str) -> Capabilities: ...

    async def apply(self, commands: Mapping[str, LightCommand]) -> None:
        """Send each named device its command; raise :class:`DriverError` on failure."""
        ...


@runtime_checkable
class AudioDriver(Driver, Protocol):
    async def apply(self, command: MusicCommand) -> None: ...

    async def chime(self, kind: str) -> None:
        """Play a short prompt sound, ducking the music around it."""
        ...


@runtime_checkable
class PromptDriver(Driver, Protocol):
    async def show(self, prompts: Sequence[PromptView]) -> None: ...


DriverFactory = Callable[[str, Mapping[str, Any], DriverContext], Driver]


async def wait_for_cancel() -> None:
    """Sleep until cancelled; used by fault knobs that model a hung device."""
    await asyncio.Event().wait()
