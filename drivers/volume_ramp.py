"""Volume ramps as one cancellable asyncio task per player (dependencies.md §6.6).

libvlc has no fade API, and ``audio_get_volume()`` cannot be trusted (it returns 0 on the
headless outputs), so the controller owns the volume: a :class:`Fader` holds the ramp of the
scene level and the ramp of the duck factor, and one task steps the player along their
product, ~25 times a second, on a grid anchored at the fade's start so it never drifts::

    fader = Fader(lambda pct: player.set_volume(round(pct)), rate=25)
    fader.set_level(60.0, seconds=120)                  # retargets from wherever it is now
    fader.set_duck(0.63, seconds=0.3)                   # a chime: dip, then
    fader.set_duck(1.0, seconds=1.5)                    # come back
    fader.set_level(0.0, seconds=10, then=player.stop)  # fade out, then stop
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Ramp:
    """A linear move from ``start`` at ``t0`` to ``end`` at ``t1`` (loop time)."""

    start: float
    end: float
    t0: float = 0.0
    t1: float = 0.0

    def at(self, now: float) -> float:
        if now >= self.t1 or self.t1 <= self.t0:
            return self.end
        if now <= self.t0:
            return self.start
        return self.start + (self.end - self.start) * (now - self.t0) / (self.t1 - self.t0)

    def done(self, now: float) -> bool:
        return now >= self.t1


@dataclass
class StepStats:
    """How late the fade steps ran against their schedule (s), for health and the bench."""

    steps: int = 0
    late_sum: float = 0.0
    late_max: float = 0.0
    samples: list[float] | None = None
    """Set to a list to keep every step's lateness (the bench does)."""

    def record(self, late: float) -> None:
        self.steps += 1
        self.late_sum += late
        self.late_max = max(self.late_max, late)
        if self.samples is not None:
            self.samples.append(late)


class Fader:
    """Drives ``sink(level * duck)`` along two ramps with at most one task at a time."""

    def __init__(
        self, sink: Callable[[float], None], *, rate: float = 25.0, level: float = 0.0
    ) -> None:
        self._sink = sink
        self._rate = rate
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self.level = Ramp(level, level, now, now)
        self.duck = Ramp(1.0, 1.0, now, now)
        self._then: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = StepStats()

    def value(self, now: float | None = None) -> float:
        t = self._loop.time() if now is None else now
        return self.level.at(t) * self.duck.at(t)

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def set_level(
        self, goal: float, seconds: float, *, then: Callable[[], None] | None = None
    ) -> None:
        """Move the level to ``goal`` over ``seconds`` from where it is now.

        Asking again for the goal already being approached keeps the running ramp unless the
        new one would finish sooner: apply() is level-triggered and repeats itself.
        """
        now = self._loop.time()
        seconds = max(0.0, seconds)
        if abs(goal - self.level.end) < 1e-9 and self.level.t1 <= now + seconds:
            self._then = then
            if not self.busy and then is not None and self.level.done(now):
                self._finish()
            return
        self.level = Ramp(self.level.at(now), goal, now, now + seconds)
        self._then = then
        self._restart()

    def set_duck(self, factor: float, seconds: float) -> None:
        now = self._loop.time()
        if abs(factor - self.duck.end) < 1e-9:
            return
        self.duck = Ramp(self.duck.at(now), factor, now, now + max(0.0, seconds))
        self._restart()

    def cancel(self) -> None:
        """Stop stepping where it is; the ``then`` of a fade-out does not run."""
        self._then = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def wait(self) -> None:
        """Until the current ramps are done (or the task is cancelled)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    def _restart(self) -> None:
        # Cancelling the previous task first is what keeps it to one task per player.
        if self._task is not None:
            self._task.cancel()
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        loop = self._loop
        start = loop.time()
        i = 0
        while True:
            now = loop.time()
            self._sink(self.value(now))
            if self.level.done(now) and self.duck.done(now):
                break
            i += 1
            due = start + i / self._rate
            if due <= now:
                # Behind schedule (a stalled loop): skip to the next grid point, no burst.
                i = int((now - start) * self._rate) + 1
                due = start + i / self._rate
            await asyncio.sleep(due - loop.time())
            self.stats.record(max(0.0, loop.time() - due))
        self._task = None
        self._finish()

    def _finish(self) -> None:
        then, self._then = self._then, None
        if then is not None:
            then()
