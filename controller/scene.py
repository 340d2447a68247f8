"""Scene files: models, strict loading, and the checks that need the whole file.

A scene is a list of phases, each with cues at offsets inside it, plus the overlays (named
partial room states such as ``panic``) it may switch on. Scenes name fixture *roles*
(``ambient``, ``accent``), never devices; a room's config maps roles to devices.

    library = SceneLibrary.load(Path("scenes"), playlists={"arrival", "infusion"})
    scene = library.scene("iv-infusion")

Any problem raises :class:`~controller.yamlsafe.SourceErrors` listing every error in the file
as ``file:line:col: message``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from controller.units import (
    KELVIN_MAX,
    KELVIN_MIN,
    MIRED_MAX,
    MIRED_MIN,
    DurationError,
    format_duration,
    kelvin_to_mired,
    parse_duration,
)
from controller.validation import did_you_mean, errors_from, field_names, validate_document
from controller.yamlsafe import (
    SourceError,
    SourceErrors,
    YamlDocument,
    load_yaml,
    load_yaml_lenient,
)

SCHEMA_COMMENT = "# yaml-language-server: $schema=./scene.schema.json"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def _duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a duration like 90s, 5m or 1h30m")
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {
                    "type": "string",
                    "pattern": r"^(?=\d)(\d+(\.\d+)?h)?(\d+(\.\d+)?m)?(\d+(\.\d+)?s)?$",
                },
            ],
            "description": "Seconds, or a duration such as 90s, 5m, 1h30m, 2m30s",
        }
    ),
]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Priority = Literal["low", "medium", "high"]
CheckinKind = Literal["vitals", "sedation", "dissociation", "comfort", "custom"]
Percent = Annotated[float, Field(ge=0, le=100)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


RoleList = Annotated[list[Name], BeforeValidator(_one_or_many), Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)


class _LightFields(_Strict):
    on: bool | None = Field(None, description="Switch on or off; a level above 0 implies on")
    level: Percent | None = Field(None, description="Brightness in percent of the fixture maximum")
    kelvin: Annotated[int, Field(ge=KELVIN_MIN, le=KELVIN_MAX)] | None = Field(
        None, description="Colour temperature in kelvin (2000-6500)"
    )
    mired: Annotated[int, Field(ge=MIRED_MIN, le=MIRED_MAX)] | None = Field(
        None, description="Colour temperature in mired (153-500); mired = 1,000,000 / kelvin"
    )
    xy: tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]] | None = (
        Field(None, description="CIE xy colour, e.g. [0.52, 0.41]")
    )
    fade: Duration = Field(0.0, description="How long the change takes")

    @model_validator(mode="after")
    def _consistent(self) -> _LightFields:
        if self.kelvin is not None and self.mired is not None:
            raise ValueError("give the colour temperature as kelvin or as mired, not both")
        if self.on is False and self.level not in (None, 0):
            raise ValueError("on: false with a level above 0; drop one of them")
        if all(v is None for v in (self.on, self.level, self.kelvin, self.mired, self.xy)):
            raise ValueError("nothing to change: set on, level, kelvin, mired or xy")
        return self

    @property
    def target_mired(self) -> int | None:
        if self.kelvin is not None:
            return kelvin_to_mired(self.kelvin)
        return self.mired


class LightsCue(_LightFields):
    """Set one or more fixture roles, optionally over a fade."""

    roles: RoleList = Field(description="Fixture roles this cue changes")


class MusicCue(_Strict):
    """Play a playlist, change or ramp the volume, or fade out and stop."""

    play: Name | None = Field(None, description="Playlist to play (crossfades if one is playing)")
    volume: Percent | None = Field(None, description="Volume in percent of the room's ceiling")
    fade: Duration = Field(0.0, description="Fade-in, crossfade, ramp or fade-out time")
    stop: bool = Field(False, description="Fade out over 'fade' and stop")

    @model_validator(mode="after")
    def _consistent(self) -> MusicCue:
        if self.stop and (self.play is not None or self.volume is not None):
            raise ValueError("stop: true cannot be combined with play or volume")
        if not self.stop and self.play is None and self.volume is None:
            raise ValueError("nothing to do: set play, volume or stop")
        return self


class ResponseOption(_Strict):
    code: Name = Field(description="Option code stored in the journal (no free text)")
    label: str = Field(min_length=1, max_length=60)
    overlay: Name | None = Field(None, description="Overlay to switch on when chosen")


class CheckinCue(_Strict):
    """A staff check-in prompt. Responses are option codes only (no patient data)."""

    id: Name
    kind: CheckinKind
    prompt: str = Field(min_length=1, max_length=200)
    priority: Priority = "low"
    ack_within: Duration = Field(300.0, description="Time to acknowledge before it escalates")
    escalate_after: Duration = Field(
        300.0, description="Further time between escalation steps (low > medium > high)"
    )
    responses: list[ResponseOption] = Field(default_factory=list)
    chime: bool = Field(False, description="Play a soft chime in the room when it comes due")

    @model_validator(mode="after")
    def _codes_unique(self) -> CheckinCue:
        codes = [r.code for r in self.responses]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"response code(s) {', '.join(dupes)} appear more than once")
        if self.ack_within <= 0:
            raise ValueError("ack_within must be longer than 0s")
        if self.escalate_after <= 0:
            raise ValueError("escalate_after must be longer than 0s")
        return self


class Cue(_Strict):
    """Something that happens ``at`` an offset inside its phase."""

    at: Duration = Field(description="Offset from the start of the phase")
    label: str | None = Field(None, max_length=80)
    lights: LightsCue | None = None
    music: MusicCue | None = None
    checkin: CheckinCue | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Cue:
        kinds = [k for k in ("lights", "music", "checkin") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a cue needs exactly one of lights, music or checkin"
                + (f" (found {', '.join(kinds)})" if kinds else "")
            )
        return self


class Phase(_Strict):
    """A stretch of the session. Fixed ``duration``; or ``min``/``max`` (it holds after
    ``min`` until staff continue, and continues by itself at ``max``); or ``hold: true`` (it
    holds at its end state until staff continue)."""

    id: Name
    title: str | None = Field(None, max_length=80)
    description: str | None = Field(None, max_length=500)
    duration: Duration | None = None
    min: Duration | None = None
    max: Duration | None = None
    hold: bool = False
    cues: list[Cue] = Field(default_factory=list)

    @model_validator(mode="after")
    def _length(self) -> Phase:
        if self.duration is not None and (self.min is not None or self.max is not None):
            raise ValueError("give either duration or min/max, not both")
        if self.max is not None and self.min is None:
            raise ValueError("max needs a min")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError(f"max ({format_duration(self.max)}) is shorter than min")
        if self.duration is None and self.min is None and not self.hold:
            raise ValueError("needs a duration (or min/max, or hold: true)")
        if self.hold and self.max is not None:
            raise ValueError("hold: true holds until staff continue; it cannot have a max")
        return self

    @property
    def length(self) -> float:
        """Nominal running length: ``duration``, else ``min``, else 0 for a bare hold."""
        if self.duration is not None:
            return self.duration
        if self.min is not None:
            return self.min
        return 0.0

    @property
    def holds(self) -> bool:
        return self.hold or self.min is not None

    @property
    def hold_limit(self) -> float | None:
        """How long it may hold before continuing by itself (None: until staff act)."""
        if self.min is not None and self.max is not None:
            return self.max - self.min
        return None

    @property
    def label(self) -> str:
        return self.title or self.id.replace("-", " ").capitalize()


def _all_or_many(value: Any) -> Any:
    return value if value == "all" else _one_or_many(value)


class OverlayLights(_LightFields):
    roles: Annotated[
        Literal["all"] | Annotated[list[Name], Field(min_length=1)], BeforeValidator(_all_or_many)
    ] = Field("all", description="Roles it covers, or 'all'")


class OverlayMusic(_Strict):
    stop: bool = Field(False, description="Stop the music at once")
    duck_db: Annotated[float, Field(ge=-60, le=0)] | None = Field(
        None, description="Lower the music by this many dB (e.g. -12)"
    )
    volume: Percent | None = None

    @model_validator(mode="after")
    def _one(self) -> OverlayMusic:
        chosen = [self.stop, self.duck_db is not None, self.volume is not None]
        if sum(bool(c) for c in chosen) != 1:
            raise ValueError("set exactly one of stop, duck_db or volume")
        return self


class Overlay(_Strict):
    """A named partial room state laid over the timeline while it is on."""

    title: str | None = Field(None, max_length=80)
    priority: Annotated[int, Field(ge=0, le=100)] = 50
    lights: OverlayLights | None = None
    music: OverlayMusic | None = None
    freeze: bool = Field(False, description="Freeze the timeline while on")
    alert: Priority | None = Field(None, description="Raise a staff alert of this priority")
    release_fade: Duration = Field(0.0, description="Fade back to the timeline when switched off")
    on_release: Name | None = Field(None, description="Overlay to switch on when this is released")


class Scene(_Strict):
    """One session arc, e.g. an IV infusion."""

    name: str = Field(min_length=1, max_length=80)
    description: str = Field("", max_length=1000)
    route: Literal["iv", "im", "sublingual", "intranasal", "demo", "other"] = "other"
    version: Annotated[int, Field(ge=1)] = 1
    roles: dict[Name, str] = Field(
        description="Fixture roles the scene uses, each with a short description"
    )
    min_duration: Duration | None = Field(
        None, description="Staff cannot end the session earlier without an override and a reason"
    )
    min_duration_from: Name | None = Field(
        None,
        description="Count min_duration from the start of this phase (e.g. the first Spravato "
        "device) instead of from the start of the session",
    )
    phases: list[Phase] = Field(min_length=1)
    overlays: dict[Name, Overlay] = Field(default_factory=dict)


class OverlayFile(_Strict):
    """``scenes/overlays.yaml``: overlays every scene can use."""

    overlays: dict[Name, Overlay]


# The panic overlay exists even if no file defines it: 100 % at 4000 K with no fade, music
# stopped, timeline frozen, high alert (clinical-defaults.md §9).
BUILTIN_PANIC = Overlay(
    title="Panic",
    priority=100,
    lights=OverlayLights(roles="all", on=True, level=100, kelvin=4000, fade=0),
    music=OverlayMusic(stop=True),
    freeze=True,
    alert="high",
    on_release=None,
)


@dataclass(frozen=True)
class LoadedScene:
    """A validated scene with its id (the file name), overlays and a content hash."""

    id: str
    scene: Scene
    overlays: Mapping[str, Overlay]
    path: Path | None
    digest: str

    @property
    def name(self) -> str:
        return self.scene.name

    @property
    def nominal_length(self) -> float:
        return sum(p.length for p in self.scene.phases)


def scene_vocabulary() -> set[str]:
    return field_names(Scene) | field_names(OverlayFile)


def parse_scene(
    text: str | bytes,
    file: str,
    *,
    shared_overlays: Mapping[str, Overlay] | None = None,
    playlists: Iterable[str] | None = None,
    scene_id: str | None = None,
) -> LoadedScene:
    """Load and check one scene file's text; raise SourceErrors listing every problem."""
    raw = text.encode() if isinstance(text, str) else text
    doc = load_yaml_lenient(raw, file)
    errors = list(doc.problems)
    if not isinstance(doc.data, dict):
        if doc.data is None and not errors:
            errors.append(
                SourceError(
                    file, 1, 1, "empty scene file; expected a mapping with name, roles and phases"
                )
            )
        elif doc.data is not None:
            errors.append(
                doc.error((), "a scene file must be a mapping with name, roles and phases")
            )
        raise SourceErrors(errors)
    scene: Scene | None = None
    try:
        scene = Scene.model_validate(doc.data)
    except ValidationError as exc:
        errors += errors_from(exc, doc, scene_vocabulary(), model=Scene)
    # The cross-file checks run on the raw document, so they still report unknown roles,
    # overlaps and duplicate ids in the parts of a file that failed validation.
    overlay_names = {"panic", *(shared_overlays or {}), *_keys(doc.data.get("overlays"))}
    errors += check_document(doc, overlay_names, set(playlists) if playlists is not None else None)
    if errors or scene is None:
        raise SourceErrors(sorted(set(errors)))
    overlays: dict[str, Overlay] = {"panic": BUILTIN_PANIC}
    overlays.update(shared_overlays or {})
    overlays.update(scene.overlays)
    ident = scene_id or Path(file).stem
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return LoadedScene(ident, scene, overlays, Path(file), digest)


# -- checks that need the whole file -----------------------------------------------------
# They read the loaded YAML rather than the validated models and skip any value of the wrong
# type (validation reports those), so they also run on a file that failed validation.


def _keys(value: Any) -> list[str]:
    return [k for k in value if isinstance(k, str)] if isinstance(value, dict) else []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _seconds(value: Any) -> float | None:
    try:
        return _duration(value)
    except ValueError:
        return None


def _names(value: Any, path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """``roles: ambient`` or ``roles: [ambient, accent]`` as (path, name) pairs."""
    if isinstance(value, str):
        return [(path, value)]
    return [((*path, i), v) for i, v in enumerate(_items(value)) if isinstance(v, str)]


def _phase_length(phase: dict[str, Any]) -> float | None:
    if "duration" in phase:
        return _seconds(phase["duration"])
    if "min" in phase:
        return _seconds(phase["min"])
    return 0.0 if phase.get("hold") is True else None


def check_document(
    doc: YamlDocument, overlays: Collection[str], playlists: set[str] | None
) -> list[SourceError]:
    """References, offsets, overlaps and unique ids across a scene file."""
    data = _mapping(doc.data)
    errors: list[SourceError] = []
    roles = set(_keys(data["roles"])) if isinstance(data.get("roles"), dict) else None
    phase_ids: set[str] = set()
    checkin_ids: dict[str, tuple[int, int]] = {}
    for pi, phase in enumerate(_items(data.get("phases"))):
        if not isinstance(phase, dict):
            continue
        base = ("phases", pi)
        phase_id = phase.get("id")
        if isinstance(phase_id, str):
            if phase_id in phase_ids:
                errors.append(doc.error((*base, "id"), f"phase id {phase_id!r} is used twice"))
            phase_ids.add(phase_id)
        errors += _check_cues(phase, base, doc, roles, playlists, overlays, checkin_ids)
    if "panic" in _mapping(data.get("overlays")):
        errors.append(
            doc.error(
                ("overlays", "panic"),
                ("panic cannot be redefined in a scene: every scene uses the one in overlays.yaml"),
                key=True,
            )
        )
    floor_from = data.get("min_duration_from")
    if isinstance(floor_from, str) and floor_from not in phase_ids:
        errors.append(_unknown(doc, ("min_duration_from",), "phase", floor_from, phase_ids))
    if floor_from is not None and data.get("min_duration") is None:
        errors.append(doc.error(("min_duration_from",), "min_duration_from needs a min_duration"))
    for name, overlay in _mapping(data.get("overlays")).items():
        path = ("overlays", name)
        overlay = _mapping(overlay)
        lights = _mapping(overlay.get("lights"))
        if roles is not None and lights.get("roles", "all") != "all":
            for where, role in _names(lights.get("roles"), (*path, "lights", "roles")):
                if role not in roles:
                    errors.append(_unknown(doc, where, "role", role, roles))
        on_release = overlay.get("on_release")
        if isinstance(on_release, str) and on_release not in overlays:
            errors.append(
                _unknown(doc, (*path, "on_release"), "overlay", on_release, set(overlays))
            )
    return errors


def _unknown(
    doc: YamlDocument, path: tuple[Any, ...], what: str, name: str, known: set[str]
) -> SourceError:
    hint = did_you_mean(name, known)
    listing = f" (known: {', '.join(sorted(known))})" if known and not hint else ""
    return doc.error(path, f"unknown {what} {name!r}{hint}{listing}")


def _check_cues(
    phase: dict[str, Any],
    base: tuple[Any, ...],
    doc: YamlDocument,
    roles: set[str] | None,
    playlists: set[str] | None,
    overlays: Collection[str],
    checkin_ids: dict[str, tuple[int, int]],
) -> list[SourceError]:
    errors: list[SourceError] = []
    length = _phase_length(phase)
    phase_id = phase.get("id") if isinstance(phase.get("id"), str) else f"#{base[-1] + 1}"
    busy: dict[str, list[tuple[float, float, int]]] = {}
    for ci, cue in enumerate(_items(phase.get("cues"))):
        if not isinstance(cue, dict):
            continue
        path = (*base, "cues", ci)
        at = _seconds(cue.get("at"))
        if at is not None and length is not None and at > length:
            errors.append(
                doc.error(
                    (*path, "at"),
                    (
                        f"cue at {format_duration(at)} lies past the end of phase {phase_id!r} "
                        f"({format_duration(length)}); move it into the phase or lengthen the phase"
                    ),
                )
            )
        channels: list[tuple[str, float]] = []
        lights = cue.get("lights")
        if isinstance(lights, dict):
            for where, role in _names(lights.get("roles"), (*path, "lights", "roles")):
                if roles is not None and role not in roles:
                    errors.append(_unknown(doc, where, "role", role, roles))
                channels.append((f"role {role!r}", _seconds(lights.get("fade", 0)) or 0.0))
        music = cue.get("music")
        if isinstance(music, dict):
            play = music.get("play")
            if playlists is not None and isinstance(play, str) and play not in playlists:
                errors.append(_unknown(doc, (*path, "music", "play"), "playlist", play, playlists))
            channels.append(("music", _seconds(music.get("fade", 0)) or 0.0))
        checkin = cue.get("checkin")
        if isinstance(checkin, dict):
            errors += _check_checkin(checkin, path, doc, overlays, checkin_ids)
        if at is None:
            continue
        for channel, fade in channels:
            errors += _overlaps(doc, base, path, channel, at, busy.get(channel, []))
            busy.setdefault(channel, []).append((at, at + fade, ci))
    return errors


def _overlaps(
    doc: YamlDocument,
    base: tuple[Any, ...],
    path: tuple[Any, ...],
    channel: str,
    at: float,
    earlier: list[tuple[float, float, int]],
) -> list[SourceError]:
    errors: list[SourceError] = []
    for start, end, other in earlier:
        line = doc.position((*base, "cues", other))[0]
        if at == start:
            message = (
                f"cue at {format_duration(at)} sets {channel} at the same time as the cue on "
                f"line {line}; merge them or move one"
            )
        elif start < at < end:
            message = (
                f"cue at {format_duration(at)} overlaps the cue on line {line} for {channel} "
                f"(at {format_duration(start)}, fading until {format_duration(end)}); move one "
                "of them or shorten the fade"
            )
        else:
            continue
        errors.append(doc.error((*path, "at"), message))
    return errors


def _check_checkin(
    checkin: dict[str, Any],
    path: tuple[Any, ...],
    doc: YamlDocument,
    overlays: Collection[str],
    checkin_ids: dict[str, tuple[int, int]],
) -> list[SourceError]:
    errors: list[SourceError] = []
    id_path = (*path, "checkin", "id")
    checkin_id = checkin.get("id")
    if isinstance(checkin_id, str):
        if checkin_id in checkin_ids:
            line = checkin_ids[checkin_id][0]
            errors.append(
                doc.error(
                    id_path,
                    f"check-in id {checkin_id!r} is already used on line "
                    f"{line}; each check-in needs its own id",
                )
            )
        else:
            checkin_ids[checkin_id] = doc.position(id_path)
    for ri, option in enumerate(_items(checkin.get("responses"))):
        overlay = _mapping(option).get("overlay")
        if isinstance(overlay, str) and overlay not in overlays:
            where = (*path, "checkin", "responses", ri, "overlay")
            errors.append(_unknown(doc, where, "overlay", overlay, set(overlays)))
    return errors


def parse_overlays(text: str | bytes, file: str) -> dict[str, Overlay]:
    doc = load_yaml(text.encode() if isinstance(text, str) else text, file)
    if doc.data is None:
        return {}
    parsed = validate_document(OverlayFile, doc, vocabulary=scene_vocabulary())
    errors = []
    for name, overlay in parsed.overlays.items():
        if overlay.on_release and overlay.on_release not in parsed.overlays:
            errors.append(
                _unknown(
                    doc,
                    ("overlays", name, "on_release"),
                    "overlay",
                    overlay.on_release,
                    set(parsed.overlays),
                )
            )
    panic = parsed.overlays.get("panic")
    if panic is not None:
        errors += [
            doc.error(("overlays", "panic", *where), message)
            for where, message in panic_problems(panic)
        ]
    if errors:
        raise SourceErrors(errors)
    return dict(parsed.overlays)


# Panic must light the whole room for staff to see cyanosis (3300-5300 K, clinical-defaults.md
# §9), at once (0-1 s), silence the music, freeze the timeline and alert at high priority.
PANIC_KELVIN = (3300, 5300)
PANIC_MAX_FADE = 1.0


def panic_problems(panic: Overlay) -> list[tuple[tuple[str, ...], str]]:
    """Why a panic definition would not be safe, as (path inside the overlay, message)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    lights = panic.lights
    if lights is None or lights.roles != "all" or lights.level != 100 or lights.on is False:
        problems.append((("lights",), "panic must set every role (roles: all) to level 100"))
    elif lights.fade > PANIC_MAX_FADE:
        problems.append((("lights", "fade"), f"panic must not fade (at most {PANIC_MAX_FADE:g}s)"))
    if lights is not None and lights.target_mired is not None:
        kelvin = 1_000_000 / lights.target_mired
        if not PANIC_KELVIN[0] <= kelvin <= PANIC_KELVIN[1]:
            problems.append(
                (
                    ("lights",),
                    "panic light must be neutral white, "
                    f"{PANIC_KELVIN[0]}-{PANIC_KELVIN[1]} K, so staff can see cyanosis",
                )
            )
    if panic.music is None or not panic.music.stop:
        problems.append((("music",), "panic must stop the music (music: {stop: true})"))
    if not panic.freeze:
        problems.append((("freeze",), "panic must freeze the timeline (freeze: true)"))
    if panic.alert != "high":
        problems.append((("alert",), "panic must raise a high-priority alert (alert: high)"))
    return problems


OVERLAYS_FILE = "overlays.yaml"


def folder_overlays(folder: Path) -> dict[str, Overlay]:
    """The shared overlays of a scenes folder (its ``overlays.yaml``), or none."""
    path = folder / OVERLAYS_FILE
    return parse_overlays(path.read_bytes(), str(path)) if path.exists() else {}


@dataclass
class SceneLibrary:
    """The scenes a room can run, loaded from a folder (``overlays.yaml`` is shared)."""

    scenes: dict[str, LoadedScene] = field(default_factory=dict)
    overlays: dict[str, Overlay] = field(default_factory=dict)

    def scene(self, scene_id: str) -> LoadedScene:
        try:
            return self.scenes[scene_id]
        except KeyError:
            hint = did_you_mean(scene_id, set(self.scenes))
            raise KeyError(f"no scene {scene_id!r}{hint}") from None

    @classmethod
    def load(cls, folder: Path, *, playlists: Iterable[str] | None = None) -> SceneLibrary:
        """Load every ``*.yaml`` scene in ``folder``; raise SourceErrors for all problems."""
        errors: list[SourceError] = []
        shared: dict[str, Overlay] = {}
        try:
            shared = folder_overlays(folder)
        except SourceErrors as exc:
            errors += exc.errors
        library = cls(overlays={"panic": BUILTIN_PANIC, **shared})
        names = list(playlists) if playlists is not None else None
        for path in sorted(folder.glob("*.yaml")):
            if path.name == OVERLAYS_FILE:
                continue
            try:
                loaded = parse_scene(
                    path.read_bytes(), str(path), shared_overlays=shared, playlists=names
                )
            except SourceErrors as exc:
                errors += exc.errors
                continue
            library.scenes[loaded.id] = loaded
        if errors:
            raise SourceErrors(errors)
        return library


def playlist_names(folder: Path | None) -> set[str] | None:
    """Names of the playlists in a folder (``*.yaml`` stems), or None if there is no folder."""
    if folder is None or not folder.is_dir():
        return None
    return {p.stem for p in folder.glob("*.yaml")}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scene files, for editors (``sessionctl schema``)."""
    schema = Scene.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sessionctl scene"
    schema.setdefault("properties", {})
    return schema
