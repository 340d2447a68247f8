"""A compiled scene: absolute offsets, the desired room state at any offset, the next deadline.

Sans-IO and level-triggered (DESIGN.md §1.2): the one question answered here is *what should
the room look and sound like at offset t*, including a fade in progress::

    timeline = Timeline(loaded_scene)
    state = timeline.state_at(23 * 60)
    state.lights["ambient"].current.level    # e.g. 10.0
    state.lights["ambient"].remaining        # seconds of fade left (0 when steady)
    timeline.next_deadline(23 * 60)          # offset of the next cue or phase boundary

A *position* is ``(offset, phase_index)``: at the instant one phase ends and the next begins,
the phase index says which side of the boundary the room is on (a holding phase sits at its
end while the next phase's first cues have not happened yet).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.fades import interpolate
from controller.scene import CheckinCue, Cue, LightsCue, LoadedScene, MusicCue, Phase
from drivers.base import LightSetting

CueKey = tuple[float, int, int]
"""Orders cues: (offset, phase index, position in the file)."""

_END = 1 << 30


@dataclass(frozen=True)
class PhaseSpan:
    index: int
    phase: Phase
    start: float
    end: float

    @property
    def id(self) -> str:
        return self.phase.id

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class TimedCue:
    key: CueKey
    cue: Cue

    @property
    def time(self) -> float:
        return self.key[0]

    @property
    def phase_index(self) -> int:
        return self.key[1]


@dataclass(frozen=True)
class LightState:
    """Be at ``current`` now and reach ``goal`` in ``remaining`` seconds (0 = steady)."""

    current: LightSetting
    goal: LightSetting
    remaining: float = 0.0

    def steady(self) -> LightState:
        return LightState(self.current, self.current, 0.0)


@dataclass(frozen=True)
class MusicState:
    """What the music should be doing now; ``volume`` ramps to ``goal`` in ``remaining`` s."""

    playlist: str | None = None
    playing: bool = False
    volume: float = 0.0
    goal: float = 0.0
    remaining: float = 0.0
    position: float = 0.0

    def steady(self) -> MusicState:
        return MusicState(self.playlist, self.playing, self.volume, self.volume, 0.0, self.position)


@dataclass(frozen=True)
class RoomState:
    """The desired state of a room's lights (by role) and music at one instant."""

    lights: Mapping[str, LightState] = field(default_factory=dict)
    music: MusicState = field(default_factory=MusicState)


@dataclass(frozen=True)
class _LightSegment:
    key: CueKey
    start: LightSetting
    goal: LightSetting
    t0: float
    t1: float

    def at(self, t: float) -> LightState:
        if t >= self.t1 or self.t1 <= self.t0:
            return LightState(self.goal, self.goal, 0.0)
        fraction = (t - self.t0) / (self.t1 - self.t0)
        return LightState(interpolate(self.start, self.goal, fraction), self.goal, self.t1 - t)


@dataclass(frozen=True)
class _MusicSegment:
    key: CueKey
    playlist: str | None
    v0: float
    v1: float
    t0: float
    t1: float
    started: float
    stops: bool

    def at(self, t: float) -> MusicState:
        position = max(0.0, t - self.started)
        if t >= self.t1 or self.t1 <= self.t0:
            playing = self.playlist is not None and not self.stops
            volume = self.v1 if playing else 0.0
            return MusicState(self.playlist, playing, volume, volume, 0.0, position)
        fraction = (t - self.t0) / (self.t1 - self.t0)
        volume = self.v0 + (self.v1 - self.v0) * fraction
        return MusicState(
            self.playlist, self.playlist is not None, volume, self.v1, self.t1 - t, position
        )


def _light_goal(previous: LightSetting | None, cue: LightsCue) -> LightSetting:
    prev = previous or LightSetting(on=False, level=0.0)
    level = prev.level
    on = prev.on
    if cue.level is not None:
        level = cue.level
        on = cue.level > 0
    if cue.on is not None:
        on = cue.on
        if on and level <= 0:
            level = 100.0
    elif cue.level is None and previous is None:
        # A fixture's first cue sets only its colour: switch it on, at full level.
        on, level = True, 100.0
    mired = cue.target_mired if cue.target_mired is not None else prev.mired
    xy = cue.xy if cue.xy is not None else (None if cue.target_mired is not None else prev.xy)
    return LightSetting(on=on, level=level if on else 0.0, mired=mired, xy=xy)


class Timeline:
    """A scene compiled to absolute offsets, with optional extra time per phase."""

    def __init__(self, scene: LoadedScene, extensions: Mapping[int, float] | None = None) -> None:
        self.scene = scene
        self.extensions = dict(extensions or {})
        self.phases: list[PhaseSpan] = []
        t = 0.0
        for index, phase in enumerate(scene.scene.phases):
            end = t + phase.length + self.extensions.get(index, 0.0)
            self.phases.append(PhaseSpan(index, phase, t, end))
            t = end
        self.length = t
        self.cues: list[TimedCue] = []
        for span in self.phases:
            for order, cue in enumerate(span.phase.cues):
                self.cues.append(TimedCue((span.start + cue.at, span.index, order), cue))
        self.cues.sort(key=lambda c: c.key)
        self._cue_keys = [c.key for c in self.cues]
        self.checkins = [c for c in self.cues if c.cue.checkin is not None]
        self._lights: dict[str, list[_LightSegment]] = {}
        self._music: list[_MusicSegment] = []
        self._compile()
        self._light_keys = {role: [s.key for s in segs] for role, segs in self._lights.items()}
        self._music_keys = [s.key for s in self._music]
        self._boundaries = sorted({s.start for s in self.phases} | {s.end for s in self.phases})

    @property
    def roles(self) -> list[str]:
        return list(self.scene.scene.roles)

    def _compile(self) -> None:
        for timed in self.cues:
            if timed.cue.lights is not None:
                self._add_light(timed.key, timed.cue.lights)
            if timed.cue.music is not None:
                self._add_music(timed.key, timed.cue.music)

    def _add_light(self, key: CueKey, cue: LightsCue) -> None:
        t = key[0]
        for role in cue.roles:
            segments = self._lights.setdefault(role, [])
            if segments:
                now = segments[-1].at(t)
                start, previous_goal = now.current, segments[-1].goal
            else:
                start, previous_goal = LightSetting(on=False, level=0.0), None
            goal = _light_goal(previous_goal, cue)
            if not segments:
                # A fixture's first cue has nothing to fade from: it starts at the goal's colour.
                start = LightSetting(on=False, level=0.0, mired=goal.mired, xy=goal.xy)
                if cue.fade <= 0:
                    start = goal
            self._lights[role].append(_LightSegment(key, start, goal, t, t + cue.fade))

    def _add_music(self, key: CueKey, cue: MusicCue) -> None:
        t = key[0]
        now = self._music[-1].at(t) if self._music else MusicState()
        last_goal = self._music[-1].v1 if self._music else 0.0
        if cue.stop:
            segment = _MusicSegment(
                key,
                now.playlist if now.playing else None,
                now.volume,
                0.0,
                t,
                t + cue.fade,
                self._music[-1].started if self._music else t,
                True,
            )
        elif cue.play is not None and (cue.play != now.playlist or not now.playing):
            target = cue.volume if cue.volume is not None else (last_goal or 50.0)
            segment = _MusicSegment(key, cue.play, 0.0, target, t, t + cue.fade, t, False)
        else:
            target = cue.volume if cue.volume is not None else now.goal
            started = self._music[-1].started if self._music else t
            segment = _MusicSegment(
                key,
                now.playlist if now.playing else None,
                now.volume,
                target,
                t,
                t + cue.fade,
                started,
                False,
            )
        self._music.append(segment)

    # -- queries -------------------------------------------------------------------------

    def phase_at(self, offset: float) -> PhaseSpan:
        """The phase running at ``offset`` (at a boundary, the phase that begins there)."""
        chosen = self.phases[0]
        for span in self.phases:
            if span.start <= offset and (span.end > offset or span.length == 0):
                chosen = span
            if span.start > offset:
                break
        if offset >= self.length:
            return self.phases[-1]
        return chosen

    def phase(self, phase_id: str) -> PhaseSpan | None:
        return next((s for s in self.phases if s.id == phase_id), None)

    def _limit(self, offset: float, phase_index: int | None) -> CueKey:
        index = self.phase_at(offset).index if phase_index is None else phase_index
        return (offset, index, _END)

    def state_at(self, offset: float, phase_index: int | None = None) -> RoomState:
        """The desired room state at a position, with any fade in progress."""
        limit = self._limit(offset, phase_index)
        lights: dict[str, LightState] = {}
        for role, segments in self._lights.items():
            i = bisect.bisect_right(self._light_keys[role], limit) - 1
            if i >= 0:
                lights[role] = segments[i].at(offset)
        i = bisect.bisect_right(self._music_keys, limit) - 1
        music = self._music[i].at(offset) if i >= 0 else MusicState()
        return RoomState(lights, music)

    def cues_between(self, after: CueKey, upto: CueKey) -> list[TimedCue]:
        """Cues with ``after < key <= upto``, in order."""
        lo = bisect.bisect_right(self._cue_keys, after)
        hi = bisect.bisect_right(self._cue_keys, upto)
        return self.cues[lo:hi]

    def checkins_between(self, after: CueKey, upto: CueKey) -> list[tuple[CueKey, CheckinCue]]:
        return [
            (c.key, c.cue.checkin)
            for c in self.cues_between(after, upto)
            if c.cue.checkin is not None
        ]

    def next_deadline(self, offset: float, phase_index: int | None = None) -> float | None:
        """The offset of the next cue or phase boundary after a position, or None at the end."""
        limit = self._limit(offset, phase_index)
        i = bisect.bisect_right(self._cue_keys, limit)
        candidates = [self._cue_keys[i][0]] if i < len(self._cue_keys) else []
        j = bisect.bisect_right(self._boundaries, offset)
        if j < len(self._boundaries):
            candidates.append(self._boundaries[j])
        return min(candidates) if candidates else None

    def position_key(self, offset: float, phase_index: int) -> CueKey:
        return (offset, phase_index, _END)
