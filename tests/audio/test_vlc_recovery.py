"""Panic against calls in flight, panic against chimes, and playlists coming back after their
media did — on real libvlc (``amem``)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.audio.conftest import DriverMaker, Events, until
from tests.audio.test_vlc_driver import play, stop

pytestmark = pytest.mark.integration


async def test_call_queued_before_a_panic_never_plays(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver()
    playlists("release", ["a.wav"])
    # Holding the driver's lock stands in for a playlist still being opened (a slow length
    # lookup): the next command waits behind it, then a panic arrives.
    async with audio._lock:
        queued = asyncio.create_task(audio.apply(play("release", 50)))
        await asyncio.sleep(0)
        assert not queued.done()
        await audio.apply(stop(urgent=True))
    await queued
    assert audio.current is None and not audio.outgoing


async def test_urgent_play_queued_behind_a_slow_call_still_plays(
    make_driver: DriverMaker, playlists: Callable[..., str]
) -> None:
    audio = await make_driver()
    playlists("calm", ["a.wav"])
    async with audio._lock:
        queued = asyncio.create_task(audio.apply(play("calm", 40, urgent=True)))
        await asyncio.sleep(0)
    await queued
    assert audio.current is not None and audio.current.name == "calm"


async def test_panic_cuts_a_sounding_chime(make_driver: DriverMaker) -> None:
    # A long "chime": headless outputs drain a short file at once, so it would be over
    # before the test could see it sounding.
    audio = await make_driver(chimes={"default": "a.wav"})
    await audio.chime("vitals")
    chime = audio._chime_player
    assert chime is not None and chime.amem is not None
    await until(lambda: chime.playing() and chime.position() > 0)
    await audio.apply(stop(urgent=True))
    assert not chime.playing() and chime.volume == 0
    await audio.wait_chimes()
    assert audio._ducks == 0


async def test_panic_drops_a_chime_not_yet_sounding(make_driver: DriverMaker) -> None:
    audio = await make_driver()
    await audio.chime("vitals")  # waits for the music to duck before it sounds
    await audio.apply(stop(urgent=True))
    await audio.wait_chimes()
    chime = audio._chime_player
    assert chime is not None and chime.amem is not None and chime.amem.frames == 0
    assert not chime.playing() and audio._ducks == 0


async def test_unplayable_playlist_plays_once_its_media_is_back(
    make_driver: DriverMaker, playlists: Callable[..., str], events: Events, media: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    folder = tmp_path / "usb"
    folder.mkdir()
    audio = await make_driver(media_dir=str(folder))
    command = play(playlists("p", ["a.wav"]), 50)
    await audio.apply(command)
    assert audio.current is None and events.kinds().count("playlist_unplayable") == 1
    await audio.apply(command)  # still missing: tried again, not reported again
    assert events.kinds().count("playlist_unplayable") == 1
    assert events.kinds().count("track_skipped") == 1
    shutil.copy(media / "a.wav", folder / "a.wav")
    await audio.apply(command)  # the room re-sends the desired state
    stream = audio.current
    assert stream is not None and stream.name == "p" and not stream.finished
    await until(lambda: stream.player.amem is not None and stream.player.amem.frames > 0)
    assert audio.health.error is None


async def test_playlist_that_gave_up_restarts_on_resend(
    make_driver: DriverMaker, playlists: Callable[..., str], events: Events, media: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    folder = tmp_path / "usb"
    folder.mkdir()
    shutil.copy(media / "short.wav", folder / "s.wav")
    audio = await make_driver(media_dir=str(folder))
    command = play(playlists("p", ["s.wav"], loop=True), 50)
    await audio.apply(command)
    gone = audio.current
    assert gone is not None
    await until(lambda: gone.player.amem is not None and gone.player.amem.frames > 0)
    (folder / "s.wav").unlink()  # the media goes away mid-play
    await until(lambda: gone.finished)
    assert "playlist_unplayable" in events.kinds()
    shutil.copy(media / "short.wav", folder / "s.wav")
    await audio.apply(command)
    stream = audio.current
    assert stream is not None and stream is not gone and not stream.finished
    await until(lambda: stream.player.amem is not None and stream.player.amem.frames > 0)
    assert audio.health.error is None
