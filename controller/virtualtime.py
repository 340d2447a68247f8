"""An asyncio event loop whose time is a :class:`~controller.clock.VirtualClock`.

When nothing is ready to run, the loop jumps the clock to its next timer instead of sleeping,
so a two-hour session runs in milliseconds while ``asyncio.sleep``, ``asyncio.timeout`` and
``call_at`` behave exactly as they do in real time. With ``speed`` it sleeps for real, ``speed``
times faster than virtual time (``sessionctl simulate --speed 60``)::

    clock = VirtualClock()
    run_virtual(main(clock), clock)              # as fast as possible
    run_virtual(main(clock), clock, speed=60)    # a minute per second
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from controller.clock import VirtualClock

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """Polls real I/O without blocking, then moves virtual time by the loop's timeout."""

    def __init__(self, clock: VirtualClock, speed: float | None) -> None:
        super().__init__()
        self._clock = clock
        self._speed = speed

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0:
            if timeout is None and not ready:
                # Nothing scheduled at all: wait for real I/O (e.g. a signal wake-up).
                return super().select(None)
            return ready
        if self._speed:
            real = timeout / self._speed
            ready = super().select(real)
            if ready:
                return ready
        self._clock.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock, speed: float | None = None) -> None:
        super().__init__(_JumpingSelector(clock, speed))
        self._virtual_clock = clock
        # Timers within this of "now" run now; virtual time has no scheduling jitter.
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._virtual_clock.monotonic()


def run_virtual(
    main: Coroutine[Any, Any, T], clock: VirtualClock, *, speed: float | None = None
) -> T:
    """Run ``main`` to completion on a virtual-time loop."""
    loop = VirtualTimeLoop(clock, speed)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def wall_seconds() -> float:
    """Real elapsed time, for reports of how fast a simulation ran."""
    return time.perf_counter()
