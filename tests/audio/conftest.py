"""Fixtures for the audio tests: real libvlc on the headless ``amem`` output, short generated
media, playlists written for each test."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.base import DriverContext, DriverError
from drivers.demo_audio import write_chime, write_pad
from drivers.vlc import VlcAudio
from drivers.vlc_runtime import load_libvlc


def _require_libvlc() -> None:
    try:
        load_libvlc()
    except DriverError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"libvlc is required under CI: {exc}")
        pytest.skip(f"libvlc not available: {exc}")


@pytest.fixture
def libvlc() -> None:
    _require_libvlc()


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Short pads: ``a.wav`` and ``b.wav`` 3 s, ``short.wav`` 1.5 s, and a short chime."""
    folder = tmp_path_factory.mktemp("media")
    write_pad(folder / "a.wav", (220.0, 330.0), 3.0, swell=3.0)
    write_pad(folder / "b.wav", (196.0, 294.0), 3.0, swell=3.0)
    write_pad(folder / "short.wav", (262.0,), 1.5, swell=1.5)
    write_chime(folder / "chime.wav", seconds=0.8)
    return folder


class Events(list[tuple[str, dict[str, Any]]]):
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def playlists(tmp_path: Path) -> Callable[..., str]:
    """Write a playlist into this test's playlists folder: ``playlists("x", ["a.wav"])``."""
    folder = tmp_path / "playlists"
    folder.mkdir()

    def write(name: str, tracks: list[Any], **extra: Any) -> str:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({"tracks": tracks, **extra}))
        return name

    return write


@pytest.fixture
def availability() -> list[bool]:
    """What the driver reported through ``report_availability`` (whole driver), in order."""
    return []


DriverMaker = Callable[..., Awaitable[VlcAudio]]


@pytest.fixture
async def make_driver(
    libvlc: None, media: Path, tmp_path: Path, events: Events, availability: list[bool]
) -> AsyncIterator[DriverMaker]:
    made: list[VlcAudio] = []

    async def make(**options: Any) -> VlcAudio:
        context = DriverContext(
            monotonic=time.monotonic,
            state_dir=tmp_path,
            media_dir=media,
            playlists_dir=tmp_path / "playlists",
            on_event=lambda kind, data: events.append((kind, data)),
            on_availability=lambda _driver, _device, ok: availability.append(ok),
        )
        settings: dict[str, Any] = {
            "aout": "amem",
            "min_fade_in": 0,
            "chimes": {"default": "chime.wav"},
            "demo_media_dir": str(tmp_path / "demo"),
            **options,
        }
        driver = VlcAudio("music", settings, context)
        await driver.start()
        made.append(driver)
        return driver

    yield make
    for driver in made:
        await driver.close()


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``predicate`` holds; these tests measure playback in real time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)
