"""The VLC driver against real libvlc on the headless ``amem`` output.

Fades are checked two ways: the volumes our player wrapper sent (``player.steps``) and the
volumes libvlc handed the ``amem`` output (``player.amem.volumes``). Assertions are about
ordering, monotonicity and endpoints, never tight timing.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from drivers.base import MusicCommand
from drivers.vlc import VlcAudio, _Stream, db_to_volume_factor
from tests.audio.conftest import DriverMaker, Events, until

pytestmark = pytest.mark.integration


def play(playlist: str, volume: float, ramp: float = 0.0, **kw: float | bool) -> MusicCommand:
    return MusicCommand(playlist, True, volume, ramp=ramp, **kw)  # type: ignore[arg-type]


def stop(ramp: float = 0.0, urgent: bool = False) -> MusicCommand:
    return MusicCommand(None, False, 0.0, ramp=ramp, urgent=urgent)


def values(steps: Sequence[tuple[float, float]]) -> list[float]:
    return [v for _, v in steps]


def nondecreasing(xs: Sequence[float]) -> bool:
    return all(b >= a for a, b in itertools.pairwise(xs))


def nonincreasing(xs: Sequence[float]) -> bool:
    return all(b <= a for a, b in itertools.pairwise(xs))


def applied(stream: _Stream) -> list[float]:
    """Volumes libvlc applied (amem), from our first step on: amem opens at its own 1.0."""
    assert stream.player.amem is not None
    first = stream.player.steps[0][0]
    return [v for t, v in stream.player.amem.volumes if t >= first - 0.005]


async def settled(stream: _Stream) -> None:
    await stream.fader.wait()


async def test_plays_generated_file_with_fade_in(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver(ceiling=80)
    await audio.apply(play(playlists("p", ["a.wav"]), 50, ramp=0.4))
    stream = audio.current
    assert stream is not None
    await settled(stream)
    await until(lambda: stream.player.amem is not None and stream.player.amem.frames > 2205)
    sent = values(stream.player.steps)
    assert sent[0] == 0 and sent[-1] == 40  # 50 % of a ceiling of 80
    assert nondecreasing(sent) and len(set(sent)) > 5
    await until(lambda: bool(applied(stream)) and applied(stream)[-1] == pytest.approx(0.40))
    assert nondecreasing([v for v in applied(stream) if v < 1.0])


async def test_level_triggered_repeats_do_not_restart(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver()
    command = play(playlists("p", ["a.wav", "b.wav"]), 60, ramp=0.6)
    await audio.apply(command)
    stream = audio.current
    assert stream is not None
    end = stream.fader.level.t1
    for _ in range(3):
        await audio.apply(command)
    assert audio.current is stream and stream.fader.level.t1 == end and stream.index == 0
    await audio.apply(play("p", 30, ramp=0.3))  # same playlist, new volume: retarget only
    assert audio.current is stream and stream.fader.level.end == 30
    await settled(stream)
    assert values(stream.player.steps)[-1] == 30


async def test_fade_out_then_stop(make_driver: DriverMaker, playlists: Callable[..., str]) -> None:
    audio = await make_driver()
    await audio.apply(play(playlists("p", ["a.wav"]), 60))
    stream = audio.current
    assert stream is not None
    await settled(stream)
    await audio.apply(stop(ramp=0.4))
    assert audio.current is None and audio.outgoing == [stream]
    await audio.apply(stop(ramp=0.4))  # a repeat does not lengthen the fade
    await until(lambda: not audio.outgoing)
    falling = values(stream.player.steps)
    peak = falling.index(60)
    assert nonincreasing(falling[peak:]) and falling[-1] == 0


async def test_crossfade_new_rises_while_old_falls(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver()
    await audio.apply(play(playlists("one", ["a.wav"]), 60))
    old = audio.current
    assert old is not None
    await settled(old)
    playlists("two", ["b.wav"])
    await audio.apply(play("two", 40, ramp=0.6))
    new = audio.current
    assert new is not None and new is not old and audio.outgoing == [old]
    await until(lambda: not audio.outgoing)
    await settled(new)
    rise = list(new.player.steps)
    sent_old = list(old.player.steps)
    peak = max(i for i, (_, v) in enumerate(sent_old) if v == 60)
    fall = sent_old[peak:]
    assert nondecreasing(values(rise)) and values(rise)[-1] == 40
    assert nonincreasing(values(fall)) and values(fall)[-1] == 0
    # Overlap: the new player was already audible before the old one went silent.
    first_audible = next(t for t, v in rise if v > 0)
    silent = next(t for t, v in fall if v == 0)
    assert first_audible < silent
    assert nondecreasing([v for v in applied(new) if v < 1.0])


async def test_ducks_under_chime_and_restores(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver(duck_db=-12)
    await audio.apply(play(playlists("p", ["a.wav", "b.wav"]), 80))
    stream = audio.current
    assert stream is not None
    await settled(stream)
    await audio.chime("vitals")
    await audio.wait_chimes()
    await settled(stream)
    sent = values(stream.player.steps)
    low = min(sent[sent.index(80) :])
    assert low == round(80 * db_to_volume_factor(-12))  # 50: -12 dB on VLC's cubic volume
    assert sent[-1] == 80
    chime = audio._chime_player
    assert chime is not None and chime.amem is not None and chime.amem.frames > 0


async def test_ducked_context_for_spoken_prompts(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver()
    await audio.apply(play(playlists("p", ["a.wav"]), 100))
    stream = audio.current
    assert stream is not None
    async with audio.ducked():
        await settled(stream)
        assert stream.player.volume == round(100 * db_to_volume_factor(-12))
    await settled(stream)
    assert stream.player.volume == 100


async def test_missing_track_is_skipped_with_event(
    make_driver: DriverMaker, playlists: Callable[..., str], events: Events
) -> None:
    audio = await make_driver()
    await audio.apply(play(playlists("p", ["gone.wav", "b.wav"]), 50))
    stream = audio.current
    assert stream is not None and stream.index == 1
    assert ("track_skipped", {"driver": "music", "playlist": "p", "track": "gone.wav",
            "reason": "missing or unreadable"}) in events  # fmt: skip
    await until(lambda: stream.player.amem is not None and stream.player.amem.frames > 0)


async def test_end_of_track_plays_next_and_skips_unreadable(
    make_driver: DriverMaker, playlists: Callable[..., str], events: Events, media: Path
) -> None:
    audio = await make_driver()
    await audio.apply(play(playlists("p", ["short.wav", "gone.wav", "b.wav"]), 50))
    stream = audio.current
    assert stream is not None and stream.index == 0
    await until(lambda: stream.index == 2)
    # Reported when the playlist was opened, and again when playback passed over it.
    assert events.kinds().count("track_skipped") == 2
    assert stream.player.volume == 50


async def test_no_playable_track_is_reported_and_music_carries_on(
    make_driver: DriverMaker, playlists: Callable[..., str], events: Events
) -> None:
    audio = await make_driver()
    await audio.apply(play(playlists("ok", ["a.wav"]), 50))
    playing = audio.current
    await audio.apply(play(playlists("bad", ["x.wav", "y.wav"]), 30, ramp=0.2))
    assert "playlist_unplayable" in events.kinds()
    assert audio.health.error is not None and "bad" in audio.health.error
    assert audio.current is playing  # not silence: the previous music keeps playing
    assert playing is not None and playing.fader.level.end == 30
    await audio.apply(play("bad", 30, ramp=0.2))  # level-triggered repeat: reported once
    assert events.kinds().count("playlist_unplayable") == 1


async def test_panic_stops_everything_at_once(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver()
    await audio.apply(play(playlists("one", ["a.wav"]), 60))
    await audio.apply(play(playlists("two", ["b.wav"]), 60, ramp=5))
    streams = [audio.current, *audio.outgoing]
    await audio.apply(stop(urgent=True))
    assert audio.current is None and not audio.outgoing
    for stream in streams:
        assert stream is not None and stream.player.volume == 0 and not stream.fader.busy


async def test_resume_seeks_to_position(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver()
    # a.wav and b.wav are 3 s each: 4.2 s in is 1.2 s into b.wav.
    await audio.apply(play(playlists("p", ["a.wav", "b.wav"]), 50, ramp=0.3, position=4.2))
    stream = audio.current
    assert stream is not None and stream.index == 1
    await until(lambda: stream.player.position() > 0)
    assert 1.0 <= stream.player.position() < 2.9
    assert values(stream.player.steps)[0] == 0  # fades in rather than starting loud
    await audio.apply(stop())
    await audio.apply(play("p", 50, position=7.0))  # looped: 7 s = 1 s into a.wav
    assert audio.current is not None and audio.current.index == 0


async def test_adummy_output_sets_volume_before_playing(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver(aout="adummy")
    await audio.apply(play(playlists("p", ["a.wav"]), 70, ramp=0.2))
    stream = audio.current
    assert stream is not None and stream.player.amem is None
    await settled(stream)
    await until(lambda: stream.player.position() > 0)
    assert values(stream.player.steps)[-1] == 70


async def test_one_fade_task_per_player(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver()
    await audio.apply(play(playlists("p", ["a.wav"]), 60, ramp=2))
    before = len(asyncio.all_tasks())
    for volume in (10, 20, 30, 40):
        await audio.apply(play("p", volume, ramp=2))
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # let the cancelled tasks unwind
    assert len(asyncio.all_tasks()) == before


async def test_apply_before_start_is_an_error(tmp_path: Path) -> None:
    from drivers.base import DriverContext, DriverError

    audio = VlcAudio("music", {"aout": "amem"}, DriverContext(lambda: 0.0, tmp_path))
    with pytest.raises(DriverError, match="not started"):
        await audio.apply(stop())


async def test_alsa_output_as_in_production(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    # ALSA's "null" device: the production output module, with nothing to hear.
    audio = await make_driver(aout="alsa", device="null")
    await audio.apply(play(playlists("p", ["a.wav"]), 50, ramp=0.2))
    stream = audio.current
    assert stream is not None
    await settled(stream)
    await until(lambda: stream.player.position() > 0.2)
    assert values(stream.player.steps)[-1] == 50
