"""Arbitrary text and bytes never make the scene loader raise anything but SourceErrors."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.scene import parse_scene
from controller.yamlsafe import SourceErrors

from .conftest import SCENES_DIR

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of YAML and of scene files, so random sequences reach past the parser into validation.
TOKENS = [
    "name: X\n",
    "roles: {ambient: a}\n",
    "phases:\n",
    "  - id: one\n",
    "    duration: 5m\n",
    "    cues:\n",
    "      - at: 0s\n",
    "        lights: {roles: ambient, level: 10}\n",
    "        music: {play: demo}\n",
    "        checkin: {id: c, kind: vitals, prompt: p}\n",
    "? ",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "!!python/object ",
    "!x ",
    "---\n",
    "...\n",
    "\t",
    "  ",
    "\n",
    "'",
    '"',
    "#",
    "|",
    ">",
    "%YAML 1.1\n",
    "~",
    ".nan",
    "-1",
    "1e999",
    "no",
    "on:",
    "\x00",
    "\x07",
    "\ufeff",
    "é",
    "level: 150",
    "kelvin: 9000",
]


def _only_source_errors(data: str | bytes) -> None:
    try:
        parse_scene(data, "fuzz.yaml", playlists={"demo"})
    except SourceErrors as exc:
        assert exc.errors, "SourceErrors must carry at least one error"
        for error in exc.errors:
            assert error.line >= 1 and error.column >= 1
            assert "\n" not in error.message


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    _only_source_errors(text)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _only_source_errors(data)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_random_yaml_fragments(tokens: list[str]) -> None:
    _only_source_errors("".join(tokens))


_SHIPPED = (SCENES_DIR / "iv-infusion.yaml").read_bytes()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_SHIPPED) - 1), st.binary(min_size=1, max_size=8))
def test_corrupted_shipped_scene(at: int, junk: bytes) -> None:
    _only_source_errors(_SHIPPED[:at] + junk + _SHIPPED[at + len(junk) :])
