"""The timeline picture of a scene as SVG, in pure Python (no plotting library).

    sessionctl plot demo -o demo.svg
    sessionctl plot scenes/iv-infusion.yaml -o iv.svg

    svg_text = render_svg(library.scene("demo"))

One lane per fixture role shows the light level as a filled area coloured by its colour
temperature; a lane shows the music volume; check-ins are marked in their priority colour;
phases are bands with their titles; a time axis runs along the bottom. Everything is computed
from :meth:`Timeline.state_at`, so the picture is exactly what the room would be told.

The SVG uses presentation attributes only (no ``<style>``, no ``style=``) so it renders under
the tablet's ``style-src 'self'`` Content Security Policy.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from controller.scene import LoadedScene
from controller.timeline import Timeline
from controller.units import format_clock, format_duration, mired_to_kelvin
from drivers.base import LightSetting

SAMPLE_STEP = 15.0
MIN_SAMPLES = 240
WIDTH = 1000.0
LEFT = 120.0
RIGHT = 20.0
TOP = 70.0
LANE = 56.0
LANE_GAP = 10.0
AXIS = 34.0

BACKGROUND = "#16171b"
INK = "#c9c2b4"
MUTED = "#7d786e"
GRID = "#2a2b30"
BAND_FILLS = ("#1f2025", "#23252b")
MUSIC = "#8fa7c9"
PRIORITY_COLOURS = {"high": "#d9463b", "medium": "#e0b234", "low": "#4fb8c4"}


@dataclass(frozen=True)
class _Frame:
    """Maps offsets and levels to picture coordinates."""

    length: float
    plot_width: float

    def x(self, offset: float) -> float:
        if self.length <= 0:
            return LEFT
        return LEFT + self.plot_width * min(1.0, max(0.0, offset / self.length))


def render_svg(scene: LoadedScene, *, width: float = WIDTH) -> str:
    """The scene's timeline as a standalone SVG document."""
    timeline = Timeline(scene)
    roles = timeline.roles
    lanes = len(roles) + 1
    height = TOP + lanes * (LANE + LANE_GAP) + AXIS
    frame = _Frame(timeline.length, width - LEFT - RIGHT)
    times = _sample_times(timeline)
    bottom = TOP + lanes * (LANE + LANE_GAP) - LANE_GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" '
        f'width="{width:g}" height="{height:g}" role="img" '
        f"aria-label={quoteattr(f'Timeline of {scene.name}')}>",
        f"<title>{escape(scene.name)} — {format_duration(timeline.length)}</title>",
        f'<rect width="{width:g}" height="{height:g}" fill="{BACKGROUND}"/>',
        _text(LEFT, 22, f"{scene.name}", size=16, weight="bold"),
        _text(
            LEFT,
            40,
            f"{format_duration(timeline.length)} · {len(timeline.phases)} phases",
            size=12,
            fill=MUTED,
        ),
    ]
    parts += _phase_bands(timeline, frame, bottom)
    for lane, role in enumerate(roles):
        y = TOP + lane * (LANE + LANE_GAP)
        parts += _light_lane(timeline, role, times, frame, y)
    parts += _music_lane(timeline, times, frame, TOP + len(roles) * (LANE + LANE_GAP))
    parts += _checkin_marks(timeline, frame, bottom)
    parts += _axis(timeline.length, frame, bottom)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _sample_times(timeline: Timeline) -> list[float]:
    """A regular grid plus the instants on both sides of every cue, so edges stay sharp."""
    length = timeline.length
    step = min(SAMPLE_STEP, length / MIN_SAMPLES) if length > 0 else SAMPLE_STEP
    step = max(step, 0.25)
    times = {round(i * step, 3) for i in range(int(length / step) + 1)} | {length}
    for timed in timeline.cues:
        t = timed.time
        times.add(t)
        times.add(max(0.0, t - 0.01))
        fade = 0.0
        if timed.cue.lights is not None:
            fade = timed.cue.lights.fade
        elif timed.cue.music is not None:
            fade = timed.cue.music.fade
        times.add(min(length, t + fade))
    return sorted(t for t in times if 0 <= t <= length)


def _phase_bands(timeline: Timeline, frame: _Frame, bottom: float) -> list[str]:
    out = []
    for span in timeline.phases:
        x0, x1 = frame.x(span.start), frame.x(span.end)
        fill = BAND_FILLS[span.index % 2]
        title = span.phase.label
        hold = " (holds)" if span.phase.holds else ""
        out.append(
            f'<g class="phase-band" data-phase={quoteattr(span.id)}>'
            f"<title>{escape(title)}: {format_clock(span.start)}–{format_clock(span.end)}"
            f"{hold}</title>"
            f'<rect x="{x0:.1f}" y="{TOP - 8:.1f}" width="{max(1.5, x1 - x0):.1f}" '
            f'height="{bottom - TOP + 8:.1f}" fill="{fill}"/>'
            f'<line x1="{x0:.1f}" y1="{TOP - 8:.1f}" x2="{x0:.1f}" y2="{bottom:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            + _text(x0 + 4, TOP + 4, _fit(title, x1 - x0), size=11, fill=MUTED)
            + "</g>"
        )
    return out


def _fit(text: str, room: float) -> str:
    """Shorten a title to what fits in ``room`` pixels (about 6 px per character at 11 px)."""
    chars = int((room - 8) / 6.2)
    if chars >= len(text):
        return text
    return text[: max(0, chars - 1)] + "…" if chars > 1 else ""


def _light_lane(
    timeline: Timeline, role: str, times: Sequence[float], frame: _Frame, y: float
) -> list[str]:
    settings = [_light(timeline, role, t) for t in times]
    gradient_id = f"kelvin-{role}"
    stops = []
    previous = ""
    for t, setting in zip(times, settings, strict=True):
        colour = setting_colour(setting)
        if colour == previous and t not in (times[0], times[-1]):
            continue
        previous = colour
        fraction = 0.0 if timeline.length <= 0 else t / timeline.length
        stops.append(f'<stop offset="{fraction:.4f}" stop-color="{colour}"/>')
    points = [(frame.x(t), _level_y(s, y)) for t, s in zip(times, settings, strict=True)]
    area = _path(points, close_at=y + LANE)
    line = _path(points)
    return [
        f'<g class="light-lane" data-role={quoteattr(role)}>',
        f'<defs><linearGradient id={quoteattr(gradient_id)} gradientUnits="userSpaceOnUse" '
        f'x1="{LEFT:g}" y1="0" x2="{LEFT + frame.plot_width:g}" y2="0">'
        + "".join(stops)
        + "</linearGradient></defs>",
        _text(LEFT - 10, y + LANE / 2 + 4, role, size=12, anchor="end"),
        f'<line x1="{LEFT:g}" y1="{y + LANE:.1f}" x2="{LEFT + frame.plot_width:.1f}" '
        f'y2="{y + LANE:.1f}" stroke="{GRID}"/>',
        f'<path d="{area}" fill="url(#{gradient_id})" fill-opacity="0.75"/>',
        f'<path d="{line}" fill="none" stroke="url(#{gradient_id})" stroke-width="2"/>',
        "</g>",
    ]


def _light(timeline: Timeline, role: str, t: float) -> LightSetting:
    state = timeline.state_at(t).lights.get(role)
    return state.current if state is not None else LightSetting(on=False, level=0.0)


def _level_y(setting: LightSetting, top: float) -> float:
    level = setting.level if setting.on else 0.0
    return top + LANE - LANE * min(100.0, max(0.0, level)) / 100.0


def _music_lane(timeline: Timeline, times: Sequence[float], frame: _Frame, y: float) -> list[str]:
    points = []
    for t in times:
        music = timeline.state_at(t).music
        volume = music.volume if music.playing or music.remaining else 0.0
        points.append((frame.x(t), y + LANE - LANE * min(100.0, volume) / 100.0))
    return [
        '<g class="music-lane">',
        _text(LEFT - 10, y + LANE / 2 + 4, "music", size=12, anchor="end"),
        f'<line x1="{LEFT:g}" y1="{y + LANE:.1f}" x2="{LEFT + frame.plot_width:.1f}" '
        f'y2="{y + LANE:.1f}" stroke="{GRID}"/>',
        f'<path d="{_path(points)}" fill="none" stroke="{MUSIC}" stroke-width="2"/>',
        "</g>",
    ]


def _checkin_marks(timeline: Timeline, frame: _Frame, bottom: float) -> list[str]:
    out = []
    for timed in timeline.checkins:
        checkin = timed.cue.checkin
        assert checkin is not None
        x = frame.x(timed.time)
        colour = PRIORITY_COLOURS[checkin.priority]
        top = TOP - 8
        out.append(
            f'<g class="checkin-mark" data-checkin={quoteattr(checkin.id)} '
            f"data-priority={quoteattr(checkin.priority)}>"
            f"<title>{escape(format_clock(timed.time))} check-in ({checkin.priority}): "
            f"{escape(checkin.prompt)}</title>"
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="3 3"/>'
            f'<path d="M{x - 6:.1f},{top - 10:.1f} L{x + 6:.1f},{top - 10:.1f} '
            f'L{x:.1f},{top:.1f} Z" fill="{colour}"/>'
            "</g>"
        )
    return out


def _axis(length: float, frame: _Frame, bottom: float) -> list[str]:
    step = _tick_step(length)
    out = [
        '<g class="time-axis">',
        f'<line x1="{LEFT:g}" y1="{bottom + 4:.1f}" x2="{LEFT + frame.plot_width:.1f}" '
        f'y2="{bottom + 4:.1f}" stroke="{MUTED}"/>',
    ]
    ticks = int(length // step) + 1 if step > 0 else 1
    for i in range(ticks):
        t = i * step
        x = frame.x(t)
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom + 4:.1f}" x2="{x:.1f}" y2="{bottom + 9:.1f}" '
            f'stroke="{MUTED}"/>'
        )
        out.append(_text(x, bottom + 22, format_clock(t), size=11, fill=MUTED, anchor="middle"))
    out.append("</g>")
    return out


def _tick_step(length: float) -> float:
    """A round tick interval giving about 6-12 ticks."""
    for step in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if length / step <= 12:
            return float(step)
    return 3600.0 * math.ceil(length / 3600 / 12)


def _path(points: Iterable[tuple[float, float]], close_at: float | None = None) -> str:
    pts = list(points)
    if not pts:
        return ""
    d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    if close_at is not None:
        d += f" L{pts[-1][0]:.1f},{close_at:.1f} L{pts[0][0]:.1f},{close_at:.1f} Z"
    return d


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: float = 12,
    fill: str = INK,
    anchor: str = "start",
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-family="sans-serif" font-size="{size:g}" '
        f'font-weight="{weight}" fill="{fill}" text-anchor="{anchor}">{escape(text)}</text>'
    )


# -- colour -------------------------------------------------------------------------------


def setting_colour(setting: LightSetting) -> str:
    """A display colour for a light setting: its colour temperature or xy, dark when off."""
    if not setting.on or setting.level <= 0:
        return "#303036"
    if setting.xy is not None:
        return _hex(xy_to_rgb(*setting.xy))
    if setting.mired is not None:
        return _hex(kelvin_to_rgb(mired_to_kelvin(setting.mired)))
    return _hex(kelvin_to_rgb(2700))


def kelvin_to_rgb(kelvin: float) -> tuple[int, int, int]:
    """Approximate sRGB of a black body (Tanner Helland's fit, good for 1000-40000 K)."""
    t = kelvin / 100.0
    if t <= 66:
        red = 255.0
        green = 99.4708025861 * math.log(t) - 161.1195681661
        blue = 0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307
    else:
        red = 329.698727446 * (t - 60) ** -0.1332047592
        green = 288.1221695283 * (t - 60) ** -0.0755148492
        blue = 255.0
    return (_clamp(red), _clamp(green), _clamp(blue))


def xy_to_rgb(x: float, y: float) -> tuple[int, int, int]:
    """sRGB of a CIE xy chromaticity at full brightness (gamut-clipped by scaling)."""
    if y <= 0:
        return (0, 0, 0)
    big_x, big_y, big_z = x / y, 1.0, (1 - x - y) / y
    r = 3.2406 * big_x - 1.5372 * big_y - 0.4986 * big_z
    g = -0.9689 * big_x + 1.8758 * big_y + 0.0415 * big_z
    b = 0.0557 * big_x - 0.2040 * big_y + 1.0570 * big_z
    r, g, b = (max(0.0, c) for c in (r, g, b))
    top = max(r, g, b) or 1.0

    def gamma(c: float) -> float:
        c /= top
        return 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055

    return (_clamp(gamma(r) * 255), _clamp(gamma(g) * 255), _clamp(gamma(b) * 255))


def _clamp(value: float) -> int:
    return int(min(255, max(0, round(value))))


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


# -- CLI ------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("plot", help="draw a scene's timeline as SVG")
    p.add_argument("scene", help="a scene id or a scene file")
    p.add_argument("-o", "--output", type=Path, help="SVG file to write (default: stdout)")
    p.add_argument("--room", type=Path, help="config whose scenes folder holds the scene id")
    p.set_defaults(handler=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    import sys

    from controller.cli import _find_scene

    scene, _overlays = _find_scene(args.scene, args.room)
    text = render_svg(scene)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({scene.id}, {len(text)} bytes)")
    else:
        sys.stdout.write(text)
    return 0
