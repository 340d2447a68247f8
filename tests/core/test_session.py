"""Session commands: what is accepted, what is refused and why, and what the room does."""

from __future__ import annotations

from typing import Any

import pytest

from controller.commands import Command
from controller.session import Session, SessionState
from drivers.base import LightSetting
from tests.core.conftest import scene_from

SCENE = scene_from(
    """
name: S
min_duration: 30m
roles: {ambient: a}
phases:
  - id: settle
    duration: 10m
    cues:
      - {at: 0s, lights: {roles: ambient, level: 60, kelvin: 3500}}
      - {at: 1m, lights: {roles: ambient, level: 10, kelvin: 2200, fade: 5m}}
      - {at: 0s, music: {play: p, volume: 40}}
      - {at: 2m, checkin: {id: vit, kind: vitals, prompt: Vitals, ack_within: 5m,
                           escalate_after: 5m, responses: [{code: uneasy, label: Uneasy,
                           overlay: calm}]}}
  - id: wait
    hold: true
  - id: discharge
    min: 5m
    max: 10m
""",
    "s.yaml",
)


class Driver:
    def __init__(self) -> None:
        self.session = Session("room", {"s": SCENE}, roles=["ambient"], overlays=SCENE.overlays)
        self.n = 0

    def do(self, verb: str, now: float, **args: Any) -> Any:
        self.n += 1
        return self.session.handle(Command(verb, f"id{self.n}", "nurse", args), now)  # type: ignore[arg-type]


@pytest.fixture
def room() -> Driver:
    d = Driver()
    assert d.do("start", 0, scene="s").outcome.accepted
    return d


def test_pause_freezes_a_fade_where_it_is(room: Driver) -> None:
    room.do("pause", 300)
    paused = room.session.desired(300).lights["ambient"]
    assert paused.remaining == 0 and paused.current.level == pytest.approx(20)
    assert room.session.desired(900).lights["ambient"] == paused
    room.do("resume", 900)
    assert room.session.offset(1000) == pytest.approx(400)


def test_checkins_escalate_in_real_time_while_paused(room: Driver) -> None:
    room.session.advance(120)
    room.do("pause", 130)
    events = room.session.advance(120 + 300 + 1)
    assert [e.kind for e in events] == ["checkin_escalated"]
    assert room.session.prompts(421)[0].priority == "medium"
    events = room.session.advance(120 + 600 + 1)
    assert room.session.prompts(721)[0].priority == "high"


def test_response_can_switch_an_overlay_on(room: Driver) -> None:
    room.session.advance(120)
    result = room.do("respond", 130, checkin="vit", option="uneasy")
    assert [e.kind for e in result.events] == [
        "checkin_acknowledged",
        "checkin_responded",
        "overlay_on",
    ]
    assert "calm" in room.session.active_overlays
    again = room.do("ack", 140, checkin="vit")
    assert not again.outcome.accepted and "already acknowledged" in (again.outcome.reason or "")


def test_hold_phase_waits_for_staff(room: Driver) -> None:
    room.session.advance(600)
    assert room.session.state == SessionState.HOLDING
    room.session.advance(5000)
    assert room.session.state == SessionState.HOLDING
    assert room.session.view(5000)["session"]["holding"]["since"] == pytest.approx(4400)
    assert room.do("resume", 5000).outcome.accepted
    assert room.session.view(5000)["session"]["phase"]["id"] == "discharge"


def test_min_max_phase_continues_by_itself_at_max_and_final_phase_holds(room: Driver) -> None:
    room.session.advance(600)
    room.do("resume", 600)
    room.session.advance(600 + 300)
    assert room.session.state == SessionState.HOLDING  # last phase: holds after min
    refused = room.do("resume", 950)
    assert not refused.outcome.accepted and "reached its end" in (refused.outcome.reason or "")


def test_stop_before_min_duration_needs_override_and_reason(room: Driver) -> None:
    refused = room.do("stop", 600)
    assert not refused.outcome.accepted
    assert "minimum duration is 30m" in (refused.outcome.reason or "")
    no_reason = room.do("stop", 600, override=True)
    assert not no_reason.outcome.accepted and "needs a reason" in (no_reason.outcome.reason or "")
    done = room.do("stop", 600, override=True, reason="transfer")
    assert done.outcome.accepted and room.session.state == SessionState.ABORTED


def test_repeated_cmd_id_returns_the_first_outcome(room: Driver) -> None:
    command = Command("extend", "same", "nurse", {"seconds": 60})
    first = room.session.handle(command, 10)
    second = room.session.handle(command, 20)
    assert first.outcome.accepted and second.outcome.duplicate and second.events == []
    assert room.session.run is not None and room.session.run.extensions == {0: 60}


def test_panic_reaches_every_role_at_once_freezes_and_needs_release(room: Driver) -> None:
    result = room.do("panic", 100)
    assert [e.kind for e in result.events] == ["panic"]
    state = room.session.desired(100)
    assert state.lights["ambient"].current.level == 100
    assert state.lights["ambient"].current.mired == 250 and state.lights["ambient"].remaining == 0
    assert state.music.playing is False
    assert room.session.offset(1000) == pytest.approx(100)
    assert not room.do("overlay", 110, name="panic", on=False).outcome.accepted
    released = room.do("release", 1000)
    assert [e.kind for e in released.events] == ["released", "overlay_on"]
    assert room.session.offset(1010) == pytest.approx(110)
    assert room.session.desired(1030).lights["ambient"].remaining == pytest.approx(30)


def test_panic_works_with_no_session() -> None:
    d = Driver()
    assert d.do("panic", 0).outcome.accepted
    assert d.session.desired(0).lights["ambient"].current.level == 100
    refused = d.do("start", 1, scene="s")
    assert not refused.outcome.accepted and "release it" in (refused.outcome.reason or "")


def test_skip_only_moves_forward(room: Driver) -> None:
    assert room.do("skip", 10, phase="discharge").outcome.accepted
    back = room.do("skip", 20, phase="settle")
    assert not back.outcome.accepted and "forward" in (back.outcome.reason or "")


def test_snapshot_round_trip_keeps_everything(room: Driver) -> None:
    room.session.advance(130)
    room.do("ack", 140, checkin="vit")
    room.do("extend", 150, seconds=120)
    snap = room.session.snapshot(160)
    restored = Session.restore(
        snap, {"s": SCENE}, roles=["ambient"], now=160, overlays=SCENE.overlays
    )
    assert restored.snapshot(160) == snap
    assert restored.offset(200) == pytest.approx(room.session.offset(200))
    assert restored.handle(Command("extend", "id3", "x", {"seconds": 1}), 200).outcome.duplicate


FLOOR_FROM = scene_from(
    """
name: F
min_duration: 10m
min_duration_from: dosing
roles: {ambient: a}
phases:
  - {id: checks, min: 5m, max: 1h}
  - {id: dosing, duration: 5m}
  - {id: rest, min: 30m}
""",
    "f.yaml",
)


def test_min_duration_can_count_from_a_phase() -> None:
    session = Session("room", {"f": FLOOR_FROM}, roles=["ambient"])
    session.handle(Command("start", "a", "n", {"scene": "f"}), 0)
    session.advance(900)  # pre-dose checks held for 15 minutes...
    assert session.handle(Command("resume", "b", "n", {}), 900).outcome.accepted
    early = session.handle(Command("stop", "c", "n", {}), 900 + 540)
    assert not early.outcome.accepted, "24 min since start, but only 9 since dosing began"
    assert session.view(900 + 540)["session"]["min_remaining"] == pytest.approx(60)
    assert session.handle(Command("stop", "d", "n", {}), 900 + 600).outcome.accepted


def test_min_duration_from_must_name_a_phase() -> None:
    from controller.yamlsafe import SourceErrors

    with pytest.raises(SourceErrors, match="unknown phase 'dosign'; did you mean 'dosing'"):
        scene_from(
            "name: F\nmin_duration: 10m\nmin_duration_from: dosign\nroles: {a: x}\n"
            "phases:\n  - {id: dosing, duration: 5m}\n"
        )


def test_ending_a_session_clears_overlays_and_rests_the_room(room: Driver) -> None:
    from controller.session import MUSIC_END_FADE, RESTING_FADE

    room.session.resting = LightSetting(True, 40, 286)
    room.session.advance(120)
    room.do("respond", 130, checkin="vit", option="uneasy")  # switches 'calm' on
    assert "calm" in room.session.active_overlays
    result = room.do("stop", 2000, override=True, reason="clinical-decision")
    assert "overlay_off" in [e.kind for e in result.events]
    assert room.session.active_overlays == {}
    halfway = room.session.desired(2000 + RESTING_FADE / 2)
    assert 5 < halfway.lights["ambient"].current.level < 40  # on its way from calm to rest
    rested = room.session.desired(2000 + RESTING_FADE)
    assert rested.lights["ambient"].current == LightSetting(True, 40, 286)
    assert room.session.desired(2001).music.playing  # fading out, not cut
    assert not room.session.desired(2000 + MUSIC_END_FADE).music.playing
    assert room.do("start", 2100, scene="s").outcome.accepted
    assert room.session.desired(2100).lights["ambient"].current.level == 60


def test_an_overlay_left_over_from_another_scene_cannot_break_the_room() -> None:
    d = Driver()
    d.session.active_overlays["gone"] = 0.0  # e.g. restored from an older scene version
    assert d.do("start", 1, scene="s").outcome.accepted
    assert d.session.desired(2).lights["ambient"].current.level == 60
    assert d.do("panic", 3).outcome.accepted
    assert d.session.desired(3).lights["ambient"].current.level == 100
