"""A whole room controller on MQTT for tests and the latency benchmark: the demo scene, three
zigbee2mqtt lights, the shared link and the room bus, against a broker on ``port``.

    rig = await ControllerRig.start(port, tmp_path)
    ...
    await rig.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.bus import RoomBus
from controller.clock import SystemClock
from controller.config import Config
from controller.mqtt import MqttConnection
from controller.room import Room
from controller.site import Site, build_site

ROOT = Path(__file__).resolve().parents[2]
DEVICES = ("ceiling", "lamp", "floor")


def rig_config(port: int, state_dir: Path, **mqtt: Any) -> Config:
    settings: dict[str, Any] = {
        "port": port,
        "prefix": "clinic",
        "client_id": "room1-ctl",
        "reconnect_min": 0.05,
        "reconnect_max": 0.5,
        "keepalive": 5,
    }
    settings.update(mqtt)
    return Config.model_validate(
        {
            "site": {
                "scenes_dir": str(ROOT / "scenes"),
                "playlists_dir": str(ROOT / "playlists"),
                "state_dir": str(state_dir),
                "mqtt": settings,
            },
            "rooms": [
                {
                    "id": "room1",
                    "drivers": {"z2m": {"type": "zigbee2mqtt", "devices": list(DEVICES)}},
                    "roles": {"ambient": "z2m/ceiling", "accent": "z2m/lamp", "path": "z2m/floor"},
                }
            ],
        }
    )


@dataclass
class ControllerRig:
    link: MqttConnection
    site: Site
    bus: RoomBus

    @property
    def room(self) -> Room:
        return self.site.rooms["room1"]

    @classmethod
    async def start(cls, port: int, state_dir: Path, **mqtt: Any) -> ControllerRig:
        config = rig_config(port, state_dir, **mqtt)
        assert config.site.mqtt is not None
        link = MqttConnection(config.site.mqtt, rooms=["room1"])
        site = build_site(config, clock=SystemClock(), mqtt=link)
        bus = RoomBus(site.rooms["room1"], link)
        await bus.start()
        await site.start()
        await link.start()
        return cls(link, site, bus)

    async def close(self) -> None:
        await self.bus.close()
        await self.site.close()
        await self.link.close()
