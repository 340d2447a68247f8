"""Clocks: monotonic time for scheduling, UTC wall time for the audit trail.

The core takes ``now`` (monotonic seconds) as an argument; the runtime asks a :class:`Clock`.
Tests and ``sessionctl simulate`` use :class:`VirtualClock`, which only moves when told to:

    >>> clock = VirtualClock()
    >>> clock.advance(90)
    >>> clock.monotonic()
    90.0
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

_SYNC_FLAG = Path("/run/systemd/timesync/synchronized")
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class Clock(Protocol):
    """What the runtime needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; its zero point means nothing."""
        ...

    def wall(self) -> datetime:
        """The current UTC time, for the audit trail only; it may jump."""
        ...

    def synchronized(self) -> bool:
        """Whether the wall clock is known to be NTP-synchronised."""
        ...

    def boot_id(self) -> str:
        """An identifier that changes with every boot of the machine."""
        ...

    @property
    def max_wait(self) -> float:
        """The longest single wait the runtime should make before re-checking the time."""
        ...


class SystemClock:
    """The machine's clocks.

    ``max_wait`` is one second: Linux lets a long ``epoll_wait`` wake up to 0.1 % late
    (capped at 100 ms), while one-second waits stay within about a millisecond (DESIGN.md §4).
    """

    max_wait = 1.0

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    def synchronized(self) -> bool:
        return _SYNC_FLAG.exists()

    def boot_id(self) -> str:
        try:
            return _BOOT_ID.read_text().strip()
        except OSError:
            return "unknown-boot"


class VirtualClock:
    """A clock that moves only when told to; wall time can be stepped independently."""

    max_wait = float("inf")

    def __init__(
        self,
        start: float = 0.0,
        wall: datetime | None = None,
        *,
        synchronized: bool = True,
        boot_id: str = "virtual-boot",
    ) -> None:
        self._now = start
        self._wall_origin = wall or datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
        self._wall_offset = 0.0
        self._synchronized = synchronized
        self._boot_id = boot_id

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._wall_origin + timedelta(seconds=self._now + self._wall_offset)

    def synchronized(self) -> bool:
        return self._synchronized

    def boot_id(self) -> str:
        return self._boot_id

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        self._now += seconds

    def advance_to(self, when: float) -> None:
        self._now = max(self._now, when)

    def step_wall(self, seconds: float) -> None:
        """Jump the wall clock (an NTP correction) without touching monotonic time."""
        self._wall_offset += seconds

    def set_synchronized(self, value: bool) -> None:
        self._synchronized = value

    def reboot(self, boot_id: str, *, monotonic: float = 0.0) -> None:
        """Simulate a reboot: a new boot id and a monotonic clock that starts again."""
        elapsed_wall = self._now + self._wall_offset
        self._boot_id = boot_id
        self._now = monotonic
        self._wall_offset = elapsed_wall - monotonic
