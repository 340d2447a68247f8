"""Per-device fade planning from capabilities (DESIGN.md §1.6). Sans-IO.

A fade in the desired state is "be at ``current`` now, reach ``goal`` in ``remaining``
seconds". :func:`plan_step` turns that into the one command to send now and when to look again:

- the device can do the whole fade natively: one command with ``transition=remaining``;
- it can do part of it (Tasmota, 20 s at most): a chunk to the value due at the chunk's end;
- it cannot fade at all: the current value now, and again after a step that stays inside the
  device's rate limit.

    >>> from drivers.base import Capabilities, LightSetting
    >>> hue = Capabilities(max_transition=6553.5, min_interval=0.1)
    >>> step = plan_step(LightSetting(True, 60), LightSetting(True, 10), 2400, hue, now=0)
    >>> step.command.transition, step.next_at
    (2400.0, None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivers.base import Capabilities, LightCommand, LightSetting

# A software-stepped fade moves at most this much level (percent) or colour (mired) per step;
# finer than that is invisible and only costs commands.
LEVEL_STEP = 0.5
MIRED_STEP = 2.0
# Software steps are never further apart than this, so a slow fade still looks continuous.
MAX_STEP_INTERVAL = 5.0


@dataclass(frozen=True)
class FadeStep:
    """Send ``command`` now; plan again at ``next_at`` (None: not until the target changes)."""

    command: LightCommand
    next_at: float | None


def interpolate(current: LightSetting, goal: LightSetting, fraction: float) -> LightSetting:
    """The setting ``fraction`` of the way from ``current`` to ``goal`` (linear)."""
    f = min(1.0, max(0.0, fraction))
    start_level = current.level if current.on else 0.0
    end_level = goal.level if goal.on else 0.0
    level = start_level + (end_level - start_level) * f
    mired = goal.mired
    if current.mired is not None and goal.mired is not None:
        mired = current.mired + (goal.mired - current.mired) * f
    xy = goal.xy
    if current.xy is not None and goal.xy is not None:
        xy = (
            current.xy[0] + (goal.xy[0] - current.xy[0]) * f,
            current.xy[1] + (goal.xy[1] - current.xy[1]) * f,
        )
    on = goal.on if f >= 1.0 else (current.on or goal.on)
    return LightSetting(on=on, level=level, mired=mired, xy=xy)


def fit_to_device(setting: LightSetting, caps: Capabilities) -> LightSetting:
    """Clamp colour temperature into the device's range and drop what it cannot show."""
    mired = setting.mired if caps.color_temp else None
    if mired is not None and caps.mired_range is not None:
        low, high = caps.mired_range
        mired = min(max(mired, low), high)
    xy = setting.xy if caps.xy else None
    level = setting.level if caps.dimmable else (100.0 if setting.level > 0 else 0.0)
    on = setting.on and (level > 0 or not caps.dimmable)
    return LightSetting(on=on, level=level, mired=mired, xy=xy)


def _software_interval(
    current: LightSetting, goal: LightSetting, remaining: float, caps: Capabilities
) -> float:
    level_span = abs((goal.level if goal.on else 0) - (current.level if current.on else 0))
    mired_span = 0.0
    if current.mired is not None and goal.mired is not None:
        mired_span = abs(goal.mired - current.mired)
    steps = max(1.0, level_span / LEVEL_STEP, mired_span / MIRED_STEP)
    return min(MAX_STEP_INTERVAL, max(caps.min_interval, remaining / steps))


def plan_step(
    current: LightSetting,
    goal: LightSetting,
    remaining: float,
    caps: Capabilities,
    *,
    now: float,
) -> FadeStep:
    """What to send a device at ``now`` for a fade from ``current`` to ``goal``."""
    if remaining <= 0:
        return FadeStep(LightCommand(fit_to_device(goal, caps), 0.0), None)
    if caps.max_transition >= remaining:
        return FadeStep(LightCommand(fit_to_device(goal, caps), float(remaining)), None)
    if caps.max_transition > 0:
        chunk = caps.max_transition
        waypoint = interpolate(current, goal, chunk / remaining)
        if not goal.on:
            # Keep the light on until the last chunk switches it off.
            waypoint = LightSetting(True, waypoint.level, waypoint.mired, waypoint.xy)
        return FadeStep(LightCommand(fit_to_device(waypoint, caps), chunk), now + chunk)
    interval = _software_interval(current, goal, remaining, caps)
    setting = current if current.on or not goal.on else LightSetting(True, 0.0, goal.mired)
    next_at = now + interval if interval < remaining else now + remaining
    return FadeStep(LightCommand(fit_to_device(setting, caps), 0.0), next_at)


def commands_for_fade(
    current: LightSetting, goal: LightSetting, duration: float, caps: Capabilities
) -> list[tuple[float, LightCommand]]:
    """The whole sequence of (seconds from now, command) a device is sent for one fade.

    Used by ``simulate`` and tests; the runtime calls :func:`plan_step` as time passes.
    """
    out: list[tuple[float, LightCommand]] = []
    t = 0.0
    guard = 0
    while True:
        fraction = t / duration if duration > 0 else 1.0
        here = interpolate(current, goal, fraction) if duration > 0 else goal
        remaining = max(0.0, duration - t)
        step = plan_step(here, goal, remaining, caps, now=t)
        out.append((t, step.command))
        if step.next_at is None or math.isclose(remaining, 0.0):
            break
        t = min(step.next_at, duration)
        guard += 1
        if guard > 1_000_000:
            raise RuntimeError("fade planning did not converge")
    return out
