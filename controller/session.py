"""The session state machine of one room. Sans-IO, with ``now`` passed in (monotonic seconds).

Like h11's connection object, it only answers questions and returns events; the runtime does
the waiting, journalling and actuation::

    session = Session("room-1", library, roles={"ambient", "accent"})
    result = session.handle(Command("start", "c1", "nurse-3", {"scene": "iv-infusion"}), now)
    result.outcome.accepted            # True
    session.advance(now + 600)         # -> events that happened in those ten minutes
    session.desired(now + 600)         # RoomState: what every role and the music should do
    session.next_deadline(now + 600)   # when to call advance() again

States: ready → running ⇄ paused, holding → ended | aborted. The timeline *offset* is running
time: a pause stops it, ``extend`` inserts time at the end of the current phase, ``skip`` jumps
to a later phase's start. Overlays (panic, calm, staff entry) lie over the timeline and may
freeze it. Check-ins escalate in real time whatever the timeline does.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from controller.checkins import CheckinBook, CheckinRefused
from controller.commands import Command, Outcome
from controller.events import Event
from controller.fades import interpolate
from controller.scene import BUILTIN_PANIC, CheckinCue, Cue, LoadedScene, Overlay
from controller.timeline import CueKey, LightState, MusicState, RoomState, Timeline
from controller.units import format_duration, mired_to_kelvin
from drivers.base import LightSetting, PromptView


class SessionState(StrEnum):
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    HOLDING = "holding"
    ENDED = "ended"
    ABORTED = "aborted"


ACTIVE = (SessionState.RUNNING, SessionState.PAUSED, SessionState.HOLDING)

# When a session ends the lights move to the resting state and the music fades out over these.
RESTING_FADE = 30.0
MUSIC_END_FADE = 10.0

# Outcomes remembered for idempotency. Retries of a command come within seconds or minutes; the
# bound keeps the journalled snapshot from growing for the life of the room.
MAX_REMEMBERED_COMMANDS = 200


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    events: list[Event]


@dataclass
class _Blend:
    """A transition from a captured setting to whatever the room should be (overlay on/off)."""

    start: LightSetting
    t0: float
    duration: float


@dataclass
class _Hold:
    since: float
    limit: float | None  # monotonic time at which it continues by itself


class Refused(Exception):
    """A command that cannot be carried out now; ``str()`` is the reason given back."""


@dataclass
class _Run:
    """One started scene: the part of the state that belongs to a session token."""

    token: str
    scene: LoadedScene
    timeline: Timeline
    started_at: float
    phase_index: int = 0
    anchor_offset: float = 0.0
    anchor_time: float = 0.0
    cursor: CueKey = (-1.0, -1, -1)
    hold: _Hold | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    extensions: dict[int, float] = field(default_factory=dict)
    entered: dict[int, float] = field(default_factory=dict)  # phase index -> first entered at


class Session:
    """The room's state machine: at most one scene runs at a time."""

    def __init__(
        self,
        room: str,
        scenes: Mapping[str, LoadedScene],
        *,
        roles: Iterable[str],
        overlays: Mapping[str, Overlay] | None = None,
        token_factory: Callable[[], str] | None = None,
        resting: LightSetting | None = None,
    ) -> None:
        self.room = room
        self.resting = resting
        """Where the lights go when a session ends (the room's safe state); None: they stay."""
        self.scenes = scenes
        self.roles = tuple(roles)
        self._room_overlays: dict[str, Overlay] = {"panic": BUILTIN_PANIC, **(overlays or {})}
        self._token_factory = token_factory or (lambda: secrets.token_hex(8))
        self.state = SessionState.READY
        self.run: _Run | None = None
        self.checkins = CheckinBook()
        self.active_overlays: dict[str, float] = {}
        self._blends: dict[str, _Blend] = {}
        self._music_blend: tuple[float, float] | None = None
        self._outcomes: dict[str, Outcome] = {}

    # -- derived state -----------------------------------------------------------------

    @property
    def overlays(self) -> Mapping[str, Overlay]:
        if self.run is not None:
            return {**self._room_overlays, **self.run.scene.overlays}
        return self._room_overlays

    @property
    def frozen(self) -> bool:
        return any(
            self.overlays[name].freeze for name in self.active_overlays if name in self.overlays
        )

    @property
    def blending(self) -> bool:
        """Whether an overlay is still fading in or out (actuation that pause does not stop)."""
        return bool(self._blends) or self._music_blend is not None

    @property
    def advancing(self) -> bool:
        return self.state == SessionState.RUNNING and not self.frozen

    def offset(self, now: float) -> float:
        run = self.run
        if run is None:
            return 0.0
        if not self.advancing:
            return run.anchor_offset
        end = run.timeline.phases[run.phase_index].end
        return min(end, run.anchor_offset + max(0.0, now - run.anchor_time))

    def elapsed(self, now: float) -> float:
        """Real time since start, pauses included: the measure for ``min_duration``."""
        if self.run is None:
            return 0.0
        until = self.run.ended_at if self.run.ended_at is not None else now
        return max(0.0, until - self.run.started_at)

    def floor_elapsed(self, now: float) -> float:
        """Time counted against ``min_duration``: from the start, or from the first entry into
        the scene's ``min_duration_from`` phase (or any later one, if it was skipped)."""
        run = self.run
        if run is None:
            return 0.0
        start_phase = run.scene.scene.min_duration_from
        if start_phase is None:
            return self.elapsed(now)
        span = run.timeline.phase(start_phase)
        starts = [t for i, t in run.entered.items() if span is not None and i >= span.index]
        if not starts:
            return 0.0
        until = run.ended_at if run.ended_at is not None else now
        return max(0.0, until - min(starts))

    # -- time --------------------------------------------------------------------------

    def advance(self, now: float) -> list[Event]:
        """Bring the session up to ``now``: phase changes, holds, due and escalated check-ins."""
        events: list[Event] = []
        run = self.run
        if run is not None and self.state in ACTIVE:
            events += self._advance_timeline(run, now)
        events += self.checkins.advance(now)
        self._expire_blends(now)
        return events

    def _advance_timeline(self, run: _Run, now: float) -> list[Event]:
        events: list[Event] = []
        for _ in range(len(run.timeline.phases) * 2 + 2):
            if self.state == SessionState.HOLDING:
                hold = run.hold
                if hold is None or hold.limit is None or self.frozen or now < hold.limit:
                    break
                events += self._leave_hold(run, hold.limit, reason="limit")
                continue
            if not self.advancing:
                break
            span = run.timeline.phases[run.phase_index]
            reached = run.anchor_offset + max(0.0, now - run.anchor_time)
            position = run.timeline.position_key(min(reached, span.end), run.phase_index)
            events += self._raise_checkins(run, position, now)
            if reached < span.end:
                break
            at = run.anchor_time + (span.end - run.anchor_offset)
            events += self._end_phase(run, span.end, at)
        return events

    def _raise_checkins(self, run: _Run, upto: CueKey, now: float) -> list[Event]:
        events: list[Event] = []
        for key, cue in run.timeline.checkins_between(run.cursor, upto):
            # Due when the timeline reached it, even if advance() is called a little later.
            due = run.anchor_time + (key[0] - run.anchor_offset) if self.advancing else now
            events += self.checkins.open(cue, min(now, max(run.anchor_time, due)))
        run.cursor = max(run.cursor, upto)
        return events

    def _end_phase(self, run: _Run, end_offset: float, at: float) -> list[Event]:
        span = run.timeline.phases[run.phase_index]
        last = run.phase_index == len(run.timeline.phases) - 1
        run.anchor_offset, run.anchor_time = end_offset, at
        if span.phase.holds or last:
            limit = span.phase.hold_limit
            run.hold = _Hold(at, None if last or limit is None else at + limit)
            self.state = SessionState.HOLDING
            return [
                Event(
                    "holding",
                    {
                        "phase": span.id,
                        "final": last,
                        "limit": None if run.hold.limit is None else limit,
                    },
                )
            ]
        return self._enter_phase(run, run.phase_index + 1, at)

    def _enter_phase(self, run: _Run, index: int, at: float) -> list[Event]:
        span = run.timeline.phases[index]
        run.phase_index = index
        run.anchor_offset, run.anchor_time = span.start, at
        run.cursor = max(run.cursor, (span.start, index, -1))
        run.hold = None
        run.entered.setdefault(index, at)
        return [
            Event(
                "phase_started", {"phase": span.id, "index": index, "offset": round(span.start, 3)}
            )
        ]

    def _leave_hold(self, run: _Run, at: float, *, reason: str) -> list[Event]:
        hold = run.hold
        held = 0.0 if hold is None else max(0.0, at - hold.since)
        events = [
            Event(
                "hold_released",
                {
                    "phase": run.timeline.phases[run.phase_index].id,
                    "held": round(held, 3),
                    "by": reason,
                },
            )
        ]
        self.state = SessionState.RUNNING
        events += self._enter_phase(run, run.phase_index + 1, at)
        return events

    def next_deadline(self, now: float) -> float | None:
        """The monotonic time at which :meth:`advance` has something to do, or None."""
        times: list[float] = []
        run = self.run
        if run is not None and self.advancing:
            offset = self.offset(now)
            nxt = run.timeline.next_deadline(offset, run.phase_index)
            end = run.timeline.phases[run.phase_index].end
            target = end if nxt is None else min(nxt, end)
            times.append(now + max(0.0, target - offset))
        if (
            run is not None
            and self.state == SessionState.HOLDING
            and run.hold is not None
            and run.hold.limit is not None
            and not self.frozen
        ):
            times.append(run.hold.limit)
        if run is not None and run.ended_at is not None and now < run.ended_at + MUSIC_END_FADE:
            times.append(run.ended_at + MUSIC_END_FADE)
        escalation = self.checkins.next_deadline()
        if escalation is not None:
            times.append(escalation)
        times += [b.t0 + b.duration for b in self._blends.values()]
        if self._music_blend is not None:
            times.append(self._music_blend[0] + self._music_blend[1])
        return min(times) if times else None

    # -- commands ----------------------------------------------------------------------

    def handle(self, command: Command, now: float) -> Result:
        """Apply one command at ``now``. A repeated ``cmd_id`` gets its first outcome back."""
        previous = self._outcomes.get(command.cmd_id)
        if previous is not None:
            duplicate = Outcome(
                previous.cmd_id,
                previous.verb,
                previous.accepted,
                previous.reason,
                True,
                previous.session,
            )
            return Result(duplicate, [])
        events = self.advance(now)
        handler = getattr(self, f"_cmd_{command.verb}")
        try:
            events += handler(command, now)
            outcome = Outcome(command.cmd_id, command.verb, True, session=self.token)
        except (Refused, CheckinRefused) as exc:
            outcome = Outcome(command.cmd_id, command.verb, False, str(exc), session=self.token)
        self._outcomes[command.cmd_id] = outcome
        while len(self._outcomes) > MAX_REMEMBERED_COMMANDS:
            del self._outcomes[next(iter(self._outcomes))]
        return Result(outcome, events)

    @property
    def token(self) -> str | None:
        return self.run.token if self.run is not None else None

    def _active_run(self, verb: str) -> _Run:
        if self.run is None or self.state not in ACTIVE:
            raise Refused(f"{verb}: no session is running in {self.room}")
        return self.run

    def _cmd_start(self, command: Command, now: float) -> list[Event]:
        if self.state in ACTIVE:
            raise Refused(f"a session is already {self.state.value} in {self.room}; stop it first")
        if "panic" in self.active_overlays:
            raise Refused("panic is active; release it before starting a session")
        scene = self.scenes.get(command.args["scene"])
        if scene is None:
            known = ", ".join(sorted(self.scenes)) or "none"
            raise Refused(f"no scene {command.args['scene']!r} (scenes: {known})")
        timeline = Timeline(scene)
        self.run = _Run(self._token_factory(), scene, timeline, started_at=now, anchor_time=now)
        self.checkins = CheckinBook()
        self.state = SessionState.RUNNING
        events = [
            Event(
                "session_started",
                {
                    "scene": scene.id,
                    "digest": scene.digest,
                    "session": self.run.token,
                    "actor": command.actor,
                },
            )
        ]
        events += self._enter_phase(self.run, 0, now)
        run = self.run
        events += self._raise_checkins(run, run.timeline.position_key(0.0, 0), now)
        return events

    def _cmd_pause(self, command: Command, now: float) -> list[Event]:
        run = self._active_run("pause")
        if self.state == SessionState.PAUSED:
            raise Refused("the session is already paused")
        if self.state == SessionState.HOLDING:
            raise Refused("the session is holding; nothing is advancing to pause")
        offset = self.offset(now)
        run.anchor_offset, run.anchor_time = offset, now
        self.state = SessionState.PAUSED
        return [Event("paused", {"offset": round(offset, 3), "actor": command.actor})]

    def _cmd_resume(self, command: Command, now: float) -> list[Event]:
        run = self._active_run("resume")
        if self.state == SessionState.HOLDING:
            return self._continue_from_hold(run, command, now)
        if self.state != SessionState.PAUSED:
            raise Refused("the session is not paused")
        self.state = SessionState.RUNNING
        run.anchor_time = now
        return [Event("resumed", {"offset": round(run.anchor_offset, 3), "actor": command.actor})]

    def _continue_from_hold(self, run: _Run, command: Command, now: float) -> list[Event]:
        if run.phase_index == len(run.timeline.phases) - 1:
            raise Refused(
                "the scene has reached its end; stop the session when the patient is ready to leave"
            )
        return self._leave_hold(run, now, reason=command.actor)

    def _cmd_skip(self, command: Command, now: float) -> list[Event]:
        run = self._active_run("skip")
        target_id = command.args.get("phase")
        if target_id is None:
            target = run.phase_index + 1
            if target >= len(run.timeline.phases):
                raise Refused("this is the last phase; there is no next phase to skip to")
        else:
            span = run.timeline.phase(target_id)
            if span is None:
                raise Refused(f"no phase {target_id!r} in scene {run.scene.id!r}")
            if span.index <= run.phase_index:
                raise Refused(
                    f"phase {target_id!r} is not ahead of the current phase; "
                    "skip only moves forward"
                )
            target = span.index
        skipped_from = run.timeline.phases[run.phase_index].id
        was_paused = self.state == SessionState.PAUSED
        events = [
            Event(
                "skipped",
                {
                    "from": skipped_from,
                    "to": run.timeline.phases[target].id,
                    "actor": command.actor,
                },
            )
        ]
        self.state = SessionState.RUNNING
        events += self._enter_phase(run, target, now)
        run.cursor = (run.timeline.phases[target].start, target, -1)
        if was_paused:
            self.state = SessionState.PAUSED
        else:
            events += self._raise_checkins(
                run, run.timeline.position_key(run.anchor_offset, target), now
            )
        return events

    def _cmd_extend(self, command: Command, now: float) -> list[Event]:
        run = self._active_run("extend")
        seconds = float(command.args["seconds"])
        if self.state == SessionState.HOLDING:
            if run.hold is None or run.hold.limit is None:
                raise Refused(
                    "the room is holding until staff continue; there is nothing to extend"
                )
            run.hold.limit += seconds
            return [
                Event(
                    "extended",
                    {"seconds": seconds, "phase": self._phase_id(), "actor": command.actor},
                )
            ]
        offset = self.offset(now)
        run.anchor_offset, run.anchor_time = offset, now
        run.extensions[run.phase_index] = run.extensions.get(run.phase_index, 0.0) + seconds
        run.timeline = Timeline(run.scene, run.extensions)
        return [
            Event(
                "extended", {"seconds": seconds, "phase": self._phase_id(), "actor": command.actor}
            )
        ]

    def _phase_id(self) -> str | None:
        if self.run is None:
            return None
        return self.run.timeline.phases[self.run.phase_index].id

    def _end_overlays(self, actor: str, now: float) -> list[Event]:
        """At the end of a session every overlay but panic goes off, and the lights move to the
        resting state: the next session starts from a clean room."""
        events = []
        for name in [n for n in self.active_overlays if n != "panic"]:
            del self.active_overlays[name]
            events.append(
                Event("overlay_off", {"overlay": name, "actor": actor, "by": "session end"})
            )
        return events

    def _cmd_stop(self, command: Command, now: float) -> list[Event]:
        run = self._active_run("stop")
        lights_before = self.desired(now).lights
        floor = run.scene.scene.min_duration
        elapsed = self.floor_elapsed(now)
        early = floor is not None and elapsed < floor
        reason = command.args.get("reason")
        if early and not command.args.get("override"):
            assert floor is not None
            raise Refused(
                f"the scene's minimum duration is {format_duration(floor)} and "
                f"{format_duration(math.floor(elapsed))} have passed; to end earlier, stop with "
                "override and a reason"
            )
        if command.args.get("override") and not reason:
            raise Refused("an override needs a reason")
        offset = self.offset(now)
        run.anchor_offset, run.anchor_time = offset, now
        finished = run.phase_index == len(run.timeline.phases) - 1
        self.state = SessionState.ENDED if finished and not early else SessionState.ABORTED
        run.ended_at = now
        run.end_reason = reason
        if self.resting is not None:
            for role in self.roles:
                if role in lights_before:
                    self._blends[role] = _Blend(lights_before[role].current, now, RESTING_FADE)
        events = self.checkins.close_all(now, "session ended")
        events += self._end_overlays(command.actor, now)
        events.append(
            Event(
                "session_ended",
                {
                    "state": self.state.value,
                    "offset": round(offset, 3),
                    "elapsed": round(self.elapsed(now), 3),
                    "observed": round(elapsed, 3),
                    "override": bool(command.args.get("override")),
                    "reason": reason,
                    "actor": command.actor,
                },
            )
        )
        return events

    def _cmd_panic(self, command: Command, now: float) -> list[Event]:
        if "panic" in self.active_overlays:
            return []
        return self._overlay_on("panic", command.actor, now)

    def _cmd_release(self, command: Command, now: float) -> list[Event]:
        if "panic" not in self.active_overlays:
            raise Refused("panic is not active")
        return self._overlay_off("panic", command.actor, now)

    def _cmd_overlay(self, command: Command, now: float) -> list[Event]:
        name = command.args["name"]
        if name == "panic":
            raise Refused("use the panic and release commands for panic")
        if name not in self.overlays:
            raise Refused(f"no overlay {name!r} (overlays: {', '.join(sorted(self.overlays))})")
        if command.args["on"]:
            return (
                [] if name in self.active_overlays else self._overlay_on(name, command.actor, now)
            )
        if name not in self.active_overlays:
            return []
        return self._overlay_off(name, command.actor, now)

    def _cmd_ack(self, command: Command, now: float) -> list[Event]:
        return self.checkins.acknowledge(command.args["checkin"], command.actor, now)

    def _cmd_respond(self, command: Command, now: float) -> list[Event]:
        events, overlay = self.checkins.respond(
            command.args["checkin"], command.args["option"], command.actor, now
        )
        if overlay and overlay in self.overlays and overlay not in self.active_overlays:
            events += self._overlay_on(overlay, command.actor, now)
        return events

    # -- overlays ----------------------------------------------------------------------

    def _overlay_roles(self, overlay: Overlay) -> tuple[str, ...]:
        if overlay.lights is None:
            return ()
        if overlay.lights.roles == "all":
            return self.roles
        return tuple(r for r in overlay.lights.roles if r in self.roles)

    def _set_overlays(
        self, change: Callable[[], None], roles: Iterable[str], fade: float, now: float
    ) -> None:
        before = self.desired(now)
        offset_before = self.offset(now)
        was_frozen = self.frozen
        change()
        for role in roles:
            if fade > 0 and role in before.lights:
                self._blends[role] = _Blend(before.lights[role].current, now, fade)
            else:
                self._blends.pop(role, None)
        run = self.run
        if was_frozen != self.frozen and run is not None and self.state in ACTIVE:
            # Freezing or thawing re-anchors running time, so no time is lost or gained.
            run.anchor_offset, run.anchor_time = offset_before, now
            if not self.frozen and run.hold is not None and run.hold.limit is not None:
                run.hold.limit = max(run.hold.limit, now)

    def _overlay_on(self, name: str, actor: str, now: float) -> list[Event]:
        overlay = self.overlays[name]
        fade = overlay.lights.fade if overlay.lights else 0.0

        def change() -> None:
            self.active_overlays[name] = now

        self._set_overlays(change, self._overlay_roles(overlay), fade, now)
        if overlay.music is not None and overlay.music.stop:
            self._music_blend = None
        kind = "panic" if name == "panic" else "overlay_on"
        return [Event(kind, {"overlay": name, "actor": actor, "alert": overlay.alert})]

    def _overlay_off(self, name: str, actor: str, now: float) -> list[Event]:
        overlay = self.overlays[name]

        def change() -> None:
            self.active_overlays.pop(name, None)

        self._set_overlays(change, self._overlay_roles(overlay), overlay.release_fade, now)
        if overlay.music is not None and overlay.release_fade > 0:
            self._music_blend = (now, overlay.release_fade)
        events = [
            Event(
                "released" if name == "panic" else "overlay_off", {"overlay": name, "actor": actor}
            )
        ]
        follow = overlay.on_release
        if follow and follow in self.overlays and follow not in self.active_overlays:
            events += self._overlay_on(follow, actor, now)
        return events

    def _expire_blends(self, now: float) -> None:
        for role in [r for r, b in self._blends.items() if now >= b.t0 + b.duration]:
            del self._blends[role]
        if self._music_blend is not None and now >= sum(self._music_blend):
            self._music_blend = None

    # -- desired state -----------------------------------------------------------------

    def _timeline_state(self, now: float) -> RoomState:
        run = self.run
        if run is None:
            return RoomState()
        state = run.timeline.state_at(self.offset(now), run.phase_index)
        if self.advancing:
            return state
        # Paused, holding or frozen: fades stop where they are and music keeps its volume.
        if self.state in ACTIVE:
            lights = {role: ls.steady() for role, ls in state.lights.items()}
            return RoomState(lights, state.music.steady())
        return self._ended_state(state, run, now)

    def _ended_state(self, state: RoomState, run: _Run, now: float) -> RoomState:
        """After the end: the resting light (or the lights as they were), music fading out."""
        if self.resting is not None:
            rest = LightState(self.resting, self.resting, 0.0)
            lights = {role: rest for role in self.roles}
        else:
            lights = {role: ls.steady() for role, ls in state.lights.items()}
        music = MusicState()
        ended = run.ended_at if run.ended_at is not None else now
        left = ended + MUSIC_END_FADE - now
        if state.music.playing and left > 0:
            volume = state.music.volume * left / MUSIC_END_FADE
            music = MusicState(state.music.playlist, True, volume, 0.0, left, state.music.position)
        return RoomState(lights, music)

    def desired(self, now: float) -> RoomState:
        """What every role and the music should be doing at ``now``."""
        base = self._timeline_state(now)
        lights = dict(base.lights)
        music = base.music
        ordered = sorted(
            (n for n in self.active_overlays if n in self.overlays),
            key=lambda n: (self.overlays[n].priority, self.active_overlays[n]),
        )
        for name in ordered:
            overlay = self.overlays[name]
            for role in self._overlay_roles(overlay):
                lights[role] = _overlay_light(lights.get(role), overlay)
            music = _overlay_music(music, overlay)
        for role, blend in self._blends.items():
            if role in lights:
                lights[role] = _blend(blend, lights[role], now)
        if self._music_blend is not None and music.playing:
            t0, duration = self._music_blend
            left = max(0.0, t0 + duration - now)
            music = MusicState(
                music.playlist,
                True,
                music.volume,
                music.goal,
                max(music.remaining, left),
                music.position,
            )
        return RoomState(lights, music)

    def prompts(self, now: float) -> list[PromptView]:
        return self.checkins.views(now)

    def alert(self) -> str | None:
        """The highest alert an active overlay raises ("high" while panic is on)."""
        order = {"low": 0, "medium": 1, "high": 2}
        alerts = [
            self.overlays[n].alert
            for n in self.active_overlays
            if n in self.overlays and self.overlays[n].alert
        ]
        return max(alerts, key=lambda a: order[a or "low"]) if alerts else None

    # -- presentation ------------------------------------------------------------------

    def view(self, now: float) -> dict[str, Any]:
        """A JSON-able summary for the tablet, MQTT state and the CLI."""
        run = self.run
        out: dict[str, Any] = {
            "state": self.state.value,
            "overlays": sorted(self.active_overlays),
            "frozen": self.frozen,
            "alert": self.alert(),
            "checkins": [_prompt_dict(p) for p in self.prompts(now)],
        }
        if run is None:
            out["session"] = None
            return out
        offset = self.offset(now)
        span = run.timeline.phases[run.phase_index]
        advancing_states = (SessionState.RUNNING, SessionState.PAUSED)
        nxt = (
            run.timeline.next_deadline(offset, run.phase_index)
            if self.state in advancing_states
            else None
        )
        floor = run.scene.scene.min_duration
        out["session"] = {
            "token": run.token,
            "scene": run.scene.id,
            "scene_name": run.scene.name,
            "offset": round(offset, 3),
            "length": round(run.timeline.length, 3),
            "remaining": round(max(0.0, run.timeline.length - offset), 3),
            "elapsed": round(self.elapsed(now), 3),
            "min_duration": floor,
            "min_remaining": None
            if floor is None
            else round(max(0.0, floor - self.floor_elapsed(now)), 3),
            "phase": {
                "index": span.index,
                "id": span.id,
                "title": span.phase.label,
                "start": round(span.start, 3),
                "end": round(span.end, 3),
            },
            "phases": [
                {
                    "id": s.id,
                    "title": s.phase.label,
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "holds": s.phase.holds,
                }
                for s in run.timeline.phases
            ],
            "holding": None
            if run.hold is None
            else {
                "since": round(max(0.0, now - run.hold.since), 3),
                "continues_in": None
                if run.hold.limit is None
                else round(max(0.0, run.hold.limit - now), 3),
                "final": run.phase_index == len(run.timeline.phases) - 1,
            },
            "next": _describe_hold(run, now)
            if self.state == SessionState.HOLDING
            else _describe_next(run.timeline, nxt, offset, run.phase_index),
        }
        return out

    # -- persistence -------------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, Any]:
        """Everything needed to rebuild this session; times are ages, not clock readings."""
        run = self.run
        data: dict[str, Any] = {
            "room": self.room,
            "state": self.state.value,
            "overlays": {n: now - t for n, t in self.active_overlays.items()},
            "checkins": self.checkins.snapshot(now),
            "outcomes": {
                k: [o.verb, o.accepted, o.reason, o.session] for k, o in self._outcomes.items()
            },
            "run": None,
        }
        if run is not None:
            data["run"] = {
                "token": run.token,
                "scene": run.scene.id,
                "digest": run.scene.digest,
                "elapsed": now - run.started_at,
                "phase_index": run.phase_index,
                "offset": self.offset(now),
                "cursor": list(run.cursor),
                "extensions": {str(k): v for k, v in run.extensions.items()},
                "hold_age": None if run.hold is None else now - run.hold.since,
                "hold_left": None
                if run.hold is None or run.hold.limit is None
                else run.hold.limit - now,
                "ended_age": None if run.ended_at is None else now - run.ended_at,
                "end_reason": run.end_reason,
                "entered": {str(i): now - t for i, t in run.entered.items()},
            }
        return data

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any],
        scenes: Mapping[str, LoadedScene],
        *,
        roles: Iterable[str],
        now: float,
        overlays: Mapping[str, Overlay] | None = None,
        paused: bool = False,
    ) -> Session:
        """Rebuild from :meth:`snapshot`, as if ``now`` were the moment it was taken.

        With ``paused``, a session that was running comes back paused at its offset (after a
        reboot, when the time that passed cannot be trusted).
        """
        session = cls(str(data["room"]), scenes, roles=roles, overlays=overlays)
        session.state = SessionState(data["state"])
        session._outcomes = {
            k: Outcome(k, v[0], bool(v[1]), v[2], False, v[3])
            for k, v in dict(data.get("outcomes", {})).items()
        }
        raw = data.get("run")
        if raw is not None:
            scene = scenes.get(raw["scene"])
            if scene is None:
                raise KeyError(f"scene {raw['scene']!r} of session {raw['token']} is gone")
            extensions = {int(k): float(v) for k, v in raw["extensions"].items()}
            run = _Run(
                raw["token"],
                scene,
                Timeline(scene, extensions),
                started_at=now - raw["elapsed"],
                phase_index=raw["phase_index"],
                anchor_offset=raw["offset"],
                anchor_time=now,
                cursor=(float(raw["cursor"][0]), int(raw["cursor"][1]), int(raw["cursor"][2])),
                extensions=extensions,
            )
            if raw["hold_age"] is not None:
                left = raw["hold_left"]
                run.hold = _Hold(now - raw["hold_age"], None if left is None else now + left)
            if raw["ended_age"] is not None:
                run.ended_at = now - raw["ended_age"]
            run.end_reason = raw.get("end_reason")
            run.entered = {int(i): now - age for i, age in dict(raw.get("entered", {})).items()}
            session.run = run
            cues: dict[str, CheckinCue] = {
                c.cue.checkin.id: c.cue.checkin for c in run.timeline.checkins if c.cue.checkin
            }
            session.checkins = CheckinBook.restore(list(data["checkins"]), cues, now)
        session.active_overlays = {
            n: now - age for n, age in dict(data["overlays"]).items() if n in session.overlays
        }
        if paused and session.state == SessionState.RUNNING:
            session.state = SessionState.PAUSED
        return session


def _overlay_light(under: LightState | None, overlay: Overlay) -> LightState:
    assert overlay.lights is not None
    spec = overlay.lights
    base = under.current if under is not None else LightSetting(on=False, level=0.0)
    level = spec.level if spec.level is not None else base.level
    on = spec.on if spec.on is not None else (level > 0 if spec.level is not None else base.on)
    mired = spec.target_mired if spec.target_mired is not None else base.mired
    xy = spec.xy if spec.xy is not None else (None if spec.target_mired is not None else base.xy)
    setting = LightSetting(on=on, level=level if on else 0.0, mired=mired, xy=xy)
    return LightState(setting, setting, 0.0)


def _overlay_music(music: MusicState, overlay: Overlay) -> MusicState:
    spec = overlay.music
    if spec is None:
        return music
    if spec.stop:
        return MusicState(music.playlist, False, 0.0, 0.0, 0.0, music.position)
    if spec.duck_db is not None:
        factor = 10 ** (spec.duck_db / 20)
        return MusicState(
            music.playlist,
            music.playing,
            music.volume * factor,
            music.goal * factor,
            music.remaining,
            music.position,
        )
    volume = spec.volume if spec.volume is not None else music.volume
    return MusicState(music.playlist, music.playing, volume, volume, 0.0, music.position)


def _blend(blend: _Blend, natural: LightState, now: float) -> LightState:
    left = blend.t0 + blend.duration - now
    if left <= 0:
        return natural
    fraction = (now - blend.t0) / blend.duration
    current = interpolate(blend.start, natural.current, fraction)
    if natural.remaining <= left:
        goal = natural.goal
    else:
        goal = interpolate(natural.current, natural.goal, left / natural.remaining)
    return LightState(current, goal, left)


def _prompt_dict(p: PromptView) -> dict[str, Any]:
    return {
        "id": p.id,
        "kind": p.kind,
        "prompt": p.prompt,
        "priority": p.priority,
        "state": p.state,
        "due_for": round(p.due_for, 3),
        "escalates_in": None if p.escalates_in is None else round(p.escalates_in, 3),
        "responses": [{"code": c, "label": label} for c, label in p.responses],
    }


def _describe_hold(run: _Run, now: float) -> dict[str, Any]:
    if run.phase_index == len(run.timeline.phases) - 1:
        return {
            "offset": None,
            "in": None,
            "what": "staff end the session when ready",
            "kind": "staff",
        }
    upcoming = run.timeline.phases[run.phase_index + 1].phase.label
    if run.hold is not None and run.hold.limit is not None:
        left = max(0.0, run.hold.limit - now)
        return {
            "offset": None,
            "in": round(left, 3),
            "what": f"phase: {upcoming} (continues by itself, or when staff continue)",
            "kind": "staff",
        }
    return {
        "offset": None,
        "in": None,
        "what": f"phase: {upcoming}, when staff continue",
        "kind": "staff",
    }


def describe_cue(cue: Cue) -> str:
    """A cue in a few words for staff: ``lights 15% 2700K over 3m (ambient, accent)``."""
    if cue.label:
        return cue.label
    if cue.checkin is not None:
        return f"check-in: {cue.checkin.prompt}"
    if cue.lights is not None:
        light = cue.lights
        parts = ["lights"]
        if light.on is False or light.level == 0:
            parts.append("off")
        elif light.level is not None:
            parts.append(f"{light.level:g}%")
        if light.kelvin is not None:
            parts.append(f"{light.kelvin}K")
        elif light.mired is not None:
            parts.append(f"{round(mired_to_kelvin(light.mired), -1):g}K")
        if light.fade:
            parts.append(f"over {format_duration(light.fade)}")
        return " ".join(parts) + f" ({', '.join(light.roles)})"
    music = cue.music
    assert music is not None
    if music.stop:
        return "music fades out" if music.fade else "music stops"
    if music.play is not None:
        return f"music: {music.play}" + (
            f" at {music.volume:g}%" if music.volume is not None else ""
        )
    return f"music to {music.volume:g}%" + (
        f" over {format_duration(music.fade)}" if music.fade else ""
    )


def _describe_next(
    timeline: Timeline, nxt: float | None, offset: float, phase_index: int
) -> dict[str, Any] | None:
    if nxt is None:
        return None
    for cue in timeline.cues_between(
        timeline.position_key(offset, phase_index), (nxt, len(timeline.phases), 1 << 30)
    ):
        return {
            "offset": round(cue.time, 3),
            "in": round(cue.time - offset, 3),
            "what": describe_cue(cue.cue),
            "kind": "cue",
        }
    current = timeline.phases[phase_index]
    if nxt >= current.end and (current.phase.holds or current.index == len(timeline.phases) - 1):
        last = current.index == len(timeline.phases) - 1
        then = "staff end the session" if last else "staff continue"
        what = f"end of {current.phase.label}: the room holds until {then}"
        kind = "hold"
    else:
        what = f"phase: {timeline.phase_at(nxt).phase.label}"
        kind = "phase"
    return {"offset": round(nxt, 3), "in": round(nxt - offset, 3), "what": what, "kind": kind}
