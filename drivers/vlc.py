"""Room music through libvlc: playlists, fades, crossfades, ducking, resume at a position.

Room config::

    drivers:
      music:
        type: vlc
        aout: alsa                      # always explicit; "adummy"/"amem"/"afile" for tests
        device: "hw:CARD=Headphones"
        ceiling: 70                     # VLC volume % that a scene's 100 % means (calibrated)
        duck_db: -12                    # music dip while a chime or spoken prompt plays
        chimes: {default: chime.wav}    # kind -> file (relative to media_dir); demo chime if unset
        chime_volume: 50                # % of the ceiling
        min_fade_in: 1.0                # s: music never jumps in from silence unless urgent
        stall_after: 5.0                # s: Playing with the time standing still = unavailable
        media_dir: /var/lib/sessionctl/media      # default: DriverContext.media_dir
        playlists_dir: /etc/sessionctl/playlists  # default: DriverContext.playlists_dir
        libvlc: /usr/lib/x86_64-linux-gnu/libvlc.so.5   # optional: which libvlc to load

``apply(MusicCommand)`` is level-triggered: the same state may arrive again and again, and a
playlist that is already playing is never restarted — only its volume ramp is retargeted. A new
playlist with a ramp is a crossfade over two players; stopping with a ramp fades out first;
``urgent`` (panic) or a stop with no ramp silences at once; an urgent stop also cuts a chime.
A call that was waiting behind another when a panic arrived is dropped, never played late.

Volume: VLC's software volume is cubic (amplitude = (v/100)³), so a linear ramp of the VLC
volume is close to even in loudness, and a change of ``d`` dB is a factor ``10**(d/60)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from drivers.base import (
    DriverConfigError,
    DriverContext,
    DriverError,
    DriverHealth,
    MusicCommand,
)
from drivers.demo_audio import CHIME, ensure_demo_media, wav_duration
from drivers.playlists import ResolvedTrack, load_playlist, locate, resolve
from drivers.vlc_runtime import Player, StallWatch, VlcRuntime, missing_alsa_device
from drivers.volume_ramp import Fader

DEFAULT_PLAYLISTS = Path(__file__).resolve().parent.parent / "playlists"
# Starting from silence is never a jump unless it is urgent: a patient with eyeshades on
# should not be startled by music arriving at full level.
MIN_FADE_IN = 1.0
DUCK_DOWN = 0.3
DUCK_RESTORE = 1.5
STALL_AFTER = 5.0


def db_to_volume_factor(db: float) -> float:
    """VLC's software volume is cubic in amplitude, so ``d`` dB is this factor of volume."""
    return float(10 ** (db / 60.0))


class _Stream:
    """One playlist on one player with its one fade task."""

    def __init__(
        self,
        driver: VlcAudio,
        runtime: VlcRuntime,
        name: str,
        tracks: list[ResolvedTrack],
        loop: bool,
    ) -> None:
        self.name = name
        self.driver = driver
        self.tracks = tracks
        self.loop = loop
        self.index = -1
        self.finished = False
        self._failures = 0
        self.player = Player(
            runtime, name, on_end=self._on_end, on_error=self._on_error, on_playing=self._ok
        )
        self.fader = Fader(self._sink, rate=driver.steps_per_second)
        self.fader.set_duck(driver.duck_factor(), 0.0)

    @property
    def gain(self) -> float:
        return db_to_volume_factor(self.tracks[self.index].gain) if self.index >= 0 else 1.0

    def _sink(self, percent: float) -> None:
        self.player.set_volume(round(self.driver.ceiling * percent / 100.0 * self.gain))

    def begin(self, index: int, offset: float) -> bool:
        return self._play_from(index, offset)

    def _play_from(self, index: int, offset: float = 0.0) -> bool:
        """Play the first playable track from ``index``; False if none is."""
        for step in range(len(self.tracks)):
            i = (index + step) % len(self.tracks)
            if i < index and not self.loop:
                break
            track = self.tracks[i]
            if not _readable(track.path):
                self.driver.skipped(self.name, track, "missing or unreadable")
                offset = 0.0
                continue
            self.index = i
            self._sink(self.fader.value())
            if self.player.play(track.path, offset):
                return True
            self.driver.skipped(self.name, track, "libvlc refused to play it")
            offset = 0.0
        return False

    def _ok(self) -> None:
        self._failures = 0
        self.driver.healthy(self.name)

    def _on_end(self) -> None:
        if not self.finished and self.player.finished():
            self._advance()

    def _on_error(self) -> None:
        if self.finished or not self.player.finished():
            return
        self.driver.skipped(self.name, self.tracks[self.index], "libvlc could not play it")
        self._failures += 1
        if self._failures >= len(self.tracks):
            self._give_up()
            return
        self._advance()

    def _advance(self) -> None:
        nxt = self.index + 1
        if nxt >= len(self.tracks):
            if not self.loop:
                self.finished = True
                self.driver.report("playlist_finished", {"playlist": self.name})
                return
            nxt = 0
        if not self._play_from(nxt):
            self._give_up()

    def _give_up(self) -> None:
        self.finished = True
        self.driver.unplayable(self.name)

    def close(self) -> None:
        self.fader.cancel()
        self.player.set_volume(0)
        self.player.release()


class _Unplayable(Exception):
    """No track of the playlist can be played (already reported)."""


def _readable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


class VlcAudio:
    """The libvlc music driver; see the module docstring for its options."""

    kind = "vlc"

    def __init__(self, name: str, options: Mapping[str, Any], context: DriverContext) -> None:
        self.name = name
        self.health = DriverHealth(available=False)
        self._context = context
        self.aout = str(options.get("aout", "alsa"))
        self.device = options.get("device")
        self.audiofile = options.get("audiofile")
        self.library = options.get("libvlc")
        self.ceiling = _number(name, options, "ceiling", 100.0, 0.0, 200.0)
        self.duck_db = _number(name, options, "duck_db", -12.0, -60.0, 0.0)
        self.chime_volume = _number(name, options, "chime_volume", 50.0, 0.0, 100.0)
        self.steps_per_second = _number(name, options, "steps_per_second", 25.0, 1.0, 100.0)
        self.min_fade_in = _number(name, options, "min_fade_in", MIN_FADE_IN, 0.0, 60.0)
        self.stall_after = _number(name, options, "stall_after", STALL_AFTER, 0.2, 600.0)
        media = options.get("media_dir") or context.media_dir
        playlists = options.get("playlists_dir") or context.playlists_dir
        self.media_dir = Path(media).expanduser() if media else None
        self.playlists_dir = Path(playlists).expanduser() if playlists else DEFAULT_PLAYLISTS
        demo = options.get("demo_media_dir")
        self._demo_dir_option = Path(demo).expanduser() if demo else None
        chimes = options.get("chimes") or {}
        if not isinstance(chimes, Mapping):
            raise DriverConfigError(f"{name}: 'chimes' maps a prompt kind to a sound file")
        self.chimes = {str(k): str(v) for k, v in chimes.items()}
        self._runtime: VlcRuntime | None = None
        self._demo: asyncio.Task[Path] | None = None
        self.current: _Stream | None = None
        self.outgoing: list[_Stream] = []
        self._chime_player: Player | None = None
        self._chime_done: asyncio.Event | None = None
        self._chime_tasks: set[asyncio.Task[None]] = set()
        self._ducks = 0
        self._lock = asyncio.Lock()
        self._generation = 0
        self._failed: str | None = None
        self._durations: dict[tuple[Path, float], float | None] = {}
        # Why the output cannot be heard, by source ("device", "stall"); empty = available.
        self._trouble: dict[str, str] = {}
        self._watchdog: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load libvlc with the configured output; DriverError names the packages if absent."""
        try:
            self._runtime = VlcRuntime.open(
                aout=self.aout,
                device=self.device,
                audiofile=self.audiofile,
                library=self.library,
            )
        except DriverError as exc:
            self.health.available = False
            self.health.error = str(exc)
            raise
        self._chime_player = Player(
            self._runtime, "chime", on_end=self._chime_ended, on_error=self._chime_ended
        )
        self.health.available = True
        self.health.error = None
        self._check_device()
        self._watchdog = asyncio.create_task(self._watch_stalls())

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        self._stop_all()
        self._stop_chimes()
        if self._chime_player is not None:
            self._chime_player.release()
            self._chime_player = None
        if self._demo is not None and not self._demo.done():
            with contextlib.suppress(BaseException):
                await self._demo
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
        self.health.available = False

    @property
    def version(self) -> str | None:
        return self._runtime.version if self._runtime else None

    # -- music -----------------------------------------------------------------------------

    async def apply(self, command: MusicCommand) -> None:
        runtime = self._require()
        silence = not command.playing or command.playlist is None
        if command.urgent or (silence and command.ramp <= 0):
            # Panic does not queue behind a playlist being opened.
            self._generation += 1
            if silence:
                self._stop_all()
                if command.urgent:
                    self._stop_chimes()
                return
        # Taken before waiting for the lock: a panic while this call waits makes it stale.
        generation = self._generation
        async with self._lock:
            if generation != self._generation:
                return
            if silence:
                self._fade_out_all(command.ramp)
                return
            assert command.playlist is not None
            await self._play(runtime, command, generation)

    async def _play(self, runtime: VlcRuntime, command: MusicCommand, generation: int) -> None:
        name = command.playlist
        assert name is not None
        ramp = 0.0 if command.urgent else max(0.0, command.ramp)
        stream = self._adopt(name, ramp)
        if stream is not None:
            stream.fader.set_level(command.volume, ramp)
            return
        try:
            # A playlist that failed before is tried again (its media may be back); the
            # failure mark only keeps a repeat from reporting the same failure again.
            opened = await self._open(runtime, name, command.position)
        except _Unplayable:
            # Keep what is playing rather than drop the room into sudden silence; staff
            # have been told through the event and the driver's health.
            if generation == self._generation and self.current is not None:
                self.current.fader.set_level(command.volume, ramp)
            return
        if generation != self._generation:
            if opened is not None:
                opened.close()
            return
        old, self.current = self.current, opened
        if old is not None:
            self._retire(old, ramp)
        if opened is not None:
            fade_in = ramp if command.urgent else max(ramp, self.min_fade_in)
            opened.fader.set_level(command.volume, fade_in)

    def _adopt(self, name: str, ramp: float) -> _Stream | None:
        """The stream already playing ``name``: current, or revived from fading out.

        A stream that ran out or gave up plays nothing: it is dropped, so ``name`` is opened
        afresh (it may play now that its media is back)."""
        if self.current is not None and self.current.finished:
            self.current.close()
            self.current = None
        if self.current is not None and self.current.name == name:
            return self.current
        for stream in self.outgoing:
            if stream.name == name and not stream.finished:
                self.outgoing.remove(stream)
                stream.fader.set_level(stream.fader.value(), 0.0)  # drop its pending stop
                if self.current is not None:
                    self._retire(self.current, ramp)
                self.current = stream
                return stream
        return None

    async def _open(self, runtime: VlcRuntime, name: str, position: float) -> _Stream | None:
        try:
            playlist = load_playlist(self.playlists_dir, name)
        except DriverConfigError as exc:
            raise DriverError(f"{self.name}: {exc}") from exc
        if playlist.media == "@demo" or self.media_dir is None:
            demo_dir = await self._demo_media()
        else:
            demo_dir = None
        tracks = resolve(playlist, self.media_dir or demo_dir or Path("."), demo_dir)
        durations = [await self._duration(runtime, t.path) or 0.0 for t in tracks]
        self._check_device()
        retry = self._failed == name
        for track, seconds in zip(tracks, durations, strict=True):
            if not seconds and not retry:
                self.skipped(name, track, "missing or unreadable")
        where = locate(durations, position, loop=playlist.loop)
        if where is None and any(durations):
            # The timeline is past the end of a playlist that does not loop: silence is right.
            self.report("playlist_finished", {"playlist": name, "position": position})
            return None
        stream = _Stream(self, runtime, name, tracks, playlist.loop) if where else None
        if stream is None or where is None or not stream.begin(*where):
            if stream is not None:
                stream.close()
            if not retry:
                self.unplayable(name)
            raise _Unplayable(name)
        self._failed = None
        return stream

    async def _duration(self, runtime: VlcRuntime, path: Path) -> float | None:
        if not _readable(path):
            return None
        key = (path, path.stat().st_mtime)
        if key not in self._durations:
            seconds = wav_duration(path) if path.suffix.lower() == ".wav" else None
            if seconds is None:
                seconds = await asyncio.to_thread(runtime.duration, path)
            self._durations[key] = seconds
        return self._durations[key]

    def _retire(self, stream: _Stream, ramp: float) -> None:
        if ramp <= 0:
            stream.close()
            return
        self.outgoing.append(stream)
        stream.fader.set_level(0.0, ramp, then=lambda: self._drop(stream))

    def _drop(self, stream: _Stream) -> None:
        if stream in self.outgoing:
            self.outgoing.remove(stream)
        stream.close()

    def _fade_out_all(self, ramp: float) -> None:
        if self.current is not None:
            stream, self.current = self.current, None
            self._retire(stream, ramp)

    def _stop_all(self) -> None:
        streams = [s for s in (self.current, *self.outgoing) if s is not None]
        self.current = None
        self.outgoing.clear()
        for stream in streams:
            stream.close()
        self._failed = None

    def _stop_chimes(self) -> None:
        """Silence the chime now and drop chimes not yet sounding (their tasks undo the duck)."""
        for task in list(self._chime_tasks):
            task.cancel()
        if self._chime_done is not None:
            self._chime_done.set()
        if self._chime_player is not None:
            self._chime_player.set_volume(0)
            self._chime_player.stop()

    # -- chimes and ducking ----------------------------------------------------------------

    async def chime(self, kind: str) -> None:
        """Start the chime for ``kind`` and duck the music around it; returns at once."""
        self._require()
        generation = self._generation
        path = await self._chime_path(kind)
        if not _readable(path):
            self.report("chime_skipped", {"kind": kind, "file": path.name})
            raise DriverError(f"{self.name}: chime file for {kind!r} is missing: {path.name}")
        if generation != self._generation:
            return  # a panic came while the chime's file was being found
        task = asyncio.create_task(self._play_chime(path))
        self._chime_tasks.add(task)
        task.add_done_callback(self._chime_tasks.discard)

    async def wait_chimes(self) -> None:
        """Until every chime started so far has played and the music is back up."""
        while self._chime_tasks:
            await asyncio.gather(*self._chime_tasks, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def ducked(self) -> AsyncIterator[None]:
        """Duck the music for as long as the block runs (e.g. a spoken prompt)::

        async with audio.ducked():
            await speak(...)
        """
        self._duck(+1)
        try:
            yield
        finally:
            self._duck(-1)

    def duck_factor(self) -> float:
        return db_to_volume_factor(self.duck_db) if self._ducks > 0 else 1.0

    def _duck(self, delta: int) -> None:
        before = self._ducks > 0
        self._ducks = max(0, self._ducks + delta)
        if (self._ducks > 0) == before:
            return
        seconds = DUCK_DOWN if self._ducks > 0 else DUCK_RESTORE
        for stream in (self.current, *self.outgoing):
            if stream is not None:
                stream.fader.set_duck(self.duck_factor(), seconds)

    async def _play_chime(self, path: Path) -> None:
        player = self._chime_player
        assert player is not None
        if self._chime_done is not None:
            self._chime_done.set()  # a newer chime replaces one still sounding
        done = self._chime_done = asyncio.Event()
        self._duck(+1)
        try:
            await asyncio.sleep(DUCK_DOWN)
            player.set_volume(round(self.ceiling * self.chime_volume / 100.0))
            player.play(path)
            length = wav_duration(path) or 5.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=length + 2.0)
        finally:
            self._duck(-1)

    def _chime_ended(self) -> None:
        player, done = self._chime_player, self._chime_done
        if done is not None and player is not None and player.finished():
            done.set()

    async def _chime_path(self, kind: str) -> Path:
        name = self.chimes.get(kind) or self.chimes.get("default")
        if name is None:
            return (await self._demo_media()) / CHIME
        path = Path(name).expanduser()
        if path.is_absolute():
            return path
        return (self.media_dir or await self._demo_media()) / path

    async def _demo_media(self) -> Path:
        # Generated on first use, in a worker thread: the first run on a machine takes seconds.
        if self._demo is None:
            self._demo = asyncio.create_task(
                asyncio.to_thread(ensure_demo_media, self._demo_dir_option)
            )
        return await asyncio.shield(self._demo)

    # -- output health ---------------------------------------------------------------------

    def _check_device(self) -> None:
        if self._runtime is None:
            return
        self._set_trouble("device", missing_alsa_device(self.aout, self.device))

    async def _watch_stalls(self) -> None:
        watch = StallWatch(self.stall_after)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.stall_after / 4))
            players = {s.player for s in (self.current, *self.outgoing) if s is not None}
            players = {p for p in players if not p.released}
            stuck = [
                p.label
                for p in players
                if watch.sample(p, playing=p.playing(), time_ms=p.time_ms(), now=loop.time())
            ]
            watch.forget(set(players))
            message = None
            if stuck:
                message = (
                    f"playback of {', '.join(sorted(stuck))} stalled: libvlc says Playing but "
                    f"its time has not moved for {self.stall_after:g} s"
                )
            self._set_trouble("stall", message)

    def _set_trouble(self, source: str, message: str | None) -> None:
        before = not self._trouble
        if message is None:
            cleared = self._trouble.pop(source, None)
            if cleared is not None and self.health.error == cleared:
                self.health.error = next(iter(self._trouble.values()), None)
        else:
            self._trouble[source] = message
            self.health.error = message
        available = not self._trouble
        if available != before:
            self.health.available = available
            self._context.report_availability(self.name, None, available)

    # -- reporting -------------------------------------------------------------------------

    def report(self, kind: str, data: dict[str, Any]) -> None:
        self._context.report_event(kind, {"driver": self.name, **data})

    def skipped(self, playlist: str, track: ResolvedTrack, reason: str) -> None:
        self.health.errors += 1
        self.report("track_skipped", {"playlist": playlist, "track": track.label, "reason": reason})

    def unplayable(self, playlist: str) -> None:
        self._failed = playlist
        self.health.error = f"playlist {playlist!r}: no track can be played"
        self.report("playlist_unplayable", {"playlist": playlist})

    def healthy(self, playlist: str) -> None:
        if self.health.error and playlist in self.health.error:
            self.health.error = None

    def _require(self) -> VlcRuntime:
        if self._runtime is None:
            raise DriverError(f"{self.name}: not started (libvlc not loaded)")
        return self._runtime


def _number(
    name: str, options: Mapping[str, Any], key: str, default: float, low: float, high: float
) -> float:
    raw = options.get(key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DriverConfigError(f"{name}: {key} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise DriverConfigError(f"{name}: {key} must be between {low:g} and {high:g}")
    return value
