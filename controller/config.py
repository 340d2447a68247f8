"""Site and room configuration: which rooms this controller runs, their drivers, and the
mapping from the scenes' fixture roles to devices.

    site = load_config(Path("config/demo.yaml"))
    site.rooms[0].roles["ambient"]       # ["lights/ceiling"]

Errors are reported like scene errors, ``file:line:col: message``, all at once. Relative
paths in the file are relative to the file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controller.mqtt import MqttSettings
from controller.scene import NAME_PATTERN, Duration, Percent
from controller.units import KELVIN_MAX, KELVIN_MIN
from controller.validation import did_you_mean, field_names, validate_document
from controller.yamlsafe import SourceError, SourceErrors, load_yaml

DeviceRef = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}/[A-Za-z0-9._-]{1,64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriverEntry(BaseModel):
    """``{type: <kind>, ...options}``; the options are checked by the driver itself."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SafeState(_Strict):
    """Where the room goes on start-up before anything resumes (DESIGN.md §1.7)."""

    level: Percent = 40.0
    kelvin: Annotated[int, Field(ge=KELVIN_MIN, le=KELVIN_MAX)] = 3500
    music: bool = Field(False, description="Keep music playing (False: stop it)")


class RoomConfig(_Strict):
    id: Annotated[str, Field(pattern=NAME_PATTERN)]
    name: str = ""
    drivers: dict[Annotated[str, Field(pattern=NAME_PATTERN)], DriverEntry] = Field(
        default_factory=dict
    )
    roles: dict[Annotated[str, Field(pattern=NAME_PATTERN)], list[DeviceRef]] = Field(
        default_factory=dict
    )
    audio: str | None = Field(None, description="Name of the audio driver")
    prompts: list[str] = Field(default_factory=list, description="In-room prompt drivers")
    scenes: list[str] | None = Field(None, description="Scenes offered here (default: all)")
    safe_state: SafeState = Field(default_factory=SafeState)
    apply_timeout: Duration = Field(2.0, description="Longest wait for one driver call")

    @property
    def title(self) -> str:
        return self.name or self.id

    @field_validator("roles", mode="before")
    @classmethod
    def _wrap(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _references(self) -> RoomConfig:
        problems = []
        for role, refs in self.roles.items():
            for ref in refs:
                driver = ref.split("/", 1)[0]
                if driver not in self.drivers:
                    hint = did_you_mean(driver, set(self.drivers))
                    problems.append(f"role {role!r} uses unknown driver {driver!r}{hint}")
        for name in [self.audio, *self.prompts]:
            if name is not None and name not in self.drivers:
                problems.append(f"unknown driver {name!r}{did_you_mean(name, set(self.drivers))}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class WebSettings(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    session_idle: Duration = Field(1800.0, gt=0, description="Staff login idle timeout")
    session_absolute: Duration = Field(43200.0, gt=0, description="Staff login absolute timeout")
    device_days: float = Field(365.0, gt=0, description="Lifetime of a tablet's room pairing")
    public_api_docs: bool = Field(False, description="Serve openapi.json without a login")


class JournalSettings(_Strict):
    path: Path = Path("journal.sqlite3")
    retention_days: int = Field(2190, ge=1, description="Audit entries older than this are pruned")
    resume_gap: Duration = Field(
        900.0,
        description="After a reboot with synchronised clocks, continue running if the "
        "gap is shorter than this; otherwise resume paused",
    )


class SiteConfig(_Strict):
    name: str = "sessionctl"
    state_dir: Path = Path("state")
    scenes_dir: Path = Path("scenes")
    playlists_dir: Path | None = None
    media_dir: Path | None = None
    mqtt: MqttSettings | None = None
    web: WebSettings = Field(default_factory=WebSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)


class Config(_Strict):
    site: SiteConfig = Field(default_factory=SiteConfig)
    rooms: list[RoomConfig] = Field(min_length=1)
    path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique(self) -> Config:
        ids = [r.id for r in self.rooms]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"room id(s) {', '.join(dupes)} appear more than once")
        return self

    def room(self, room_id: str) -> RoomConfig:
        for room in self.rooms:
            if room.id == room_id:
                return room
        raise KeyError(f"no room {room_id!r}{did_you_mean(room_id, [r.id for r in self.rooms])}")


def load_config(path: Path) -> Config:
    """Read and check a config file; relative paths become relative to its folder."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceErrors([SourceError(str(path), 1, 1, f"cannot read: {exc.strerror}")]) from None
    doc = load_yaml(raw, str(path))
    if not isinstance(doc.data, dict):
        raise SourceErrors([doc.error((), "a config file must be a mapping with site and rooms")])
    config = validate_document(Config, doc, vocabulary=field_names(Config))
    base = path.parent.resolve()
    site = config.site
    site.state_dir = _under(base, site.state_dir)
    site.scenes_dir = _under(base, site.scenes_dir)
    if site.playlists_dir is not None:
        site.playlists_dir = _under(base, site.playlists_dir)
    if site.media_dir is not None:
        site.media_dir = _under(base, site.media_dir)
    site.journal.path = _under(site.state_dir, site.journal.path)
    if site.web.tls_cert is not None:
        site.web.tls_cert = _under(base, site.web.tls_cert)
    if site.web.tls_key is not None:
        site.web.tls_key = _under(base, site.web.tls_key)
    config.path = path
    return config


def _under(base: Path, value: Path) -> Path:
    value = value.expanduser()
    return value if value.is_absolute() else (base / value)
