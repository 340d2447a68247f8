"""The committed scene JSON Schema is the generated one, and describes scene files usefully."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from controller.cli import main
from controller.scene import json_schema

from .conftest import SCENES_DIR

SCHEMA_FILE = SCENES_DIR / "scene.schema.json"


def test_committed_schema_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    """Regenerate with: .venv/bin/sessionctl schema -o scenes/scene.schema.json"""
    assert main(["schema"]) == 0
    generated = capsys.readouterr().out
    assert SCHEMA_FILE.read_text() == generated


def test_top_level_properties() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "roles", "phases"}
    assert {"name", "description", "route", "roles", "min_duration", "phases", "overlays"} <= set(
        schema["properties"]
    )
    assert {"Phase", "Cue", "LightsCue", "MusicCue", "CheckinCue"} <= set(schema["$defs"])


def _is_duration(option: dict[str, Any]) -> bool:
    types = [o.get("type") for o in option.get("anyOf", [])]
    return types == ["number", "string"] and "pattern" in option["anyOf"][1]


def _durations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(Model.field, the number-or-string option) for every duration field."""
    found = []
    for model, body in schema["$defs"].items():
        for name, prop in body.get("properties", {}).items():
            for option in [prop, *prop.get("anyOf", [])]:
                if _is_duration(option):
                    found.append((f"{model}.{name}", option))
    return found


def test_duration_fields_take_numbers_and_strings() -> None:
    durations = _durations(json_schema())
    names = {name for name, _ in durations}
    assert {"Cue.at", "Phase.duration", "Phase.min", "LightsCue.fade", "CheckinCue.ack_within"} <= (
        names
    )
    for name, option in durations:
        kinds = {o["type"]: o for o in option["anyOf"]}
        assert kinds["number"]["minimum"] == 0, name
        pattern = re.compile(kinds["string"]["pattern"])
        for good in ("90s", "5m", "1h30m", "2m30s", "1.5h"):
            assert pattern.match(good), (name, good)
        for bad in ("5 minutes", "-5m", "soon", "1d", "", "5"):
            assert not pattern.match(bad), (name, bad)
