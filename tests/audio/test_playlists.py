"""Playlist files: model, loading errors, play order, position lookup, shipped playlists."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.base import DriverConfigError
from drivers.demo_audio import CHIME, PADS
from drivers.playlists import Playlist, load_playlist, locate, resolve
from drivers.vlc import DEFAULT_PLAYLISTS

SHIPPED = ("arrival", "settle", "infusion", "deep", "return", "integration", "demo")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_playlists_use_generated_demo_audio(name: str) -> None:
    playlist = load_playlist(DEFAULT_PLAYLISTS, name)
    assert playlist.media == "@demo"
    generated = {f"{pad.name}.wav" for pad in PADS}
    assert {t.file for t in playlist.tracks} <= generated
    assert CHIME not in {t.file for t in playlist.tracks}


def test_short_and_long_track_forms(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("tracks:\n  - a.wav\n  - {file: sub/b.flac, gain: -4.5}\n")
    playlist = load_playlist(tmp_path, "p")
    tracks = resolve(playlist, tmp_path / "media")
    assert [t.path for t in tracks] == [tmp_path / "media/a.wav", tmp_path / "media/sub/b.flac"]
    assert [t.gain for t in tracks] == [0.0, -4.5]
    assert [t.label for t in tracks] == ["a.wav", "sub/b.flac"]


def test_media_folder_relative_absolute_and_demo(tmp_path: Path) -> None:
    relative = Playlist.model_validate({"media": "clinic", "tracks": ["a.wav"]})
    absolute = Playlist.model_validate({"media": "/srv/music", "tracks": ["a.wav"]})
    demo = Playlist.model_validate({"media": "@demo", "tracks": ["a.wav"]})
    assert resolve(relative, tmp_path)[0].path == tmp_path / "clinic/a.wav"
    assert resolve(absolute, tmp_path)[0].path == Path("/srv/music/a.wav")
    assert resolve(demo, tmp_path, demo_dir=tmp_path / "d")[0].path == tmp_path / "d/a.wav"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tracks: []\n", "at least 1"),
        ("tracks: [a.wav]\nvolume: 3\n", "Extra inputs"),
        ("tracks: [{file: a.wav, gain: 20}]\n", "less than or equal"),
        ("- a.wav\n", "mapping"),
        ("tracks: [a.wav\n", "p.yaml"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(DriverConfigError, match=message):
        load_playlist(tmp_path, "p")


def test_unknown_playlist_lists_known_ones(tmp_path: Path) -> None:
    (tmp_path / "calm.yaml").write_text("tracks: [a.wav]\n")
    with pytest.raises(DriverConfigError, match="known: calm"):
        load_playlist(tmp_path, "loud")
    with pytest.raises(DriverConfigError, match="invalid"):
        load_playlist(tmp_path, "../etc/passwd")


def test_shuffle_is_reproducible_from_seed() -> None:
    tracks = [f"t{i}.wav" for i in range(12)]
    one = Playlist.model_validate({"shuffle": True, "seed": 3, "tracks": tracks})
    again = Playlist.model_validate({"shuffle": True, "seed": 3, "tracks": tracks})
    other = Playlist.model_validate({"shuffle": True, "seed": 4, "tracks": tracks})
    assert [t.file for t in one.order()] == [t.file for t in again.order()]
    assert [t.file for t in one.order()] != [t.file for t in other.order()]
    assert sorted(t.file for t in one.order()) == sorted(tracks)


def test_locate_maps_position_to_track_and_offset() -> None:
    durations = [10.0, 0.0, 20.0]  # the middle track is unplayable
    assert locate(durations, 0, loop=False) == (0, 0.0)
    assert locate(durations, 12.5, loop=False) == (2, 2.5)
    assert locate(durations, 30.0, loop=False) is None
    assert locate(durations, 35.0, loop=True) == (0, 5.0)
    assert locate([0.0, 0.0], 1.0, loop=True) is None
