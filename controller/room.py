"""The asyncio runtime of one room: it waits, dispatches and records; the core decides.

    room = Room(config, library, drivers, clock=SystemClock())
    await room.start()
    outcome = await room.submit(parse_command("start", {...}))
    room.view()                      # JSON-able state for the tablet and MQTT
    await room.close()

On every command and every deadline the room asks the session what happened (events) and what
the room should look like (desired state), appends the events to the journal, and only then
tells the drivers (DESIGN.md §1.3). The room waits for the journal's fsync holding its own lock,
so its commands stay in order, while the write runs off the event loop (a QueuedRecorder) and
other rooms' cues, the web server and MQTT carry on. Each driver runs in its own lane with its
own timeout: a slow or dead driver delays no other driver and no cue, and is sent the desired
state again when it comes back (§1.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from controller.clock import Clock
from controller.commands import Command, Outcome
from controller.config import RoomConfig
from controller.events import Event
from controller.fades import plan_step
from controller.scene import LoadedScene, Overlay
from controller.session import Session, SessionState
from controller.units import kelvin_to_mired
from drivers.base import (
    AudioDriver,
    Driver,
    LightCommand,
    LightDriver,
    LightSetting,
    MusicCommand,
    PromptDriver,
    apply_budget,
)

log = logging.getLogger("sessionctl.room")

# Identifies this process in room views (see Room.view's "rev").
INSTANCE = secrets.token_hex(4)
# Panic and its release are acted on at once: they overtake driver back-off and calls in
# flight, and wait at most this long for the journal (safety over schedule, DESIGN.md §1.7).
URGENT_VERBS = frozenset({"panic", "release"})
URGENT_JOURNAL_WAIT = 0.25
# Journal a running session at least this often (testing.md §6.1: a low-rate checkpoint).
CHECKPOINT_EVERY = 10.0
# After an unexpected error in the loop, wait this long before the next turn (no busy loop).
LOOP_ERROR_PAUSE = 1.0
# A failed driver is tried again after this long, doubling up to the cap.
RETRY_MIN, RETRY_MAX = 1.0, 30.0


@dataclass(frozen=True)
class RoomUpdate:
    """Sent to listeners: ``state`` (the new :meth:`Room.view`) or one ``event``."""

    kind: Literal["state", "event"]
    data: dict[str, Any]


class Recorder(Protocol):
    """Where events go before any driver is told: the journal (DESIGN.md §1.3). A recorder
    with only ``record`` writes on the event loop; see :class:`QueuedRecorder`."""

    def record(
        self,
        room: Room,
        events: Sequence[Event],
        *,
        command: Command | None = None,
        outcome: Outcome | None = None,
    ) -> None: ...


class QueuedRecorder(Recorder, Protocol):
    """A recorder that writes off the event loop. ``record_async`` reads what it needs from the
    room at once (records of one room keep their order) and returns a future that completes
    when the write is durable; the room awaits it before telling any driver."""

    def record_async(
        self,
        room: Room,
        events: Sequence[Event],
        *,
        command: Command | None = None,
        outcome: Outcome | None = None,
    ) -> asyncio.Future[None]: ...


@dataclass
class RoomDrivers:
    """A room's drivers and which devices play which fixture role."""

    lights: dict[str, LightDriver] = field(default_factory=dict)
    audio: AudioDriver | None = None
    prompts: list[PromptDriver] = field(default_factory=list)
    roles: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def all(self) -> list[Driver]:
        out: list[Driver] = list(self.lights.values())
        if self.audio is not None:
            out.append(self.audio)
        out += self.prompts
        return out


@dataclass
class _Sent:
    key: tuple[Any, ...]
    next_at: float | None


@dataclass
class _Lane:
    """One driver's queue: at most one call in flight; later changes coalesce."""

    driver: Driver
    task: asyncio.Task[None] | None = None
    dirty: bool = False
    sent: dict[str, _Sent] = field(default_factory=dict)
    retry_at: float | None = None
    backoff: float = RETRY_MIN
    failures: int = 0
    last_error: str | None = None
    calls: int = 0
    generation: int = 0  # bumped when panic overtakes a call; older calls then count for nothing

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()


def _already_sent(sent: _Sent | None, key: tuple[Any, Any], now: float) -> bool:
    """Whether a device already has this target: same goal, and either the same fade end or
    a steady state reached by a fade that has finished (its native transition got it there)."""
    if sent is None or sent.key[0] != key[0]:
        return False
    if sent.next_at is not None and now >= sent.next_at:
        return False
    sent_end, end = sent.key[1], key[1]
    if sent_end == end:
        return True
    return end is None and sent_end is not None and sent_end <= now + 1e-3


class Room:
    """One treatment room: a session, its drivers, and the loop that keeps them in step."""

    def __init__(
        self,
        config: RoomConfig,
        scenes: Mapping[str, LoadedScene],
        drivers: RoomDrivers,
        *,
        clock: Clock,
        overlays: Mapping[str, Overlay] | None = None,
        recorder: Recorder | None = None,
        session: Session | None = None,
    ) -> None:
        self.config = config
        self.id = config.id
        self.clock = clock
        self.scenes = scenes
        self.drivers = drivers
        self.recorder = recorder
        safe = config.safe_state
        self.resting = LightSetting(True, safe.level, kelvin_to_mired(safe.kelvin))
        """The safe state's light: where the room starts, and where it rests after a session."""
        self.session = session or Session(
            config.id, scenes, roles=list(drivers.roles), overlays=overlays, resting=self.resting
        )
        self.session.resting = self.resting
        self._lanes: dict[str, _Lane] = {d.name: _Lane(d) for d in drivers.all()}
        self._listeners: list[Callable[[RoomUpdate], None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self._recorded_at = clock.monotonic()
        self._pending_chimes: list[str] = []
        self._rev = 0
        self._chimes: set[asyncio.Future[bool]] = set()
        self.health_notes: dict[str, str] = {}
        # Called with how late (s) the loop woke for a deadline; serve feeds /metrics from it.
        self.on_wake: Callable[[float], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, *, safe_state: bool = True) -> None:
        """Start the drivers, drive the room to its safe state, then run the loop."""
        for lane in self._lanes.values():
            try:
                async with asyncio.timeout(self.config.apply_timeout * 2):
                    await lane.driver.start()
            except Exception as exc:  # a driver that cannot start is reported, not fatal
                self._fail(lane, f"start failed: {exc or type(exc).__name__}")
        if safe_state:
            await self.apply_safe_state()
        self._task = asyncio.create_task(self._loop(), name=f"room-{self.id}")

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for lane in self._lanes.values():
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(BaseException):
                    await lane.task
        for lane in self._lanes.values():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.config.apply_timeout):
                    await lane.driver.close()

    async def apply_safe_state(self) -> None:
        """Send every light the configured safe state and stop the music; wait (bounded)."""
        safe = self.config.safe_state
        setting = self.resting
        calls: list[asyncio.Future[bool]] = []
        for name, driver in self.drivers.lights.items():
            devices = {dev for refs in self.drivers.roles.values() for d, dev in refs if d == name}
            commands = {dev: LightCommand(setting, 0.0) for dev in sorted(devices)}
            if commands:
                calls.append(asyncio.ensure_future(self._call(name, driver.apply(commands))))
        if self.drivers.audio is not None and not safe.music:
            stop = MusicCommand(None, False, 0.0, 0.0, 0.0, urgent=True)
            calls.append(
                asyncio.ensure_future(
                    self._call(self.drivers.audio.name, self.drivers.audio.apply(stop))
                )
            )
        if calls:
            await asyncio.gather(*calls)
        self._emit_event(Event("safe_state", {"level": safe.level, "kelvin": safe.kelvin}))

    # -- public API --------------------------------------------------------------------

    def add_listener(self, listener: Callable[[RoomUpdate], None]) -> Callable[[], None]:
        """Call ``listener`` on every state change and event; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def submit(self, command: Command) -> Outcome:
        """Hand one command to the session; journal, actuate and publish what follows."""
        # Shielded: once the session has taken the command, its events are journalled,
        # actuated and published even if the caller stops waiting during the journal write.
        return await asyncio.shield(self._submit(command))

    async def _submit(self, command: Command) -> Outcome:
        async with self._lock:
            now = self.clock.monotonic()
            veto = self._veto(command)
            if veto is not None:
                outcome = Outcome(
                    command.cmd_id, command.verb, False, veto, session=self.session.token
                )
                await self._journal([], command, outcome)
                self._emit_state()
                return outcome
            result = self.session.handle(command, now)
            urgent = command.verb in URGENT_VERBS and result.outcome.accepted
            limit = URGENT_JOURNAL_WAIT if urgent else None
            await self._journal(result.events, command, result.outcome, limit=limit)
            if urgent and not result.outcome.duplicate:
                self._overtake()
            self._after(result.events, now)
        self._wake.set()
        return result.outcome

    def _veto(self, command: Command) -> str | None:
        """A reason the runtime refuses a command the session would accept (e.g. storage)."""
        if command.verb == "start" and "journal" in self.health_notes:
            return f"cannot start a session: {self.health_notes['journal']}"
        return None

    def view(self) -> dict[str, Any]:
        now = self.clock.monotonic()
        out = self.session.view(now)
        out["room"] = {"id": self.id, "name": self.config.title}
        out["health"] = self.health()
        out["wall"] = self.clock.wall().isoformat()
        # Lets a client drop a view older than one it already shows (HTTP replies and
        # WebSocket pushes can arrive out of order); `instance` changes when the process does.
        out["rev"] = self._rev
        out["instance"] = INSTANCE
        return out

    def health(self) -> dict[str, Any]:
        drivers = {}
        for name, lane in self._lanes.items():
            h = lane.driver.health.as_dict()
            h["kind"] = lane.driver.kind
            h["failures"] = lane.failures
            h["last_error"] = lane.last_error
            h["ok"] = lane.last_error is None and h["available"] and not h["error"]
            drivers[name] = h
        ok = all(d["ok"] for d in drivers.values()) and not self.health_notes
        return {"ok": ok, "drivers": drivers, "notes": dict(self.health_notes)}

    def on_availability(self, driver: str, device: str | None, available: bool) -> None:
        """Drivers call this (through their context) when a device comes or goes."""
        lane = self._lanes.get(driver)
        if lane is None:
            return
        if available:
            # Level-triggered: forget what was sent so the desired state goes out again.
            if device is None:
                # The whole driver is back: try it now, whatever its back-off said.
                lane.sent.clear()
                lane.retry_at = None
                lane.backoff = RETRY_MIN
                lane.last_error = None
            else:
                # One device is back; the driver's own health is unchanged by that.
                lane.sent.pop(device, None)
                lane.sent.pop("__music__", None)
        self._emit_event(
            Event(
                "driver_available" if available else "driver_unavailable",
                {"driver": driver, "device": device},
            )
        )
        self._emit_state()
        self._wake.set()

    def on_driver_event(self, kind: str, data: dict[str, Any]) -> None:
        """Drivers report things staff should know (a skipped track); journalled and shown."""
        event = Event(kind, data)
        self._record([event], None, None)
        self._emit_event(event)

    def note(self, key: str, message: str | None) -> None:
        """Set or clear a room-level health note (journal trouble, broker down...)."""
        if message is None:
            self.health_notes.pop(key, None)
        else:
            self.health_notes[key] = message
        self._emit_state()

    # -- the loop ----------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._closed:
            try:
                await self._turn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in one turn must not leave the room unattended
                log.exception("room %s: loop turn failed", self.id)
                self.health_notes["runtime"] = f"internal error: {type(exc).__name__}: {exc}"
                self._emit_state()
                await asyncio.sleep(LOOP_ERROR_PAUSE)

    async def _turn(self) -> None:
        """One wake-up: advance the session, journal, actuate, then wait for the next deadline."""
        async with self._lock:
            now = self.clock.monotonic()
            events = self.session.advance(now)
            if events:
                await self._journal(events, None, None)
            elif self._checkpoint_due(now):
                self._record([], None, None)  # nothing waits on a bare checkpoint
            self._after(events, now)
            deadline = self._next_deadline(now)
            self.health_notes.pop("runtime", None)
        self._wake.clear()
        now = self.clock.monotonic()  # the journal write took time
        wait = self.clock.max_wait if deadline is None else max(0.0, deadline - now)
        wait = min(wait, self.clock.max_wait)
        if wait == float("inf"):
            await self._wake.wait()
            return
        try:
            async with asyncio.timeout(wait):
                await self._wake.wait()
        except TimeoutError:
            if self.on_wake is not None and deadline is not None and deadline <= now + wait:
                self.on_wake(max(0.0, self.clock.monotonic() - deadline))

    def _checkpoint_due(self, now: float) -> bool:
        """A running timeline is journalled every CHECKPOINT_EVERY seconds even without events,
        so a reboot (which resumes at the last journalled offset) loses at most that much."""
        return (
            self.recorder is not None
            and self.session.advancing
            and now - self._recorded_at >= CHECKPOINT_EVERY
        )

    def _next_deadline(self, now: float) -> float | None:
        times = [t for t in (self.session.next_deadline(now),) if t is not None]
        if self.recorder is not None and self.session.advancing:
            times.append(self._recorded_at + CHECKPOINT_EVERY)
        for lane in self._lanes.values():
            if lane.busy:
                continue  # it wakes the loop itself when the call in flight finishes
            if lane.retry_at is not None:
                times.append(lane.retry_at)  # fade steps wait for the retry too
                continue
            times += [s.next_at for s in lane.sent.values() if s.next_at is not None]
        return min(times) if times else None

    def _after(self, events: Sequence[Event], now: float) -> None:
        for event in events:
            if event.kind == "checkin_due" and event.data.get("chime"):
                self._pending_chimes.append(str(event.data.get("prompt", "checkin")))
        self._actuate(now)
        for event in events:
            self._emit_event(event)
        if events:
            self._emit_state()

    async def _journal(
        self,
        events: Sequence[Event],
        command: Command | None,
        outcome: Outcome | None,
        *,
        limit: float | None = None,
    ) -> None:
        """Journal before actuation: return once the events are durable (or the write failed,
        which health reports). Only this room waits, holding its lock. With ``limit`` (panic),
        stop waiting after that long: the write goes on, but the room does not wait for a
        stalled disk to light up."""
        pending = self._record(events, command, outcome)
        if pending is None:
            return
        try:
            async with asyncio.timeout(limit):
                await asyncio.shield(pending)
        except TimeoutError:
            log.error(
                "room %s: journal slower than %gs; acting on %s before it is durable",
                self.id,
                limit,
                command.verb if command else "events",
            )
        except Exception:
            pass  # _journal_settled reports it

    def _record(
        self, events: Sequence[Event], command: Command | None, outcome: Outcome | None
    ) -> asyncio.Future[None] | None:
        """Hand the events to the recorder now, behind this room's earlier records; returns
        the pending write, or None when there is nothing to wait for."""
        if self.recorder is None:
            return None
        self._recorded_at = self.clock.monotonic()
        queued = getattr(self.recorder, "record_async", None)
        try:
            if queued is None:
                self.recorder.record(self, events, command=command, outcome=outcome)
                return None
            pending: asyncio.Future[None] = queued(self, events, command=command, outcome=outcome)
        except Exception as exc:  # storage trouble must not stop the room (DESIGN.md §1.5)
            self._journal_failed(exc, publish=False)
            return None
        if pending.done():
            self._journal_settled(pending, publish=False)
            return None
        pending.add_done_callback(self._journal_settled)
        return pending

    def _journal_settled(self, pending: asyncio.Future[None], publish: bool = True) -> None:
        if not pending.cancelled() and (exc := pending.exception()) is not None:
            self._journal_failed(exc, publish)

    def _journal_failed(self, exc: BaseException, publish: bool) -> None:
        log.error("room %s: journal write failed: %s", self.id, exc)
        message = f"journal write failed: {exc}"
        if publish:
            self.note("journal", message)
        else:  # the caller publishes the state next
            self.health_notes["journal"] = message

    # -- actuation ---------------------------------------------------------------------

    def _actuate(self, now: float) -> None:
        desired = self.session.desired(now)
        for name, driver in self.drivers.lights.items():
            self._actuate_lights(self._lanes[name], driver, desired.lights, now)
        if self.drivers.audio is not None:
            self._actuate_music(
                self._lanes[self.drivers.audio.name], self.drivers.audio, desired.music, now
            )
        if self.drivers.prompts:
            items = self.session.checkins.open_items()
            key = tuple((i.id, i.priority, i.state) for i in items)
            for prompt_driver in self.drivers.prompts:
                self._actuate_prompts(self._lanes[prompt_driver.name], prompt_driver, key, now)
        if self._pending_chimes and self.drivers.audio is not None:
            audio = self.drivers.audio
            for kind in self._pending_chimes:
                task = asyncio.ensure_future(
                    self._call(audio.name, audio.chime(kind), record=False)
                )
                self._chimes.add(task)
                task.add_done_callback(self._chimes.discard)
            self._pending_chimes.clear()

    def _overtake(self) -> None:
        """Make every driver take the next desired state now: forget back-off, and leave a call
        that is still in flight behind (it finishes or times out on its own)."""
        for lane in self._lanes.values():
            lane.retry_at = None
            lane.backoff = RETRY_MIN
            if lane.busy:
                lane.task = None
                lane.dirty = False
                lane.generation += 1

    def _lane_ready(self, lane: _Lane, now: float) -> bool:
        if lane.busy:
            lane.dirty = True
            return False
        return lane.retry_at is None or now >= lane.retry_at

    def _actuate_lights(
        self, lane: _Lane, driver: LightDriver, lights: Mapping[str, Any], now: float
    ) -> None:
        if not self._lane_ready(lane, now):
            return
        commands: dict[str, LightCommand] = {}
        pending: dict[str, _Sent] = {}
        for role, refs in self.drivers.roles.items():
            state = lights.get(role)
            if state is None:
                continue
            for driver_name, device in refs:
                if driver_name != driver.name:
                    continue
                key = (state.goal, round(now + state.remaining, 3) if state.remaining else None)
                if _already_sent(lane.sent.get(device), key, now):
                    continue
                step = plan_step(
                    state.current, state.goal, state.remaining, driver.capabilities(device), now=now
                )
                commands[device] = step.command
                pending[device] = _Sent(key, step.next_at)
        if commands:
            self._dispatch(lane, driver.apply(commands), pending)

    def _actuate_music(self, lane: _Lane, driver: AudioDriver, music: Any, now: float) -> None:
        if not self._lane_ready(lane, now):
            return
        urgent = "panic" in self.session.active_overlays
        command = MusicCommand(
            playlist=music.playlist if music.playing else None,
            playing=music.playing,
            volume=round(music.goal, 3),
            ramp=round(music.remaining, 3),
            position=round(music.position, 3),
            urgent=urgent and not music.playing,
        )
        key = (
            (command.playlist, command.playing, command.volume, command.urgent),
            round(now + music.remaining, 3) if music.remaining else None,
        )
        if _already_sent(lane.sent.get("__music__"), key, now):
            return
        self._dispatch(lane, driver.apply(command), {"__music__": _Sent(key, None)})

    def _actuate_prompts(
        self, lane: _Lane, driver: PromptDriver, key: tuple[Any, ...], now: float
    ) -> None:
        if not self._lane_ready(lane, now):
            return
        sent = lane.sent.get("__prompts__")
        if sent is not None and sent.key == key:
            return
        prompts = self.session.prompts(now)
        self._dispatch(lane, driver.show(prompts), {"__prompts__": _Sent(key, None)})

    def _dispatch(self, lane: _Lane, call: Any, pending: dict[str, _Sent]) -> None:
        lane.sent.update(pending)
        lane.retry_at = None
        lane.calls += 1
        budget = apply_budget(lane.driver, len(pending))
        timeout = max(self.config.apply_timeout, budget or 0.0)
        lane.task = asyncio.ensure_future(
            self._run_lane(lane, call, list(pending), lane.generation, timeout)
        )

    async def _run_lane(
        self, lane: _Lane, call: Any, keys: list[str], generation: int, timeout: float
    ) -> None:
        ok = await self._call(lane.driver.name, call, generation=generation, timeout=timeout)
        if generation != lane.generation:
            return  # overtaken: a newer call owns the lane now
        if not ok:
            for key in keys:
                lane.sent.pop(key, None)
        lane.dirty = False
        # The loop skipped this lane's deadlines while the call was in flight; let it look again.
        self._wake.set()

    async def _call(
        self,
        name: str,
        call: Any,
        *,
        record: bool = True,
        generation: int | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Await one driver call under the room's timeout; failures become health (unless a
        newer call has overtaken this one: then only its own outcome is returned)."""
        lane = self._lanes[name]
        limit = timeout if timeout is not None else self.config.apply_timeout
        try:
            async with asyncio.timeout(limit):
                await call
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            if generation is None or generation == lane.generation:
                self._fail(lane, f"no answer within {limit:g}s", record)
            return False
        except Exception as exc:
            if generation is None or generation == lane.generation:
                self._fail(lane, str(exc) or type(exc).__name__, record)
            return False
        if generation is not None and generation != lane.generation:
            return True
        if lane.last_error is not None:
            lane.last_error = None
            lane.backoff = RETRY_MIN
            lane.retry_at = None
            self._emit_event(Event("driver_recovered", {"driver": name}))
            self._emit_state()
        return True

    def _fail(self, lane: _Lane, message: str, record: bool = True) -> None:
        now = self.clock.monotonic()
        first = lane.last_error != message
        lane.failures += 1
        lane.last_error = message
        lane.retry_at = now + lane.backoff
        lane.backoff = min(RETRY_MAX, lane.backoff * 2)
        if first:
            log.warning("room %s: driver %s failed: %s", self.id, lane.driver.name, message)
            event = Event("driver_fault", {"driver": lane.driver.name, "error": message})
            if record:
                self._record([event], None, None)
            self._emit_event(event)
            self._emit_state()

    # -- publishing --------------------------------------------------------------------

    def _emit_event(self, event: Event) -> None:
        self._notify(
            RoomUpdate(
                "event", {"room": self.id, **event.as_dict(), "wall": self.clock.wall().isoformat()}
            )
        )

    def _emit_state(self) -> None:
        self._rev += 1
        self._notify(RoomUpdate("state", self.view()))

    def _notify(self, update: RoomUpdate) -> None:
        for listener in list(self._listeners):
            try:
                listener(update)
            except Exception:  # a broken listener must not break the room
                log.exception("room %s: listener failed", self.id)

    @property
    def running(self) -> bool:
        """Whether the room's loop is alive (False before start, after close or a crash)."""
        return self._task is not None and not self._task.done()

    @property
    def state(self) -> SessionState:
        return self.session.state
