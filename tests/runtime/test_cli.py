"""The `sessionctl` commands of the foundation: validate, simulate, schema, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_validate_shipped_scenes_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "scenes")]) == 0
    assert "0 with errors" in capsys.readouterr().out


def test_simulate_json_lists_what_every_device_receives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", "demo", "--json", "--room", str(ROOT / "config/demo.yaml")]) == 0
    report = json.loads(capsys.readouterr().out)
    devices = {r["device"] for r in report["records"]}
    assert {"lights/ceiling", "lights/lamp", "lights/floor", "audio", "tablet-cue"} <= devices
    lamp = [r for r in report["records"] if r["device"] == "lights/lamp"]
    assert max(r["transition"] for r in lamp) == 20  # a Tasmota-like bulb gets 20 s chunks
    floor = [r for r in report["records"] if r["device"] == "lights/floor"]
    assert all(r["transition"] == 0 for r in floor) and len(floor) > len(lamp)
    assert report["length"] == 180
    due = [e for e in report["events"] if e["kind"] == "checkin_due"]
    assert [(e["checkin"], e["prompt"]) for e in due] == [
        ("baseline", "vitals"),
        ("comfort", "comfort"),
        ("discharge", "custom"),
    ]


def test_simulate_at_prints_the_room_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "demo", "--at", "1m35s", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["phase"] == "deep"
    assert state["lights"]["ambient"]["level"] == 10
    assert state["music"]["playing"] is True
    assert state["checkins_due_so_far"] == ["baseline", "comfort"]


def test_simulate_at_past_the_end_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "demo", "--at", "1h"]) == 2
    assert "past the end" in capsys.readouterr().err


def test_unknown_scene_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "dmeo"]) == 1
    assert "did you mean 'demo'" in capsys.readouterr().err


def test_schema_is_json_with_the_scene_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"name", "roles", "phases", "overlays", "min_duration"} <= set(schema["properties"])


def test_demo_runs_the_arc_to_its_end_in_a_real_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "demo",
            "--speed",
            "100",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "reached its end" in done.stdout
    assert "Discharge check 3:00/3:00" in done.stdout
    assert "Traceback" not in done.stderr


def test_simulate_shows_which_track_plays(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "iv-infusion", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    plays = [r for r in report["records"] if r["device"] == "audio" and r["playing"]]
    assert plays[0]["playlist"] == "arrival" and plays[0]["track"] == "pad-arrival.wav"
    assert {r["track"] for r in plays if r["playlist"] == "infusion"} == {"pad-infusion.wav"}
