"""Fixtures for scene-file tests: the malformed-scene corpus and the shipped scenes.

Each ``tests/fixtures/bad_scenes/<name>.yaml`` has a ``<name>.expected`` next to it holding the
exact ``file:line:col: message`` lines the loader must print, with the bare file name as path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.scene import OVERLAYS_FILE, LoadedScene, SceneLibrary, playlist_names

ROOT = Path(__file__).resolve().parents[2]
BAD_DIR = ROOT / "tests" / "fixtures" / "bad_scenes"
SCENES_DIR = ROOT / "scenes"
PLAYLISTS_DIR = ROOT / "playlists"
PLAYLISTS = playlist_names(PLAYLISTS_DIR) or set()
SHIPPED = ["iv-infusion", "im-injection", "sublingual", "spravato"]


@dataclass(frozen=True)
class BadScene:
    path: Path
    expected: list[str]

    @property
    def name(self) -> str:
        return self.path.name


def bad_scenes() -> list[BadScene]:
    """Every corpus file with its expected error lines."""
    out = []
    for path in sorted(BAD_DIR.glob("*.yaml")):
        expected = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
        out.append(BadScene(path, expected))
    return out


@pytest.fixture(scope="session")
def library() -> SceneLibrary:
    return SceneLibrary.load(SCENES_DIR, playlists=PLAYLISTS)


@pytest.fixture(scope="session")
def shipped(library: SceneLibrary) -> dict[str, LoadedScene]:
    return {scene_id: library.scene(scene_id) for scene_id in SHIPPED}


def scene_files() -> list[Path]:
    return sorted(p for p in SCENES_DIR.glob("*.yaml") if p.name != OVERLAYS_FILE)
