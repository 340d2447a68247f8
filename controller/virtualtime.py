"""An asyncio event loop whose time is a :class:`~controller.clock.VirtualClock`.

When nothing is ready to run, the loop jumps the clock to its next timer instead of sleeping,
so a two-hour session runs in milliseconds while ``asyncio.sleep``, ``asyncio.timeout`` and
``call_at`` behave exactly as they do in real time. With ``speed`` it sleeps for real, ``speed``
times faster than virtual time (``sessionctl simulate --speed 60``). Work handed to a thread
with ``run_in_executor`` (the journal's fsync, ``asyncio.to_thread``) takes no virtual time:
while any is in flight the loop waits for it for real (up to ``THREAD_GRACE``) before jumping::

    clock = VirtualClock()
    run_virtual(main(clock), clock)              # as fast as possible
    run_virtual(main(clock), clock, speed=60)    # a minute per second
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from controller.clock import VirtualClock

T = TypeVar("T")

# Real seconds the loop waits for a thread's result before it lets virtual time jump anyway.
THREAD_GRACE = 5.0


class _JumpingSelector(selectors.DefaultSelector):
    """Polls real I/O without blocking, then moves virtual time by the loop's timeout."""

    def __init__(self, clock: VirtualClock, speed: float | None) -> None:
        super().__init__()
        self._clock = clock
        self._speed = speed
        self.in_flight = 0  # executor calls not finished yet

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and self.in_flight and timeout is not None and timeout > 0:
            # A thread is working for the loop; its result arrives through the self-pipe.
            # Bounded, so a thread that waits on a timer of this loop cannot hang it.
            ready = super().select(THREAD_GRACE)
            if ready:
                return ready
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
        self._jumping = _JumpingSelector(clock, speed)
        super().__init__(self._jumping)
        self._virtual_clock = clock
        # Timers within this of "now" run now; virtual time has no scheduling jitter.
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._virtual_clock.monotonic()

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self._jumping.in_flight += 1
        future.add_done_callback(self._landed)
        return future

    def _landed(self, _: asyncio.Future[Any]) -> None:
        self._jumping.in_flight -= 1


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
