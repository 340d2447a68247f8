"""The malformed-scene corpus: every file fails with exactly the expected positioned errors.

Each file is run through the loader and through ``sessionctl validate`` (in-process, and once
as a real subprocess over the whole folder); every run must exit 1, print each expected
``file:line:col: message`` line and never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.cli import main
from controller.scene import parse_scene
from controller.yamlsafe import MAX_BYTES, SourceErrors

from .conftest import BAD_DIR, PLAYLISTS, PLAYLISTS_DIR, ROOT, BadScene, bad_scenes

CORPUS = bad_scenes()


def load_errors(path: Path, name: str | None = None) -> list[str]:
    with pytest.raises(SourceErrors) as info:
        parse_scene(path.read_bytes(), name or path.name, playlists=PLAYLISTS)
    return str(info.value).splitlines()


def test_corpus_is_large_and_paired() -> None:
    assert len(CORPUS) >= 30
    expected = {p.stem for p in BAD_DIR.glob("*.expected")}
    assert expected == {bad.path.stem for bad in CORPUS}, "every fixture needs a .expected file"
    assert all(bad.expected for bad in CORPUS)


@pytest.mark.parametrize("bad", CORPUS, ids=lambda b: b.path.stem)
def test_loader_reports_exactly_the_expected_errors(bad: BadScene) -> None:
    assert load_errors(bad.path) == bad.expected


@pytest.mark.parametrize("bad", CORPUS, ids=lambda b: b.path.stem)
def test_validate_prints_the_errors_and_exits_1(
    bad: BadScene, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD_DIR)
    code = main(["validate", "--playlists", str(PLAYLISTS_DIR), bad.name])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert lines[:-1] == bad.expected
    assert lines[-1] == f"1 file(s) checked, 1 with errors, {len(bad.expected)} error(s)"


def test_validate_subprocess_reports_every_file_at_once() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "validate",
            "--playlists",
            str(PLAYLISTS_DIR),
            ".",
        ],
        cwd=BAD_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    printed = proc.stderr.splitlines()
    wanted = [line for bad in CORPUS for line in bad.expected]
    assert printed[:-1] == wanted
    assert printed[-1] == (
        f"{len(CORPUS)} file(s) checked, {len(CORPUS)} with errors, {len(wanted)} error(s)"
    )


def test_multi_error_file_reports_every_mistake_in_one_run() -> None:
    """Schema errors and cross-reference errors in one file are all reported together."""
    errors = load_errors(BAD_DIR / "multi-error.yaml")
    wanted = [
        "version: input should be greater than or equal to 1",
        "unknown role 'door'",
        "unknown key 'levle'; did you mean 'level'?",
        "sets role 'ambient' at the same time",
        "lies past the end of phase 'arrival'",
        "unknown playlist 'arival'; did you mean 'arrival'?",
        "phase id 'arrival' is used twice",
        "'5 minutes' is not a duration",
        "check-in id 'vit' is already used",
        "did you mean 'vitals'?",
        "unknown overlay 'calmm'",
        "lights.level: input should be less than or equal to 100",
        "as kelvin or as mired, not both",
    ]
    for fragment in wanted:
        assert sum(fragment in line for line in errors) == 1, fragment
    assert len(errors) == len(wanted)


def test_cross_reference_checks_run_inside_an_invalid_phase() -> None:
    # The phase's duration is unreadable, yet its unknown role and duplicate id are reported.
    text = (
        "name: X\nroles: {ambient: a}\nphases:\n"
        "  - id: one\n    duration: soon\n    cues:\n"
        "      - at: 0s\n        lights: {roles: lamp, level: 10}\n"
        "  - id: one\n    duration: 1m\n"
    )
    with pytest.raises(SourceErrors) as info:
        parse_scene(text, "x.yaml")
    assert [str(e) for e in info.value.errors] == [
        "x.yaml:5:15: phases.0.duration: 'soon' is not a duration; "
        "write it like 90s, 5m, 1h30m or 2m30s",
        "x.yaml:8:25: unknown role 'lamp' (known: ambient)",
        "x.yaml:9:9: phase id 'one' is used twice",
    ]


def test_a_10_mb_file_is_refused_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "huge.yaml"
    line = b"# " + b"x" * 1021 + b"\n"
    big.write_bytes(b"name: Huge\n" + line * (10 * 1024))
    assert big.stat().st_size > 10 * 1024 * 1024 > MAX_BYTES
    started = time.perf_counter()
    assert load_errors(big, "huge.yaml") == [
        "huge.yaml:1:1: file is larger than 1024 KiB; split it or remove what is not needed"
    ]
    assert main(["validate", str(big)]) == 1
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    assert f"{big}:1:1: file is larger than 1024 KiB" in err
    assert elapsed < 5, "the size check must come before any parsing"


def test_a_large_alias_bomb_is_refused_without_expanding(tmp_path: Path) -> None:
    # Twenty levels of nine would be 9**20 leaves if anything traversed it.
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 20)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    errors = load_errors(bomb, "bomb.yaml")
    assert errors == ["bomb.yaml:1:5: anchors (&a0) are not allowed; write each value out in full"]
    assert time.perf_counter() - started < 1
