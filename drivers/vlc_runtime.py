"""libvlc, loaded defensively, and a thin player wrapper that respects its threading rule.

Pitfalls handled here (dependencies.md §6): ``import vlc`` succeeds without libvlc on Linux and
the first call fails; a partial install makes ``vlc.Instance()`` return None; without an
explicit ``--aout`` libvlc goes looking for PulseAudio; ``audio_get_volume()`` is not to be
trusted, so the wrapper remembers what it set; libvlc calls its callbacks on its own threads and
is not reentrant, so a callback only hands the event to the asyncio loop::

    runtime = VlcRuntime.open(aout="alsa", device="hw:CARD=Headphones")
    player = Player(runtime, "arrival", on_end=advance, on_error=skip)
    player.set_volume(0)
    player.play(Path("pad-arrival.wav"), offset=12.5)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from drivers.base import DriverError

INSTALL_HINT = "install it with: sudo apt-get install libvlc5 vlc-plugin-base"
HEADLESS_OUTPUTS = ("dummy", "adummy", "amem", "afile")
AMEM_RATE = 22050
ASOUND_CARDS = Path("/proc/asound/cards")
# ALSA plugins whose first positional argument is the card (``hw:1,0``, ``plughw:Headphones``).
_CARD_PLUGINS = frozenset(
    ("hw", "plughw", "default", "sysdefault", "front", "dmix", "dsnoop", "iec958", "hdmi")
)
_CARD_LINE = re.compile(r"^\s*(\d+)\s+\[([^\]]+)\]")


def alsa_card(device: str) -> str | None:
    """The card an ALSA device string names, or None when it names none (``null``, ``pulse``)::

    alsa_card("hw:CARD=Headphones,DEV=0")  # "Headphones"
    alsa_card("plughw:1,0")                 # "1"
    """
    plugin, sep, args = device.partition(":")
    if not sep or not args:
        return None
    parts = [a.strip() for a in args.split(",")]
    for part in parts:
        key, eq, value = part.partition("=")
        if eq and key.strip().upper() == "CARD":
            return value.strip().strip("\"'") or None
    if plugin.strip() in _CARD_PLUGINS and "=" not in parts[0]:
        return parts[0].strip("\"'") or None
    return None


def parse_cards(text: str) -> set[str]:
    """Card indices and ids listed in ``/proc/asound/cards`` (ALSA accepts either)."""
    cards: set[str] = set()
    for line in text.splitlines():
        match = _CARD_LINE.match(line)
        if match:
            cards.update((match.group(1), match.group(2).strip()))
    return cards


def missing_alsa_device(
    aout: str, device: str | None, cards_file: Path = ASOUND_CARDS
) -> str | None:
    """Why the configured ALSA device cannot be heard, or None if it exists or cannot be told.

    libvlc "plays" to a card that does not exist (state Playing, time advancing, no sound), so
    this is the only early sign. Without ``/proc/asound`` (no ALSA, or a container masking it)
    nothing can be said.
    """
    if aout != "alsa" or not device:
        return None
    card = alsa_card(device)
    if card is None:
        return None
    try:
        text = cards_file.read_text(errors="replace")
    except OSError:
        return None
    if card in parse_cards(text):
        return None
    return f"ALSA device {device} not found; list devices with aplay -L"


def load_libvlc(library: str | None = None) -> ModuleType:
    """Import python-vlc and prove libvlc answers; ``library`` names the shared object to use.

    Raises DriverError naming the Debian packages when libvlc is absent.
    """
    if library is not None:
        try:
            ctypes.CDLL(library)
        except OSError as exc:
            raise DriverError(f"libvlc not found ({exc}); {INSTALL_HINT}") from exc
        if "vlc" not in sys.modules:
            os.environ["PYTHON_VLC_LIB_PATH"] = library
    try:
        import vlc
    except (ImportError, OSError, NotImplementedError) as exc:
        raise DriverError(f"python-vlc cannot load libvlc ({exc}); {INSTALL_HINT}") from exc
    except SystemExit as exc:
        # python-vlc exits the process when PYTHON_VLC_LIB_PATH names a library it cannot load.
        raise DriverError(f"libvlc not found (PYTHON_VLC_LIB_PATH); {INSTALL_HINT}") from exc
    try:
        vlc.libvlc_get_version()
    except (NameError, AttributeError, OSError) as exc:
        raise DriverError(f"libvlc is not installed ({exc}); {INSTALL_HINT}") from exc
    module: ModuleType = vlc
    return module


@dataclass
class VlcRuntime:
    """One libvlc instance with an explicit audio output."""

    vlc: ModuleType
    instance: Any
    aout: str
    version: str

    @classmethod
    def open(
        cls,
        *,
        aout: str,
        device: str | None = None,
        audiofile: str | None = None,
        library: str | None = None,
    ) -> VlcRuntime:
        vlc = load_libvlc(library)
        args = ["--no-video", "--quiet", "--no-xlib", f"--aout={aout}"]
        if device:
            args.append(f"--{aout}-audio-device={device}")
        if aout == "afile" and audiofile:
            args.append(f"--audiofile-file={audiofile}")
        instance = vlc.Instance(args)
        if instance is None:
            raise DriverError(
                f"libvlc could not start with --aout={aout} (plugins missing?); {INSTALL_HINT}"
            )
        version = vlc.libvlc_get_version().decode(errors="replace")
        return cls(vlc, instance, aout, version)

    def duration(self, path: Path) -> float | None:
        """Parse a local file's length with libvlc (blocking: call it from a worker thread)."""
        media = self.instance.media_new_path(str(path))
        try:
            media.parse()
            ms = media.get_duration()
        finally:
            media.release()
        return ms / 1000.0 if ms and ms > 0 else None

    def close(self) -> None:
        self.instance.release()


@dataclass
class AmemProbe:
    """What libvlc handed the ``amem`` output: volumes as it applied them, and frame count."""

    volumes: list[tuple[float, float]] = field(default_factory=list)
    frames: int = 0


class Player:
    """One libvlc media player. Call it from the event-loop thread only."""

    def __init__(
        self,
        runtime: VlcRuntime,
        label: str,
        *,
        on_end: Callable[[], None],
        on_error: Callable[[], None],
        on_playing: Callable[[], None] | None = None,
        history: int = 20000,
    ) -> None:
        self.label = label
        self._vlc = runtime.vlc
        self._instance = runtime.instance
        self._loop = asyncio.get_running_loop()
        self.mp = runtime.instance.media_player_new()
        self.released = False
        self.volume: int | None = None
        self._volume_pending = False
        self.steps: deque[tuple[float, int]] = deque(maxlen=history)
        """Every volume this wrapper set, with its loop time: the fade as sent."""
        self.amem: AmemProbe | None = None
        self._on_playing = on_playing
        # ctypes callbacks that get garbage-collected crash the process: keep them all here.
        self._callbacks: list[Any] = []
        if runtime.aout == "amem":
            self._install_amem()
        events = self._vlc.EventType
        self._events = self.mp.event_manager()
        self._attached: list[Any] = []
        for kind, handler in (
            (events.MediaPlayerEndReached, on_end),
            (events.MediaPlayerEncounteredError, on_error),
            (events.MediaPlayerPlaying, self._playing),
        ):
            callback = self._handoff(handler)
            self._callbacks.append(callback)
            self._attached.append(kind)
            self._events.event_attach(kind, callback)

    def _handoff(self, handler: Callable[[], None]) -> Callable[[Any], None]:
        loop = self._loop

        def on_loop() -> None:
            # An event queued just before release() must not touch the freed player.
            if not self.released:
                handler()

        def on_libvlc_thread(_event: Any) -> None:
            # No libvlc call here (it is not reentrant): only queue the work for the loop.
            with contextlib.suppress(RuntimeError):  # the loop is closed: shutting down
                loop.call_soon_threadsafe(on_loop)

        return on_libvlc_thread

    def _install_amem(self) -> None:
        probe = AmemProbe()
        loop = self._loop
        decorators = self._vlc.CallbackDecorators

        @decorators.AudioPlayCb  # type: ignore[untyped-decorator]
        def play(_data: Any, _samples: Any, count: int, _pts: int) -> None:
            probe.frames += count  # only this thread writes it

        @decorators.AudioSetVolumeCb  # type: ignore[untyped-decorator]
        def set_volume(_data: Any, volume: float, _mute: bool) -> None:
            stamp = time.monotonic()
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(probe.volumes.append, (stamp, float(volume)))

        self._callbacks += [play, set_volume]
        self.mp.audio_set_callbacks(play, None, None, None, None, None)
        self.mp.audio_set_volume_callback(set_volume)
        self.mp.audio_set_format("S16N", AMEM_RATE, 1)
        self.amem = probe

    def _playing(self) -> None:
        # An audio output opened by play() (amem opens lazily) starts at its own default
        # volume: put ours back as soon as it exists.
        if self.volume is not None:
            self.mp.audio_set_volume(self.volume)
            self._volume_pending = False
        if self._on_playing is not None:
            self._on_playing()

    def set_volume(self, volume: int) -> None:
        volume = max(0, min(200, volume))
        if self.released or (volume == self.volume and not self._volume_pending):
            return
        self._volume_pending = self.mp.audio_set_volume(volume) != 0
        self.volume = volume
        self.steps.append((self._loop.time(), volume))

    def play(self, path: Path, offset: float = 0.0) -> bool:
        media = self._instance.media_new_path(str(path))
        if offset > 0:
            media.add_option(f":start-time={offset:.3f}")
        # set_media + play without stop() keeps the audio output, and with it the volume.
        self.mp.set_media(media)
        media.release()
        ok = bool(self.mp.play() == 0)
        if self.volume is not None and self._volume_pending:
            self._volume_pending = self.mp.audio_set_volume(self.volume) != 0
        return ok

    def playing(self) -> bool:
        return bool(self.mp.get_state() == self._vlc.State.Playing)

    def time_ms(self) -> int:
        """libvlc's playback time in ms (-1 when none): the stall watchdog's evidence."""
        return int(self.mp.get_time())

    def finished(self) -> bool:
        """The current media ended or failed (not a stale event from a replaced media)."""
        state = self._vlc.State
        return bool(self.mp.get_state() in (state.Ended, state.Error))

    def position(self) -> float:
        ms = self.mp.get_time()
        return ms / 1000.0 if ms and ms > 0 else 0.0

    def stop(self) -> None:
        self.mp.stop()

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        for kind in self._attached:
            self._events.event_detach(kind)
        self.mp.stop()
        self.mp.release()


class StallWatch:
    """Tells a player that says Playing while its time stands still (a hung output or input)::

    watch = StallWatch(after=5.0)
    stalled = watch.sample(key, playing=True, time_ms=1200, now=loop.time())
    """

    def __init__(self, after: float) -> None:
        self.after = after
        self._seen: dict[object, tuple[int, float]] = {}

    def sample(self, key: object, *, playing: bool, time_ms: int, now: float) -> bool:
        """Record one look at a player; True if it has been stuck for ``after`` seconds."""
        if not playing:
            self._seen.pop(key, None)
            return False
        last = self._seen.get(key)
        if last is None or last[0] != time_ms:
            self._seen[key] = (time_ms, now)
            return False
        return now - last[1] >= self.after

    def forget(self, keep: set[object]) -> None:
        """Drop players no longer watched."""
        for key in list(self._seen):
            if key not in keep:
                del self._seen[key]
