"""The fade task alone (no libvlc): retargeting, idempotence, one task, completion hook.

These run in real time with ramps of a few tenths of a second; assertions are endpoints and
ordering, not timing.
"""

from __future__ import annotations

import asyncio
import itertools

from drivers.volume_ramp import Fader, Ramp


def test_ramp_interpolates_and_clamps() -> None:
    ramp = Ramp(0.0, 60.0, 10.0, 20.0)
    assert [ramp.at(t) for t in (5, 10, 15, 20, 25)] == [0.0, 0.0, 30.0, 60.0, 60.0]


async def test_fade_reaches_goal_monotonically_then_runs_hook() -> None:
    seen: list[float] = []
    done = asyncio.Event()
    fader = Fader(seen.append, rate=50)
    fader.set_level(60.0, 0.3, then=done.set)
    await asyncio.wait_for(done.wait(), 5)
    assert seen[0] < 1.0 and seen[-1] == 60.0
    assert all(b >= a for a, b in itertools.pairwise(seen))
    assert not fader.busy and fader.stats.steps >= 5


async def test_repeating_the_same_goal_keeps_the_running_ramp() -> None:
    fader = Fader(lambda _: None)
    fader.set_level(50.0, 2.0)
    first = fader.level
    fader.set_level(50.0, 2.0)  # level-triggered repeat: would finish later, so ignored
    assert fader.level is first
    fader.set_level(50.0, 0.0)  # sooner: retarget to finish now
    assert fader.level is not first and fader.level.t1 <= first.t1
    fader.cancel()


async def test_retarget_and_duck_keep_one_task() -> None:
    fader = Fader(lambda _: None)
    tasks_before = len(asyncio.all_tasks())
    for goal in (10.0, 20.0, 30.0):
        fader.set_level(goal, 1.0)
        fader.set_duck(0.5, 0.2)
        fader.set_duck(1.0, 0.2)
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == tasks_before + 1
    fader.cancel()


async def test_cancel_drops_the_pending_hook() -> None:
    called: list[bool] = []
    fader = Fader(lambda _: None, level=40.0)
    fader.set_level(0.0, 0.5, then=lambda: called.append(True))
    fader.cancel()
    await asyncio.sleep(0.01)
    assert not called and not fader.busy
