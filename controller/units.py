"""Value types shared by scenes, the core and drivers: durations, colour temperature, levels.

>>> parse_duration("1h30m")
5400.0
>>> format_duration(150)
'2m30s'
>>> kelvin_to_mired(2200)
455
"""

from __future__ import annotations

import math
import re

KELVIN_MIN, KELVIN_MAX = 2000, 6500
# Hue and Tasmota both span 153-500 mired (devices.md section 1).
MIRED_MIN, MIRED_MAX = 153, 500

_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)


class DurationError(ValueError):
    """A duration string that is not like ``90s``, ``5m``, ``1h30m`` or a number of seconds."""


def parse_duration(value: str | int | float) -> float:
    """Seconds from ``90``, ``90s``, ``5m``, ``1h30m``, ``2m30s`` or ``0``."""
    if isinstance(value, bool):
        raise DurationError("expected a duration like 90s, 5m or 1h30m, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise DurationError(f"duration {value} is not a finite number of seconds")
        if value < 0:
            raise DurationError(f"duration {value} is negative")
        return float(value)
    text = value.strip().replace(" ", "")
    shown = repr(value if len(value) <= 40 else value[:37] + "...")
    if text.startswith("-"):
        raise DurationError(f"duration {shown} is negative")
    match = _DURATION.match(text)
    if not text or match is None or not any(match.groupdict().values()):
        raise DurationError(f"{shown} is not a duration; write it like 90s, 5m, 1h30m or 2m30s")
    hours = float(match["h"] or 0)
    minutes = float(match["m"] or 0)
    seconds = float(match["s"] or 0)
    total = hours * 3600 + minutes * 60 + seconds
    if not math.isfinite(total):
        raise DurationError(f"{shown} is too long to be a duration")
    return total


def format_duration(seconds: float) -> str:
    """The shortest readable form: ``45s``, ``5m``, ``1h30m``, ``2m30s``; fractions are kept."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    whole = int(seconds)
    frac = seconds - whole
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs or frac or not parts:
        value = secs + frac
        parts.append(f"{value:g}s" if frac else f"{secs}s")
    return sign + "".join(parts)


def format_clock(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss`` for displays."""
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
    return f"{sign}{minutes}:{secs:02d}"


def kelvin_to_mired(kelvin: float) -> int:
    return round(1_000_000 / kelvin)


def mired_to_kelvin(mired: float) -> int:
    return round(1_000_000 / mired)


def lerp(start: float, end: float, fraction: float) -> float:
    if fraction <= 0:
        return start
    if fraction >= 1:
        return end
    return start + (end - start) * fraction
