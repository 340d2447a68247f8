"""The timeline SVG: well-formed, one band per phase, one mark per check-in."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from controller.cli import main
from controller.plot import kelvin_to_rgb, render_svg, setting_colour
from controller.scene import LoadedScene, SceneLibrary, parse_scene, playlist_names
from drivers.base import LightSetting

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"

HOLDING_SCENE = """
name: Tiny
roles: {ambient: room light}
phases:
  - id: one
    duration: 10m
    cues:
      - {at: 0s, lights: {roles: ambient, level: 50, xy: [0.5, 0.4]}}
      - {at: 1m, checkin: {id: a, kind: vitals, prompt: "A <check> & more", priority: high}}
      - {at: 2m, checkin: {id: b, kind: comfort, prompt: B, priority: medium}}
  - id: wait
    hold: true
  - id: two
    min: 1h
    cues:
      - {at: 0s, checkin: {id: c, kind: custom, prompt: C}}
"""


def _library() -> SceneLibrary:
    return SceneLibrary.load(ROOT / "scenes", playlists=playlist_names(ROOT / "playlists"))


def _checkin_count(scene: LoadedScene) -> int:
    return sum(1 for p in scene.scene.phases for c in p.cues if c.checkin is not None)


def _groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def _check(scene: LoadedScene) -> ET.Element:
    root = ET.fromstring(render_svg(scene))
    assert root.tag == f"{SVG}svg"
    bands = _groups(root, "phase-band")
    assert [b.get("data-phase") for b in bands] == [p.id for p in scene.scene.phases]
    marks = _groups(root, "checkin-mark")
    assert len(marks) == _checkin_count(scene)
    assert len(_groups(root, "light-lane")) == len(scene.scene.roles)
    assert len(_groups(root, "music-lane")) == 1
    # No <style> element or style attribute: the tablet's CSP is style-src 'self'.
    assert not list(root.iter(f"{SVG}style"))
    assert all("style" not in el.attrib for el in root.iter())
    return root


@pytest.mark.parametrize("scene_id", sorted(_library().scenes))
def test_every_shipped_scene_renders(scene_id: str) -> None:
    _check(_library().scene(scene_id))


def test_escaping_holds_and_priorities() -> None:
    scene = parse_scene(HOLDING_SCENE, "tiny.yaml")
    root = _check(scene)
    priorities = [g.get("data-priority") for g in _groups(root, "checkin-mark")]
    assert priorities == ["high", "medium", "low"]
    titles = "".join(t.text or "" for t in root.iter(f"{SVG}title"))
    assert "A <check> & more" in titles


def test_colour_of_warm_and_cool_light() -> None:
    warm, cool = kelvin_to_rgb(2200), kelvin_to_rgb(6500)
    assert warm[0] == 255 and warm[2] < 100
    assert cool[2] > 240
    assert setting_colour(LightSetting(on=False)) == "#303036"


def test_cli_writes_file(tmp_path: Path) -> None:
    out = tmp_path / "demo.svg"
    assert main(["plot", "demo", "-o", str(out)]) == 0
    ET.parse(out)
    assert main(["plot", str(ROOT / "scenes" / "demo.yaml"), "-o", str(out)]) == 0
    ET.parse(out)
