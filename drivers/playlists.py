"""Playlist files (YAML) and where a timeline position falls inside a playlist.

A playlist is ``playlists/<name>.yaml``::

    media: "@demo"          # optional: "@demo" = generated demo audio, else a folder
    loop: true
    shuffle: false
    seed: 7                 # shuffle order is fixed by the seed, so a resume finds its place
    tracks:
      - pad-arrival.wav     # relative to the media folder
      - file: pad-settle.wav
        gain: -3            # dB, applied on top of the scene volume

    >>> pl = Playlist.model_validate({"tracks": ["a.wav", {"file": "b.wav", "gain": -3}]})
    >>> locate([10.0, 20.0], 25.0, loop=True)
    (1, 15.0)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drivers.base import DriverConfigError

DEMO_MEDIA = "@demo"


class Track(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(min_length=1)
    gain: float = Field(default=0.0, ge=-40.0, le=6.0)
    """Per-track gain in dB, to even out loudness between recordings."""
    title: str | None = None


class Playlist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str | None = None
    media: str | None = None
    """Folder the tracks are relative to: ``"@demo"``, an absolute path, or a path relative to
    the driver's media folder. Unset: the driver's media folder."""
    loop: bool = True
    shuffle: bool = False
    seed: int = 0
    tracks: tuple[Track, ...] = Field(min_length=1)

    @field_validator("tracks", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"file": v} if isinstance(v, str) else v for v in value]
        return value

    def order(self) -> list[Track]:
        """Tracks in play order: as written, or shuffled reproducibly by ``seed``."""
        tracks = list(self.tracks)
        if self.shuffle:
            random.Random(self.seed).shuffle(tracks)
        return tracks


@dataclass(frozen=True)
class ResolvedTrack:
    path: Path
    gain: float
    label: str
    """The track as written in the playlist; what events report (never a full path)."""


def load_playlist(directory: Path, name: str) -> Playlist:
    """Load ``<directory>/<name>.yaml``; a bad file raises DriverConfigError naming it."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DriverConfigError(f"invalid playlist name {name!r}")
    path = directory / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "none"
        raise DriverConfigError(f"no playlist {name!r} in {directory} (known: {known})") from None
    except (OSError, yaml.YAMLError) as exc:
        raise DriverConfigError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise DriverConfigError(f"{path}: a playlist is a mapping with a 'tracks' list")
    try:
        return Playlist.model_validate({**raw, "name": name})
    except ValidationError as exc:
        raise DriverConfigError(f"{path}: {exc}") from exc


def resolve(
    playlist: Playlist, media_dir: Path, demo_dir: Path | None = None
) -> list[ResolvedTrack]:
    """Absolute paths of the tracks in play order."""
    base = media_folder(playlist, media_dir, demo_dir)
    return [ResolvedTrack(_join(base, t.file), t.gain, t.file) for t in playlist.order()]


def media_folder(playlist: Playlist, media_dir: Path, demo_dir: Path | None) -> Path:
    if playlist.media is None:
        return media_dir
    if playlist.media == DEMO_MEDIA:
        if demo_dir is None:
            from drivers.demo_audio import ensure_demo_media

            return ensure_demo_media()
        return demo_dir
    return _join(media_dir, playlist.media)


def _join(base: Path, relative: str) -> Path:
    path = Path(relative).expanduser()
    return path if path.is_absolute() else base / path


def locate(durations: Sequence[float], position: float, *, loop: bool) -> tuple[int, float] | None:
    """Which track plays ``position`` seconds into the playlist, and how far into it.

    Tracks of zero length (unplayable) are passed over. None: the playlist has ended.
    """
    total = sum(d for d in durations if d > 0)
    if total <= 0:
        return None
    position = max(0.0, position)
    if position >= total:
        if not loop:
            return None
        position %= total
    for index, duration in enumerate(durations):
        if duration <= 0:
            continue
        if position < duration:
            return index, position
        position -= duration
    return None
