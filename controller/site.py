"""Build a controller's rooms from its config: scenes, drivers, role mapping.

config = load_config(Path("config/demo.yaml"))
site = build_site(config, clock=SystemClock())
await site.start()
site.rooms["room-1"].view()
await site.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import drivers as registry
from controller.clock import Clock
from controller.config import Config, RoomConfig
from controller.room import Recorder, Room, RoomDrivers
from controller.scene import LoadedScene, SceneLibrary, playlist_names
from controller.validation import did_you_mean
from drivers.base import (
    AudioDriver,
    DriverConfigError,
    DriverContext,
    LightDriver,
    MqttLink,
    PromptDriver,
)


def default_playlists_dir(config: Config) -> Path | None:
    if config.site.playlists_dir is not None:
        return config.site.playlists_dir
    sibling = config.site.scenes_dir.parent / "playlists"
    return sibling if sibling.is_dir() else None


def load_library(config: Config) -> SceneLibrary:
    return SceneLibrary.load(
        config.site.scenes_dir, playlists=playlist_names(default_playlists_dir(config))
    )


def _room_scenes(room: RoomConfig, library: SceneLibrary) -> dict[str, LoadedScene]:
    if room.scenes is None:
        return dict(library.scenes)
    out = {}
    for scene_id in room.scenes:
        if scene_id not in library.scenes:
            hint = did_you_mean(scene_id, set(library.scenes))
            raise DriverConfigError(f"room {room.id}: no scene {scene_id!r}{hint}")
        out[scene_id] = library.scenes[scene_id]
    return out


def build_room_drivers(
    room: RoomConfig, context_for: Callable[[str], DriverContext]
) -> RoomDrivers:
    """Instantiate a room's drivers and check each role's devices exist."""
    built = RoomDrivers()
    for name, entry in room.drivers.items():
        driver = registry.build(entry.type, name, entry.options, context_for(name))
        if name == room.audio:
            if not isinstance(driver, AudioDriver):
                raise DriverConfigError(f"room {room.id}: driver {name!r} is not an audio driver")
            built.audio = driver
        elif name in room.prompts:
            if not isinstance(driver, PromptDriver):
                raise DriverConfigError(f"room {room.id}: driver {name!r} cannot show prompts")
            built.prompts.append(driver)
        elif isinstance(driver, LightDriver):
            built.lights[name] = driver
        else:
            raise DriverConfigError(
                f"room {room.id}: driver {name!r} ({entry.type}) is not a light driver; "
                "name it under 'audio' or 'prompts'"
            )
    for role, refs in room.roles.items():
        pairs = []
        for ref in refs:
            driver_name, device = ref.split("/", 1)
            light = built.lights.get(driver_name)
            if light is None:
                raise DriverConfigError(
                    f"room {room.id}: role {role!r} uses {driver_name!r}, "
                    "which is not a light driver"
                )
            if device not in light.devices:
                hint = did_you_mean(device, list(light.devices))
                raise DriverConfigError(
                    f"room {room.id}: role {role!r}: driver {driver_name!r} "
                    f"has no device {device!r}{hint}"
                )
            pairs.append((driver_name, device))
        built.roles[role] = pairs
    return built


@dataclass
class Site:
    config: Config
    library: SceneLibrary
    clock: Clock
    rooms: dict[str, Room] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    async def start(self, *, safe_state: bool = True) -> None:
        await asyncio.gather(*(room.start(safe_state=safe_state) for room in self.rooms.values()))

    async def close(self) -> None:
        await asyncio.gather(
            *(room.close() for room in self.rooms.values()), return_exceptions=True
        )


def build_site(
    config: Config,
    *,
    clock: Clock,
    library: SceneLibrary | None = None,
    mqtt: MqttLink | None = None,
    recorder: Recorder | None = None,
    media_dir: Path | None = None,
) -> Site:
    """Rooms with their drivers, ready to ``start()``."""
    library = library or load_library(config)
    site = Site(config, library, clock)
    for room_config in config.rooms:
        holder: dict[str, Room] = {}

        def context_for(name: str, holder: Mapping[str, Room] = holder) -> DriverContext:
            def availability(driver: str, device: str | None, available: bool) -> None:
                if "room" in holder:
                    holder["room"].on_availability(driver, device, available)

            def event(kind: str, data: dict[str, Any]) -> None:
                if "room" in holder:
                    holder["room"].on_driver_event(kind, {"driver": name, **data})

            return DriverContext(
                monotonic=clock.monotonic,
                state_dir=config.site.state_dir,
                media_dir=media_dir or config.site.media_dir,
                playlists_dir=default_playlists_dir(config),
                mqtt=mqtt,
                on_availability=availability,
                on_event=event,
            )

        room_drivers = build_room_drivers(room_config, context_for)
        room = Room(
            room_config,
            _room_scenes(room_config, library),
            room_drivers,
            clock=clock,
            overlays=library.overlays,
            recorder=recorder,
        )
        holder["room"] = room
        site.rooms[room.id] = room
    return site
