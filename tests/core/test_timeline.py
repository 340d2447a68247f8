"""Timeline: absolute offsets, fades in progress, phase boundaries, extensions."""

from __future__ import annotations

import pytest

from controller.timeline import Timeline
from tests.core.conftest import scene_from

SCENE = scene_from(
    """
name: T
roles: {ambient: a, accent: b}
phases:
  - id: arrive
    duration: 10m
    cues:
      - {at: 0s, lights: {roles: [ambient, accent], level: 60, kelvin: 3500}}
      - {at: 0s, music: {play: arrival, volume: 20, fade: 10s}}
      - {at: 5m, lights: {roles: ambient, level: 10, kelvin: 2200, fade: 4m}}
  - id: deep
    duration: 20m
    cues:
      - {at: 0s, music: {play: deep, volume: 60, fade: 30s}}
      - {at: 10m, checkin: {id: vit, kind: vitals, prompt: Vitals}}
      - {at: 19m, music: {stop: true, fade: 1m}}
"""
)


def test_phases_have_absolute_offsets() -> None:
    timeline = Timeline(SCENE)
    assert [(p.id, p.start, p.end) for p in timeline.phases] == [
        ("arrive", 0, 600),
        ("deep", 600, 1800),
    ]
    assert timeline.length == 1800


def test_fade_in_progress_is_interpolated() -> None:
    state = Timeline(SCENE).state_at(300 + 120)
    ambient = state.lights["ambient"]
    assert ambient.current.level == pytest.approx(35.0)
    assert ambient.current.mired == pytest.approx((286 + 455) / 2)
    assert ambient.goal.level == 10
    assert ambient.remaining == pytest.approx(120)
    assert state.lights["accent"].current.level == 60
    assert state.lights["accent"].remaining == 0


def test_music_crossfade_ramp_and_stop() -> None:
    timeline = Timeline(SCENE)
    assert timeline.state_at(5).music.volume == pytest.approx(10)
    deep = timeline.state_at(615).music
    assert deep.playlist == "deep" and deep.playing
    assert deep.volume == pytest.approx(30) and deep.goal == 60
    assert deep.position == pytest.approx(15)
    stopping = timeline.state_at(1800).music
    assert stopping.playing is False and stopping.volume == 0
    assert timeline.state_at(1770).music.volume == pytest.approx(30)  # half-way out


def test_boundary_belongs_to_the_phase_that_begins_there_unless_told() -> None:
    timeline = Timeline(SCENE)
    assert timeline.phase_at(600).id == "deep"
    assert timeline.state_at(600, phase_index=0).music.playlist == "arrival"
    assert timeline.state_at(600, phase_index=1).music.playlist == "deep"


def test_next_deadline_walks_cues_and_boundaries() -> None:
    timeline = Timeline(SCENE)
    assert timeline.next_deadline(0, 0) == 300
    assert timeline.next_deadline(300, 0) == 600
    assert timeline.next_deadline(600, 1) == 1200
    assert timeline.next_deadline(1200, 1) == 1740
    assert timeline.next_deadline(1740, 1) == 1800
    assert timeline.next_deadline(1800, 1) is None


def test_extension_shifts_later_phases() -> None:
    timeline = Timeline(SCENE, {0: 120})
    assert [(p.start, p.end) for p in timeline.phases] == [(0, 720), (720, 1920)]
    assert [c.time for c in timeline.checkins] == [720 + 600]
    # The extra time holds the phase's end state: the ambient fade ended at 9 minutes.
    assert timeline.state_at(700).lights["ambient"].current.level == 10


def test_checkins_between_positions() -> None:
    timeline = Timeline(SCENE)
    found = timeline.checkins_between((0, 0, -1), timeline.position_key(1200, 1))
    assert [c.id for _, c in found] == ["vit"]
    assert timeline.checkins_between((1200, 1, 99), timeline.position_key(1800, 1)) == []


def test_a_colour_only_cue_does_not_switch_an_off_light_on() -> None:
    scene = scene_from(
        """
name: C
roles: {ambient: a}
phases:
  - id: one
    duration: 10m
    cues:
      - {at: 0s, lights: {roles: ambient, kelvin: 2700}}
      - {at: 1m, lights: {roles: ambient, level: 0, fade: 1m}}
      - {at: 5m, lights: {roles: ambient, kelvin: 2200}}
"""
    )
    timeline = Timeline(scene)
    assert timeline.state_at(30).lights["ambient"].current.level == 100  # first cue: on
    later = timeline.state_at(400).lights["ambient"].current
    assert later.on is False and later.level == 0 and later.mired == 455
