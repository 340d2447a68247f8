"""Output health: an ALSA card that does not exist, and a player whose time stands still."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.vlc_runtime import StallWatch, alsa_card, missing_alsa_device, parse_cards
from tests.audio.conftest import DriverMaker, until
from tests.audio.test_vlc_driver import play

CARDS = """\
 0 [PCH            ]: HDA-Intel - HDA Intel PCH
                      HDA Intel PCH at 0xf7f10000 irq 32
 1 [Headphones     ]: bcm2835_headphonbcm2835 Headphones - bcm2835 Headphones
                      bcm2835 Headphones
"""


@pytest.mark.parametrize(
    ("device", "card"),
    [
        ("hw:CARD=Headphones", "Headphones"),
        ("hw:CARD=Headphones,DEV=0", "Headphones"),
        ("plughw:1,0", "1"),
        ("sysdefault:CARD=PCH", "PCH"),
        ('dmix:CARD="PCH",DEV=0', "PCH"),
        ("surround51:CARD=PCH,DEV=0", "PCH"),
        ("hw:0", "0"),
        ("null", None),
        ("default", None),
        ("pulse", None),
        ("mypcm:whatever", None),
    ],
)
def test_card_named_by_a_device(device: str, card: str | None) -> None:
    assert alsa_card(device) == card


def test_cards_are_known_by_index_and_id() -> None:
    assert parse_cards(CARDS) == {"0", "PCH", "1", "Headphones"}
    assert parse_cards("--- no soundcards ---\n") == set()


def test_missing_device_check(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    cards.write_text(CARDS)
    assert missing_alsa_device("alsa", "hw:CARD=Headphones", cards) is None
    assert missing_alsa_device("alsa", "plughw:1,0", cards) is None
    message = missing_alsa_device("alsa", "hw:CARD=Nope", cards)
    assert message == "ALSA device hw:CARD=Nope not found; list devices with aplay -L"
    assert missing_alsa_device("alsa", "hw:CARD=headphones", cards) is not None  # ids are exact
    assert missing_alsa_device("alsa", "null", cards) is None
    assert missing_alsa_device("amem", "hw:CARD=Nope", cards) is None
    assert missing_alsa_device("alsa", None, cards) is None
    # No /proc/asound (no ALSA, or a container masking it): nothing can be said.
    assert missing_alsa_device("alsa", "hw:CARD=Nope", tmp_path / "absent") is None


def test_stall_watch() -> None:
    watch = StallWatch(after=5.0)
    assert not watch.sample("a", playing=True, time_ms=0, now=0.0)
    assert not watch.sample("a", playing=True, time_ms=300, now=1.0)
    assert not watch.sample("a", playing=True, time_ms=300, now=5.9)
    assert watch.sample("a", playing=True, time_ms=300, now=6.0)  # stuck for 5 s
    assert not watch.sample("a", playing=True, time_ms=600, now=7.0)  # moving again
    assert not watch.sample("a", playing=False, time_ms=600, now=20.0)  # ended: not a stall
    assert not watch.sample("a", playing=True, time_ms=600, now=21.0)  # fresh start
    assert not watch.sample("b", playing=True, time_ms=0, now=21.0)
    watch.forget({"a"})
    assert not watch.sample("b", playing=True, time_ms=0, now=40.0)  # forgotten, starts over


@pytest.mark.integration
async def test_missing_alsa_card_makes_the_driver_unavailable(
    make_driver: DriverMaker, playlists: Callable[..., str], availability: list[bool]
) -> None:
    if not Path("/proc/asound/cards").is_file():
        # Hardware-dependent (no ALSA in this kernel or container): not a CI failure.
        pytest.skip("no /proc/asound/cards on this machine")
    audio = await make_driver(aout="alsa", device="hw:CARD=NoSuchCard")
    assert not audio.health.available and availability == [False]
    assert audio.health.error == (
        "ALSA device hw:CARD=NoSuchCard not found; list devices with aplay -L"
    )
    await audio.apply(play(playlists("p", ["a.wav"]), 50))  # still accepted; still reported
    assert not audio.health.available and availability == [False]


@pytest.mark.integration
async def test_watchdog_quiet_while_time_advances(
    make_driver: DriverMaker, playlists: Callable[..., str], availability: list[bool]
) -> None:
    audio = await make_driver(stall_after=1.0)
    await audio.apply(play(playlists("p", ["short.wav", "a.wav"]), 50))
    stream = audio.current
    assert stream is not None
    # Over a track change too (time goes back to 0): well past ``stall_after`` in all.
    await until(lambda: stream.index == 1 and stream.player.position() > 0.6)
    assert audio.health.available and audio.health.error is None and availability == []


@pytest.mark.integration
async def test_watchdog_reports_stalled_playback_and_recovery(
    make_driver: DriverMaker, playlists: Callable[..., str], availability: list[bool]
) -> None:
    audio = await make_driver(stall_after=1.0)
    await audio.apply(play(playlists("p", ["a.wav"], loop=True), 50))
    stream = audio.current
    assert stream is not None
    await until(lambda: stream.player.position() > 0)
    # libvlc's slowest rate: still "Playing", its time all but frozen — a hung output as the
    # watchdog sees it, made by libvlc itself.
    stream.player.mp.set_rate(1 / 32)
    await until(lambda: availability == [False])
    assert not audio.health.available
    assert audio.health.error is not None and "stalled" in audio.health.error
    stream.player.mp.set_rate(1.0)
    await until(lambda: availability == [False, True])
    assert audio.health.available and audio.health.error is None
