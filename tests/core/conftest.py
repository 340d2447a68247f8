"""Fixtures for the sans-IO core: scenes built from text, sessions on a plain float clock."""

from __future__ import annotations

from pathlib import Path

from controller.scene import LoadedScene, parse_overlays, parse_scene

ROOT = Path(__file__).resolve().parents[2]


OVERLAYS = parse_overlays((ROOT / "scenes" / "overlays.yaml").read_bytes(), "overlays.yaml")


def scene_from(text: str, name: str = "test.yaml") -> LoadedScene:
    """A scene parsed from text, with the shipped overlays (panic, calm, staff-entry...)."""
    return parse_scene(text, name, shared_overlays=OVERLAYS)
