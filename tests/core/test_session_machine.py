"""Random command sequences against the session state machine (hypothesis, stateful).

Invariants: the offset never goes backwards while running and never past the end; nothing is
actuated while paused except overlays; ``min_duration`` holds; a repeated ``cmd_id`` changes
nothing; every check-in that came due is either open or resolved, exactly once.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from controller.commands import Command
from controller.session import ACTIVE, Session, SessionState
from tests.core.conftest import scene_from

SCENE = scene_from(
    """
name: Machine
min_duration: 20m
roles: {ambient: a, accent: b}
phases:
  - id: one
    duration: 5m
    cues:
      - {at: 0s, lights: {roles: [ambient, accent], level: 60, kelvin: 3500}}
      - {at: 0s, music: {play: p, volume: 30, fade: 10s}}
      - {at: 1m, checkin: {id: c1, kind: vitals, prompt: Check, ack_within: 2m,
                           escalate_after: 1m, responses: [{code: ok, label: OK}]}}
  - id: two
    min: 5m
    max: 10m
    cues:
      - {at: 0s, lights: {roles: ambient, level: 10, kelvin: 2200, fade: 4m}}
      - {at: 3m, checkin: {id: c2, kind: comfort, prompt: Comfort}}
  - id: three
    hold: true
    duration: 2m
    cues:
      - {at: 0s, lights: {roles: [ambient, accent], level: 40, fade: 1m}}
  - id: four
    duration: 10m
    cues:
      - {at: 0s, music: {stop: true, fade: 30s}}
      - {at: 5m, checkin: {id: c3, kind: custom, prompt: "Discharge?", priority: medium}}
""",
    "machine.yaml",
)
CHECKINS = ["c1", "c2", "c3"]


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.session = Session(
            "room", {"machine": SCENE}, roles=["ambient", "accent"], overlays=SCENE.overlays
        )
        self.now = 0.0
        self.seq = 0
        self.last_offset = 0.0
        self.last_token: str | None = None
        self.sent: list[Command] = []
        self.opened: dict[str, int] = {}
        self.paused_view: Any = None

    def _submit(self, verb: str, **args: Any) -> None:
        self.seq += 1
        command = Command(verb, f"c{self.seq}", "tester", args)  # type: ignore[arg-type]
        self._handle(command)

    def _handle(self, command: Command) -> None:
        before_state = self.session.state
        before_elapsed = self.session.elapsed(self.now)
        result = self.session.handle(command, self.now)
        self.sent.append(command)
        self._count(result.events)
        if command.verb == "stop" and result.outcome.accepted:
            floor = SCENE.scene.min_duration or 0
            assert before_elapsed >= floor or command.args.get("override"), (
                "stopped before min_duration without override"
            )
        if command.verb == "stop" and not result.outcome.accepted:
            assert self.session.state == before_state
        self._track_offset()

    def _count(self, events: list[Any]) -> None:
        for event in events:
            if event.kind == "checkin_due":
                key = f"{self.session.token}/{event.data['checkin']}"
                self.opened[key] = self.opened.get(key, 0) + 1

    def _track_offset(self) -> None:
        token = self.session.token
        if token != self.last_token:
            self.last_token = token
            self.last_offset = 0.0
        offset = self.session.offset(self.now)
        if self.session.state in ACTIVE:
            assert offset >= self.last_offset - 1e-9, "offset went backwards"
        self.last_offset = offset

    @rule(seconds=st.floats(min_value=0.0, max_value=900.0))
    def tick(self, seconds: float) -> None:
        paused = self.session.state == SessionState.PAUSED
        before = self.session.desired(self.now).lights if paused else None
        overlays_before = dict(self.session.active_overlays)
        blending = self.session.blending
        self.now += seconds
        self._count(self.session.advance(self.now))
        self._track_offset()
        still_paused = paused and self.session.state == SessionState.PAUSED
        if still_paused and self.session.active_overlays == overlays_before and not blending:
            assert self.session.desired(self.now).lights == before, "actuated while paused"

    @rule()
    def start(self) -> None:
        self._submit("start", scene="machine")

    @rule()
    def pause(self) -> None:
        self._submit("pause")

    @rule()
    def resume(self) -> None:
        self._submit("resume")

    @rule(phase=st.sampled_from([None, "one", "two", "three", "four", "nope"]))
    def skip(self, phase: str | None) -> None:
        if phase is None:
            self._submit("skip")
        else:
            self._submit("skip", phase=phase)

    @rule(seconds=st.floats(min_value=1.0, max_value=1200.0))
    def extend(self, seconds: float) -> None:
        self._submit("extend", seconds=seconds)

    @rule(override=st.booleans(), reason=st.sampled_from([None, "clinical-decision"]))
    def stop(self, override: bool, reason: str | None) -> None:
        args: dict[str, Any] = {"override": override}
        if reason:
            args["reason"] = reason
        self._submit("stop", **args)

    @rule()
    def panic(self) -> None:
        self._submit("panic")

    @rule()
    def release(self) -> None:
        self._submit("release")

    @rule(name=st.sampled_from(["calm", "staff-entry", "recovery"]), on=st.booleans())
    def overlay(self, name: str, on: bool) -> None:
        self._submit("overlay", name=name, on=on)

    @rule(checkin=st.sampled_from(CHECKINS))
    def ack(self, checkin: str) -> None:
        self._submit("ack", checkin=checkin)

    @rule(checkin=st.sampled_from(CHECKINS), option=st.sampled_from(["ok", "bad"]))
    def respond(self, checkin: str, option: str) -> None:
        self._submit("respond", checkin=checkin, option=option)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def repeat(self, data: st.DataObject) -> None:
        command = data.draw(st.sampled_from(self.sent))
        snapshot = self.session.snapshot(self.now)
        result = self.session.handle(command, self.now)
        assert result.outcome.duplicate
        assert result.events == []
        assert self.session.snapshot(self.now) == snapshot, "a repeated cmd_id changed state"

    @invariant()
    def offset_within_timeline(self) -> None:
        run = self.session.run
        if run is not None:
            offset = self.session.offset(self.now)
            assert 0.0 <= offset <= run.timeline.length + 1e-9

    @invariant()
    def checkins_once(self) -> None:
        assert all(count == 1 for count in self.opened.values()), self.opened
        book = self.session.checkins.items
        for checkin_id, item in book.items():
            key = f"{self.session.token}/{checkin_id}"
            assert self.opened.get(key) == 1, f"{checkin_id} in book but never opened"
            assert item.state in ("due", "acknowledged", "responded", "closed")

    @invariant()
    def min_duration_holds(self) -> None:
        run = self.session.run
        if run is not None and self.session.state == SessionState.ENDED:
            assert run.ended_at is not None
            assert run.ended_at - run.started_at >= (SCENE.scene.min_duration or 0) - 1e-9


SessionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSessionMachine = SessionMachine.TestCase
