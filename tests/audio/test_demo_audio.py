"""Demo audio: generated locally, valid WAV, seamless loops, cache folder from the environment."""

from __future__ import annotations

import itertools
import wave
from pathlib import Path

import pytest

from drivers.demo_audio import (
    MEDIA_ENV,
    RATE,
    default_media_dir,
    pad_segment,
    wav_duration,
    write_chime,
    write_pad,
)


def test_cache_folder_comes_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MEDIA_ENV, str(tmp_path / "m"))
    assert default_media_dir() == tmp_path / "m"
    monkeypatch.delenv(MEDIA_ENV)
    assert default_media_dir() == Path.home() / ".cache/sessionctl/media"


def test_pad_is_a_wav_of_the_asked_length(tmp_path: Path) -> None:
    path = write_pad(tmp_path / "p.wav", (220.0, 277.2, 330.0), 5.0, swell=2.0)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
    assert wav_duration(path) == pytest.approx(5.0, abs=1 / RATE)
    assert not (tmp_path / "p.wav.part").exists()


def test_loop_segment_is_seamless() -> None:
    seg = pad_segment((110.0, 165.0), 1.0)
    # Wrapping from the last sample to the first is no bigger a step than any inside the loop.
    steps = [abs(b - a) for a, b in itertools.pairwise(seg)]
    assert abs(seg[0] - seg[-1]) <= max(steps)
    assert max(abs(s) for s in seg) < 32767  # soft: never clips


def test_chime_decays_to_silence(tmp_path: Path) -> None:
    path = write_chime(tmp_path / "c.wav", seconds=1.0)
    with wave.open(str(path)) as wav:
        frames = wav.readframes(wav.getnframes())
    assert frames[-2:] == b"\x00\x00"
    assert wav_duration(tmp_path / "missing.wav") is None
