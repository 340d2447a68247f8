"""The shipped scenes load, follow clinical-defaults.md §12 and run in the demo room."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.cli import main
from controller.config import load_config
from controller.scene import SCHEMA_COMMENT, CheckinCue, LoadedScene, SceneLibrary
from controller.simulate import simulate_scene
from controller.timeline import Timeline

from .conftest import PLAYLISTS, ROOT, SCENES_DIR, SHIPPED, scene_files

MINUTE = 60.0
# §5.4 prompt codes and the check-in kinds they map to; timers and the discharge question are
# the only other prompts the defaults use.
CODE_KINDS = {
    "VIT": "vitals",
    "SED": "sedation",
    "DIS": "dissociation",
    "VRB": "comfort",
    "REMS": "custom",
}
# Where the table's t = 0 (dose start) falls in session time, in minutes.
DOSE_START = {"iv-infusion": 20, "im-injection": 30, "sublingual": 30, "spravato": 15}


def checkins(scene: LoadedScene) -> list[tuple[float, CheckinCue]]:
    """(minutes from dose start, check-in) for every check-in of a scene."""
    timeline = Timeline(scene)
    return [
        (c.time / MINUTE - DOSE_START[scene.id], c.cue.checkin)
        for c in timeline.checkins
        if c.cue.checkin is not None
    ]


def test_validate_scenes_folder_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SCENES_DIR)]) == 0
    out = capsys.readouterr().out
    assert "0 with errors, 0 error(s)" in out


def test_library_has_every_shipped_scene(library: SceneLibrary) -> None:
    assert set(SHIPPED) | {"demo"} <= set(library.scenes)


@pytest.mark.parametrize("path", scene_files(), ids=lambda p: p.stem)
def test_scene_files_start_with_schema_comment(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert lines[0] == SCHEMA_COMMENT
    if path.stem in SHIPPED:
        header = " ".join(line for line in lines if line.startswith("#"))
        assert "clinical-defaults.md §12" in header
        assert "reviews, edits and signs off" in header


@pytest.mark.parametrize("scene_id", SHIPPED)
def test_same_roles_as_the_demo_room(scene_id: str, shipped: dict[str, LoadedScene]) -> None:
    config = load_config(ROOT / "config" / "demo.yaml")
    assert set(shipped[scene_id].scene.roles) == set(config.rooms[0].roles)


@pytest.mark.parametrize("scene_id", SHIPPED)
def test_music_uses_shipped_playlists(scene_id: str, shipped: dict[str, LoadedScene]) -> None:
    played = {
        cue.music.play
        for phase in shipped[scene_id].scene.phases
        for cue in phase.cues
        if cue.music and cue.music.play
    }
    assert played and played <= PLAYLISTS


@pytest.mark.parametrize("scene_id", SHIPPED)
def test_last_phase_is_a_discharge_check_held_for_staff(
    scene_id: str, shipped: dict[str, LoadedScene]
) -> None:
    last = shipped[scene_id].scene.phases[-1]
    assert last.min is not None and last.max is None and last.holds
    assert last.hold_limit is None, "only staff end the observation window"
    ids = {c.checkin.id for c in last.cues if c.checkin}
    assert "discharge" in ids
    timeline = Timeline(shipped[scene_id])
    end = timeline.state_at(timeline.length)
    assert all(light.current.level == 70 for light in end.lights.values())
    assert not end.music.playing


@pytest.mark.parametrize("scene_id", SHIPPED)
def test_checkins_use_the_prompt_codes(scene_id: str, shipped: dict[str, LoadedScene]) -> None:
    for _, checkin in checkins(shipped[scene_id]):
        code = re.match(r"(VIT|SED|DIS|VRB|REMS)\b", checkin.prompt)
        if code:
            assert checkin.kind == CODE_KINDS[code[1]], checkin.id
            assert checkin.priority == ("medium" if code[1] == "REMS" else "low"), checkin.id
        else:
            assert checkin.kind == "custom", checkin.id
        for option in checkin.responses:
            # Codes, never values: no digits that could be a reading, score or dose.
            assert not re.search(r"\d", option.code + option.label), option


def test_iv_follows_table_12_1(shipped: dict[str, LoadedScene]) -> None:
    scene = shipped["iv-infusion"]
    vitals = sorted(t for t, c in checkins(scene) if c.kind == "vitals")
    assert vitals[1:-1] == [10, 20, 30, 40, 55, 70]  # baseline first, final last
    timeline = Timeline(scene)
    infusion = timeline.phase("infusion")
    assert infusion is not None and infusion.start == 20 * MINUTE
    assert infusion.length == 40 * MINUTE
    arrival = timeline.state_at(5 * MINUTE)
    mid = timeline.state_at(infusion.start + 20 * MINUTE)
    for role in ("ambient", "accent"):
        assert arrival.lights[role].current.level == 60
        assert mid.lights[role].current.level == 10
        assert mid.lights[role].current.mired == 455  # 2200 K
    assert mid.music.playlist == "infusion" and 45 < mid.music.volume < 60
    discharge = next(c for _, c in checkins(scene) if c.id == "discharge")
    # Low at t = 90, medium if nobody has answered by t = 110.
    assert discharge.priority == "low" and discharge.ack_within == 20 * MINUTE


def test_spravato_rems_checks_and_floor(shipped: dict[str, LoadedScene]) -> None:
    scene = shipped["spravato"]
    assert scene.scene.route == "intranasal"
    # 120 min from the first device, which comes 15 min into the session.
    assert scene.scene.min_duration == 120 * MINUTE
    assert scene.scene.min_duration_from == "self-administration"
    first_device = Timeline(scene).phase("self-administration")
    assert first_device is not None and first_device.start == DOSE_START["spravato"] * MINUTE
    assert scene.nominal_length >= first_device.start + scene.scene.min_duration
    rems = {c.id: (t, c) for t, c in checkins(scene) if c.prompt.startswith("REMS:")}
    assert set(rems) == {"rems-pre-dose", "rems-40", "rems-completion"}
    assert rems["rems-pre-dose"][0] < 0
    assert rems["rems-40"][0] == 40
    assert 100 <= rems["rems-completion"][0] < 120
    for _, checkin in rems.values():
        assert checkin.priority == "medium"
        assert checkin.ack_within == 10 * MINUTE  # high when 10 min overdue
    discharge = next((t, c) for t, c in checkins(scene) if c.id == "discharge")
    assert discharge[0] >= 120


@pytest.mark.parametrize("scene_id", SHIPPED)
def test_room_is_dim_at_the_peak(scene_id: str, shipped: dict[str, LoadedScene]) -> None:
    timeline = Timeline(shipped[scene_id])
    peak = timeline.phase("infusion") or timeline.phase("peak")
    assert peak is not None
    state = timeline.state_at(peak.end - MINUTE)
    assert all(light.current.level <= 15 for light in state.lights.values())
    assert all(
        light.current.mired is not None and light.current.mired >= 370
        for light in state.lights.values()
    ), "2700 K or warmer"
    start = timeline.state_at(0)
    assert all(light.current.level >= 50 for light in start.lights.values())


@pytest.mark.parametrize("scene_id", SHIPPED)
def test_simulate_runs_to_the_end(scene_id: str, shipped: dict[str, LoadedScene]) -> None:
    report = simulate_scene(shipped[scene_id])
    assert report.length == pytest.approx(shipped[scene_id].nominal_length)
    kinds = [e.get("kind") for e in report.events]
    assert "checkin_escalated" not in kinds  # simulated staff acknowledge after 1 min
    lights = [r for r in report.records if r.device.startswith("lights/")]
    assert lights and max(r.offset for r in lights) < report.length
    assert report.wall_seconds < 10
