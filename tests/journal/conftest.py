"""Fixtures for the journal tests: a site config in tmp_path with mock drivers, a compressed
scene, and the state dir (journal) beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controller.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]

# A short scene: check-ins every phase, a final hold. Offsets in seconds.
SCENE = """\
name: Journal test arc
route: demo
roles: {ambient: Room light, accent: Lamp}
phases:
  - id: arrival
    duration: 30s
    cues:
      - {at: 0s, lights: {roles: [ambient, accent], level: 60, kelvin: 3500}}
      - {at: 0s, music: {play: demo, volume: 25, fade: 5s}}
      - {at: 5s, checkin: {id: baseline, kind: vitals, prompt: Baseline check, ack_within: 60s}}
  - id: deep
    duration: 60s
    cues:
      - {at: 0s, lights: {roles: [ambient, accent], level: 10, kelvin: 2200, fade: 20s}}
      - at: 10s
        checkin:
          id: comfort
          kind: comfort
          prompt: Comfort check
          ack_within: 20s
          escalate_after: 20s
          responses: [{code: settled, label: Settled}]
  - id: return
    duration: 40s
    cues:
      - {at: 0s, lights: {roles: [ambient, accent], level: 35, kelvin: 2700, fade: 30s}}
      - {at: 30s, music: {stop: true, fade: 10s}}
  - id: discharge
    title: Discharge
    hold: true
    cues:
      - {at: 0s, lights: {roles: [ambient, accent], level: 70, kelvin: 3500, fade: 10s}}
      - {at: 0s, checkin: {id: discharge, kind: custom, prompt: "Ready?", priority: medium}}
"""


def write_site(
    folder: Path, *, scene: str = SCENE, scene_id: str = "arc", resume_gap: str = "15m"
) -> Path:
    """A config file with one mock room and the scene above; returns its path."""
    scenes = folder / "scenes"
    scenes.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scenes" / "overlays.yaml", scenes / "overlays.yaml")
    (scenes / f"{scene_id}.yaml").write_text(scene)
    config = folder / "site.yaml"
    config.write_text(
        f"""\
site:
  state_dir: state
  scenes_dir: scenes
  playlists_dir: {ROOT / "playlists"}
  web: {{enabled: false}}
  journal: {{resume_gap: {resume_gap}}}
rooms:
  - id: room-1
    drivers:
      lights:
        type: mock-light
        devices: {{ceiling: {{max_transition: 6553.5}}, lamp: {{max_transition: 20}}}}
      audio: {{type: mock-audio}}
      tablet-cue: {{type: mock-prompt}}
    roles: {{ambient: lights/ceiling, accent: lights/lamp}}
    audio: audio
    prompts: [tablet-cue]
    safe_state: {{level: 40, kelvin: 3500}}
"""
    )
    return config


@pytest.fixture
def site_config(tmp_path: Path) -> Config:
    return load_config(write_site(tmp_path))
