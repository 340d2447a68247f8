"""Demo audio synthesised on this machine: soft ambient pads and a chime, written as WAV.

Nothing is downloaded. The shipped playlists point at these files so the demo (and every test)
has music without any licensed media::

    from drivers.demo_audio import ensure_demo_media
    media = ensure_demo_media()          # $SESSIONCTL_MEDIA_DIR or ~/.cache/sessionctl/media
    sorted(p.name for p in media.glob("*.wav"))

Each pad is one short loop segment whose partials and envelopes all complete whole cycles in the
segment, so repeating the segment is seamless and generation stays fast (well under a second
per pad) with the standard library only. Files are mono, 16 bit, 22050 Hz.
"""

from __future__ import annotations

import array
import math
import os
import sys
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

RATE = 22050
MEDIA_ENV = "SESSIONCTL_MEDIA_DIR"
# Bump when the synthesis changes, so caches from older versions are regenerated.
VERSION = "1"
_MARKER = ".demo-audio-version"


@dataclass(frozen=True)
class Pad:
    """A pad: a chord (Hz) held over a slow swell, ``seconds`` long."""

    name: str
    chord: tuple[float, ...]
    seconds: float = 150.0
    swell: float = 16.0
    """Length of the loop segment and of one slow swell (s)."""
    level: float = 0.22


PADS: tuple[Pad, ...] = (
    Pad("pad-arrival", (130.81, 196.0, 261.63, 329.63)),  # C major, open
    Pad("pad-settle", (110.0, 164.81, 220.0, 261.63)),  # A minor
    Pad("pad-infusion", (98.0, 146.83, 196.0, 246.94), swell=20.0),  # G
    Pad("pad-deep", (73.42, 110.0, 146.83, 174.61), swell=24.0, level=0.2),  # D minor, low
    Pad("pad-return", (87.31, 130.81, 174.61, 220.0)),  # F
    Pad("pad-integration", (130.81, 164.81, 196.0, 246.94), swell=12.0),  # Cmaj7
)
CHIME = "chime.wav"


def default_media_dir() -> Path:
    """Where generated media live unless a directory is given: env or the user's cache."""
    env = os.environ.get(MEDIA_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "sessionctl" / "media"


def ensure_demo_media(directory: Path | str | None = None) -> Path:
    """Generate the demo pads and chime into ``directory`` unless already there; return it."""
    target = Path(directory).expanduser() if directory is not None else default_media_dir()
    target.mkdir(parents=True, exist_ok=True)
    marker = target / _MARKER
    current = marker.exists() and marker.read_text().strip() == VERSION
    for pad in PADS:
        path = target / f"{pad.name}.wav"
        if not current or not path.exists():
            write_pad(path, pad.chord, pad.seconds, swell=pad.swell, level=pad.level)
    if not current or not (target / CHIME).exists():
        write_chime(target / CHIME)
    marker.write_text(VERSION + "\n")
    return target


def _snap(freq: float, segment: float) -> float:
    """The nearest frequency that completes a whole number of cycles in ``segment``."""
    return max(1, round(freq * segment)) / segment


def pad_segment(chord: Sequence[float], segment: float, level: float = 0.22) -> array.array[int]:
    """One seamless loop of a pad: each note swells on its own slow envelope."""
    n = int(segment * RATE)
    segment = n / RATE
    notes = [_snap(f, segment) for f in chord]
    out = [0.0] * n
    for k, freq in enumerate(notes):
        # Each voice breathes once per segment, offset from the others, so the chord keeps
        # moving gently; a soft octave partial and a slightly detuned twin add warmth.
        phase = 2 * math.pi * k / max(1, len(notes))
        twin = _snap(freq * 1.003, segment)
        w1, w2, w3 = (2 * math.pi * f / RATE for f in (freq, twin, 2 * freq))
        we = 2 * math.pi / n
        amp = level / len(notes)
        for i in range(n):
            env = 0.55 + 0.45 * math.sin(we * i + phase)
            tone = math.sin(w1 * i) + 0.6 * math.sin(w2 * i) + 0.15 * math.sin(w3 * i)
            out[i] += amp * env * tone / 1.75
    return array.array("h", (int(32767 * max(-1.0, min(1.0, s))) for s in out))


def write_pad(
    path: Path, chord: Sequence[float], seconds: float, *, swell: float = 16.0, level: float = 0.22
) -> Path:
    """Write a pad ``seconds`` long by repeating one loop segment, faded in and out."""
    segment = pad_segment(chord, min(swell, seconds), level)
    total = int(seconds * RATE)
    repeats, rest = divmod(total, len(segment))
    samples = segment * repeats + segment[:rest]
    _fade_edges(samples, int(min(2.0, seconds / 4) * RATE))
    _write_wav(path, samples)
    return path


def write_chime(path: Path, seconds: float = 2.5) -> Path:
    """A soft bell: a few inharmonic partials with exponential decay and a gentle attack."""
    n = int(seconds * RATE)
    partials = ((880.0, 1.0, 1.2), (1318.5, 0.45, 0.9), (2210.0, 0.2, 0.5), (440.0, 0.3, 1.6))
    samples = array.array("h", bytes(2 * n))
    attack = int(0.01 * RATE)
    for i in range(n):
        t = i / RATE
        s = sum(a * math.exp(-t / d) * math.sin(2 * math.pi * f * t) for f, a, d in partials)
        ramp = min(1.0, i / attack)
        samples[i] = int(32767 * 0.18 * ramp * s)
    _fade_edges(samples, int(0.2 * RATE), start=False)
    _write_wav(path, samples)
    return path


def _fade_edges(samples: array.array[int], length: int, *, start: bool = True) -> None:
    length = min(length, len(samples) // 2)
    for i in range(length):
        f = i / length
        if start:
            samples[i] = int(samples[i] * f)
        samples[-1 - i] = int(samples[-1 - i] * f)


def _write_wav(path: Path, samples: array.array[int]) -> None:
    # Written under a temporary name and renamed, so a player never sees a half-written file.
    if sys.byteorder != "little":
        samples = array.array("h", samples)
        samples.byteswap()
    tmp = path.with_name(path.name + ".part")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    tmp.replace(path)


def wav_duration(path: Path) -> float | None:
    """Length of a WAV file from its header, or None if it is not a readable WAV."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate())
    except (OSError, EOFError, wave.Error):
        return None
